/* The compute-system verbs: create, open, start, shutdown, terminate,
 * pause, resume, properties, modify, enumerate, wait, delete. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>

#include "compute/compute.h"
#include "compute/config_util.h"
#include "core/crash.h"
#include "vm/vm.h"

int hcs_compute_validate(const char *config, hcs_error_t *err) {
  cleanup_json json_t *doc = hcs_json_parse(config, "configuration", err);
  if (doc == NULL) return -1;
  if (hcs_vm_document(doc)) {
    if (hcs_vm_prepare_document(doc, err) < 0) return -1;
    hcs_vm_config_t *vc = hcs_vm_config_parse(doc, err);
    hcs_vm_config_free(vc);
    return vc ? 0 : -1;
  }
  cleanup_free char *run_root = hcs_run_root_resolve(NULL);
  hcs_config_t *c = hcs_config_parse(doc, run_root, err);
  if (c == NULL) return -1;
  hcs_security_t sec; /* Seccomp.Deny names are checked by compiling */
  int r = hcs_security_prepare(c, &sec, err);
  hcs_security_release(&sec);
  hcs_config_free(c);
  return r;
}

/* Two state roots may both name a system `web`: under the shared default
 * parent `hcs`, a root other than the host's default gets leaves named
 * `<id>.<hash of its run root>`, so their cgroups never meet (as each root
 * has its own nftables table).  An explicit CgroupParent is the caller's
 * namespace and keeps the plain id. */
static char *system_cgroup_path(hcs_system_t *cs) {
  if (!cs->cfg->cgroup_parent_default || strcmp(cs->run_root, "/run/hcs") == 0)
    return hcs_cgroup_path(cs->cfg->cgroup_parent, cs->id);
  uint64_t h = hcs_fnv1a(HCS_FNV1A_INIT, cs->run_root, strlen(cs->run_root));
  cleanup_free char *leaf = hcs_xasprintf("%s.%08x", cs->id, (unsigned)(h & 0xffffffffu));
  return hcs_cgroup_path(cs->cfg->cgroup_parent, leaf);
}

/* Limits need a cgroup hierarchy; without one visible (e.g. under
 * `ip netns exec`, which mounts a new sysfs on /sys) they would be ignored:
 * refuse, naming the first field that asks for one. */
static int check_cgroup_for_limits(const hcs_config_t *c, const hcs_cgroup_ops_t *cg, hcs_error_t *err) {
  if (cg) return 0;
  const char *field = c->memory_mb    ? "Container.Memory.SizeInMB"
                      : c->cpu_count  ? "Container.Processor.Count"
                      : c->cpu_max    ? "Container.Processor.Maximum"
                      : c->cpu_weight ? "Container.Processor.Weight"
                      : c->pids_limit ? "Linux.PidsLimit"
                      : c->n_devices  ? "Linux.Devices"
                                      : NULL;
  if (field == NULL) return 0;
  return hcs_error_make(
      err, ENOTSUP, "`%s` needs a cgroup hierarchy and none is mounted at /sys/fs/cgroup (cgroup mode: none)", field);
}

/* Without a cgroup no device allowlist holds: CAP_MKNOD would let the
 * container make a node for a host disk and open it.  The default set
 * loses it there; an explicit set that grants it is refused. */
static int check_mknod_without_devices(hcs_config_t *c, const hcs_cgroup_ops_t *cg, hcs_error_t *err) {
  if (cg || !(c->caps & (1ULL << CAP_MKNOD))) return 0;
  if (c->caps_given)
    return hcs_error_make(err, ENOTSUP,
                          "`Linux.Capabilities` grants CAP_MKNOD, and with no cgroup hierarchy mounted at "
                          "/sys/fs/cgroup no device allowlist would hold");
  hcs_config_without_device_cgroup(c);
  return 0;
}

static void cleanup_failed_create(hcs_system_t *cs) {
  hcs_system_remove_run_files(cs);
  hcs_rm_rf(cs->dir, NULL);
  /* A seed made for it goes when no other system is left. */
  hcs_seed_release(cs->run_root);
}

/* The system's directory: made under a private name, locked, and renamed
 * into place.  The lock (returned) is held until state.json exists (the
 * monitor lets go of it then), so under its own name a directory is locked
 * or has state.json, and one that has neither is what a killed create left
 * (hcs_system_sweep_debris).  The store exists but the first time.
 * *made says the directory is there (the caller removes it on failure). */
