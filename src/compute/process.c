/* Processes in a compute system (what they do before exec: child.c).  The
 * caller forks an intermediate that joins the cgroup and (with one setns on
 * init's pidfd) every namespace,
 * then clones the final process with CLONE_PARENT so it is the caller's
 * child inside the container's pid namespace.  The intermediate is made
 * non-dumpable before it joins, and the final process execs the user's
 * binary directly: nothing of hcs is ever exec'd in the container
 * (CVE-2019-5736). */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>

#include "compute/compute.h"
#include "hcs/events.h"
#include "vm/vm.h"

struct hcs_process_s {
  pid_t pid;
  int pidfd;
  int stdio[3];
  int console;
  bool exited;
  bool foreign; /* opened (hcs_process_open), not our child: its reaper records its exit */
  int status;   /* waitid si_code/si_status folded: exit code or 128+signal; -1 unknown */
  int signal;
  char *system_id, *run_root, *owner; /* for its events */
  char *root;                         /* the state root, to read the journal (opened handles) */
  hcs_vm_exec_t *vm;                  /* a process in a VM, through the guest agent (src/vm/exec.c) */
  bool vm_recorded;                   /* in a VM: its exit event is written by the monitor or its creator */
};

static void process_free(hcs_process_t *p) {
  if (p == NULL) return;
  for (int i = 0; i < 3; i++)
    if (p->stdio[i] >= 0 && p->stdio[i] != p->console) close(p->stdio[i]);
  if (p->console >= 0) close(p->console);
  if (p->pidfd >= 0) close(p->pidfd);
  hcs_vm_exec_close(p->vm);
  free(p->system_id);
  free(p->run_root);
  free(p->owner);
  free(p->root);
  free(p);
}

/* Reap an exited process on close so a dropped handle leaves no zombie; a
 * running one keeps running (and is reaped by whoever waits for it). */
void hcs_process_close(hcs_process_t *p) {
  if (p && !p->vm && !p->exited && !p->foreign && p->pidfd >= 0) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG);
  }
  process_free(p);
}

/* Runs in the final process, inside the container. */
static __attribute__((noreturn)) void exec_child(const hcs_security_t *sec, hcs_proc_spec_t *spec, int sock,
                                                 int fds[3]) {
  if (spec->console) {
    int master, slave;
    if (hcs_pty_open_in_container(&master, &slave, spec->rows, spec->cols) < 0) {
      hcs_child_report(sock, errno, "allocate a console");
      _exit(127);
    }
    if (hcs_send_msg(sock, HCS_MSG_PTY, "", 0, master) < 0 || hcs_pty_make_controlling(slave) < 0) {
      hcs_child_report(sock, errno, "set up the console");
      _exit(127);
    }
    close(master);
  } else {
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    /* dup the higher fds out of the way first so dup2 never clobbers one. */
    int tmp[3];
    for (int i = 0; i < 3; i++)
      tmp[i] = fcntl(fds[i] >= 0 ? fds[i] : null, F_DUPFD_CLOEXEC, 3);
    for (int i = 0; i < 3; i++)
      if (tmp[i] < 0 || dup2(tmp[i], i) < 0) {
        hcs_child_report(sock, errno, "set up stdio");
        _exit(127);
      }
    setsid();
  }
  hcs_child_exec(spec, sec, sock);
  _exit(127);
}

static hcs_process_t *process_new(hcs_system_t *cs) {
  hcs_process_t *p = hcs_xcalloc(1, sizeof *p);
  p->pidfd = -1;
  p->stdio[0] = p->stdio[1] = p->stdio[2] = p->console = -1;
  p->root = cs->root ? hcs_xstrdup(cs->root) : NULL;
  p->system_id = hcs_xstrdup(cs->id);
  p->run_root = hcs_xstrdup(cs->run_root);
  const char *owner = json_string_value(json_object_get(cs->state, "Owner"));
  if (!owner) owner = json_string_value(json_object_get(cs->config, "Owner"));
  p->owner = owner ? hcs_xstrdup(owner) : NULL;
  return p;
}

