/* The per-system monitor: detached by a double fork + setsid, it clones
 * init, creates the cgroup, writes config.json and state.json, then sleeps
 * in waitpid until init exits.  It records the exit status and ExitType in
 * exit.json, removes the cgroup and the runtime files, and exits.  No central daemon: the
 * monitor is the only long-lived host process per system, and the
 * SystemExited event is its pidfd.  With a system log it also copies init's
 * output to ctr.log (log.c), polling the FIFOs and init's pidfd. */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "compute/compute.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* config.json and state.json, written while init pivots into its root;
 * once state.json exists the system can be opened (and started: start
 * waits until init is connected to the fifo). */
static int write_state(void *arg, pid_t pid, hcs_error_t *err) {
  hcs_spawn_t *s = arg;
  cleanup_free char *cfg_path = hcs_xasprintf("%s/config.json", s->cs->dir);
  if (hcs_state_write_json(cfg_path, s->cs->config, err) < 0) return -1;
  cleanup_free char *bpf_path = hcs_xasprintf("%s/seccomp.bpf", s->cs->dir);
  if (hcs_security_save_filter(&s->sec.prog, bpf_path, err) < 0) return -1;
  cleanup_free char *now = hcs_now_rfc3339();
  cleanup_json json_t *st =
      json_pack("{s:s,s:s?,s:i,s:I,s:i,s:I,s:s,s:s,s:b,s:s,s:s}", "Id", s->cs->id, "Owner", s->cfg->owner, "Pid",
                (int)pid, "PidStartTime", (json_int_t)hcs_pid_start_time(pid), "MonitorPid", (int)getpid(),
                "MonitorStartTime", (json_int_t)hcs_pid_start_time(getpid()), "Cgroup", s->cs->cgroup, "CgroupDriver",
                s->cg ? s->cg->name : "none", "Started", 0, "CreatedTime", now, "Rootfs", s->cfg->rootfs);
  cleanup_free char *path = hcs_xasprintf("%s/state.json", s->cs->dir);
  if (hcs_state_write_json(path, st, err) < 0) return -1;
  /* The system exists now: let go of the creator's lock (inherited). */
  if (s->create_lock >= 0) close(s->create_lock), s->create_lock = -1;
  cleanup_free char *text = json_dumps(st, JSON_COMPACT);
  /* Before the creator hears of it: the creator's next event (started)
   * comes after this one. */
  hcs_event_emit(s->cs->run_root, "system", "created", s->cs->id, s->cfg->owner, json_pack("{s:i}", "Pid", (int)pid));
  hcs_send_msg(s->sock, HCS_MSG_STATE, text, strlen(text), -1);
  return 0;
}

void hcs_monitor_send_error(int sock, hcs_error_t *err) {
  const char *m = hcs_error_message(*err);
  hcs_send_msg(sock, HCS_MSG_ERROR, m, strlen(m), -1);
  hcs_error_release(err);
}

int hcs_monitor_become(const char *name) {
  prctl(PR_SET_NAME, name, 0, 0, 0);
  /* Non-dumpable: nothing may open our /proc/PID/exe or mem. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  for (int sig = 1; sig < NSIG; sig++)
    signal(sig, SIG_DFL);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  return chdir("/");
}

/* Close every fd from `from` up but those in keep (-1 entries ignored;
 * sorted in place).  Only system calls: safe in a child after clone. */
void hcs_close_fds_but(unsigned from, int *keep, size_t n) {
  for (size_t i = 1; i < n; i++) /* insertion sort: n is tiny */
    for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
      int t = keep[j];
      keep[j] = keep[j - 1];
      keep[j - 1] = t;
    }
  unsigned lo = from;
  for (size_t i = 0; i < n; i++) {
    if (keep[i] < (int)lo) continue;
    if ((unsigned)keep[i] > lo) syscall(SYS_close_range, lo, (unsigned)keep[i] - 1, 0);
    lo = (unsigned)keep[i] + 1;
  }
  syscall(SYS_close_range, lo, ~0U, 0);
}

void hcs_monitor_close_all_but(int *keep, size_t n) { hcs_close_fds_but(3, keep, n); }