int hcs_system_make_dir(hcs_system_t *cs, bool fifo, bool *made, hcs_error_t *err) {
  cleanup_free char *store = hcs_xasprintf("%s/compute", cs->run_root);
  cleanup_free char *tmp = hcs_xasprintf("%s/.new-%d-%s", store, (int)getpid(), cs->id);
  int r = mkdir(tmp, 0700);
  if (r < 0 && errno == ENOENT) {
    if (hcs_mkdir_p(store, 0700, err) < 0) return -1;
    r = mkdir(tmp, 0700);
  }
  if (r < 0 && errno == EEXIST) return hcs_error_make(err, EEXIST, "compute system `%s` is being created", cs->id);
  if (r < 0) return hcs_error_make(err, errno, "create `%s`", tmp);
  cleanup_close int lock = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cleanup_free char *tmp_fifo = hcs_xasprintf("%s/exec.fifo", tmp);
  if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0 || (fifo && mkfifo(tmp_fifo, 0600) < 0)) {
    hcs_error_make(err, errno, "set up `%s`", tmp);
    hcs_system_remove_dir(tmp, NULL);
    return -1;
  }
  r = renameat2(AT_FDCWD, tmp, AT_FDCWD, cs->dir, RENAME_NOREPLACE);
  if (r < 0 && errno == EEXIST) {
    if (hcs_system_sweep_debris(cs->dir))
      r = renameat2(AT_FDCWD, tmp, AT_FDCWD, cs->dir, RENAME_NOREPLACE);
    else
      errno = EEXIST;
  }
  if (r < 0) {
    int saved = errno;
    hcs_system_remove_dir(tmp, NULL);
    if (saved == EEXIST) return hcs_error_make(err, EEXIST, "compute system `%s` already exists", cs->id);
    return hcs_error_make(err, saved, "create `%s`", cs->dir);
  }
  *made = true;
  return steal_fd(lock);
}

/* Everything after the id check; on failure the caller removes the dirs
 * (only when `*made` says this call created them). */
static int create_system(hcs_system_t *cs, const char *config, const hcs_compute_stdio_t *stdio, bool *made,
                         hcs_error_t *err) {
  cleanup_json json_t *doc = hcs_json_parse(config, "configuration", err);
  if (doc == NULL) return -1;
  /* A VirtualMachine document makes a VM (src/vm): same directory, state
   * and exit record, QEMU in place of init. */
  if (hcs_vm_document(doc)) {
    if (hcs_vm_prepare_document(doc, err) < 0) return hcs_error_wrap(err, "create `%s`", cs->id);
    cleanup_close int lock = -1;
    hcs_vm_config_t *vc = hcs_vm_config_parse(doc, err);
    if (vc == NULL) return hcs_error_wrap(err, "create `%s`", cs->id);
    if ((lock = hcs_system_make_dir(cs, false, made, err)) < 0) {
      hcs_vm_config_free(vc);
      return -1;
    }
    int r = hcs_vm_create(cs, doc, vc, lock, err);
    hcs_vm_config_free(vc);
    return r;
  }
  cs->cfg = hcs_config_parse(doc, cs->run_root, err);
  if (cs->cfg == NULL) return -1;
  if (check_cgroup_for_limits(cs->cfg, hcs_cgroup_ops(), err) < 0 ||
      check_mknod_without_devices(cs->cfg, hcs_cgroup_ops(), err) < 0)
    return hcs_error_wrap(err, "create `%s`", cs->id);
  cleanup_free char *store = hcs_xasprintf("%s/compute", cs->run_root);
  cleanup_close int lock = hcs_system_make_dir(cs, true, made, err);
  if (lock < 0) return -1;
  /* config.json is written by the monitor, overlapped with init's setup. */
  cleanup_free char *fifo = hcs_xasprintf("%s/exec.fifo", cs->dir);
  cs->cgroup = system_cgroup_path(cs);
  cs->config = json_incref(doc);
  hcs_spawn_t s = {.cs = cs,
                   .cfg = cs->cfg,
                   .cg = hcs_cgroup_ops(),
                   .sock = -1,
                   .netns_fd = -1,
                   .netns_sock = -1,
                   .fifo = fifo,
                   .fifo_fd = -1,
                   .create_lock = lock,
                   .console = -1,
                   .stdin_w = -1,
                   .seed_fd = -1,
                   .root_tree = -1};
  if (hcs_security_prepare_saved(cs->cfg, &s.sec, NULL, store, err) < 0) return -1;
  /* v2: the device program is loaded here, once per process and rules, and
   * the monitor (a fork) attaches the inherited fd. */
  if (s.cg == &hcs_cgroup_v2_ops && (cs->cfg->device_filter_fd = hcs_device_filter_get(cs->cfg, err)) < 0)
    return hcs_error_wrap(err, "create `%s`", cs->id);
  int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  hcs_proc_spec_t *init = cs->cfg->init;
  bool want[3] = {init && init->pipe_in, init && init->pipe_out, init && init->pipe_err};
  int inherit[3] = {stdio ? stdio->in : -1, stdio ? stdio->out : -1, stdio ? stdio->err : -1};
  int ret = 0;
  bool console = init && init->console;
  if (inherit[0] == HCS_STDIO_LOG) return hcs_error_make(err, EINVAL, "create `%s`: stdin cannot be the log", cs->id);
  if (inherit[0] == HCS_STDIO_ATTACH && inherit[1] != HCS_STDIO_LOG)
    return hcs_error_make(err, EINVAL, "create `%s`: an attachable stdin needs stdout to the log", cs->id);
  if (inherit[0] == HCS_STDIO_ATTACH) {
    inherit[0] = -1;
    s.attach_stdin = !want[0] && !console;
  }
  for (int i = 1; i < 3; i++)
    if (inherit[i] == HCS_STDIO_LOG) {
      inherit[i] = -1;
      s.log[i - 1] = !want[i] && !console;
    }
  /* A console with a log: the monitor keeps it (logs it, serves attach). */
  s.monitor_console = console && stdio && stdio->out == HCS_STDIO_LOG;
  for (int i = 0; i < 3; i++) {
    if (want[i] && !init->console && pipe2(pipes[i], O_CLOEXEC) < 0) ret = hcs_error_make(err, errno, "pipe");
    s.stdio[i] = pipes[i][0] >= 0 ? pipes[i][i == 0 ? 0 : 1] : inherit[i];
  }
  if (ret == 0 && cs->cfg->netns) {
    s.netns_fd = open(cs->cfg->netns, O_RDONLY | O_CLOEXEC);
    if (s.netns_fd < 0) ret = hcs_error_make(err, errno, "open network namespace `%s`", cs->cfg->netns);
  }
  /* Init's mount namespace is copied from the run root's seed (seed.c). */
  if (ret == 0 && hcs_seed_fits(cs->cfg) && (s.seed_fd = hcs_seed_open(cs->run_root, err)) < 0)
    ret = hcs_error_wrap(err, "create `%s`", cs->id);
  if (ret == 0) ret = hcs_monitor_launch(&s, err);
  if (s.seed_fd >= 0) close(s.seed_fd);
  hcs_security_release(&s.sec);
  if (s.netns_fd >= 0) close(s.netns_fd);
  for (int i = 0; i < 3; i++) {
    if (pipes[i][0] < 0) continue;
    close(pipes[i][i == 0 ? 0 : 1]);
    if (ret == 0)
      cs->stdio[i] = pipes[i][i == 0 ? 1 : 0];
    else
      close(pipes[i][i == 0 ? 1 : 0]);
  }
  if (ret < 0) return -1;
  if (cs->console >= 0 && s.monitor_console) close(cs->console), cs->console = -1; /* attach to reach it */
  if (cs->console >= 0) cs->stdio[0] = cs->stdio[1] = cs->stdio[2] = cs->console;
  /* The monitor sent state.json along with its answer. */
  if (!json_is_object(cs->state)) return hcs_system_load(cs, err);
  cs->pid = (pid_t)json_integer_value(json_object_get(cs->state, "Pid"));
  cs->monitor_pid = (pid_t)json_integer_value(json_object_get(cs->state, "MonitorPid"));
  return 0;
}

