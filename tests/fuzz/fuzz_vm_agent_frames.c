/* libFuzzer harness: what a guest sends the host's agent client
 * (src/vm/agent_client.c).  The guest is not trusted.  A scripted agent on
 * a socketpair answers the hello and one create, then sends the input as
 * raw bytes (frames, garbage, JSON, exit events, DATA past the window...)
 * and hangs up; the client relays stdout and stderr into pipes that are
 * read to EOF, waits for the process and closes.  An input beginning with
 * "#open\n" or "#conf\n" exercises the other requests instead: the client
 * opens a process by pid (the relay's "open") or asks for an interface's
 * configuration ("configure_interface"), and the rest of the input is all
 * the agent sends after the hello, the answer (seq 1) included or not.
 * Every run ends: the hang-up is "agent gone". */
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vm/agent_client.h"
#include "vm/agent_proto.h"

enum { MODE_CREATE, MODE_OPEN, MODE_CONF };

struct feed {
  int fd, mode;
  const uint8_t *data;
  size_t size;
};

static int read_full(int fd, void *b, size_t n) {
  for (size_t off = 0; off < n;) {
    ssize_t r = read(fd, (char *)b + off, n - off);
    if (r <= 0) return -1;
    off += (size_t)r;
  }
  return 0;
}

static json_t *read_ctrl(int fd) {
  for (;;) {
    unsigned char h[HCS_AGENT_HDR];
    unsigned type;
    uint32_t stream, n;
    if (read_full(fd, h, sizeof(h)) < 0 || hcs_agent_check_hdr(h, &type, &stream, &n) < 0) return NULL;
    char *p = malloc(n + 1);
    if (read_full(fd, p, n) < 0) {
      free(p);
      return NULL;
    }
    json_t *j = type == HCS_AGENT_CTRL ? json_loadb(p, n, 0, NULL) : NULL;
    free(p);
    if (j) return j;
  }
}

static void send_all(int fd, const void *p, size_t n) {
  for (size_t off = 0; off < n;) {
    ssize_t w = send(fd, (const char *)p + off, n - off, MSG_NOSIGNAL);
    if (w <= 0) return;
    off += (size_t)w;
  }
}

static void reply(int fd, json_t *j) {
  char *s = json_dumps(j, JSON_COMPACT);
  unsigned char h[HCS_AGENT_HDR];
  hcs_agent_put_hdr(h, HCS_AGENT_CTRL, 0, (uint32_t)strlen(s));
  send_all(fd, h, sizeof(h));
  send_all(fd, s, strlen(s));
  free(s);
  json_decref(j);
}

static void *agent(void *arg) {
  struct feed *f = arg;
  json_t *hello = read_ctrl(f->fd);
  if (hello) {
    reply(f->fd, json_pack("{s:O,s:b,s:O}", "seq", json_object_get(hello, "seq"), "ok", 1, "nonce",
                           json_object_get(hello, "nonce")));
    json_decref(hello);
    json_t *req = read_ctrl(f->fd);
    if (req && f->mode == MODE_CREATE)
      reply(f->fd, json_pack("{s:O,s:b,s:i,s:i}", "seq", json_object_get(req, "seq"), "ok", 1, "id", 1, "pid", 2));
    if (req) send_all(f->fd, f->data, f->size);
    json_decref(req);
  }
  shutdown(f->fd, SHUT_WR);
  char b[65536];
  while (read(f->fd, b, sizeof(b)) > 0) {
  }
  close(f->fd);
  return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) abort();
  struct feed f = {sp[1], MODE_CREATE, data, size};
  if (size >= 6 && memcmp(data, "#open\n", 6) == 0) f.mode = MODE_OPEN;
  if (size >= 6 && memcmp(data, "#conf\n", 6) == 0) f.mode = MODE_CONF;
  if (f.mode != MODE_CREATE) f.data += 6, f.size -= 6;
  pthread_t t;
  if (pthread_create(&t, NULL, agent, &f) != 0) abort();
  hcs_error_t err = NULL;
  hcs_vm_agent_t *a = hcs_vm_agent_connect_fd(sp[0], 10000, &err);
  if (a == NULL) {
    fprintf(stderr, "connect: %s\n", hcs_error_message(err));
    abort(); /* the scripted agent always answers the hello */
  }
  hcs_vm_agent_process_t *p = NULL;
  if (f.mode == MODE_CONF) {
    hcs_vm_agent_configure_interface(a, "02:00:00:00:00:01", "10.0.0.2", 24, "10.0.0.1", 1000, &err);
  } else if (f.mode == MODE_OPEN) {
    p = hcs_vm_agent_open_process(a, 2, &err);
    if (p) hcs_vm_agent_process_signal(p, 15, NULL);
  } else {
    p = hcs_vm_agent_create_process(
        a, "{\"CommandArgs\":[\"x\"],\"CreateStdInPipe\":true,\"CreateStdOutPipe\":true,\"CreateStdErrPipe\":true}",
        &err);
  }
  if (p) {
    int in = -1, out = -1, efd = -1;
    hcs_vm_agent_process_take_stdio(p, &in, &out, &efd);
    if (in >= 0) close(in); /* stdin EOF goes out too */
    char b[65536];
    while (out >= 0 && read(out, b, sizeof(b)) > 0) {
    }
    while (efd >= 0 && read(efd, b, sizeof(b)) > 0) {
    }
    hcs_vm_agent_process_wait(p, -1, NULL);
    hcs_vm_agent_process_exit_code(p, NULL);
    hcs_vm_agent_process_exit_signal(p);
    if (out >= 0) close(out);
    if (efd >= 0) close(efd);
    hcs_vm_agent_process_close(p);
  }
  hcs_error_release(&err);
  hcs_vm_agent_close(a);
  pthread_join(t, NULL);
  return 0;
}