/* A process in a VM: the same checks of the parameters, then the guest
 * agent runs it.  pidfd is a duplicate of the session's exit eventfd (what
 * hcs_process_event_fd gives poll loops); its pid is the guest's. */
static hcs_process_t *create_in_vm(hcs_system_t *cs, json_t *doc, const char *params, const hcs_compute_stdio_t *stdio,
                                   bool detach, hcs_error_t *err) {
  hcs_proc_spec_t *spec = hcs_proc_spec_parse(doc, "", err);
  if (spec == NULL) return NULL;
  hcs_proc_spec_free(spec);
  hcs_state_t st = hcs_system_state(cs);
  if (st != HCS_STATE_RUNNING) {
    hcs_error_make(err, 0, "create a process in `%s`: the system is %s, not Running", cs->id, hcs_state_name(st));
    return NULL;
  }
  hcs_process_t *p = process_new(cs);
  int pid = 0;
  p->vm = hcs_vm_exec_create(cs, params, stdio, detach, &pid, p->stdio, err);
  p->vm_recorded = detach; /* the monitor is a detached process's reaper */
  if (p->vm == NULL || (p->pidfd = fcntl(hcs_vm_exec_event_fd(p->vm), F_DUPFD_CLOEXEC, 3)) < 0) {
    if (p->vm) hcs_error_make(err, errno, "duplicate the exit eventfd of a process in `%s`", cs->id);
    process_free(p);
    return NULL;
  }
  p->pid = pid;
  return p;
}

