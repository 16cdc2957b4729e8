/* Compute systems: the HCS compute-system API on Linux namespaces and cgroups.
 *
 * A compute system is created from a JSON configuration document (hcsshim
 * schema2 `ComputeSystem` shape, see docs/compute.md) and operated through a
 * handle.  Systems outlive the process that created them: a small per-system
 * monitor keeps init's exit status, and any process reopens a system by id.
 * Closing a handle never stops a system. */
#ifndef HCS_COMPUTE_H
#define HCS_COMPUTE_H

#include <stdbool.h>

#include "hcs/error.h"
#include "hcs/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hcs_system_s hcs_system_t;

/* Where init's stdio goes when the configuration has no CreateStd*Pipe or
 * EmulateConsole: an fd to dup (the caller keeps its copy), or -1 for
 * /dev/null.  NULL means all three are /dev/null. */
typedef struct {
  int in, out, err;
} hcs_compute_stdio_t;
/* For `out` and `err` (of a system's init or of a process): the system log,
 * <run root>/compute/<id>/ctr.log in the CRI format, kept by the monitor
 * (read it with hcs_compute_logs). */
#define HCS_STDIO_LOG (-2)
/* For `in` of a system's init: a pipe whose write end the monitor keeps for
 * attach clients (docker's `-i` on a detached container); with `out` and
 * `err` HCS_STDIO_LOG only. */
#define HCS_STDIO_ATTACH (-3)

/* Validate `config` (a JSON document), create the system (namespaces,
 * mounts, cgroup, monitor) and leave it in state Created: init waits for
 * start.  `root` NULL means $HCS_ROOT or /var/lib/hcs. */
HCS_EXPORT hcs_system_t *hcs_compute_create(const char *root, const char *id, const char *config,
                                            const hcs_compute_stdio_t *stdio, hcs_error_t *err);
/* Reopen an existing system by id, from any process. */
HCS_EXPORT hcs_system_t *hcs_compute_open(const char *root, const char *id, hcs_error_t *err);
/* Release the handle (never stops the system).  Safe on NULL. */
HCS_EXPORT void hcs_compute_close(hcs_system_t *cs);
HCS_EXPORT const char *hcs_compute_id(hcs_system_t *cs);

/* Validate a configuration document without creating anything; 0 when valid. */
HCS_EXPORT int hcs_compute_validate(const char *config, hcs_error_t *err);

HCS_EXPORT int hcs_compute_start(hcs_system_t *cs, hcs_error_t *err);
/* SIGTERM to init, then terminate after timeout_ms (< 0: wait forever). */
HCS_EXPORT int hcs_compute_shutdown(hcs_system_t *cs, int timeout_ms, hcs_error_t *err);
/* SIGKILL every process of the system; returns once the system is Stopped. */
HCS_EXPORT int hcs_compute_terminate(hcs_system_t *cs, hcs_error_t *err);
/* Send `sig` to init, or with `all` to every process of the system (its
 * cgroup).  0 when sent; an error when the system is not alive. */
HCS_EXPORT int hcs_compute_signal(hcs_system_t *cs, int sig, bool all, hcs_error_t *err);
HCS_EXPORT int hcs_compute_pause(hcs_system_t *cs, hcs_error_t *err);
HCS_EXPORT int hcs_compute_resume(hcs_system_t *cs, hcs_error_t *err);

/* Properties as a malloc'd JSON object.  `query` is NULL or a JSON document
 * {"PropertyTypes": ["Statistics", "ProcessList"]}; Id, Owner, State,
 * SystemType, RuntimeId, Pid, CreatedTime and (once stopped) ExitStatus /
 * ExitType are always present. */
HCS_EXPORT char *hcs_compute_properties(hcs_system_t *cs, const char *query, hcs_error_t *err);
/* Live resource change: {"Memory": {"SizeInMB": N}, "Processor":
 * {"Count": N, "Maximum": N, "Weight": N}} (any subset). */
HCS_EXPORT int hcs_compute_modify(hcs_system_t *cs, const char *request, hcs_error_t *err);
/* Systems under the root as a malloc'd JSON array of {Id, Owner, State,
 * SystemType, ...}.  filter: NULL or {"Owners": [...], "Ids": [...],
 * "State": "Running"}. */
