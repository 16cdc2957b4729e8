/* State of a compute system and the state machine derived from it, in
 * <run root>/compute/<id>/ (tmpfs in production, like /run/crun: a system is
 * processes, which do not survive a reboot): config.json (as given),
 * state.json (pids, start times, Started; written by the monitor, then by
 * start), exit.json (written by the monitor once everything is cleaned up),
 * exec.fifo (until started), the exit-type marker and seccomp.bpf (init's
 * filter, for processes exec'd later). */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>

#include "compute/compute.h"
#include "vm/vm.h"

const char *hcs_state_name(hcs_state_t s) {
  switch (s) {
  case HCS_STATE_CREATED: return "Created";
  case HCS_STATE_RUNNING: return "Running";
  case HCS_STATE_PAUSED: return "Paused";
  default: return "Stopped";
  }
}

hcs_system_t *hcs_system_new(const char *root, const char *id, hcs_error_t *err) {
  if (hcs_validate_id("compute system id", id, err) < 0) return NULL;
  hcs_system_t *cs = hcs_xcalloc(1, sizeof *cs);
  cs->id = hcs_xstrdup(id);
  cs->root = hcs_root_resolve(root);
  cs->run_root = hcs_run_root_resolve(root);
  cs->dir = hcs_xasprintf("%s/compute/%s", cs->run_root, id);
  cs->monitor_fd = cs->console = -1;
  cs->stdio[0] = cs->stdio[1] = cs->stdio[2] = -1;
  return cs;
}

void hcs_compute_close(hcs_system_t *cs) {
  if (cs == NULL) return;
  for (int i = 0; i < 3; i++)
    if (cs->stdio[i] >= 0 && cs->stdio[i] != cs->console) close(cs->stdio[i]);
  if (cs->console >= 0) close(cs->console);
  if (cs->monitor_fd >= 0) close(cs->monitor_fd);
  json_decref(cs->config);
  json_decref(cs->state);
  hcs_config_free(cs->cfg);
  hcs_security_release(&cs->sec);
  free(cs->id);
  free(cs->root);
  free(cs->run_root);
  free(cs->dir);
  free(cs->cgroup);
  free(cs);
}

const char *hcs_compute_id(hcs_system_t *cs) { return cs->id; }

int hcs_system_load_state(hcs_system_t *cs, hcs_error_t *err) {
  cleanup_free char *sp = hcs_xasprintf("%s/state.json", cs->dir);
  if (access(sp, F_OK) < 0) {
    if (access(cs->dir, F_OK) == 0 && errno != ENOENT)
      return hcs_error_make(err, errno, "open compute system `%s`", cs->id);
    return hcs_error_make(err, ENOENT, "compute system `%s` not found", cs->id);
  }
  json_t *state = hcs_json_load_file(sp, err);
  if (state == NULL) return -1;
  json_decref(cs->state);
  cs->state = state;
  cs->pid = (pid_t)json_integer_value(json_object_get(state, "Pid"));
  cs->monitor_pid = (pid_t)json_integer_value(json_object_get(state, "MonitorPid"));
  free(cs->cgroup);
  cs->cgroup = hcs_xstrdup(json_string_value(json_object_get(state, "Cgroup")));
  return 0;
}

int hcs_system_load(hcs_system_t *cs, hcs_error_t *err) {
  if (hcs_system_load_state(cs, err) < 0) return -1;
  cleanup_free char *cp = hcs_xasprintf("%s/config.json", cs->dir);
  json_t *config = hcs_json_load_file(cp, err);
  if (config == NULL) return -1;
  json_decref(cs->config);
  cs->config = config;
  return 0;
}