hcs_process_t *hcs_process_create_ex(hcs_system_t *cs, const char *params, const hcs_compute_stdio_t *stdio,
                                     hcs_error_t *err) {
  cleanup_json json_t *doc = hcs_json_parse(params ? params : "null", "process parameters", err);
  if (doc == NULL) return NULL;
  if (hcs_system_is_vm(cs)) return create_in_vm(cs, doc, params, stdio, false, err);
  hcs_proc_spec_t *spec = hcs_proc_spec_parse(doc, "", err);
  if (spec == NULL) return NULL;
  hcs_process_t *p = NULL;
  int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}}, sv[2] = {-1, -1}, logfd[3] = {-1, -1, -1};
  cleanup_close int initfd = -1;
  hcs_state_t st = hcs_system_state(cs);
  if (st != HCS_STATE_RUNNING) {
    hcs_error_make(err, 0, "create a process in `%s`: the system is %s, not Running", cs->id, hcs_state_name(st));
    goto fail;
  }
  if (hcs_system_prepare(cs, err) < 0 || (initfd = hcs_system_init_fd(cs, err)) < 0) goto fail;
  /* The process's own capability sets, within the system's bounding set. */
  hcs_security_t sec;
  if (hcs_security_for_process(&cs->sec, spec, &sec, err) < 0) {
    hcs_error_wrap(err, "create a process in `%s`", cs->id);
    goto fail;
  }
  bool want[3] = {spec->pipe_in, spec->pipe_out, spec->pipe_err};
  for (int i = 0; i < 3 && !spec->console; i++)
    if (want[i] && pipe2(pipes[i], O_CLOEXEC) < 0) {
      hcs_error_make(err, errno, "pipe");
      goto fail;
    }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    hcs_error_make(err, errno, "socketpair");
    goto fail;
  }
  int child_fds[3];
  int inherit[3] = {stdio ? stdio->in : -1, stdio ? stdio->out : -1, stdio ? stdio->err : -1};
  /* stdio "log": the write end of the monitor's FIFO, so a detached
   * process's output lands in the system log with init's. */
  if (inherit[0] == HCS_STDIO_LOG) {
    hcs_error_make(err, EINVAL, "create a process in `%s`: stdin cannot be the log", cs->id);
    goto fail;
  }
  for (int i = 1; i < 3; i++)
    if (inherit[i] == HCS_STDIO_LOG && !want[i] && !spec->console) {
      if ((logfd[i] = hcs_log_open_writer(cs->dir, i - 1, err)) < 0) goto fail;
      inherit[i] = logfd[i];
    }
  for (int i = 0; i < 3; i++)
    child_fds[i] = want[i] ? pipes[i][i == 0 ? 0 : 1] : inherit[i] == HCS_STDIO_LOG ? -1 : inherit[i];
  const hcs_cgroup_ops_t *cg = hcs_cgroup_ops();
  int nsflags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP;
  if (cs->cfg->n_uid_maps) nsflags |= CLONE_NEWUSER;
  if (cs->cfg->ns_paths[HCS_NS_TIME]) nsflags |= 0x00000080; /* CLONE_NEWTIME: init's joined one */
  /* glibc's fork (not a raw clone): the intermediate allocates, and in a
   * multi-threaded caller only fork resets the allocator's locks. */
  pid_t mid = fork();
  if (mid < 0) {
    hcs_error_make(err, errno, "fork");
    goto fail;
  }
  if (mid == 0) {
    close(sv[0]);
    /* Non-dumpable before joining: container processes cannot open our
     * /proc/PID/exe (or mem) while we are a copy of the caller. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    hcs_error_t cerr = NULL;
    if (cg && cg->enter_self(cs->cgroup, &cerr) < 0) {
      hcs_child_report(sv[1], 0, "%s", hcs_error_message(cerr));
      _exit(1);
    }
    if (setns(initfd, nsflags) < 0) {
      hcs_child_report(sv[1], errno, "join the namespaces of `%s`", cs->id);
      _exit(1);
    }
    pid_t gc = hcs_clone3(CLONE_PARENT, NULL, -1);
    if (gc < 0) {
      hcs_child_report(sv[1], errno, "clone into `%s`", cs->id);
      _exit(1);
    }
    if (gc > 0) {
      char buf[32];
      int n = snprintf(buf, sizeof buf, "%d", (int)gc);
      hcs_send_msg(sv[1], HCS_MSG_OK, buf, (size_t)n, -1);
      _exit(0);
    }
    exec_child(&sec, spec, sv[1], child_fds);
  }
  close(sv[1]);
  sv[1] = -1;
  for (int i = 1; i < 3; i++)
    if (logfd[i] >= 0) close(logfd[i]), logfd[i] = -1;
  for (int i = 0; i < 3; i++) {
    int child_end = pipes[i][i == 0 ? 0 : 1];
    if (child_end >= 0) close(child_end);
    pipes[i][i == 0 ? 0 : 1] = -1;
  }
  while (waitpid(mid, NULL, 0) < 0 && errno == EINTR) {
  }
  p = hcs_xcalloc(1, sizeof *p);
  p->pid = -1;
  p->pidfd = p->console = -1;
  for (int i = 0; i < 3; i++)
    p->stdio[i] = pipes[i][i == 0 ? 1 : 0], pipes[i][i == 0 ? 1 : 0] = -1;
  char msg[1024];
  int type, fd, failed = 0;
  for (;;) {
    ssize_t n = hcs_recv_msg(sv[0], &type, msg, sizeof msg, &fd);
    if (n <= 0) break;
    if (type == HCS_MSG_OK)
      p->pid = (pid_t)atoi(msg);
    else if (type == HCS_MSG_PTY && fd >= 0)
      p->console = fd, fd = -1;
    else if (type == HCS_MSG_ERROR) {
      hcs_child_error(err, msg, "create process in", cs->id);
      failed = 1;
    }
    if (fd >= 0) close(fd);
  }
  if (p->pid > 0 && failed) {
    waitpid(p->pid, NULL, 0);
    goto fail;
  }
  if (p->pid <= 0) {
    if (!failed) hcs_error_make(err, 0, "create process in `%s`: the helper died", cs->id);
    goto fail;
  }
  p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
  if (p->pidfd < 0) {
    hcs_error_make(err, errno, "pidfd_open %d", (int)p->pid);
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    goto fail;
  }
  if (p->console >= 0)
    for (int i = 0; i < 3; i++)
      p->stdio[i] = p->console;
  close(sv[0]);
  hcs_proc_spec_free(spec);
  p->system_id = hcs_xstrdup(cs->id);
  p->run_root = hcs_xstrdup(cs->run_root);
  const char *owner = json_string_value(json_object_get(cs->state, "Owner"));
  p->owner = owner ? hcs_xstrdup(owner) : NULL;
  hcs_event_emit(p->run_root, "process", "created", p->system_id, p->owner, json_pack("{s:i}", "Pid", (int)p->pid));
  return p;
fail:
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 2; j++)
      if (pipes[i][j] >= 0) close(pipes[i][j]);
    if (logfd[i] >= 0) close(logfd[i]);
  }
  if (sv[0] >= 0) close(sv[0]);
  if (sv[1] >= 0) close(sv[1]);
  process_free(p);
  hcs_proc_spec_free(spec);
  return NULL;
}

hcs_process_t *hcs_process_create(hcs_system_t *cs, const char *params, hcs_error_t *err) {
  return hcs_process_create_ex(cs, params, NULL, err);
}

int hcs_process_pid(hcs_process_t *p) { return p->pid; }

void hcs_process_take_stdio(hcs_process_t *p, int *in, int *out, int *err_fd) {
  int *dst[3] = {in, out, err_fd};
  if (p->vm) {
    for (int i = 0; i < 3; i++) {
      if (dst[i])
        *dst[i] = p->stdio[i];
      else if (p->stdio[i] >= 0)
        close(p->stdio[i]);
      p->stdio[i] = -1;
    }
    return;
  }
  bool console = p->console >= 0 && p->stdio[0] == p->console;
  for (int i = 0; i < 3; i++) {
    if (dst[i]) *dst[i] = p->stdio[i];
    p->stdio[i] = -1;
  }
  /* The caller owns the console fd now; keep our own copy for resize. */
  if (console) p->console = fcntl(p->console, F_DUPFD_CLOEXEC, 3);
}