hcs_system_t *hcs_compute_create(const char *root, const char *id, const char *config, const hcs_compute_stdio_t *stdio,
                                 hcs_error_t *err) {
  hcs_system_t *cs = hcs_system_new(root, id, err);
  bool made = false;
  if (cs == NULL) return NULL;
  if (create_system(cs, config, stdio, &made, err) < 0) {
    if (made) cleanup_failed_create(cs);
    hcs_compute_close(cs);
    return NULL;
  }
  return cs;
}

hcs_system_t *hcs_compute_open(const char *root, const char *id, hcs_error_t *err) {
  hcs_system_t *cs = hcs_system_new(root, id, err);
  if (cs == NULL) return NULL;
  if (hcs_system_load(cs, err) < 0) {
    hcs_compute_close(cs);
    return NULL;
  }
  return cs;
}

/* The lock is the system's directory itself: flock works on a directory
 * fd, and no lock file has to be created (and removed again). */
static int lock_system(hcs_system_t *cs, hcs_error_t *err) {
  int fd = open(cs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return hcs_error_make(err, ENOENT, "compute system `%s` not found", cs->id);
    return hcs_error_make(err, errno, "open `%s`", cs->dir);
  }
  while (flock(fd, LOCK_EX) < 0) {
    if (errno == EINTR) continue;
    int saved = errno;
    close(fd);
    return hcs_error_make(err, saved, "lock `%s`", cs->dir);
  }
  return fd;
}