uint64_t hcs_pid_start_time(pid_t pid) {
  char path[64];
  cleanup_free char *text = NULL;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (hcs_read_file(path, &text, NULL, NULL) < 0) return 0;
  char *p = strrchr(text, ')');
  if (p == NULL) return 0;
  /* Field 22 (starttime); p+2 is field 3. */
  p += 2;
  for (int field = 3; field < 22 && p; field++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  return p ? strtoull(p, NULL, 10) : 0;
}

bool hcs_pid_matches(pid_t pid, uint64_t start) { return pid > 0 && start && hcs_pid_start_time(pid) == start; }

static int pidfd_checked(pid_t pid, uint64_t start) {
  if (pid <= 0) return -1;
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return -1;
  /* Checked after open: the fd pins the process, so no reuse race. */
  if (!hcs_pid_matches(pid, start)) {
    close(fd);
    errno = ESRCH;
    return -1;
  }
  return fd;
}

int hcs_system_init_fd(hcs_system_t *cs, hcs_error_t *err) {
  int fd = pidfd_checked(cs->pid, (uint64_t)json_integer_value(json_object_get(cs->state, "PidStartTime")));
  if (fd < 0) return hcs_error_make(err, ESRCH, "init of `%s` is gone", cs->id);
  return fd;
}

void hcs_system_wait_monitor(hcs_system_t *cs, int timeout_ms) {
  if (cs->monitor_pid == getpid()) return; /* the monitor's ExitCommand, exec'd in place */
  int fd = pidfd_checked(cs->monitor_pid, (uint64_t)json_integer_value(json_object_get(cs->state, "MonitorStartTime")));
  if (fd < 0) return;
  struct pollfd p = {fd, POLLIN, 0};
  while (poll(&p, 1, timeout_ms) < 0 && errno == EINTR) {
  }
  close(fd);
}

int hcs_system_monitor_fd(hcs_system_t *cs, hcs_error_t *err) {
  if (cs->monitor_fd >= 0) return cs->monitor_fd;
  cs->monitor_fd =
      pidfd_checked(cs->monitor_pid, (uint64_t)json_integer_value(json_object_get(cs->state, "MonitorStartTime")));
  /* A monitor that has exited without recording the exit was killed; when
   * nobody reaps it (a pid 1 that does not wait) it lingers as a zombie,
   * whose pidfd is readable at once although init may still run. */
  if (cs->monitor_fd >= 0) {
    struct pollfd p = {cs->monitor_fd, POLLIN, 0};
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/exit.json", cs->dir);
    if (poll(&p, 1, 0) > 0 && access(path, F_OK) < 0) {
      close(cs->monitor_fd);
      cs->monitor_fd = -1;
    }
  }
  if (cs->monitor_fd < 0) {
    /* The monitor was killed: fall back on init itself. */
    cs->monitor_fd = pidfd_checked(cs->pid, (uint64_t)json_integer_value(json_object_get(cs->state, "PidStartTime")));
  }
  if (cs->monitor_fd < 0) return hcs_error_make(err, ESRCH, "compute system `%s` has no live process", cs->id);
  return cs->monitor_fd;
}

/* Matches and has not exited: a zombie init (its monitor killed, and
 * nobody reaping orphans, e.g. a pid 1 that does not wait) is dead.  One
 * read of /proc/PID/stat: field 3 (state) and 22 (start time). */
static bool pid_running(pid_t pid, uint64_t start) {
  if (pid <= 0 || start == 0) return false;
  char path[64];
  cleanup_free char *text = NULL;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (hcs_read_file(path, &text, NULL, NULL) < 0) return false;
  char *p = strrchr(text, ')');
  if (p == NULL || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X') return false;
  p += 2;
  for (int field = 3; field < 22 && p; field++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  return p && strtoull(p, NULL, 10) == start;
}

json_t *hcs_system_exit(hcs_system_t *cs) {
  cleanup_free char *ep = hcs_xasprintf("%s/exit.json", cs->dir);
  json_t *e = hcs_json_load_file(ep, NULL);
  if (e) return e;
  if (cs->state && !pid_running(cs->pid, (uint64_t)json_integer_value(json_object_get(cs->state, "PidStartTime")))) {
    /* Init is gone.  If the monitor was killed too, whoever sees it first
     * writes the exited event the monitor could not; a live monitor is
     * recording the exit and writes it itself. */
    bool monitor_alive =
        pid_running(cs->monitor_pid, (uint64_t)json_integer_value(json_object_get(cs->state, "MonitorStartTime")));
    if (!monitor_alive && hcs_system_claim_exit_event(cs->dir))
      hcs_system_emit(cs, "exited", json_pack("{s:i,s:s}", "ExitCode", -1, "ExitType", "Unknown"));
    return json_pack("{s:s,s:i}", "ExitType", "Unknown", "ExitCode", -1);
  }
  return NULL;
}

bool hcs_system_claim_exit_event(const char *dir) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/exit-event", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return false;
  close(fd);
  return true;
}

void hcs_system_emit(hcs_system_t *cs, const char *action, json_t *attrs) {
  const char *owner = json_string_value(json_object_get(cs->state, "Owner"));
  if (owner == NULL && cs->cfg) owner = cs->cfg->owner;
  hcs_event_emit(cs->run_root, "system", action, cs->id, owner, attrs);
}

hcs_state_t hcs_system_state_loaded(hcs_system_t *cs, const hcs_cgroup_ops_t *cg) {
  json_t *e = hcs_system_exit(cs);
  if (e) {
    json_decref(e);
    return HCS_STATE_STOPPED;
  }
  if (!json_is_true(json_object_get(cs->state, "Started"))) return HCS_STATE_CREATED;
  /* A VM is paused by QMP `stop` (its vCPUs), recorded here by the verb. */
  if (json_is_true(json_object_get(cs->state, "Paused"))) return HCS_STATE_PAUSED;
  if (cg && cg->is_frozen(cs->cgroup)) return HCS_STATE_PAUSED;
  return HCS_STATE_RUNNING;
}

hcs_state_t hcs_system_state(hcs_system_t *cs) {
  json_t *e = hcs_system_exit(cs);
  if (e) {
    json_decref(e);
    return HCS_STATE_STOPPED;
  }
  /* Started may have been set by another process since we loaded. */
  cleanup_free char *sp = hcs_xasprintf("%s/state.json", cs->dir);
  json_t *st = hcs_json_load_file(sp, NULL);
  if (st) {
    json_decref(cs->state);
    cs->state = st;
  }
  return hcs_system_state_loaded(cs, hcs_cgroup_ops());
}

int hcs_system_prepare(hcs_system_t *cs, hcs_error_t *err) {
  if (cs->sec_ready) return 0;
  if (hcs_system_is_vm(cs))
    return hcs_error_make(err, ENOTSUP, "`%s` is a virtual machine: its processes run through the guest agent", cs->id);
  if (cs->cfg == NULL) {
    cs->cfg = hcs_config_parse(cs->config, cs->run_root, err);
    if (cs->cfg == NULL) return hcs_error_wrap(err, "configuration of `%s`", cs->id);
    json_t *driver = json_object_get(cs->state, "CgroupDriver");
    if (json_is_string(driver) && strcmp(json_string_value(driver), "none") == 0)
      hcs_config_without_device_cgroup(cs->cfg);
  }
  cleanup_free char *saved = hcs_xasprintf("%s/seccomp.bpf", cs->dir);
  cleanup_free char *store = hcs_xasprintf("%s/compute", cs->run_root);
  if (hcs_security_prepare_saved(cs->cfg, &cs->sec, saved, store, err) < 0) return -1;
  cs->sec_ready = true;
  return 0;
}

/* Runtime state (state.json, exit.json, markers) is replaced by temp file +
 * rename: readers see the old or the new document, never a mix.  It is not
 * fsync'd: it describes processes, which do not survive a power loss
 * either (after a reboot the recorded pids no longer match and the system
 * reads as Stopped/Unknown), and each fsync costs milliseconds. */
int hcs_state_write(const char *path, const char *data, size_t len, hcs_error_t *err) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return hcs_error_make(err, errno, "create `%s`", tmp);
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int saved = errno;
      close(fd);
      unlink(tmp);
      return hcs_error_make(err, saved, "write `%s`", tmp);
    }
    off += (size_t)w;
  }
  close(fd);
  if (rename(tmp, path) < 0) {
    int saved = errno;
    unlink(tmp);
    return hcs_error_make(err, saved, "rename `%s` to `%s`", tmp, path);
  }
  return 0;
}

