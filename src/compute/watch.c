/* What a system's monitor does once init runs: relay init's output to the
 * system log, wait for init, record the exit (exit.json, ExitType, OOM
 * kills, the cgroup's removal, the events) and exec Linux.ExitCommand.
 *
 * The forked monitor (monitor.c) spawns init, then execs the small
 * `hcs-monitor` program (src/monitor/main.c), which parses the arguments
 * built here and calls hcs_watch_run: an idle system then costs the pages
 * of a small static program, not those of a fork of the creating process
 * (a Lua host with its libraries).  When the program cannot be exec'd the
 * fork runs hcs_watch_run itself: the same behaviour, at the old cost.
 * The entry is generic (a pid or pidfd, log fds, an exit command) so VM
 * systems can use it too. */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compute/compute.h"

#ifndef HCS_MONITOR_PATH
#define HCS_MONITOR_PATH "/usr/local/libexec/hcs/hcs-monitor"
#endif

/* $HCS_MONITOR, the installed program, else the one beside the running
 * executable (a build tree's hcs or hcs-runtime, run before installing). */
const char *hcs_watch_program(void) {
  const char *env = secure_getenv("HCS_MONITOR");
  if (env && *env) return env;
  if (access(HCS_MONITOR_PATH, X_OK) == 0) return HCS_MONITOR_PATH;
  static char beside[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", beside, sizeof beside - 1);
  if (n > 0) {
    beside[n] = '\0';
    char *slash = strrchr(beside, '/');
    if (slash && (size_t)(slash - beside) + sizeof "/hcs-monitor" <= sizeof beside) {
      strcpy(slash, "/hcs-monitor");
      if (access(beside, X_OK) == 0) return beside;
    }
  }
  return HCS_MONITOR_PATH;
}

const hcs_cgroup_ops_t *hcs_watch_cgroup_ops(const char *driver) {
  if (driver && strcmp(driver, hcs_cgroup_v2_ops.name) == 0) return &hcs_cgroup_v2_ops;
  if (driver && strcmp(driver, hcs_cgroup_v1_ops.name) == 0) return &hcs_cgroup_v1_ops;
  return NULL;
}

/* --- the exit ------------------------------------------------------------- */

/* The exit is recorded: its events (OOM kills, then exited), once. */
static void emit_exit(const hcs_watch_t *w, json_t *e) {
  if (!hcs_system_claim_exit_event(w->base.dir)) return;
  json_int_t ooms = json_integer_value(json_object_get(e, "OomKillCount"));
  if (ooms > 0)
    hcs_event_emit(w->base.run_root, "system", "oom", w->base.id, w->base.owner,
                   json_pack("{s:I}", "OomKillCount", ooms));
  hcs_event_emit(w->base.run_root, "system", "exited", w->base.id, w->base.owner, json_deep_copy(e));
}

/* status < 0: init was reaped by the caller's subreaper (CallerReapsInit),
 * which alone learns its exit status. */
static void record_exit(const hcs_watch_t *w, int status, hcs_attach_server_t *attach) {
  const hcs_cgroup_ops_t *cg = w->base.cgroup ? hcs_watch_cgroup_ops(w->base.cgroup_driver) : NULL;
  int64_t ooms = cg ? cg->oom_kills(w->base.cgroup) : -1;
  cleanup_free char *marker_path = hcs_xasprintf("%s/exit-type", w->base.dir), *marker = NULL;
  hcs_read_file(marker_path, &marker, NULL, NULL);
  if (marker) marker[strcspn(marker, "\n")] = '\0';
  bool known = status >= 0;
  int code = !known ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  const char *type = known ? "Exited" : "Unknown";
  if (ooms > 0 && code != 0)
    type = "OomKilled";
  else if (marker && *marker)
    type = marker;
  else if (known && WIFSIGNALED(status))
    type = "Killed";
  if (cg) {
    /* Init's death emptied its pid namespace; anything left (a process
     * that joined the cgroup only) is killed before the exit is told. */
    json_t *left = cg->pids(w->base.cgroup, NULL);
    if (left && json_array_size(left) > 0) cg->kill_all(w->base.cgroup, NULL);
    json_decref(left);
  }
  cleanup_free char *now = hcs_now_rfc3339();
  cleanup_json json_t *e = json_pack("{s:i,s:s,s:s,s:I}", "ExitCode", code, "ExitType", type, "FinishedTime", now,
                                     "OomKillCount", (json_int_t)(ooms > 0 ? ooms : 0));
  if (known && WIFSIGNALED(status)) json_object_set_new(e, "ExitSignal", json_integer(WTERMSIG(status)));
  if (!known) json_object_del(e, "ExitCode");
  cleanup_free char *path = hcs_xasprintf("%s/exit.json", w->base.dir);
  hcs_state_write_json(path, e, NULL);
  emit_exit(w, e);
  /* Attached clients learn the exit from us: an auto-remove (the exit
   * command) may delete the system before they could read exit.json. */
  if (attach->listen_fd >= 0) {
    cleanup_free char *text = json_dumps(e, JSON_COMPACT);
    if (text) hcs_attach_send_exit(attach, text);
    hcs_attach_close(attach, w->base.dir);
  }
  /* The cgroup's removal (about 10 rmdirs on v1, an RCU grace period each
   * at worst) comes after the event: it was most of the event's latency.
   * The system reads as Stopped already (exit.json); delete waits for the
   * monitor, so an id reused after delete never meets this cgroup. */
  if (cg) cg->destroy(w->base.cgroup, NULL);
  hcs_system_t cs = {.dir = (char *)w->base.dir};
  hcs_system_remove_run_files(&cs);
}

void hcs_watch_run(const hcs_watch_t *w) {
  hcs_attach_server_t attach = {.listen_fd = -1, .stdin_fd = -1, .console = -1};
  for (int i = 0; i < HCS_ATTACH_MAX_CLIENTS; i++)
    attach.clients[i] = -1;
  /* The relay runs for a log, a console the monitor keeps, or an attachable stdin. */
  if (w->log_fd[0] >= 0 || w->log_fd[1] >= 0 || w->console >= 0 || w->stdin_w >= 0) {
    /* log.c reads only the log limits of the configuration. */
    hcs_config_t cfg = {.log_max_size = w->log_max_size, .log_max_files = w->log_max_files};
    int rfd[2] = {w->log_fd[0], w->log_fd[1]};
    attach.listen_fd = w->attach_fd;
    hcs_log_relay(w->base.dir, &cfg, rfd, w->console, w->stdin_w, w->base.pidfd, &attach);
  }
  int status = 0;
  if (w->reaped_elsewhere) {
    struct pollfd p = {w->base.pidfd, POLLIN, 0};
    while (poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
    status = -1;
  }
  for (; !w->reaped_elsewhere;) {
    int st;
    pid_t r = waitpid(-1, &st, 0);
    if (r == w->base.pid) {
      status = st;
      break;
    }
    if (r < 0 && errno != EINTR) break;
  }
  /* hcs-monitor's page drop (src/monitor/main.c), if still pending, must
   * not reach the exit command (an alarm survives execve). */
  alarm(0);
  record_exit(w, status, &attach);
  /* Init's namespaces were held so their teardown (the container's mount
   * tree) comes after the event rather than before waitpid returns. */
  for (int i = 0; i < 3; i++)
    if (w->ns_fd[i] >= 0) close(w->ns_fd[i]);
  /* Linux.ExitCommand (e.g. `hcs destroy ID` for `run --rm -d`): exec'd in
   * place, so the monitor pid stays alive until the clean-up is done and
   * waiters wake once it is over.  The system reads as Stopped already
   * (exit.json is written).  stdio is /dev/null, the cwd `/`. */
  if (w->exit_command && w->exit_command[0]) execv(w->exit_command[0], w->exit_command);
  _exit(0);
}

/* --- the command line of hcs-monitor --------------------------------------- */

/* Room for every option and its value (35 with all of them), then "--". */
enum { MAX_OPTS = 48 };

/* An option and its value at argv[n]. */
#define ARG(k, v) (argv[n++] = hcs_xstrdup(k), argv[n++] = hcs_xstrdup(v))
#define ARGF(k, fmt, ...) (argv[n++] = hcs_xstrdup(k), argv[n++] = hcs_xasprintf(fmt, __VA_ARGS__))

/* The part both monitors' command lines share (the VM's: src/vm/watch.c). */
size_t hcs_watch_base_argv(char **argv, size_t n, const hcs_watch_base_t *b) {
  ARG("--id", b->id);
  ARG("--dir", b->dir);
  ARG("--run-root", b->run_root);
  if (b->owner) ARG("--owner", b->owner);
  if (b->cgroup && b->cgroup_driver) ARG("--cgroup", b->cgroup), ARG("--cgroup-driver", b->cgroup_driver);
  ARGF("--pid", "%d", (int)b->pid);
  if (b->pidfd >= 0) ARGF("--pidfd", "%d", b->pidfd);
  return n;
}

char **hcs_watch_argv(const hcs_watch_t *w, const char *program) {
  size_t n_exit = 0;
  while (w->exit_command && w->exit_command[n_exit])
    n_exit++;
  char **argv = hcs_xcalloc(MAX_OPTS + n_exit + 1, sizeof *argv);
  size_t n = 0;
  argv[n++] = hcs_xstrdup(program);
  n = hcs_watch_base_argv(argv, n, &w->base);
  if (w->log_fd[0] >= 0 || w->log_fd[1] >= 0) {
    ARGF("--log-fds", "%d,%d", w->log_fd[0], w->log_fd[1]);
    ARGF("--log-max-size", "%lld", (long long)w->log_max_size);
    ARGF("--log-max-files", "%lld", (long long)w->log_max_files);
  }
  if (w->console >= 0) ARGF("--console", "%d", w->console);
  if (w->stdin_w >= 0) ARGF("--stdin", "%d", w->stdin_w);
  if (w->attach_fd >= 0) ARGF("--attach", "%d", w->attach_fd);
  if (w->ns_fd[0] >= 0 || w->ns_fd[1] >= 0 || w->ns_fd[2] >= 0)
    ARGF("--ns-fds", "%d,%d,%d", w->ns_fd[0], w->ns_fd[1], w->ns_fd[2]);
  if (w->reaped_elsewhere) argv[n++] = hcs_xstrdup("--caller-reaps");
  argv[n++] = hcs_xstrdup("--");
  for (size_t i = 0; i < n_exit; i++)
    argv[n++] = hcs_xstrdup(w->exit_command[i]);
  return argv;
}
#undef ARG
#undef ARGF

/* A command-line integer in [min, max], or the error naming the option. */
int hcs_watch_parse_int(const char *opt, const char *v, long long min, long long max, long long *out,
                        hcs_error_t *err) {
  char *end = NULL;
  errno = 0;
  long long x = v ? strtoll(v, &end, 10) : 0;
  if (v == NULL || end == v || *end || errno || x < min || x > max)
    return hcs_error_make(err, EINVAL, "option `%s`: `%s` is not an integer in [%lld, %lld]", opt, v ? v : "", min,
                          max);
  *out = x;
  return 0;
}

int hcs_watch_parse(int argc, char **argv, hcs_watch_t *w, hcs_error_t *err) {
  *w = (hcs_watch_t){.base = {.pid = -1, .pidfd = -1},
                     .log_fd = {-1, -1},
                     .console = -1,
                     .stdin_w = -1,
                     .attach_fd = -1,
                     .ns_fd = {-1, -1, -1}};
  int i = 1;
  for (; i < argc; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(opt, "--caller-reaps") == 0) {
      w->reaped_elsewhere = true;
      continue;
    }
    if (i + 1 >= argc) return hcs_error_make(err, EINVAL, "option `%s`: a value is missing", opt);
    const char *v = argv[++i];
    long long x;
    if (strcmp(opt, "--id") == 0)
      w->base.id = v;
    else if (strcmp(opt, "--dir") == 0)
      w->base.dir = v;
    else if (strcmp(opt, "--run-root") == 0)
      w->base.run_root = v;
    else if (strcmp(opt, "--owner") == 0)
      w->base.owner = v;
    else if (strcmp(opt, "--cgroup") == 0)
      w->base.cgroup = v;
    else if (strcmp(opt, "--cgroup-driver") == 0) {
      if (hcs_watch_cgroup_ops(v) == NULL)
        return hcs_error_make(err, EINVAL, "option `%s`: unknown driver `%s`", opt, v);
      w->base.cgroup_driver = v;
    } else if (strcmp(opt, "--pid") == 0) {
      if (hcs_watch_parse_int(opt, v, 1, INT32_MAX, &x, err) < 0) return -1;
      w->base.pid = (pid_t)x;
    } else if (strcmp(opt, "--pidfd") == 0) {
      if (hcs_watch_parse_int(opt, v, 0, INT32_MAX, &x, err) < 0) return -1;
      w->base.pidfd = (int)x;
    } else if (strcmp(opt, "--log-fds") == 0) {
      int a, b, end = 0;
      if (sscanf(v, "%d,%d%n", &a, &b, &end) != 2 || v[end] || a < -1 || b < -1)
        return hcs_error_make(err, EINVAL, "option `%s`: `%s` is not FD,FD", opt, v);
      w->log_fd[0] = a, w->log_fd[1] = b;
    } else if (strcmp(opt, "--console") == 0 || strcmp(opt, "--stdin") == 0 || strcmp(opt, "--attach") == 0) {
      if (hcs_watch_parse_int(opt, v, 0, INT32_MAX, &x, err) < 0) return -1;
      *(opt[2] == 'c' ? &w->console : opt[2] == 's' ? &w->stdin_w : &w->attach_fd) = (int)x;
    } else if (strcmp(opt, "--ns-fds") == 0) {
      int a, b, c, end = 0;
      if (sscanf(v, "%d,%d,%d%n", &a, &b, &c, &end) != 3 || v[end] || a < -1 || b < -1 || c < -1)
        return hcs_error_make(err, EINVAL, "option `%s`: `%s` is not FD,FD,FD", opt, v);
      w->ns_fd[0] = a, w->ns_fd[1] = b, w->ns_fd[2] = c;
    } else if (strcmp(opt, "--log-max-size") == 0) {
      if (hcs_watch_parse_int(opt, v, 0, INT64_MAX, &x, err) < 0) return -1;
      w->log_max_size = x;
    } else if (strcmp(opt, "--log-max-files") == 0) {
      if (hcs_watch_parse_int(opt, v, 0, INT32_MAX, &x, err) < 0) return -1;
      w->log_max_files = x;
    } else
      return hcs_error_make(err, EINVAL, "unknown option `%s`", opt);
  }
  if (i < argc) w->exit_command = argv + i;
  if (!w->base.id || !w->base.dir || !w->base.run_root || w->base.pid <= 0)
    return hcs_error_make(err, EINVAL, "`--id`, `--dir`, `--run-root` and `--pid` are required");
  if ((w->reaped_elsewhere || w->log_fd[0] >= 0 || w->log_fd[1] >= 0 || w->console >= 0 || w->stdin_w >= 0) &&
      w->base.pidfd < 0)
    return hcs_error_make(err, EINVAL,
                          "`--pidfd` is required with `--caller-reaps`, `--log-fds`, `--console` and `--stdin`");
  if (w->base.cgroup && !w->base.cgroup_driver)
    return hcs_error_make(err, EINVAL, "`--cgroup` needs `--cgroup-driver`");
  return 0;
}