int hcs_process_signal(hcs_process_t *p, int sig, hcs_error_t *err) {
  if (p->vm && !p->exited) return hcs_vm_exec_signal(p->vm, sig, err);
  if (p->exited) return hcs_error_make(err, ESRCH, "signal process %d", (int)p->pid);
  if (syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) < 0)
    return hcs_error_make(err, errno, "signal process %d", (int)p->pid);
  return 0;
}

int hcs_process_terminate(hcs_process_t *p, hcs_error_t *err) {
  if (p->exited) return 0;
  if (p->vm) {
    hcs_error_t e = NULL;
    if (hcs_vm_exec_signal(p->vm, SIGKILL, &e) < 0 && hcs_error_status(e) != ESRCH) {
      if (err)
        *err = e;
      else
        hcs_error_release(&e);
      return -1;
    }
    hcs_error_release(&e);
    return 0;
  }
  if (syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
    return hcs_error_make(err, errno, "kill process %d", (int)p->pid);
  return 0;
}

/* An opened process has exited: its exit code is in the journal's
 * "process exited" event, written by its reaper (the process that created
 * it and waits for it); the newest one for this pid.  The reaper writes it
 * just after reaping, so it is waited for a little. */
static int foreign_exit(hcs_process_t *p) {
  p->exited = true;
  p->status = -1;
  cleanup_json json_t *f = json_pack("{s:[s],s:[s],s:[s],s:I}", "Ids", p->system_id, "Types", "process", "Actions",
                                     "exited", "Since", (json_int_t)1);
  cleanup_free char *filter = json_dumps(f, JSON_COMPACT);
  hcs_events_t *sub = hcs_events_subscribe(p->root, filter, NULL);
  for (int wait_ms = 0; sub; wait_ms = 200) {
    char *e;
    bool found = false;
    while ((e = hcs_events_next(sub, wait_ms, NULL)) != NULL) {
      json_t *rec = json_loads(e, 0, NULL);
      free(e);
      json_t *a = json_object_get(rec, "Attributes");
      if (json_integer_value(json_object_get(a, "Pid")) == p->pid) {
        p->status = (int)json_integer_value(json_object_get(a, "ExitCode"));
        p->signal = (int)json_integer_value(json_object_get(a, "ExitSignal"));
        found = true;
      }
      json_decref(rec);
      wait_ms = 0;
    }
    if (found || wait_ms) break; /* found, or nothing came in 200 ms */
  }
  hcs_events_close(sub);
  return 1;
}

/* check: the pid must be in the system's pid namespace (not needed, and
 * impossible for a zombie, when we created it). */
static hcs_process_t *open_process(hcs_system_t *cs, int pid, bool check, hcs_error_t *err) {
  if (pid <= 0) {
    hcs_error_make(err, EINVAL, "open process %d of `%s`: not a pid", pid, cs->id);
    return NULL;
  }
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) {
    if (errno == ESRCH)
      hcs_error_make(err, 0, "open process %d of `%s`: no such process (it has exited, or never was)", pid, cs->id);
    else
      hcs_error_make(err, errno, "open process %d of `%s`", pid, cs->id);
    return NULL;
  }
  /* Checked after the open (the pidfd pins the process): it lives in the
   * system's pid namespace, i.e. init's. */
  hcs_error_t e = NULL;
  cleanup_close int init = check ? hcs_system_init_fd(cs, &e) : -1;
  hcs_error_release(&e);
  char path[64];
  struct stat mine, sys;
  snprintf(path, sizeof path, "/proc/%d/ns/pid", pid);
  bool in = !check || stat(path, &mine) == 0;
  snprintf(path, sizeof path, "/proc/%d/ns/pid", (int)cs->pid);
  in = !check || (in && init >= 0 && stat(path, &sys) == 0 && mine.st_ino == sys.st_ino && mine.st_dev == sys.st_dev);
  if (!in) {
    close(pidfd);
    hcs_error_make(err, ESRCH, "open process %d of `%s`: %s", pid, cs->id,
                   init < 0 ? "the system is not running" : "no such process in the system");
    return NULL;
  }
  hcs_process_t *p = hcs_xcalloc(1, sizeof *p);
  p->pid = pid;
  p->pidfd = pidfd;
  p->foreign = true;
  p->root = cs->root ? hcs_xstrdup(cs->root) : NULL;
  p->stdio[0] = p->stdio[1] = p->stdio[2] = p->console = -1;
  p->system_id = hcs_xstrdup(cs->id);
  p->run_root = hcs_xstrdup(cs->run_root);
  const char *owner = json_string_value(json_object_get(cs->state, "Owner"));
  p->owner = owner ? hcs_xstrdup(owner) : NULL;
  return p;
}