int hcs_compute_start(hcs_system_t *cs, hcs_error_t *err) {
  cleanup_close int lock = lock_system(cs, err);
  if (lock < 0) return -1;
  hcs_state_t st = hcs_system_state(cs);
  if (st != HCS_STATE_CREATED)
    return hcs_error_make(err, 0, "start `%s`: the system is %s, not Created", cs->id, hcs_state_name(st));
  if (hcs_system_is_vm(cs)) return hcs_vm_start(cs, err);
  /* The monitor is pinned by its pidfd before the fifo is opened: that
   * open lets init exec, and a short command can run, exit and have its
   * monitor record the exit and go while this process is preempted; looked
   * up after, neither pid would match any more ("no live process"). */
  int mfd = hcs_system_monitor_fd(cs, err);
  if (mfd < 0) return -1;
  /* Before init may run (opening the fifo lets it go): its exit, the
   * monitor's event, comes after.  A start that fails ends in that exit
   * too. */
  hcs_system_emit(cs, "started", NULL);
  cleanup_free char *fifo = hcs_xasprintf("%s/exec.fifo", cs->dir);
  cleanup_close int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return hcs_error_make(err, errno, "start `%s`: open `%s`", cs->id, fifo);
  hcs_pause_point("start: init released");
  json_object_set_new(cs->state, "Started", json_true());
  cleanup_free char *now = hcs_now_rfc3339();
  json_object_set_new(cs->state, "StartedTime", json_string(now));
  cleanup_free char *sp = hcs_xasprintf("%s/state.json", cs->dir);
  if (hcs_state_write_json(sp, cs->state, err) < 0) return -1;
  /* Protocol: init's open of the fifo waits for this reader; then init
   * either execs (the write end closes on exec: EOF) or writes an error
   * message and exits.  The kernel reports POLLHUP on a FIFO only once a
   * writer has come and gone, so readiness here means init was connected;
   * the monitor exiting first means init died before. */
  char buf[1024];
  size_t len = 0;
  for (;;) {
    struct pollfd p[2] = {{fd, POLLIN, 0}, {mfd, POLLIN, 0}};
    int r = poll(p, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return hcs_error_make(err, errno, "start `%s`: poll", cs->id);
    }
    if (p[0].revents) {
      ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n < 0) return hcs_error_make(err, errno, "start `%s`: read `%s`", cs->id, fifo);
      if (n > 0 && (len += (size_t)n) < sizeof buf - 1) continue;
      break;
    }
    if (p[1].revents) return hcs_error_make(err, 0, "start `%s`: init exited before it started", cs->id);
  }
  unlink(fifo);
  if (len > 0) {
    buf[len] = '\0';
    return hcs_child_error(err, buf, "start", cs->id);
  }
  return 0;
}

/* Returns once the monitor has exited: exit.json is written and the cgroup
 * and runtime files are gone by then. */
int hcs_compute_wait(hcs_system_t *cs, int timeout_ms, hcs_error_t *err) {
  hcs_error_t e = NULL;
  int fd = hcs_system_monitor_fd(cs, &e);
  if (fd < 0) {
    hcs_error_release(&e);
    return 1; /* nothing of it is alive any more */
  }
  /* In a cancelled operation (a shutdown's wait) the wait ends early. */
  struct pollfd p[2] = {{fd, POLLIN, 0}, {hcs_operation_cancel_fd(), POLLIN, 0}};
  int r;
  do
    r = poll(p, p[1].fd >= 0 ? 2 : 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r < 0) return hcs_error_make(err, errno, "wait for `%s`", cs->id);
  if (r > 0 && !p[0].revents) return hcs_error_make(err, ECANCELED, "wait for `%s`: cancelled", cs->id);
  return r > 0;
}

int hcs_compute_event_fd(hcs_system_t *cs, hcs_error_t *err) { return hcs_system_monitor_fd(cs, err); }

static int mark_exit(hcs_system_t *cs, const char *type) {
  cleanup_free char *p = hcs_xasprintf("%s/exit-type", cs->dir);
  return hcs_state_write(p, type, strlen(type), NULL);
}

static int signal_init(hcs_system_t *cs, int sig, hcs_error_t *err) {
  hcs_error_t e = NULL;
  cleanup_close int fd = hcs_system_init_fd(cs, &e);
  if (fd < 0) {
    hcs_error_release(&e);
    return 0; /* already gone */
  }
  if (syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0 && errno != ESRCH)
    return hcs_error_make(err, errno, "signal init of `%s`", cs->id);
  return 0;
}

int hcs_compute_terminate(hcs_system_t *cs, hcs_error_t *err) {
  if (hcs_system_state(cs) == HCS_STATE_STOPPED) return 0;
  mark_exit(cs, "Terminated");
  if (signal_init(cs, SIGKILL, err) < 0) return -1;
  /* Frozen tasks die only once thawed. */
  const hcs_cgroup_ops_t *cg = hcs_cgroup_ops();
  if (cg && cg->is_frozen(cs->cgroup)) cg->freeze(cs->cgroup, false, NULL);
  int r = hcs_compute_wait(cs, 30000, err);
  if (r < 0) return -1;
  if (r == 0) return hcs_error_make(err, ETIMEDOUT, "terminate `%s`", cs->id);
  return 0;
}

