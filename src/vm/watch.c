/* What a VM's monitor does once QEMU runs and state.json is written: relay
 * the callers' agent sessions (relay.c), wait for QEMU, and record its exit
 * (exit.json, ExitType, the events) after removing what the VM held (its
 * cgroup, taps and sockets).
 *
 * The forked monitor (monitor.c) starts QEMU and writes the state, then
 * execs `hcs-monitor --vm ...` (src/monitor/main.c) with the command line
 * built here: an idle VM then costs the pages of that small static program,
 * not those of a fork of the creating process (a Lua host with its
 * libraries).  QEMU stays its child (execve keeps children), the relay's
 * two sockets are passed as fds.  hcs-monitor checks that the command line
 * names its own VM before it acts on it (hcs_vm_watch_check).  When the
 * program cannot be exec'd the fork runs hcs_vm_watch_run itself: the same
 * behaviour, at the old cost. */
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vm/vm.h"

/* Without activity for this long the monitor gives back what it can. */
enum { IDLE_MS = 1000 };

void hcs_vm_remove_files(hcs_system_t *cs) {
  static const char *const names[] = {"qmp.sock", "agent.sock", "exec.sock", "agent.ready", "OVMF_VARS.fd"};
  char path[PATH_MAX];
  for (size_t i = 0; i < HCS_ARRAY_SIZE(names); i++) {
    snprintf(path, sizeof path, "%s/%s", cs->dir, names[i]);
    unlink(path);
  }
  hcs_system_remove_run_files(cs);
}

static void record_exit(const hcs_vm_watch_t *w, int status) {
  const hcs_cgroup_ops_t *cg = w->base.cgroup ? hcs_watch_cgroup_ops(w->base.cgroup_driver) : NULL;
  int64_t ooms = cg ? cg->oom_kills(w->base.cgroup) : -1;
  cleanup_free char *marker_path = hcs_xasprintf("%s/exit-type", w->base.dir), *marker = NULL;
  hcs_read_file(marker_path, &marker, NULL, NULL);
  if (marker) marker[strcspn(marker, "\n")] = '\0';
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  const char *type = "Exited";
  if (ooms > 0 && code != 0)
    type = "OomKilled";
  else if (marker && *marker)
    type = marker;
  else if (WIFSIGNALED(status))
    type = "Killed";
  if (cg) {
    json_t *left = cg->pids(w->base.cgroup, NULL);
    if (left && json_array_size(left) > 0) cg->kill_all(w->base.cgroup, NULL);
    json_decref(left);
    cg->destroy(w->base.cgroup, NULL);
  }
  /* The taps: state.json lists the document's (create) and those
   * hot-added since (modify records them before it makes them). */
  cleanup_free char *sp = hcs_xasprintf("%s/state.json", w->base.dir);
  cleanup_json json_t *st = json_load_file(sp, 0, NULL);
  if (st) hcs_vm_remove_taps(st);
  hcs_system_t cs = {.dir = (char *)w->base.dir};
  hcs_vm_remove_files(&cs);
  cleanup_free char *now = hcs_now_rfc3339();
  cleanup_json json_t *e = json_pack("{s:i,s:s,s:s,s:I}", "ExitCode", code, "ExitType", type, "FinishedTime", now,
                                     "OomKillCount", (json_int_t)(ooms > 0 ? ooms : 0));
  if (WIFSIGNALED(status)) json_object_set_new(e, "ExitSignal", json_integer(WTERMSIG(status)));
  cleanup_free char *path = hcs_xasprintf("%s/exit.json", w->base.dir);
  hcs_state_write_json(path, e, NULL);
  if (hcs_system_claim_exit_event(w->base.dir)) {
    if (ooms > 0)
      hcs_event_emit(w->base.run_root, "system", "oom", w->base.id, w->base.owner,
                     json_pack("{s:I}", "OomKillCount", (json_int_t)ooms));
    hcs_event_emit(w->base.run_root, "system", "exited", w->base.id, w->base.owner, json_deep_copy(e));
  }
}