/* A process in a VM, by guest pid, through the monitor's relay (which
 * knows the processes it started and remembers their exits). */
static hcs_process_t *open_in_vm(hcs_system_t *cs, int pid, hcs_error_t *err) {
  if (pid <= 0) {
    hcs_error_make(err, EINVAL, "open process %d of `%s`: not a pid", pid, cs->id);
    return NULL;
  }
  hcs_state_t st = hcs_system_state(cs);
  if (st != HCS_STATE_RUNNING && st != HCS_STATE_PAUSED) {
    hcs_error_make(err, ESRCH, "open process %d of `%s`: the system is %s", pid, cs->id, hcs_state_name(st));
    return NULL;
  }
  hcs_process_t *p = process_new(cs);
  p->vm_recorded = true;
  p->vm = hcs_vm_exec_open(cs, pid, err);
  if (p->vm == NULL || (p->pidfd = fcntl(hcs_vm_exec_event_fd(p->vm), F_DUPFD_CLOEXEC, 3)) < 0) {
    if (p->vm) hcs_error_make(err, errno, "duplicate the exit eventfd of process %d in `%s`", pid, cs->id);
    process_free(p);
    return NULL;
  }
  p->pid = pid;
  return p;
}

hcs_process_t *hcs_process_open(hcs_system_t *cs, int pid, hcs_error_t *err) {
  if (hcs_system_is_vm(cs)) return open_in_vm(cs, pid, err);
  return open_process(cs, pid, true, err);
}

