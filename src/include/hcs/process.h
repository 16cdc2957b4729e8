/* Processes inside a compute system (HcsCreateProcess and friends).
 *
 * A process is forked by the caller, joins the system's namespaces and
 * cgroup and execs the user binary directly (no helper binary is ever run
 * inside the container).  It is a child of the calling process, so its
 * handle lives in the process that created it. */
#ifndef HCS_PROCESS_H
#define HCS_PROCESS_H

#include "hcs/compute.h"
#include "hcs/error.h"
#include "hcs/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hcs_process_s hcs_process_t;

/* params: JSON ProcessParameters {CommandLine | CommandArgs, WorkingDirectory,
 * Environment {K: V}, User ("uid[:gid]" or a name from the container's
 * /etc/passwd), EmulateConsole, ConsoleSize [rows, cols], CreateStdInPipe,
 * CreateStdOutPipe, CreateStdErrPipe}. */
HCS_EXPORT hcs_process_t *hcs_process_create(hcs_system_t *cs, const char *params, hcs_error_t *err);
/* Same, with stdio taken from the caller's fds for the streams that get no
 * pipe (e.g. a CLI passing its own 0, 1, 2); NULL means /dev/null. */
HCS_EXPORT hcs_process_t *hcs_process_create_ex(hcs_system_t *cs, const char *params, const hcs_compute_stdio_t *stdio,
                                                hcs_error_t *err);
/* As create_ex, for a process that outlives its creator (`hcs exec -d`):
 * its parent is a small reaper (a grandchild of the caller, in its own
 * session) that records its exit code in the journal, so a handle opened
 * later (hcs_process_open), like the one returned, learns it.  In a VM the
 * VM's monitor owns it and records its exit; its stdio is the guest's
 * /dev/null (docs/vm.md). */
HCS_EXPORT hcs_process_t *hcs_process_create_detached(hcs_system_t *cs, const char *params,
                                                      const hcs_compute_stdio_t *stdio, hcs_error_t *err);
/* Release the handle; the process keeps running (it is not killed). */
HCS_EXPORT void hcs_process_close(hcs_process_t *p);
/* HcsOpenProcess: a handle on process `pid` of the system (one created by
 * another process, e.g. `hcs exec -d`); it must be in the system's pid
 * namespace (pids as the host sees them).  signal, terminate, wait,
 * event_fd and properties work; its exit code comes from the "process
 * exited" event its reaper (its creator) writes, and is unknown (-1, an
 * error from exit_code) when none did.  Its output, with stdio "log", is
 * in the system log.  No stdio, no resize.  In a VM, `pid` is a guest pid
 * of a process the VM's monitor started (detached, or another caller's);
 * its exit code comes from the monitor, also after the exit. */
HCS_EXPORT hcs_process_t *hcs_process_open(hcs_system_t *cs, int pid, hcs_error_t *err);
/* Host pid. */
HCS_EXPORT int hcs_process_pid(hcs_process_t *p);
/* Stdio endpoints (pipes, or the pty master on all three).  The caller
 * takes ownership; -1 where none was requested. */
HCS_EXPORT void hcs_process_take_stdio(hcs_process_t *p, int *in, int *out, int *err_fd);
HCS_EXPORT int hcs_process_signal(hcs_process_t *p, int sig, hcs_error_t *err);
HCS_EXPORT int hcs_process_terminate(hcs_process_t *p, hcs_error_t *err);
/* 1 exited, 0 timed out, -1 error.  timeout_ms < 0 waits forever. */
HCS_EXPORT int hcs_process_wait(hcs_process_t *p, int timeout_ms, hcs_error_t *err);
/* Exit code once exited (128+N when killed by signal N), else -1 with err. */
HCS_EXPORT int hcs_process_exit_code(hcs_process_t *p, hcs_error_t *err);
/* ProcessExited event: the process's pidfd, readable once it exited. */
HCS_EXPORT int hcs_process_event_fd(hcs_process_t *p);
HCS_EXPORT int hcs_process_resize_console(hcs_process_t *p, unsigned short rows, unsigned short cols, hcs_error_t *err);
/* {ProcessId, Exited, ExitCode, ExitSignal} as a malloc'd JSON string. */
HCS_EXPORT char *hcs_process_properties(hcs_process_t *p, hcs_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