/* One place fills the base of both monitors, a container's and a VM's (src/vm/monitor.c). */
hcs_watch_base_t hcs_watch_base_of(const hcs_system_t *cs, const char *owner, const hcs_cgroup_ops_t *cg, pid_t pid,
                                   int pidfd) {
  return (hcs_watch_base_t){.id = cs->id,
                            .dir = cs->dir,
                            .run_root = cs->run_root,
                            .owner = owner,
                            .cgroup = cg ? cs->cgroup : NULL,
                            .cgroup_driver = cg ? cg->name : NULL,
                            .pid = pid,
                            .pidfd = pidfd};
}

static __attribute__((noreturn)) void run_monitor(hcs_spawn_t *s) {
  hcs_error_t err = NULL;
  hcs_system_t *cs = s->cs;
  if (hcs_monitor_become("hcs-monitor") < 0) _exit(1);

  int pidfd = -1, rfd[2] = {-1, -1}, wfd[2] = {-1, -1};
  bool logging = s->log[0] || s->log[1];
  if (logging && hcs_log_prepare(cs->dir, rfd, wfd, &err) < 0) {
    if (s->cg) s->cg->destroy(cs->cgroup, NULL);
    hcs_monitor_send_error(s->sock, &err);
    _exit(1);
  }
  for (int i = 0; i < 2; i++)
    if (s->log[i]) s->stdio[i + 1] = wfd[i];
  if (s->attach_stdin) {
    int in[2];
    if (pipe2(in, O_CLOEXEC) < 0) {
      hcs_error_make(&err, errno, "pipe");
      if (s->cg) s->cg->destroy(cs->cgroup, NULL);
      hcs_monitor_send_error(s->sock, &err);
      _exit(1);
    }
    s->stdio[0] = in[0]; /* closed below with the rest once init has it */
    s->stdin_w = in[1];
  }
  /* The attach socket exists before create returns (a client may connect
   * at once, as `run -it` does before start). */
  hcs_attach_server_t attach = {.listen_fd = -1};
  bool attachable = logging || s->monitor_console || s->attach_stdin;
  if (attachable) hcs_attach_listen(&attach, cs->dir);
  s->on_go = write_state;
  pid_t pid = hcs_spawn_init(s, &pidfd, &err);
  if (pid < 0) {
    if (s->cg) s->cg->destroy(cs->cgroup, NULL);
    hcs_monitor_send_error(s->sock, &err);
    _exit(1);
  }
  /* Drop every fd inherited from the creator (its stdio, pipes, the store
   * lock), so the creator's readers see EOF when init closes its ends.
   * Init's pidfd stays for a logging monitor and for an init that is a
   * child of the caller's subreaper (watched through it); the FIFOs' read
   * ends for a logging one. */
  bool reaped_elsewhere = s->cfg->caller_reaps_init;
  /* The relay runs for a log, a console the monitor keeps, or an attachable stdin. */
  bool relay = logging || s->console >= 0 || s->stdin_w >= 0;
  bool keep_pidfd = relay || reaped_elsewhere;
  /* Init's mount, IPC and UTS namespaces stay referenced until the exit is
   * recorded: the kernel then tears them down (the container's whole mount
   * tree) when we close them, not in init's exit before waitpid returns,
   * which halved the exit -> event latency. */
  static const char *const ns_names[3] = {"mnt", "ipc", "uts"};
  int ns[3];
  for (int i = 0; i < 3; i++) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)pid, ns_names[i]);
    ns[i] = open(path, O_RDONLY | O_CLOEXEC);
  }
  int keep[9] = {keep_pidfd ? pidfd : -1, rfd[0], rfd[1], ns[0], ns[1], ns[2], s->console, s->stdin_w,
                 attach.listen_fd};
  if (!keep_pidfd) close(pidfd);
  hcs_monitor_close_all_but(keep, 9);
  int null = open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3; fd++)
    dup2(null, fd);
  if (null > 2) close(null);

  hcs_watch_t w = {.base = hcs_watch_base_of(cs, s->cfg->owner, s->cg, pid, keep_pidfd ? pidfd : -1),
                   .log_fd = {rfd[0], rfd[1]},
                   .console = s->console,
                   .stdin_w = s->stdin_w,
                   .attach_fd = attach.listen_fd,
                   .ns_fd = {ns[0], ns[1], ns[2]},
                   .log_max_size = s->cfg->log_max_size,
                   .log_max_files = s->cfg->log_max_files,
                   .reaped_elsewhere = reaped_elsewhere,
                   .exit_command = s->cfg->exit_command};
  /* The small program in place of this fork of the creator: its pages are
   * what an idle system costs (watch.c).  It keeps our pid, children,
   * subreaper flag and the fds handed to it; if it cannot be exec'd, this
   * fork watches itself. */
  const char *program = hcs_watch_program();
  char **argv = hcs_watch_argv(&w, program);
  int pass[9] = {w.base.pidfd, rfd[0], rfd[1], s->console, s->stdin_w, attach.listen_fd, ns[0], ns[1], ns[2]};
  for (int i = 0; i < 9; i++)
    if (pass[i] >= 0) fcntl(pass[i], F_SETFD, 0);
  execve(program, argv, environ);
  for (int i = 0; i < 9; i++)
    if (pass[i] >= 0) fcntl(pass[i], F_SETFD, FD_CLOEXEC);
  hcs_watch_run(&w);
}