int hcs_compute_shutdown(hcs_system_t *cs, int timeout_ms, hcs_error_t *err) {
  hcs_state_t st = hcs_system_state(cs);
  if (st == HCS_STATE_STOPPED) return 0;
  if (st == HCS_STATE_CREATED || st == HCS_STATE_PAUSED) return hcs_compute_terminate(cs, err);
  mark_exit(cs, "Shutdown");
  if (hcs_system_is_vm(cs)) return hcs_vm_shutdown(cs, timeout_ms, err);
  if (signal_init(cs, SIGTERM, err) < 0) return -1;
  hcs_system_emit(cs, "shutdown", json_pack("{s:i}", "TimeoutMs", timeout_ms));
  int r = hcs_compute_wait(cs, timeout_ms, err);
  if (r < 0) return -1;
  if (r == 0) return hcs_compute_terminate(cs, err);
  return 0;
}

int hcs_compute_signal(hcs_system_t *cs, int sig, bool all, hcs_error_t *err) {
  hcs_state_t st = hcs_system_state(cs);
  if (st == HCS_STATE_STOPPED) return hcs_error_make(err, ESRCH, "signal `%s`: the system is Stopped", cs->id);
  if (!all) {
    cleanup_close int fd = hcs_system_init_fd(cs, err);
    if (fd < 0) return -1;
    if (syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0)
      return hcs_error_make(err, errno, "signal init of `%s`", cs->id);
    return 0;
  }
  const hcs_cgroup_ops_t *cg = hcs_cgroup_ops();
  cleanup_json json_t *pids = cg ? cg->pids(cs->cgroup, err) : NULL;
  if (pids == NULL) return cg ? -1 : hcs_error_make(err, ENOTSUP, "signal `%s`: no cgroup", cs->id);
  json_t *p;
  size_t i;
  json_array_foreach(pids, i, p) {
    if (kill((pid_t)json_integer_value(p), sig) < 0 && errno != ESRCH)
      return hcs_error_make(err, errno, "signal process %lld of `%s`", (long long)json_integer_value(p), cs->id);
  }
  /* Frozen tasks act on a signal only once thawed (as runc kill --all). */
  if (sig == SIGKILL && cg->is_frozen(cs->cgroup)) cg->freeze(cs->cgroup, false, NULL);
  return 0;
}

int hcs_compute_pause(hcs_system_t *cs, hcs_error_t *err) {
  hcs_state_t st = hcs_system_state(cs);
  if (st != HCS_STATE_RUNNING)
    return hcs_error_make(err, 0, "pause `%s`: the system is %s, not Running", cs->id, hcs_state_name(st));
  if (hcs_system_is_vm(cs)) return hcs_vm_pause(cs, err);
  const hcs_cgroup_ops_t *cg = hcs_cgroup_ops();
  if (cg == NULL) return hcs_error_make(err, ENOTSUP, "pause `%s`: no cgroup freezer", cs->id);
  if (cg->freeze(cs->cgroup, true, err) < 0) return -1;
  hcs_system_emit(cs, "paused", NULL);
  return 0;
}

int hcs_compute_resume(hcs_system_t *cs, hcs_error_t *err) {
  hcs_state_t st = hcs_system_state(cs);
  if (st != HCS_STATE_PAUSED)
    return hcs_error_make(err, 0, "resume `%s`: the system is %s, not Paused", cs->id, hcs_state_name(st));
  if (hcs_system_is_vm(cs)) return hcs_vm_resume(cs, err);
  if (hcs_cgroup_ops()->freeze(cs->cgroup, false, err) < 0) return -1;
  hcs_system_emit(cs, "resumed", NULL);
  return 0;
}

static json_t *process_list(hcs_system_t *cs, hcs_error_t *err) {
  const hcs_cgroup_ops_t *cg = hcs_cgroup_ops();
  json_t *pids = cg ? cg->pids(cs->cgroup, err) : json_array(), *p;
  size_t i;
  if (pids == NULL) return NULL;
  json_t *list = json_array();
  json_array_foreach(pids, i, p) {
    int pid = (int)json_integer_value(p);
    char path[64];
    cleanup_free char *comm = NULL, *cmd = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    if (hcs_read_file(path, &comm, NULL, NULL) < 0) continue;
    comm[strcspn(comm, "\n")] = '\0';
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    if (hcs_read_file(path, &cmd, &len, NULL) == 0)
      for (size_t k = 0; k + 1 < len; k++)
        if (cmd[k] == '\0') cmd[k] = ' ';
    json_array_append_new(
        list, json_pack("{s:i,s:s,s:s}", "ProcessId", pid, "ImageName", comm, "CommandLine", cmd ? cmd : ""));
  }
  json_decref(pids);
  return list;
}

