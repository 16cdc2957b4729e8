/* Processes in a virtual machine: hcs_process_create_ex on a VM system
 * runs the process through the guest agent (docs/vm-agent.md).  Each
 * process handle holds its own agent session, so the process lives as long
 * as its handle (the agent kills a session's processes when it ends), as a
 * caller's child does.  The session goes through the VM monitor's relay
 * (exec.sock, src/vm/relay.c) so that processes of several callers run at
 * once over QEMU's one-client channel.  A detached process (`hcs exec -d`)
 * is the monitor's instead, and outlives the handle; any process started
 * through the relay can be opened by guest pid from another session. */
#include <arpa/inet.h>
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

/* A session through the monitor's relay; `what` begins the messages. */
static hcs_vm_agent_t *session(hcs_system_t *cs, const char *what, hcs_error_t *err) {
  cleanup_free char *sock = hcs_vm_exec_socket(cs);
  if (relay_refuses(sock))
    return hcs_error_make(err, ECONNREFUSED, "%s `%s`: the VM's monitor is gone (nothing serves `%s`)", what, cs->id,
                          sock),
           NULL;
  hcs_vm_agent_t *a = hcs_vm_agent_connect(sock, agent_timeout_ms(), err);
  if (a == NULL) hcs_error_wrap(err, "%s `%s`: the guest agent (does the VM boot the hcs initramfs?)", what, cs->id);
  return a;
}

hcs_vm_exec_t *hcs_vm_exec_create(hcs_system_t *cs, const char *params, const hcs_compute_stdio_t *stdio, bool detach,
                                  int *pid, int fds[3], hcs_error_t *err) {
  int own[3] = {stdio ? stdio->in : -1, stdio ? stdio->out : -1, stdio ? stdio->err : -1};
  for (int i = 0; i < 3 && !detach; i++)
    if (own[i] < -1)
      return hcs_error_make(err, ENOTSUP, "create a process in `%s`: a virtual machine's processes have no system log",
                            cs->id),
             NULL;
  hcs_vm_agent_t *a = session(cs, "create a process in", err);
  if (a == NULL) return NULL;
  /* A detached process outlives this caller, so nothing of the caller's
   * (its fds, the copier threads) can carry its stdio: the guest's
   * /dev/null does. */
  hcs_vm_agent_process_t *p =
      detach ? hcs_vm_agent_create_detached(a, params, err) : hcs_vm_agent_create_process_ex(a, params, own, err);
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

hcs_vm_exec_t *hcs_vm_exec_open(hcs_system_t *cs, int pid, hcs_error_t *err) {
  cleanup_free char *what = hcs_xasprintf("open process %d of", pid);
  hcs_vm_agent_t *a = session(cs, what, err);
  if (a == NULL) return NULL;
  hcs_vm_agent_process_t *p = hcs_vm_agent_open_process(a, pid, err);
  if (p == NULL) {
    hcs_vm_agent_close(a);
    hcs_error_wrap(err, "open process %d of `%s`", pid, cs->id);
    return NULL;
  }
  hcs_vm_exec_t *x = hcs_xcalloc(1, sizeof *x);
  x->a = a;
  x->p = p;
  return x;
}

int hcs_vm_exec_event_fd(hcs_vm_exec_t *x) { return hcs_vm_agent_process_exit_fd(x->p); }

int hcs_vm_exec_signal(hcs_vm_exec_t *x, int sig, hcs_error_t *err) {
  return hcs_vm_agent_process_signal(x->p, sig, err);
}

int hcs_vm_exec_resize(hcs_vm_exec_t *x, unsigned short rows, unsigned short cols, hcs_error_t *err) {
  return hcs_vm_agent_process_resize(x->p, rows, cols, err);
}

int hcs_vm_exec_wait(hcs_vm_exec_t *x, int timeout_ms, int *code, int *signal, hcs_error_t *err) {
  int r = hcs_vm_agent_process_wait(x->p, timeout_ms, err);
  if (r == 1) *code = hcs_vm_agent_process_exit_code(x->p, NULL), *signal = hcs_vm_agent_process_exit_signal(x->p);
  return r;
}

void hcs_vm_exec_close(hcs_vm_exec_t *x) {
  if (x == NULL) return;
  hcs_vm_agent_process_close(x->p);
  hcs_vm_agent_close(x->a);
  free(x);
}

/* A hot-added adapter's address in the guest: the kernel command line's
 * `ip=` names only the adapters given at create, so the agent configures
 * the new link (found by its MAC once the guest's kernel probed it).  A
 * guest without the agent (no agent.ready) configures it itself. */
bool hcs_vm_exec_agent_ready(hcs_system_t *cs) {
  cleanup_free char *ready = hcs_xasprintf("%s/agent.ready", cs->dir);
  return access(ready, F_OK) == 0;
}

int hcs_vm_exec_configure_nic(hcs_system_t *cs, const hcs_vm_nic_t *nic, hcs_error_t *err) {
  if (nic->ip_param == NULL || nic->mac == NULL || !hcs_vm_exec_agent_ready(cs)) return 0;
  /* ip=ADDR::GW:MASK::eth0:off (src/net/tap.c) */
  char addr[INET_ADDRSTRLEN] = "", gw[INET_ADDRSTRLEN] = "", mask[INET_ADDRSTRLEN] = "";
  struct in_addr m;
  if (sscanf(nic->ip_param, "ip=%15[0-9.]::%15[0-9.]:%15[0-9.]:", addr, gw, mask) != 3 &&
      sscanf(nic->ip_param, "ip=%15[0-9.]:::%15[0-9.]:", addr, mask) != 2)
    return hcs_error_make(err, EINVAL, "configure network adapter `%s` of `%s`: unexpected address `%s`", nic->name,
                          cs->id, nic->ip_param);
  if (inet_pton(AF_INET, mask, &m) != 1)
    return hcs_error_make(err, EINVAL, "configure network adapter `%s` of `%s`: bad netmask `%s`", nic->name, cs->id,
                          mask);
  int prefix = __builtin_popcount(ntohl(m.s_addr));
  cleanup_free char *what = hcs_xasprintf("configure network adapter `%s` in the guest of", nic->name);
  hcs_vm_agent_t *a = session(cs, what, err);
  if (a == NULL) return -1;
  /* The guest's kernel sees the device within a second or two (ACPI
   * hot-plug, the virtio_net probe); TCG on a loaded host takes longer. */
  int r = hcs_vm_agent_configure_interface(a, nic->mac, addr, prefix, gw[0] ? gw : NULL, 30000, err);
  hcs_vm_agent_close(a);
  if (r < 0) hcs_error_wrap(err, "configure network adapter `%s` in the guest of `%s`", nic->name, cs->id);
  return r;
}
