/* The framed protocol between libhcs (src/vm/agent_client.c) and the guest
 * agent (src/vm/agent/): one byte stream (virtio-serial) carries every
 * process's stdio and the JSON control messages.  Shared by both sides;
 * docs/vm-agent.md describes it. */
#ifndef HCS_VM_AGENT_PROTO_H
#define HCS_VM_AGENT_PROTO_H

#include <stdint.h>
#include <string.h>

/* Frame header, little endian, 12 bytes:
 *   u16 magic ("HA"), u8 type, u8 flags (0), u32 stream, u32 length
 * followed by `length` bytes of payload.  The magic lets a side that joined
 * mid-stream (a new host connection after an old one went away) find the
 * next frame. */
#define HCS_AGENT_MAGIC 0x4148u
#define HCS_AGENT_HDR 12u
#define HCS_AGENT_MAX_DATA 65536u   /* payload of a DATA frame */
#define HCS_AGENT_MAX_CTRL 1048576u /* payload of a CTRL frame (JSON) */
/* Initial credit of every stream in both directions: the receiver grants
 * more (WINDOW) as its reader consumes, so one slow reader holds at most
 * this much in flight and never stalls the channel for the others. */
#define HCS_AGENT_WINDOW 262144u

enum {
  HCS_AGENT_CTRL = 1,          /* JSON object; stream 0 */
  HCS_AGENT_DATA = 2,          /* raw bytes of a stream */
  HCS_AGENT_EOF = 3,           /* the stream's writer closed it */
  HCS_AGENT_WINDOW_UPDATE = 4, /* payload u32: more bytes the sender may send on the stream */
};

/* A stream id names a process (agent-assigned id, >= 1) and one of its
 * descriptors: id << 2 | fd, fd 0 stdin (host -> guest), 1 stdout, 2 stderr. */
#define HCS_AGENT_STREAM(id, fd) (((uint32_t)(id) << 2) | (uint32_t)(fd))
#define HCS_AGENT_STREAM_ID(s) ((s) >> 2)
#define HCS_AGENT_STREAM_FD(s) ((s)&3u)

static inline void hcs_agent_put_hdr(unsigned char *b, unsigned type, uint32_t stream, uint32_t len) {
  b[0] = HCS_AGENT_MAGIC & 0xff;
  b[1] = HCS_AGENT_MAGIC >> 8;
  b[2] = (unsigned char)type;
  b[3] = 0;
  for (int i = 0; i < 4; i++) {
    b[4 + i] = (unsigned char)(stream >> (8 * i));
    b[8 + i] = (unsigned char)(len >> (8 * i));
  }
}

static inline uint32_t hcs_agent_get_u32(const unsigned char *b) {
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* 0 when b holds a plausible header: magic, known type, length in bounds. */
static inline int hcs_agent_check_hdr(const unsigned char *b, unsigned *type, uint32_t *stream, uint32_t *len) {
  if (b[0] != (HCS_AGENT_MAGIC & 0xff) || b[1] != (HCS_AGENT_MAGIC >> 8) || b[3] != 0) return -1;
  *type = b[2];
  *stream = hcs_agent_get_u32(b + 4);
  *len = hcs_agent_get_u32(b + 8);
  switch (*type) {
  case HCS_AGENT_CTRL: return *len <= HCS_AGENT_MAX_CTRL && *stream == 0 ? 0 : -1;
  case HCS_AGENT_DATA: return *len <= HCS_AGENT_MAX_DATA && *stream != 0 ? 0 : -1;
  case HCS_AGENT_EOF: return *len == 0 && *stream != 0 ? 0 : -1;
  case HCS_AGENT_WINDOW_UPDATE: return *len == 4 && *stream != 0 ? 0 : -1;
  default: return -1;
  }
}

#endif