HCS_EXPORT char *hcs_compute_enumerate(const char *root, const char *filter, hcs_error_t *err);

/* Wait for the system to stop: 1 stopped, 0 timed out, -1 error.
 * timeout_ms < 0 waits forever. */
HCS_EXPORT int hcs_compute_wait(hcs_system_t *cs, int timeout_ms, hcs_error_t *err);
/* SystemExited event: an fd (a pidfd of the system's monitor) that polls
 * readable once the system has stopped and its exit status is recorded.
 * Owned by the handle. */
HCS_EXPORT int hcs_compute_event_fd(hcs_system_t *cs, hcs_error_t *err);

/* Init's stdio endpoints held by the creating handle (pipes requested with
 * Linux.Init.CreateStd*Pipe, or the pty master for EmulateConsole, in
 * which case all three are the same fd).  The caller takes ownership; -1
 * where there is none.  Only the handle returned by create has them. */
HCS_EXPORT void hcs_compute_take_stdio(hcs_system_t *cs, int *in, int *out, int *err_fd);
/* The seccomp user-notification listener of a Created system's init
 * (Linux.Seccomp.Listener): a new fd the caller owns, to pass to a seccomp
 * agent.  Only before start (init's copy closes at its execve). */
HCS_EXPORT int hcs_compute_seccomp_listener(hcs_system_t *cs, hcs_error_t *err);
/* Resize init's console (EmulateConsole). */
HCS_EXPORT int hcs_compute_resize_console(hcs_system_t *cs, unsigned short rows, unsigned short cols, hcs_error_t *err);

/* Read the system log (init created with HCS_STDIO_LOG): messages of
 * stdout to out_fd and of stderr to err_fd (-1: left out), each with its
 * RFC 3339 timestamp first when `timestamps`.  `since_ns`/`until_ns`
 * (ns since the epoch, 0: unbounded) select by time, `tail` >= 0 keeps the
 * last N messages.  `follow` goes on until the system has stopped and its
 * log is read (an interrupting signal returns -1 with EINTR). */
typedef struct {
  bool follow, timestamps;
  long long since_ns, until_ns;
  long tail; /* < 0: all */
  int out_fd, err_fd;
} hcs_compute_log_options_t;
HCS_EXPORT int hcs_compute_logs(hcs_system_t *cs, const hcs_compute_log_options_t *opts, hcs_error_t *err);

/* Attach (conmon's attach socket): a connected SOCK_SEQPACKET socket to the
 * system's monitor, which serves it when the system logs (HCS_STDIO_LOG) or
 * keeps its console (EmulateConsole with a log).  Every packet starts with
 * a kind byte.  From the monitor: HCS_ATTACH_HELLO first (one byte of
 * flags: HCS_ATTACH_HAS_STDIN, HCS_ATTACH_HAS_CONSOLE), then STDOUT and
 * STDERR (the data follows; a console's output is STDOUT); once the system
 * stopped and its output is all sent, EXIT (the exit record as JSON, what
 * exit.json holds: ExitCode, ExitType, ...; sent before an auto-remove can
 * delete the system) and end of file.  To the monitor:
 * STDIN (data), RESIZE (two uint16_t, rows then cols, host order: the
 * console's TIOCSWINSZ), CLOSE_STDIN.  Several clients may attach at once;
 * each gets all output from its connection on, stdin from each is merged;
 * closing the socket detaches and leaves the system running.  flags (may
 * be NULL) gets the hello's flags.  Fails, saying why, for a stopped
 * system or one that has no attach socket. */
enum {
  HCS_ATTACH_STDIN = 0,
  HCS_ATTACH_STDOUT = 1,
  HCS_ATTACH_STDERR = 2,
  HCS_ATTACH_RESIZE = 3,
  HCS_ATTACH_CLOSE_STDIN = 4,
  HCS_ATTACH_HELLO = 5,
  HCS_ATTACH_EXIT = 6,
};
#define HCS_ATTACH_HAS_STDIN 1
#define HCS_ATTACH_HAS_CONSOLE 2
HCS_EXPORT int hcs_compute_attach(hcs_system_t *cs, int *flags, hcs_error_t *err);

/* Remove a stopped system's state.  force: terminate it first if running. */
HCS_EXPORT int hcs_compute_delete(hcs_system_t *cs, bool force, hcs_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