/* The detached process's reaper: a grandchild of the caller (double fork,
 * its own session) that creates the process (so it is its child), reports
 * the pid or the error on `fd`, waits for it and records its exit (the
 * "process exited" event), so the exit code outlives the caller. */
static __attribute__((noreturn)) void detached_reaper(hcs_system_t *cs, const char *params,
                                                      const hcs_compute_stdio_t *stdio, int fd) {
  setsid();
  prctl(PR_SET_NAME, "hcs-reaper", 0, 0, 0);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGTERM, SIG_DFL);
  hcs_error_t err = NULL;
  hcs_process_t *p = hcs_process_create_ex(cs, params, stdio, &err);
  char msg[1100];
  int n = p ? snprintf(msg, sizeof msg, "P%d", (int)p->pid) : snprintf(msg, sizeof msg, "E%s", hcs_error_message(err));
  int status = p ? 0 : hcs_error_status(err);
  if (write(fd, &status, sizeof status) != (ssize_t)sizeof status ||
      write(fd, msg, (size_t)(n < (int)sizeof msg ? n : (int)sizeof msg - 1)) < 0) {
  }
  /* The caller opens its pidfd, then closes its end: only then may the
   * process be reaped (a short one would be gone before it is opened). */
  char b;
  while (p && read(fd, &b, 1) < 0 && errno == EINTR) {
  }
  close(fd);
  if (p == NULL) _exit(1);
  /* Nothing of the caller stays open here (a reader of its stdout would
   * wait for us): stdio on /dev/null, every other fd but the pidfd closed. */
  int null = open("/dev/null", O_RDWR);
  for (int i = 0; i < 3 && null >= 0; i++)
    dup2(null, i);
  for (int i = 0; i < 3; i++)
    if (p->stdio[i] > 2) close(p->stdio[i]), p->stdio[i] = -1;
  if (p->pidfd > 3) syscall(SYS_close_range, 3U, (unsigned)p->pidfd - 1, 0U);
  syscall(SYS_close_range, (unsigned)p->pidfd + 1, ~0U, 0U);
  p->console = -1;
  while (hcs_process_wait(p, -1, NULL) == 0) {
  }
  _exit(0);
}

hcs_process_t *hcs_process_create_detached(hcs_system_t *cs, const char *params, const hcs_compute_stdio_t *stdio,
                                           hcs_error_t *err) {
  if (hcs_system_is_vm(cs)) {
    /* The VM's monitor owns it and records its exit: no reaper here. */
    cleanup_json json_t *doc = hcs_json_parse(params ? params : "null", "process parameters", err);
    return doc ? create_in_vm(cs, doc, params, stdio, true, err) : NULL;
  }
  int pipefd[2]; /* a socket pair: pid or error one way, end of file the other */
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pipefd) < 0) {
    hcs_error_make(err, errno, "socketpair");
    return NULL;
  }
  pid_t first = fork();
  if (first < 0) {
    hcs_error_make(err, errno, "fork the reaper of a process of `%s`", cs->id);
    close(pipefd[0]), close(pipefd[1]);
    return NULL;
  }
  if (first == 0) {
    close(pipefd[0]);
    pid_t second = fork();
    if (second == 0) detached_reaper(cs, params, stdio, pipefd[1]);
    _exit(second < 0);
  }
  close(pipefd[1]);
  int st;
  while (waitpid(first, &st, 0) < 0 && errno == EINTR) {
  }
  int status = 0;
  char msg[1100];
  ssize_t n = read(pipefd[0], &status, sizeof status);
  ssize_t m = n == (ssize_t)sizeof status ? read(pipefd[0], msg, sizeof msg - 1) : -1;
  if (m <= 0) {
    close(pipefd[0]);
    hcs_error_make(err, 0, "create a process in `%s`: its reaper died", cs->id);
    return NULL;
  }
  msg[m] = '\0';
  if (msg[0] == 'E') {
    close(pipefd[0]);
    hcs_error_make(err, 0, "%s", msg + 1);
    if (err && *err) (*err)->status = status; /* the exec's errno (126/127 in the CLI) */
    return NULL;
  }
  hcs_process_t *p = open_process(cs, atoi(msg + 1), false, err);
  close(pipefd[0]); /* the reaper may reap it now */
  return p;
}