void hcs_vm_watch_run(const hcs_vm_watch_t *w) {
  /* The agent relay runs here until QEMU exits; without it (the fork
   * could not make it) the VM runs on, its processes unreachable. */
  hcs_vm_relay_t *relay = w->exec_fd >= 0 && w->agent_fd >= 0
                              ? hcs_vm_relay_new(w->base.dir, w->base.run_root, w->base.id, w->base.owner, w->exec_fd,
                                                 w->agent_fd, w->nonce)
                              : NULL;
  int status = 0;
  /* Start-up counts as activity: the monitor turns idle a second later. */
  bool busy = true;
  for (;;) {
    int st;
    pid_t r;
    /* QEMU, or an orphan of its (the monitor is a subreaper). */
    while ((r = waitpid(-1, &st, WNOHANG)) > 0 && r != w->base.pid) {
    }
    if (r == w->base.pid) {
      status = st;
      break;
    }
    if (r < 0 && errno != EINTR) break;
    struct pollfd pfd[2 + 64 + 1];
    int n = relay ? hcs_vm_relay_pollfds(relay, pfd, 2 + 64) : 0;
    pfd[n] = (struct pollfd){w->base.pidfd, POLLIN, 0};
    /* Asleep for good once idle, woken by a caller, the agent or QEMU's
     * exit; without a pidfd, waitpid is asked each second. */
    int k = poll(pfd, (nfds_t)n + 1, busy || w->base.pidfd < 0 ? IDLE_MS : -1);
    if (k > 0) {
      busy = true;
      if (relay) hcs_vm_relay_handle(relay, pfd, n);
    } else if (k == 0 && busy) {
      /* Idle: a burst's buffers (an exec's output) go back to the kernel,
       * and hcs-monitor drops its read-only pages (src/monitor/main.c). */
      busy = false;
      if (relay) hcs_vm_relay_trim(relay);
      malloc_trim(0);
      if (w->on_idle) w->on_idle();
    }
  }
  hcs_vm_relay_free(relay);
  if (w->base.pidfd >= 0) close(w->base.pidfd);
  record_exit(w, status);
  _exit(0);
}

/* --- the command line of hcs-monitor --vm ---------------------------------- */

/* The program, `--vm`, the common options (16 strings) and the relay's 6. */
enum { MAX_ARGS = 32 };

char **hcs_vm_watch_argv(const hcs_vm_watch_t *w, const char *program) {
  char **argv = hcs_xcalloc(MAX_ARGS, sizeof *argv);
  size_t n = 0;
#define ARG(k, v) (argv[n++] = hcs_xstrdup(k), argv[n++] = hcs_xstrdup(v))
#define ARGF(k, fmt, ...) (argv[n++] = hcs_xstrdup(k), argv[n++] = hcs_xasprintf(fmt, __VA_ARGS__))
  argv[n++] = hcs_xstrdup(program);
  argv[n++] = hcs_xstrdup("--vm");
  n = hcs_watch_base_argv(argv, n, &w->base);
  if (w->exec_fd >= 0 && w->agent_fd >= 0 && w->nonce) {
    ARGF("--exec-fd", "%d", w->exec_fd);
    ARGF("--agent-fd", "%d", w->agent_fd);
    ARG("--nonce", w->nonce);
  }
#undef ARG
#undef ARGF
  return argv;
}