static bool wants(json_t *query, const char *type) {
  json_t *types = json_object_get(query, "PropertyTypes"), *t;
  size_t i;
  json_array_foreach(types, i, t) if (json_is_string(t) && strcmp(json_string_value(t), type) == 0) return true;
  return false;
}

/* st: the system's state, just derived by the caller. */
static json_t *properties(hcs_system_t *cs, hcs_state_t st, json_t *query, hcs_error_t *err) {
  bool vm = hcs_system_is_vm(cs);
  json_t *o = json_pack("{s:s,s:s,s:s}", "Id", cs->id, "State", hcs_state_name(st), "SystemType",
                        vm ? "VirtualMachine" : "Container");
  /* state.json carries the Owner too (a listing reads only that file). */
  json_t *owner = json_object_get(cs->state, "Owner");
  if (!json_is_string(owner)) owner = json_object_get(cs->config, "Owner");
  if (json_is_string(owner)) json_object_set(o, "Owner", owner);
  /* The document as created (docker inspect's Config): `hcs exec` starts
   * from init's environment, user and working directory, as docker exec. */
  if (wants(query, "Configuration")) json_object_set_new(o, "Configuration", json_deep_copy(cs->config));
  static const char *const copy[] = {"CreatedTime", "StartedTime", "Rootfs"};
  for (size_t i = 0; i < HCS_ARRAY_SIZE(copy); i++)
    if (json_object_get(cs->state, copy[i])) json_object_set(o, copy[i], json_object_get(cs->state, copy[i]));
  if (st == HCS_STATE_STOPPED) {
    json_t *e = hcs_system_exit(cs);
    if (e) json_object_update(o, e);
    json_decref(e);
    return o;
  }
  json_object_set_new(o, "Pid", json_integer(cs->pid));
  json_object_set_new(o, "MonitorPid", json_integer(cs->monitor_pid));
  json_object_set(o, "Cgroup", json_object_get(cs->state, "Cgroup"));
  if (vm && hcs_vm_properties(cs, o, st, query, err) < 0) {
    json_decref(o);
    return NULL;
  }
  if (wants(query, "Statistics")) {
    const hcs_cgroup_ops_t *cg = hcs_cgroup_ops();
    json_t *s = cg ? cg->stats(cs->cgroup, err) : json_object();
    if (s == NULL) {
      json_decref(o);
      return NULL;
    }
    cleanup_free char *now = hcs_now_rfc3339();
    json_object_set_new(s, "Timestamp", json_string(now));
    uint64_t start = (uint64_t)json_integer_value(json_object_get(cs->state, "PidStartTime"));
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    long hz = sysconf(_SC_CLK_TCK);
    int64_t up = (int64_t)ts.tv_sec * 10000000 + ts.tv_nsec / 100 - (int64_t)(start * 10000000 / (uint64_t)hz);
    json_object_set_new(s, "Uptime100ns", json_integer(up > 0 ? up : 0));
    json_object_set_new(o, "Statistics", s);
  }
  if (!vm && wants(query, "ProcessList")) {
    json_t *pl = process_list(cs, err);
    if (pl == NULL) {
      json_decref(o);
      return NULL;
    }
    json_object_set_new(o, "ProcessList", pl);
  }
  return o;
}

char *hcs_compute_properties(hcs_system_t *cs, const char *query, hcs_error_t *err) {
  cleanup_json json_t *q = query ? hcs_json_parse(query, "property query", err) : json_object();
  if (q == NULL) return NULL;
  json_t *types = json_object_get(q, "PropertyTypes");
  if (types && !json_is_array(types)) {
    hcs_error_make(err, 0, "invalid property query: `PropertyTypes`: expected an array of strings");
    return NULL;
  }
  cleanup_json json_t *o = properties(cs, hcs_system_state(cs), q, err);
  return o ? hcs_json_dumps(o) : NULL;
}