/* In the monitor's parent, once the monitor is forked: a new network
 * namespace for init, sent to the monitor (the parent exits right after). */
static void make_netns(int sock) {
  if (unshare(CLONE_NEWNET) < 0) {
    char msg[128];
    int n = snprintf(msg, sizeof msg, "create a network namespace: %s", strerror(errno));
    hcs_send_msg(sock, HCS_MSG_ERROR, msg, (size_t)n, -1);
    return;
  }
  int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    static const char msg[] = "open the new network namespace";
    hcs_send_msg(sock, HCS_MSG_ERROR, msg, sizeof msg - 1, -1);
    return;
  }
  hcs_send_msg(sock, HCS_MSG_OK, "", 0, fd);
  close(fd);
}

int hcs_monitor_launch(hcs_spawn_t *s, hcs_error_t *err) {
  int sv[2], ns[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return hcs_error_make(err, errno, "socketpair");
  /* Owned by the init user namespace: not for a user-namespaced init, which
   * must own its network namespace (sysfs, configuring lo). */
  bool late = s->netns_fd < 0 && s->cfg->n_uid_maps == 0;
  if (late && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ns) < 0) {
    close(sv[0]);
    close(sv[1]);
    return hcs_error_make(err, errno, "socketpair");
  }
  pid_t first = fork();
  if (first < 0) {
    close(sv[0]);
    close(sv[1]);
    if (late) close(ns[0]), close(ns[1]);
    return hcs_error_make(err, errno, "fork the monitor of `%s`", s->cs->id);
  }
  if (first == 0) {
    close(sv[0]);
    s->sock = sv[1];
    setsid();
    pid_t second = fork();
    if (second == 0) {
      if (late) close(ns[1]);
      s->netns_sock = ns[0];
      run_monitor(s);
    }
    if (s->create_lock >= 0) close(s->create_lock); /* the monitor holds it */
    if (second > 0 && late) make_netns(ns[1]);
    _exit(second < 0);
  }
  if (late) close(ns[0]), close(ns[1]);
  close(sv[1]);
  cleanup_close int sock = sv[0];
  int st;
  while (waitpid(first, &st, 0) < 0 && errno == EINTR) {
  }
  char msg[2048];
  int type, fd;
  bool have_state = false, ready = false;
  while (!have_state || !ready) {
    ssize_t n = hcs_recv_msg(sock, &type, msg, sizeof msg, &fd);
    if (n < 0) return hcs_error_make(err, errno, "read from the monitor of `%s`", s->cs->id);
    if (n == 0) return hcs_error_make(err, 0, "create `%s`: the monitor exited", s->cs->id);
    if (type == HCS_MSG_PTY && fd >= 0) {
      s->cs->console = fd;
      continue;
    }
    if (fd >= 0) close(fd);
    if (type == HCS_MSG_STATE) {
      json_decref(s->cs->state);
      s->cs->state = json_loads(msg, 0, NULL);
      have_state = true;
    } else if (type == HCS_MSG_READY) {
      ready = true;
    } else {
      return hcs_error_make(err, 0, "create `%s`: %s", s->cs->id, msg);
    }
  }
  return 0;
}