int hcs_vm_watch_parse(int argc, char **argv, hcs_vm_watch_t *w, hcs_error_t *err) {
  *w = (hcs_vm_watch_t){.base = {.pid = -1, .pidfd = -1}, .exec_fd = -1, .agent_fd = -1};
  if (argc < 2 || strcmp(argv[1], "--vm") != 0) return hcs_error_make(err, EINVAL, "`--vm` must come first");
  for (int i = 2; i < argc; i++) {
    const char *opt = argv[i];
    if (i + 1 >= argc) return hcs_error_make(err, EINVAL, "option `%s`: a value is missing", opt);
    const char *v = argv[++i];
    long long x = 0;
    if (strcmp(opt, "--id") == 0) {
      if (hcs_validate_id("system id", v, err) < 0) return hcs_error_wrap(err, "option `%s`", opt);
      w->base.id = v;
    } else if (strcmp(opt, "--dir") == 0) {
      w->base.dir = v;
    } else if (strcmp(opt, "--run-root") == 0) {
      w->base.run_root = v;
    } else if (strcmp(opt, "--owner") == 0) {
      w->base.owner = v;
    } else if (strcmp(opt, "--cgroup") == 0) {
      w->base.cgroup = v;
    } else if (strcmp(opt, "--cgroup-driver") == 0) {
      if (hcs_watch_cgroup_ops(v) == NULL)
        return hcs_error_make(err, EINVAL, "option `%s`: unknown driver `%s`", opt, v);
      w->base.cgroup_driver = v;
    } else if (strcmp(opt, "--nonce") == 0) {
      if (!*v || strlen(v) >= HCS_VM_NONCE_SIZE)
        return hcs_error_make(err, EINVAL, "option `%s`: 1 to %d characters", opt, HCS_VM_NONCE_SIZE - 1);
      w->nonce = v;
    } else if (strcmp(opt, "--pid") == 0 || strcmp(opt, "--pidfd") == 0 || strcmp(opt, "--exec-fd") == 0 ||
               strcmp(opt, "--agent-fd") == 0) {
      bool pid = strcmp(opt, "--pid") == 0;
      if (hcs_watch_parse_int(opt, v, pid ? 1 : 3, INT32_MAX, &x, err) < 0) return -1;
      *(pid ? &w->base.pid : opt[2] == 'p' ? &w->base.pidfd : opt[2] == 'e' ? &w->exec_fd : &w->agent_fd) = (int)x;
    } else {
      return hcs_error_make(err, EINVAL, "unknown option `%s`", opt);
    }
  }
  if (!w->base.id || !w->base.dir || !w->base.run_root || w->base.pid <= 0)
    return hcs_error_make(err, EINVAL, "`--id`, `--dir`, `--run-root` and `--pid` are required");
  cleanup_free char *dir = hcs_xasprintf("%s/compute/%s", w->base.run_root, w->base.id);
  if (strcmp(dir, w->base.dir) != 0)
    return hcs_error_make(err, EINVAL, "option `--dir`: `%s` is not `%s` (the run root's system `%s`)", w->base.dir,
                          dir, w->base.id);
  if ((w->exec_fd >= 0) != (w->agent_fd >= 0) || (w->exec_fd >= 0) != (w->nonce != NULL))
    return hcs_error_make(err, EINVAL, "`--exec-fd`, `--agent-fd` and `--nonce` go together");
  if (w->base.cgroup && !w->base.cgroup_driver)
    return hcs_error_make(err, EINVAL, "`--cgroup` needs `--cgroup-driver`");
  if (w->base.cgroup_driver && !w->base.cgroup)
    return hcs_error_make(err, EINVAL, "`--cgroup-driver` needs `--cgroup`");
  return 0;
}

/* --- hcs-monitor checks that the command line is its own ------------------- */

/* fd is a unix socket whose own (listening) or peer's address is `path`. */
static int check_socket(int fd, const char *opt, const char *path, bool listening, hcs_error_t *err) {
  struct stat sb;
  if (fstat(fd, &sb) < 0) return hcs_error_make(err, errno, "option `%s`: fd %d", opt, fd);
  struct sockaddr_un sun = {0};
  socklen_t len = sizeof sun;
  int acc = 0;
  socklen_t alen = sizeof acc;
  if (!S_ISSOCK(sb.st_mode) ||
      (listening ? getsockname(fd, (struct sockaddr *)&sun, &len) : getpeername(fd, (struct sockaddr *)&sun, &len)) <
          0 ||
      sun.sun_family != AF_UNIX || getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &alen) < 0 ||
      (acc != 0) != listening)
    return hcs_error_make(err, 0, "option `%s`: fd %d is not a %s unix socket", opt, fd,
                          listening ? "listening" : "connected");
  sun.sun_path[sizeof sun.sun_path - 1] = '\0';
  if (strcmp(sun.sun_path, path) != 0)
    return hcs_error_make(err, 0, "option `%s`: fd %d is %s `%s`, not `%s`", opt, fd,
                          listening ? "bound to" : "connected to", sun.sun_path, path);
  return 0;
}