int hcs_compute_modify(hcs_system_t *cs, const char *request, hcs_error_t *err) {
  cleanup_json json_t *req = hcs_json_parse(request, "modify request", err);
  if (req == NULL) return -1;
  if (!json_is_object(req)) return hcs_error_make(err, 0, "invalid modify request: expected an object");
  cleanup_close int lock = lock_system(cs, err);
  if (lock < 0) return -1;
  hcs_state_t st = hcs_system_state(cs);
  if (st == HCS_STATE_STOPPED) return hcs_error_make(err, 0, "modify `%s`: the system is Stopped", cs->id);
  if (hcs_system_is_vm(cs)) return hcs_vm_modify(cs, req, err);
  /* Validate by merging into the stored document and parsing it again. */
  cleanup_json json_t *doc = json_deep_copy(cs->config);
  json_t *ct = json_object_get(doc, "Container");
  static const char *const keys[] = {"Memory", "Processor", "PidsLimit", NULL};
  if (check_fields(req, "invalid modify request", "", keys, err) < 0) return -1;
  const char *key;
  json_t *v;
  json_object_foreach(req, key, v) {
    /* PidsLimit: Linux.PidsLimit, live (the cgroup's pids.max). */
    if (strcmp(key, "PidsLimit") == 0) {
      json_t *lx = json_object_get(doc, "Linux");
      if (!json_is_object(lx)) json_object_set_new(doc, "Linux", lx = json_object());
      json_object_set(lx, "PidsLimit", v);
      continue;
    }
    if (!json_is_object(v)) return hcs_error_make(err, 0, "invalid modify request: `%s`: expected object", key);
    json_t *cur = json_object_get(ct, key);
    if (!json_is_object(cur)) json_object_set_new(ct, key, cur = json_object());
    json_object_update(cur, v);
  }
  hcs_config_t *c = hcs_config_parse(doc, cs->run_root, err);
  if (c == NULL) return hcs_error_wrap(err, "modify `%s`", cs->id);
  json_t *mem = json_object_get(req, "Memory"), *cpu = json_object_get(req, "Processor");
  hcs_resources_t r = {0};
  if (mem) r.memory_mb = c->memory_mb;
  if (cpu) r.cpu_count = c->cpu_count, r.cpu_max = c->cpu_max, r.cpu_weight = c->cpu_weight;
  if (json_object_get(req, "PidsLimit")) r.pids_limit = c->pids_limit;
  const hcs_cgroup_ops_t *cg = hcs_cgroup_ops();
  int checked = check_cgroup_for_limits(c, cg, err);
  hcs_config_free(c);
  if (checked < 0) return hcs_error_wrap(err, "modify `%s`", cs->id);
  if (cg && cg->set_resources(cs->cgroup, &r, err) < 0) return hcs_error_wrap(err, "modify `%s`", cs->id);
  cleanup_free char *cp = hcs_xasprintf("%s/config.json", cs->dir);
  if (hcs_state_write_json(cp, doc, err) < 0) return -1;
  json_decref(cs->config);
  cs->config = json_incref(doc);
  hcs_system_emit(cs, "modified", json_incref(req));
  return 0;
}

/* One system's properties for a listing, if it passes the filter: only
 * state.json is read (the document is not needed), and only once. */
static json_t *enumerate_one(const char *root, const char *id, const hcs_cgroup_ops_t *cg, json_t *owners,
                             json_t *state) {
  hcs_system_t *cs = hcs_system_new(root, id, NULL);
  if (cs == NULL) return NULL;
  json_t *p = NULL;
  if (hcs_system_load_state(cs, NULL) == 0) p = properties(cs, hcs_system_state_loaded(cs, cg), NULL, NULL);
  hcs_compute_close(cs);
  bool keep = p != NULL;
  if (keep && owners) {
    bool any = false;
    size_t i;
    json_t *v, *o = json_object_get(p, "Owner");
    json_array_foreach(owners, i, v) if (o && json_equal(o, v)) any = true;
    keep = any;
  }
  if (keep && state) keep = json_equal(state, json_object_get(p, "State"));
  if (!keep) json_decref(p);
  return keep ? p : NULL;
}