int hcs_state_write_json(const char *path, json_t *doc, hcs_error_t *err) {
  cleanup_free char *text = json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(2));
  if (text == NULL) return hcs_error_make(err, ENOMEM, "serialize `%s`", path);
  return hcs_state_write(path, text, strlen(text), err);
}

/* The exec fifo (left when the system never started) and the exit-type
 * marker; ENOENT is the usual answer. */
void hcs_system_remove_run_files(hcs_system_t *cs) {
  static const char *const names[] = {"exec.fifo", "exit-type", "stdout.fifo", "stderr.fifo"};
  char path[PATH_MAX];
  for (size_t i = 0; i < HCS_ARRAY_SIZE(names); i++) {
    snprintf(path, sizeof path, "%s/%s", cs->dir, names[i]);
    unlink(path);
  }
}

/* Remove a state directory: the files hcs puts there by name (cheaper than
 * a directory walk; "lock" is left by older versions), then the walk for
 * anything else. */
int hcs_system_remove_dir(const char *dir, hcs_error_t *err) {
  static const char *const names[] = {"config.json", "state.json",  "exit.json",   "lock",        "exec.fifo",
                                      "exit-type",   "seccomp.bpf", "stdout.fifo", "stderr.fifo", "ctr.log",
                                      "exit-event",  "qemu.log",    "qmp.sock",    "agent.sock",  "qemu.json"};
  /* A VM's directory never goes while the QEMU it records runs. */
  hcs_vm_sweep_qemu(dir);
  char path[PATH_MAX];
  for (size_t i = 0; i < HCS_ARRAY_SIZE(names); i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    unlink(path);
  }
  if (rmdir(dir) == 0 || errno == ENOENT) return 0;
  return hcs_rm_rf(dir, err);
}

bool hcs_system_sweep_debris(const char *dir) {
  cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) return false;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/state.json", dir);
  if (access(path, F_OK) == 0 || errno != ENOENT) return false;
  hcs_info("removing `%s`: a compute system whose create was killed", dir);
  return hcs_system_remove_dir(dir, NULL) == 0;
}