static void emit_exited(hcs_process_t *p) {
  json_t *attrs = json_pack("{s:i,s:i}", "Pid", (int)p->pid, "ExitCode", p->status);
  if (p->signal) json_object_set_new(attrs, "ExitSignal", json_integer(p->signal));
  if (p->vm) json_object_set_new(attrs, "InGuest", json_true());
  hcs_event_emit(p->run_root, "process", "exited", p->system_id, p->owner, attrs);
}

int hcs_process_wait(hcs_process_t *p, int timeout_ms, hcs_error_t *err) {
  if (p->exited) return 1;
  if (p->vm) {
    int code = -1, sig = 0;
    int r = hcs_vm_exec_wait(p->vm, timeout_ms, &code, &sig, err);
    if (r <= 0) return r < 0 ? -1 : 0;
    p->exited = true;
    p->status = code;
    p->signal = sig;
    if (!p->vm_recorded) emit_exited(p);
    return 1;
  }
  struct pollfd pfd = {p->pidfd, POLLIN, 0};
  int r;
  do
    r = poll(&pfd, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r < 0) return hcs_error_make(err, errno, "wait for process %d", (int)p->pid);
  if (r == 0) return 0;
  if (p->foreign) return foreign_exit(p);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  if (waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED) < 0)
    return hcs_error_make(err, errno, "reap process %d", (int)p->pid);
  p->exited = true;
  if (si.si_code == CLD_EXITED) {
    p->status = si.si_status;
  } else {
    p->signal = si.si_status;
    p->status = 128 + si.si_status;
  }
  /* Written by the reaper (the process is the caller's child). */
  emit_exited(p);
  return 1;
}

int hcs_process_exit_code(hcs_process_t *p, hcs_error_t *err) {
  if (!p->exited && hcs_process_wait(p, 0, err) <= 0) {
    if (!p->exited) return hcs_error_make(err, 0, "process %d has not exited", (int)p->pid);
  }
  if (p->status < 0)
    return hcs_error_make(err, 0,
                          "process %d has exited; its exit code is unknown (its parent reaped it without recording it)",
                          (int)p->pid);
  return p->status;
}

int hcs_process_event_fd(hcs_process_t *p) { return p->pidfd; }

int hcs_process_resize_console(hcs_process_t *p, unsigned short rows, unsigned short cols, hcs_error_t *err) {
  if (p->vm) return hcs_vm_exec_resize(p->vm, rows, cols, err);
  if (p->console < 0) return hcs_error_make(err, ENOTTY, "resize process %d: it has no console", (int)p->pid);
  struct winsize ws = {.ws_row = rows, .ws_col = cols};
  if (ioctl(p->console, TIOCSWINSZ, &ws) < 0) return hcs_error_make(err, errno, "resize console");
  return 0;
}

char *hcs_process_properties(hcs_process_t *p, hcs_error_t *err) {
  if (!p->exited) hcs_process_wait(p, 0, NULL);
  cleanup_json json_t *o = json_pack("{s:i,s:b}", "ProcessId", (int)p->pid, "Exited", p->exited);
  if (p->exited && p->status >= 0) {
    json_object_set_new(o, "ExitCode", json_integer(p->status));
    if (p->signal) json_object_set_new(o, "ExitSignal", json_integer(p->signal));
  }
  return hcs_json_dumps(o);
}