char *hcs_compute_enumerate(const char *root, const char *filter, hcs_error_t *err) {
  cleanup_json json_t *f = filter ? hcs_json_parse(filter, "enumerate filter", err) : json_object();
  if (f == NULL) return NULL;
  if (!json_is_object(f)) {
    hcs_error_make(err, 0, "invalid enumerate filter: expected an object");
    return NULL;
  }
  json_t *owners = json_object_get(f, "Owners"), *ids = json_object_get(f, "Ids"), *state = json_object_get(f, "State");
  if ((owners && !json_is_array(owners)) || (ids && !json_is_array(ids)) || (state && !json_is_string(state))) {
    hcs_error_make(err, 0, "invalid enumerate filter: expected {Owners: [..], Ids: [..], State: \"..\"}");
    return NULL;
  }
  cleanup_free char *r = hcs_run_root_resolve(root);
  cleanup_free char *dir = hcs_xasprintf("%s/compute", r);
  cleanup_json json_t *list = json_array();
  const hcs_cgroup_ops_t *cg = hcs_cgroup_ops();
  /* With Ids, only those systems are opened: no scan of all of them. */
  if (ids) {
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
      if (!json_is_string(v) || hcs_validate_id("compute system id", json_string_value(v), NULL) < 0) continue;
      bool seen = false;
      for (size_t j = 0; j < i && !seen; j++)
        seen = json_equal(json_array_get(ids, j), v);
      if (seen) continue;
      json_t *p = enumerate_one(root, json_string_value(v), cg, owners, state);
      if (p) json_array_append_new(list, p);
    }
    return hcs_json_dumps(list);
  }
  cleanup_dir DIR *d = opendir(dir);
  if (d == NULL && errno != ENOENT) {
    hcs_error_make(err, errno, "open `%s`", dir);
    return NULL;
  }
  struct dirent *de;
  while (d && (de = readdir(d))) {
    bool hidden = de->d_name[0] == '.', creating = strncmp(de->d_name, ".new-", 5) == 0;
    if (hidden && !creating) continue;
    bool gone = creating;
    json_t *p = creating ? NULL : enumerate_one(root, de->d_name, cg, owners, state);
    if (p) json_array_append_new(list, p);
    if (!creating && p == NULL) {
      cleanup_free char *sp = hcs_xasprintf("%s/%s/state.json", dir, de->d_name);
      gone = access(sp, F_OK) < 0 && errno == ENOENT;
    }
    /* Being created or deleted, or the debris of a killed create (before
     * its rename: .new-*; after it: no state.json). */
    if (gone) {
      cleanup_free char *debris = hcs_xasprintf("%s/%s", dir, de->d_name);
      hcs_system_sweep_debris(debris);
    }
  }
  return hcs_json_dumps(list);
}

void hcs_compute_take_stdio(hcs_system_t *cs, int *in, int *out, int *err_fd) {
  int *dst[3] = {in, out, err_fd};
  bool console = cs->console >= 0 && cs->stdio[0] == cs->console;
  for (int i = 0; i < 3; i++) {
    if (dst[i]) *dst[i] = cs->stdio[i];
    cs->stdio[i] = -1;
  }
  /* The caller owns the console fd now; keep our own copy for resize. */
  if (console) cs->console = fcntl(cs->console, F_DUPFD_CLOEXEC, 3);
}

int hcs_compute_resize_console(hcs_system_t *cs, unsigned short rows, unsigned short cols, hcs_error_t *err) {
  int fd = cs->console;
  struct winsize ws = {.ws_row = rows, .ws_col = cols};
  if (fd < 0 || !isatty(fd)) return hcs_error_make(err, ENOTTY, "resize `%s`: no console on this handle", cs->id);
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0) return hcs_error_make(err, errno, "resize console of `%s`", cs->id);
  return 0;
}

int hcs_compute_delete(hcs_system_t *cs, bool force, hcs_error_t *err) {
  hcs_state_t st = hcs_system_state(cs);
  if ((st == HCS_STATE_RUNNING || st == HCS_STATE_PAUSED) && !force)
    return hcs_error_make(err, EBUSY, "delete `%s`: the system is %s (stop it first or force)", cs->id,
                          hcs_state_name(st));
  if (st != HCS_STATE_STOPPED && hcs_compute_terminate(cs, err) < 0) return hcs_error_wrap(err, "delete `%s`", cs->id);
  /* The monitor writes exit.json after removing the cgroup; without it the
   * monitor was killed first, so its clean-up is done here: whatever is
   * left in the cgroup (a process that joined it) dies, the cgroup goes. */
  cleanup_free char *exit_path = hcs_xasprintf("%s/exit.json", cs->dir);
  /* A live monitor removes the cgroup after writing exit.json and the
   * exited event: let it finish, so the id can be reused at once. */
  if (hcs_path_exists(exit_path)) hcs_system_wait_monitor(cs, 5000);
  const hcs_cgroup_ops_t *cg = hcs_cgroup_ops();
  if (cg && cs->cgroup && !hcs_path_exists(exit_path)) {
    json_t *left = cg->pids(cs->cgroup, NULL);
    if (left && json_array_size(left) > 0) cg->kill_all(cs->cgroup, NULL);
    json_decref(left);
    if (cg->destroy(cs->cgroup, err) < 0) return hcs_error_wrap(err, "delete `%s`", cs->id);
  }
  /* A VM whose monitor was killed: its taps go too. */
  if (!hcs_path_exists(exit_path) && hcs_system_is_vm(cs)) hcs_vm_remove_taps(cs->state);
  /* A killed monitor's exit is noted (its event written) before the
   * record goes. */
  json_decref(hcs_system_exit(cs));
  hcs_system_remove_run_files(cs);
  if (hcs_system_remove_dir(cs->dir, err) < 0) return hcs_error_wrap(err, "delete `%s`", cs->id);
  hcs_system_emit(cs, "deleted", NULL);
  /* The last system of the run root takes the seed down (seed.c). */
  hcs_seed_release(cs->run_root);
  return 0;
}
