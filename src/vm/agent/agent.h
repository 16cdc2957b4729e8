/* hcs-agent, the guest agent of hcs virtual machines (the analogue of
 * hcsshim's GCS): PID 1 of the initramfs `hcs vm initrd` builds.  init.c
 * brings the guest up, serve.c serves the framed protocol of
 * src/vm/agent_proto.h on the virtio-serial port. */
#ifndef HCS_AGENT_H
#define HCS_AGENT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#define AGENT_PORT_NAME "org.hcs.agent"

/* Messages go to the console (/dev/kmsg when PID 1 has no stdio). */
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* init.c */
void agent_init_system(void);        /* mounts, modules, network (PID 1 only) */
int agent_open_port(int timeout_ms); /* the virtio-serial port, O_RDWR|O_NONBLOCK */
int agent_open_power_button(void);   /* evdev fd of the "Power Button", or -1 */
void agent_poweroff(void) __attribute__((noreturn));
int agent_mkdir_p(const char *path, unsigned mode);
/* 0, or -1 with errno and *what naming the failed step ("mount", ...). */
int agent_mount_9p(const char *tag, const char *target, bool readonly, const char **what);

/* serve.c */
int agent_serve(int port, int power_fd);
void agent_send_json(json_t *msg); /* stolen */
/* An error answer: the message, ": strerror(errnum)" when errnum. */
void agent_reply_error(json_t *seq, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* net.c: IPv4 configuration by ioctl on socket s */
int agent_if_set(int s, const char *ifname, unsigned long req, const char *addr);
int agent_if_up(int s, const char *ifname);
int agent_add_default_route(int s, const char *ifname, const char *gateway);
/* The "configure_interface" request: checked, then done by a child. */
void agent_configure_interface_start(json_t *seq, json_t *req);
/* The reaper found `pid`: true (and the answer sent) when it was such a child. */
bool agent_configure_interface_reaped(pid_t pid);

#endif
