/* Processes in a virtual machine: hcs_process_create_ex on a VM system
 * runs the process through the guest agent (docs/vm-agent.md).  Each
 * process handle holds its own agent session, so the process lives as long
 * as its handle (the agent kills a session's processes when it ends), as a
 * caller's child does.  The session goes through the VM monitor's relay
 * (exec.sock, src/vm/relay.c) so that processes of several callers run at
 * once over QEMU's one-client channel. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vm/agent_client.h"
#include "vm/vm.h"

struct hcs_vm_exec_s {
  hcs_vm_agent_t *a;
  hcs_vm_agent_process_t *p;
};

/* How long a process creation waits for the agent to answer: a TCG guest
 * boots in 5-40 s on a busy host; $HCS_VM_AGENT_TIMEOUT (ms) overrides. */
static int agent_timeout_ms(void) {
  const char *e = getenv("HCS_VM_AGENT_TIMEOUT");
  if (e && *e) {
    char *end;
    long v = strtol(e, &end, 10);
    if (*end == '\0' && v > 0 && v < 3600000) return (int)v;
  }
  return 120000;
}

/* The relay's socket is there but nobody listens (twice, 100 ms apart:
 * the monitor binds just before it listens): its monitor was killed.  The
 * agent wait would only time out. */
static bool relay_refuses(const char *path) {
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sun.sun_path) return false;
  strcpy(sun.sun_path, path);
  for (int i = 0; i < 2; i++) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    int r = connect(fd, (struct sockaddr *)&sun, sizeof sun), e = errno;
    close(fd);
    if (r == 0 || e != ECONNREFUSED) return false;
    if (i == 0) usleep(100 * 1000);
  }
  return true;
}

char *hcs_vm_exec_socket(hcs_system_t *cs) { return hcs_xasprintf("%s/exec.sock", cs->dir); }

hcs_vm_exec_t *hcs_vm_exec_create(hcs_system_t *cs, const char *params, const hcs_compute_stdio_t *stdio, int *pid,
                                  int fds[3], hcs_error_t *err) {
  int own[3] = {stdio ? stdio->in : -1, stdio ? stdio->out : -1, stdio ? stdio->err : -1};
  for (int i = 0; i < 3; i++)
    if (own[i] < -1)
      return hcs_error_make(err, ENOTSUP, "create a process in `%s`: a virtual machine's processes have no system log",
                            cs->id),
             NULL;
  cleanup_free char *sock = hcs_vm_exec_socket(cs);
  if (relay_refuses(sock))
    return hcs_error_make(err, ECONNREFUSED, "create a process in `%s`: the VM's monitor is gone (nothing serves `%s`)",
                          cs->id, sock),
           NULL;
  hcs_vm_agent_t *a = hcs_vm_agent_connect(sock, agent_timeout_ms(), err);
  if (a == NULL) {
    hcs_error_wrap(err, "create a process in `%s`: the guest agent (does the VM boot the hcs initramfs?)", cs->id);
    return NULL;
  }
  hcs_vm_agent_process_t *p = hcs_vm_agent_create_process_ex(a, params, own, err);
  if (p == NULL) {
    hcs_vm_agent_close(a);
    hcs_error_wrap(err, "create a process in `%s`", cs->id);
    return NULL;
  }
  hcs_vm_exec_t *x = hcs_xcalloc(1, sizeof *x);
  x->a = a;
  x->p = p;
  *pid = hcs_vm_agent_process_pid(p);
  hcs_vm_agent_process_take_stdio(p, &fds[0], &fds[1], &fds[2]);
  return x;
}

int hcs_vm_exec_event_fd(hcs_vm_exec_t *x) { return hcs_vm_agent_process_exit_fd(x->p); }

int hcs_vm_exec_signal(hcs_vm_exec_t *x, int sig, hcs_error_t *err) {
  return hcs_vm_agent_process_signal(x->p, sig, err);
}

int hcs_vm_exec_resize(hcs_vm_exec_t *x, unsigned short rows, unsigned short cols, hcs_error_t *err) {
  return hcs_vm_agent_process_resize(x->p, rows, cols, err);
}

int hcs_vm_exec_wait(hcs_vm_exec_t *x, int timeout_ms, int *code, hcs_error_t *err) {
  int r = hcs_vm_agent_process_wait(x->p, timeout_ms, err);
  if (r == 1) *code = hcs_vm_agent_process_exit_code(x->p, NULL);
  return r;
}

void hcs_vm_exec_close(hcs_vm_exec_t *x) {
  if (x == NULL) return;
  hcs_vm_agent_process_close(x->p);
  hcs_vm_agent_close(x->a);
  free(x);
}
