/* The host side of the guest agent protocol (src/vm/agent_proto.h,
 * docs/vm-agent.md): connect to a VM's agent socket (QEMU's chardev
 * `hcsagent`, <system dir>/agent.sock), run processes in the guest, relay
 * their stdio through pipes the caller reads like a container process's.
 * Internal to libhcs: the VM compute system wires it into
 * hcs_process_create for VM systems. */
#ifndef HCS_VM_AGENT_CLIENT_H
#define HCS_VM_AGENT_CLIENT_H

#include <stdbool.h>

#include "core/util.h"

typedef struct hcs_vm_agent_s hcs_vm_agent_t;
typedef struct hcs_vm_agent_process_s hcs_vm_agent_process_t;

/* Connect and exchange a hello until the agent answers or timeout_ms
 * passes (the socket may not exist yet: QEMU is starting).  0 when the
 * agent is serving. */
HCS_INTERNAL int hcs_vm_agent_wait_ready(const char *sock_path, int timeout_ms, hcs_error_t *err);

/* A session with the agent: one per host connection (QEMU's chardev takes
 * one client at a time; a second waits until the first closes).  Closing
 * it ends the session: the guest kills the processes it started for it. */
HCS_INTERNAL hcs_vm_agent_t *hcs_vm_agent_connect(const char *sock_path, int timeout_ms, hcs_error_t *err);
HCS_INTERNAL void hcs_vm_agent_close(hcs_vm_agent_t *a);
/* The same over a connected stream socket (taken over, closed with the
 * session, also on failure): a monitor that holds QEMU's chardev, a socket
 * from QMP `getfd`, a test. */
HCS_INTERNAL hcs_vm_agent_t *hcs_vm_agent_connect_fd(int fd, int timeout_ms, hcs_error_t *err);

/* params: JSON ProcessParameters, the subset the agent runs: CommandArgs or
 * CommandLine, WorkingDirectory, Environment, User ("uid[:gid]" or names
 * from the guest's /etc/passwd and /etc/group), EmulateConsole,
 * ConsoleSize [rows, cols], CreateStdInPipe, CreateStdOutPipe,
 * CreateStdErrPipe.  Other members are ignored by the agent. */
HCS_INTERNAL hcs_vm_agent_process_t *hcs_vm_agent_create_process(hcs_vm_agent_t *a, const char *params,
                                                                 hcs_error_t *err);
/* The same; stdio[i] >= 0 (when the stream gets no pipe and no console)
 * is an fd of the caller's the stream goes to or comes from (dup'ed, the
 * caller keeps its copy), as hcs_process_create_ex takes them: a copier
 * thread moves the bytes, and wait returns once the output copied there is
 * complete.  stdio NULL: streams without a pipe are /dev/null. */
HCS_INTERNAL hcs_vm_agent_process_t *hcs_vm_agent_create_process_ex(hcs_vm_agent_t *a, const char *params,
                                                                    const int stdio[3], hcs_error_t *err);
/* A detached process (`hcs exec -d`), through the VM monitor's relay
 * only: the monitor owns it, so it outlives this session; no stdio (the
 * guest's /dev/null).  The handle learns its exit like any other. */
HCS_INTERNAL hcs_vm_agent_process_t *hcs_vm_agent_create_detached(hcs_vm_agent_t *a, const char *params,
                                                                  hcs_error_t *err);
/* A handle on a process the relay started (detached, or another
 * caller's), by guest pid: signal, wait, exit code; no stdio.  Relay
 * only; ESRCH when it knows no such process. */
HCS_INTERNAL hcs_vm_agent_process_t *hcs_vm_agent_open_process(hcs_vm_agent_t *a, int pid, hcs_error_t *err);
/* The process's pid inside the guest. */
HCS_INTERNAL int hcs_vm_agent_process_pid(hcs_vm_agent_process_t *p);
/* An eventfd (owned by the handle) that turns readable once the process
 * exited or the agent is gone: what a poll loop waits on, as a pidfd. */
HCS_INTERNAL int hcs_vm_agent_process_exit_fd(hcs_vm_agent_process_t *p);
/* The caller's ends: in (write), out and err (read); -1 where no pipe was
 * requested.  With EmulateConsole, in and out are one socket (two fds)
 * carrying the terminal, err is -1.  Ownership moves to the caller. */
HCS_INTERNAL void hcs_vm_agent_process_take_stdio(hcs_vm_agent_process_t *p, int *in, int *out, int *err_fd);
HCS_INTERNAL int hcs_vm_agent_process_signal(hcs_vm_agent_process_t *p, int sig, hcs_error_t *err);
HCS_INTERNAL int hcs_vm_agent_process_resize(hcs_vm_agent_process_t *p, unsigned short rows, unsigned short cols,
                                             hcs_error_t *err);
/* 1 exited, 0 timed out, -1 error (the agent is gone).  timeout_ms < 0
 * waits forever. */
HCS_INTERNAL int hcs_vm_agent_process_wait(hcs_vm_agent_process_t *p, int timeout_ms, hcs_error_t *err);
/* Exit code once exited (128+N when killed by signal N), else -1 with err. */
HCS_INTERNAL int hcs_vm_agent_process_exit_code(hcs_vm_agent_process_t *p, hcs_error_t *err);
/* The signal that killed it once exited, else 0. */
HCS_INTERNAL int hcs_vm_agent_process_exit_signal(hcs_vm_agent_process_t *p);
/* Release the handle (the process keeps running until the session ends).
 * Process handles are released before their session is closed. */
HCS_INTERNAL void hcs_vm_agent_process_close(hcs_vm_agent_process_t *p);

/* Mount the 9p share `tag` (QEMU's mount_tag) on `target` in the guest. */
HCS_INTERNAL int hcs_vm_agent_mount_9p(hcs_vm_agent_t *a, const char *tag, const char *target, bool readonly,
                                       hcs_error_t *err);
/* Configure the guest's link with MAC `mac` (waiting up to timeout_ms for
 * it to appear, a hot-added adapter): up, address/prefix, and a default
 * route through `gateway` (NULL: none) unless the guest has one. */
HCS_INTERNAL int hcs_vm_agent_configure_interface(hcs_vm_agent_t *a, const char *mac, const char *address, int prefix,
                                                  const char *gateway, int timeout_ms, hcs_error_t *err);
/* Ask the guest to power off (processes get SIGTERM, then SIGKILL). */
HCS_INTERNAL int hcs_vm_agent_poweroff(hcs_vm_agent_t *a, hcs_error_t *err);

/* agent_copy.c: a detached thread copying `from` to `to` until EOF, an
 * error, or `stop` (an eventfd; -1 none) turning readable.  It closes
 * from, to, stop and done (-1 none: its EOF tells a waiter the copy is
 * complete), also when it cannot start. */
HCS_INTERNAL int hcs_vm_agent_copier_start(int from, int to, int stop, int done, hcs_error_t *err);

#endif