static int check_pidfd(const hcs_vm_watch_t *w, hcs_error_t *err) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", w->base.pidfd);
  cleanup_free char *info = NULL;
  if (hcs_read_file(path, &info, NULL, NULL) < 0)
    return hcs_error_make(err, EBADF, "option `--pidfd`: fd %d is not open", w->base.pidfd);
  const char *p = strstr(info, "\nPid:");
  if (p == NULL || atoi(p + 5) != (int)w->base.pid)
    return hcs_error_make(err, 0, "option `--pidfd`: fd %d is not a pidfd of QEMU (pid %d)", w->base.pidfd,
                          (int)w->base.pid);
  return 0;
}

static int check_str(json_t *st, const char *key, const char *want, const char *opt, const char *path,
                     hcs_error_t *err) {
  const char *got = json_string_value(json_object_get(st, key));
  if (got == NULL && want == NULL) return 0;
  if (got && want && strcmp(got, want) == 0) return 0;
  return hcs_error_make(err, 0, "option `%s`: `%s` is not the `%s` of `%s` (`%s`)", opt, want ? want : "", key, path,
                        got ? got : "");
}

int hcs_vm_watch_check(const hcs_vm_watch_t *w, hcs_error_t *err) {
  siginfo_t si = {0};
  if (waitid(P_PID, (id_t)w->base.pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
    return hcs_error_make(err, errno == ECHILD ? 0 : errno,
                          "option `--pid`: %d is not a child of this process (QEMU is the monitor's child)",
                          (int)w->base.pid);
  cleanup_free char *path = hcs_xasprintf("%s/state.json", w->base.dir);
  json_error_t je;
  cleanup_json json_t *st = json_load_file(path, 0, &je);
  if (st == NULL) return hcs_error_make(err, 0, "read `%s`: %s", path, je.text);
  pid_t self = getpid();
  json_int_t mon = json_integer_value(json_object_get(st, "MonitorPid"));
  json_int_t qemu = json_integer_value(json_object_get(st, "Pid"));
  if (mon != self)
    return hcs_error_make(err, 0, "`%s` names monitor %lld, not this process (%d)", path, (long long)mon, (int)self);
  if (qemu != w->base.pid)
    return hcs_error_make(err, 0, "option `--pid`: %d is not the `Pid` of `%s` (%lld)", (int)w->base.pid, path,
                          (long long)qemu);
  const char *driver = w->base.cgroup_driver ? w->base.cgroup_driver : "none";
  if (check_str(st, "SystemType", "VirtualMachine", "--vm", path, err) < 0 ||
      check_str(st, "Id", w->base.id, "--id", path, err) < 0 ||
      check_str(st, "Owner", w->base.owner, "--owner", path, err) < 0 ||
      check_str(st, "CgroupDriver", driver, "--cgroup-driver", path, err) < 0 ||
      (w->base.cgroup && check_str(st, "Cgroup", w->base.cgroup, "--cgroup", path, err) < 0))
    return -1;
  if (w->base.pidfd >= 0 && check_pidfd(w, err) < 0) return -1;
  if (w->exec_fd >= 0) {
    cleanup_free char *exec_sock = hcs_xasprintf("%s/exec.sock", w->base.dir);
    cleanup_free char *agent_sock = hcs_xasprintf("%s/agent.sock", w->base.dir);
    if (check_socket(w->exec_fd, "--exec-fd", exec_sock, true, err) < 0 ||
        check_socket(w->agent_fd, "--agent-fd", agent_sock, false, err) < 0)
      return -1;
  }
  return 0;
}
