/* The verbs of a VM compute system that differ from a container's: create
 * (the monitor runs QEMU), start (QMP cont), shutdown (the ACPI power
 * button), pause/resume (QMP stop/cont), save/restore (QEMU's migration
 * stream to and from a file), properties and modify (balloon, hot-plug).
 * Wait, terminate, events, enumerate and delete are the generic ones. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "core/crash.h"
#include "hcs/vm.h"
#include "vm/vm.h"

bool hcs_system_is_vm(hcs_system_t *cs) {
  const char *t = json_string_value(json_object_get(cs->state, "SystemType"));
  if (t) return strcmp(t, "VirtualMachine") == 0;
  return hcs_vm_document(cs->config);
}

static char *qmp_path(hcs_system_t *cs) { return hcs_xasprintf("%s/qmp.sock", cs->dir); }

static int lock_dir(hcs_system_t *cs, hcs_error_t *err) {
  int fd = open(cs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return hcs_error_make(err, errno == ENOENT ? ENOENT : errno, "open `%s`", cs->dir);
  while (flock(fd, LOCK_EX) < 0)
    if (errno != EINTR) {
      int saved = errno;
      close(fd);
      return hcs_error_make(err, saved, "lock `%s`", cs->dir);
    }
  return fd;
}

/* state.json's flags (Started, Paused), replaced as a whole. */
static int set_state(hcs_system_t *cs, const char *key, json_t *v, hcs_error_t *err) {
  json_object_set_new(cs->state, key, v);
  cleanup_free char *sp = hcs_xasprintf("%s/state.json", cs->dir);
  return hcs_state_write_json(sp, cs->state, err);
}

/* Two state roots may name the same VM: as for containers, the default
 * parent's leaf carries a hash of a non-default run root. */
static char *vm_cgroup_path(hcs_system_t *cs, const hcs_vm_config_t *c) {
  if (!c->cgroup_parent_default || strcmp(cs->run_root, "/run/hcs") == 0)
    return hcs_cgroup_path(c->cgroup_parent, cs->id);
  uint64_t h = hcs_fnv1a(HCS_FNV1A_INIT, cs->run_root, strlen(cs->run_root));
  cleanup_free char *leaf = hcs_xasprintf("%s.%08x", cs->id, (unsigned)(h & 0xffffffffu));
  return hcs_cgroup_path(c->cgroup_parent, leaf);
}

/* --- the saved-state file ---------------------------------------------------- */

int hcs_vm_save_open(const char *path, json_t **doc, hcs_error_t *err) {
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return hcs_error_make(err, errno, "open saved state `%s`", path);
  struct stat st;
  if (fstat(fd, &st) < 0) return hcs_error_make(err, errno, "stat `%s`", path);
  if (!S_ISREG(st.st_mode)) return hcs_error_make(err, EINVAL, "saved state `%s`: not a regular file", path);
  char head[64];
  ssize_t n = pread(fd, head, sizeof head - 1, 0);
  if (n < 0) return hcs_error_make(err, errno, "read `%s`", path);
  head[n] = '\0';
  size_t ml = strlen(HCS_VM_SAVE_MAGIC);
  char *end = NULL;
  unsigned long long len =
      (size_t)n > ml && memcmp(head, HCS_VM_SAVE_MAGIC, ml) == 0 ? strtoull(head + ml, &end, 10) : 0;
  if (end == NULL || *end != '\n' || len == 0 || len > (1u << 24))
    return hcs_error_make(err, EINVAL, "saved state `%s`: not an hcs saved state (bad header)", path);
  off_t off = (off_t)((size_t)(end + 1 - head) + len + 1);
  if (doc) {
    cleanup_free char *text = hcs_xmalloc(len + 1);
    if (pread(fd, text, len, end + 1 - head) != (ssize_t)len)
      return hcs_error_make(err, EINVAL, "saved state `%s`: truncated header", path);
    text[len] = '\0';
    json_error_t je;
    *doc = json_loads(text, 0, &je);
    if (*doc == NULL) return hcs_error_make(err, EINVAL, "saved state `%s`: bad document: %s", path, je.text);
  }
  if (lseek(fd, off, SEEK_SET) < 0 || off >= st.st_size)
    return hcs_error_make(err, EINVAL, "saved state `%s`: no machine state after the header", path);
  fcntl(fd, F_SETFL, 0);
  return steal_fd(fd);
}

int hcs_vm_prepare_document(json_t *doc, hcs_error_t *err) {
  json_t *vm = json_object_get(doc, "VirtualMachine");
  json_t *rs = json_object_get(vm, "RestoreState");
  const char *path = json_string_value(json_object_get(rs, "SaveStateFilePath"));
  if (path == NULL || json_object_get(vm, "Chipset")) return 0;
  json_t *saved = NULL;
  cleanup_close int fd = hcs_vm_save_open(path, &saved, err);
  if (fd < 0) return -1;
  json_t *svm = json_object_get(saved, "VirtualMachine");
  if (!json_is_object(svm)) {
    json_decref(saved);
    return hcs_error_make(err, EINVAL, "saved state `%s`: its document has no VirtualMachine", path);
  }
  json_object_update_missing(vm, svm);
  json_t *owner = json_object_get(saved, "Owner");
  if (owner && !json_object_get(doc, "Owner")) json_object_set(doc, "Owner", owner);
  json_t *lx = json_object_get(saved, "Linux");
  if (lx && !json_object_get(doc, "Linux")) json_object_set(doc, "Linux", lx);
  json_decref(saved);
  return 0;
}

void hcs_vm_remove_taps(json_t *state) {
  json_t *t;
  size_t i;
  json_array_foreach(json_object_get(state, "Taps"), i, t) if (json_is_string(t))
      hcs_net_tap_remove(json_string_value(t), NULL);
}

/* A create killed between starting QEMU and writing state.json leaves
 * QEMU, its cgroup and its taps; qemu.json (monitor.c) names them.  A
 * QEMU still alive (its start time checked: pids are reused) is killed and
 * its taps removed (they are its own while it lives; once it is gone the
 * endpoint may serve another VM); the cgroup is emptied and removed. */
void hcs_vm_sweep_qemu(const char *dir) {
  cleanup_free char *path = hcs_xasprintf("%s/qemu.json", dir);
  cleanup_json json_t *r = json_load_file(path, 0, NULL);
  if (r == NULL) return;
  pid_t pid = (pid_t)json_integer_value(json_object_get(r, "Pid"));
  uint64_t start = (uint64_t)json_integer_value(json_object_get(r, "PidStartTime"));
  if (pid > 0 && start && hcs_pid_start_time(pid) == start && kill(pid, SIGKILL) == 0) {
    hcs_info("`%s`: killing QEMU (pid %d) left by a killed create", dir, (int)pid);
    for (int i = 0; i < 500 && hcs_pid_start_time(pid) == start; i++) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    hcs_vm_remove_taps(r);
  }
  const char *cg = json_string_value(json_object_get(r, "Cgroup"));
  const hcs_cgroup_ops_t *ops = hcs_cgroup_ops();
  if (cg && ops) {
    ops->kill_all(cg, NULL);
    for (int i = 0; i < 100 && ops->destroy(cg, NULL) < 0; i++) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
}

/* --- create, start, shutdown, pause, resume ---------------------------------- */

int hcs_vm_create(hcs_system_t *cs, json_t *doc, hcs_vm_config_t *c, int create_lock, hcs_error_t *err) {
  cs->cgroup = vm_cgroup_path(cs, c);
  cs->config = json_incref(doc);
  if (c->uefi) {
    cleanup_free char *vars = hcs_xasprintf("%s/OVMF_VARS.fd", cs->dir);
    cleanup_free char *data = NULL;
    size_t len = 0;
    cleanup_free char *tmpl = hcs_vm_ovmf_path("OVMF_VARS.fd");
    if (hcs_read_file(tmpl, &data, &len, err) < 0 || hcs_write_file_atomic(vars, data, len, 0600, err) < 0)
      return hcs_error_wrap(err, "create `%s`: UEFI variables", cs->id);
  }
  for (size_t i = 0; i < c->n_nics; i++)
    if (hcs_net_vm_adapter(cs->root, c->nics[i].endpoint, cs->id, &c->nics[i], err) < 0) {
      /* Busy because an earlier adapter of this document took it. */
      for (size_t k = 0; k < i && c->nics[i].tap[0]; k++)
        if (strcmp(c->nics[k].tap, c->nics[i].tap) == 0) {
          hcs_error_make(err, 0,
                         "invalid configuration: `VirtualMachine.Devices.NetworkAdapters.%s`: endpoint `%s` is "
                         "already the endpoint of adapter `%s`",
                         c->nics[i].name, c->nics[i].endpoint, c->nics[k].name);
          break;
        }
      for (size_t k = 0; k < i; k++)
        hcs_net_tap_remove(c->nics[k].tap, NULL);
      return hcs_error_wrap(err, "create `%s`", cs->id);
    }
  if (hcs_vm_launch(cs, c, create_lock, err) < 0) {
    /* The monitor removed them if it ran; a failed fork leaves them here. */
    for (size_t i = 0; i < c->n_nics; i++)
      hcs_net_tap_remove(c->nics[i].tap, NULL);
    return -1;
  }
  cs->pid = (pid_t)json_integer_value(json_object_get(cs->state, "Pid"));
  cs->monitor_pid = (pid_t)json_integer_value(json_object_get(cs->state, "MonitorPid"));
  return 0;
}

/* Called with the system locked and Created. */
int hcs_vm_start(hcs_system_t *cs, hcs_error_t *err) {
  cleanup_free char *qmp = qmp_path(cs);
  hcs_system_emit(cs, "started", NULL);
  json_t *r = hcs_qmp_call(qmp, "cont", NULL, err);
  if (r == NULL) return hcs_error_wrap(err, "start `%s`", cs->id);
  json_decref(r);
  cleanup_free char *now = hcs_now_rfc3339();
  json_object_set_new(cs->state, "StartedTime", json_string(now));
  return set_state(cs, "Started", json_true(), err);
}

/* Running, with the exit marked Shutdown: the ACPI power button, then
 * terminate once the timeout passed (the guest may ignore it). */
int hcs_vm_shutdown(hcs_system_t *cs, int timeout_ms, hcs_error_t *err) {
  cleanup_free char *qmp = qmp_path(cs);
  json_t *r = hcs_qmp_call(qmp, "system_powerdown", NULL, err);
  if (r == NULL) {
    if (hcs_system_state(cs) == HCS_STATE_STOPPED) {
      hcs_error_release(err);
      return 0;
    }
    return hcs_error_wrap(err, "shut down `%s`", cs->id);
  }
  json_decref(r);
  hcs_system_emit(cs, "shutdown", json_pack("{s:i}", "TimeoutMs", timeout_ms));
  int w = hcs_compute_wait(cs, timeout_ms, err);
  if (w < 0) return -1;
  if (w == 0) return hcs_compute_terminate(cs, err);
  return 0;
}

static int stop_or_cont(hcs_system_t *cs, bool pause, hcs_error_t *err) {
  cleanup_close int lock = lock_dir(cs, err);
  if (lock < 0) return -1;
  hcs_state_t st = hcs_system_state(cs);
  if (st != (pause ? HCS_STATE_RUNNING : HCS_STATE_PAUSED))
    return hcs_error_make(err, 0, "%s `%s`: the system is %s, not %s", pause ? "pause" : "resume", cs->id,
                          hcs_state_name(st), pause ? "Running" : "Paused");
  cleanup_free char *qmp = qmp_path(cs);
  json_t *r = hcs_qmp_call(qmp, pause ? "stop" : "cont", NULL, err);
  if (r == NULL) return hcs_error_wrap(err, "%s `%s`", pause ? "pause" : "resume", cs->id);
  json_decref(r);
  if (set_state(cs, "Paused", json_boolean(pause), err) < 0) return -1;
  hcs_system_emit(cs, pause ? "paused" : "resumed", NULL);
  return 0;
}

int hcs_vm_pause(hcs_system_t *cs, hcs_error_t *err) { return stop_or_cont(cs, true, err); }
int hcs_vm_resume(hcs_system_t *cs, hcs_error_t *err) { return stop_or_cont(cs, false, err); }

/* --- save and restore ------------------------------------------------------------ */

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* Migrate to `fd` (already past the header) and wait for the end. */
static int migrate_to(hcs_qmp_t *q, int fd, hcs_error_t *err) {
  json_t *r = hcs_qmp_execute(q, "getfd", json_pack("{s:s}", "fdname", "hcs-save"), fd, err);
  if (r == NULL) return -1;
  json_decref(r);
  r = hcs_qmp_execute(q, "migrate", json_pack("{s:s}", "uri", "fd:hcs-save"), -1, err);
  if (r == NULL) return -1;
  json_decref(r);
  for (int delay = 1;; delay = delay < 4 ? delay * 2 : 4) {
    r = hcs_qmp_execute(q, "query-migrate", NULL, -1, err);
    if (r == NULL) return -1;
    const char *status = json_string_value(json_object_get(r, "status"));
    if (status && strcmp(status, "completed") == 0) {
      json_decref(r);
      return 0;
    }
    if (status == NULL || strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
      const char *why = json_string_value(json_object_get(r, "error-desc"));
      hcs_error_make(err, EIO, "migration %s: %s", status ? status : "lost", why ? why : "no reason given");
      json_decref(r);
      return -1;
    }
    json_decref(r);
    if (hcs_operation_cancelled()) {
      json_decref(hcs_qmp_execute(q, "migrate_cancel", NULL, -1, NULL));
      return hcs_error_make(err, ECANCELED, "migration cancelled");
    }
    sleep_ms(delay);
  }
}

/* Where QEMU put each device with an id (query-pci): {"dev-net-nic1": 6,
 * ...}, for the restore (vm.h, HCS_VM_SAVE_MAGIC). */
static json_t *pci_slots(hcs_qmp_t *q, hcs_error_t *err) {
  json_t *r = hcs_qmp_execute(q, "query-pci", NULL, -1, err);
  if (r == NULL) return NULL;
  json_t *slots = json_object(), *bus, *d;
  size_t i, k;
  json_array_foreach(r, i, bus) {
    json_array_foreach(json_object_get(bus, "devices"), k, d) {
      const char *id = json_string_value(json_object_get(d, "qdev_id"));
      if (id && *id && json_integer_value(json_object_get(d, "function")) == 0)
        json_object_set(slots, id, json_object_get(d, "slot"));
    }
  }
  json_decref(r);
  return slots;
}

/* The `PATH.tmp-PID` a save killed before its rename left (PID gone). */
static void sweep_save_tmps(const char *dir, const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t n = strlen(base);
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    const char *pid = de->d_name + n + 5;
    if (strncmp(de->d_name, base, n) != 0 || strncmp(de->d_name + n, ".tmp-", 5) != 0 || *pid == '\0' ||
        strspn(pid, "0123456789") != strlen(pid))
      continue;
    if (kill((pid_t)atoi(pid), 0) < 0 && errno == ESRCH) unlinkat(dirfd(d), de->d_name, 0);
  }
  if (d) closedir(d);
}

/* The saved state (the unnamed file `proc`) over an existing `path`. */
static int replace_with(hcs_system_t *cs, const char *proc, const char *path, hcs_error_t *err) {
  if (errno != EEXIST) return hcs_error_make(err, errno, "save `%s`: link `%s`", cs->id, path);
  cleanup_free char *tmp = hcs_xasprintf("%s.tmp-%d", path, (int)getpid());
  unlink(tmp);
  if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) < 0)
    return hcs_error_make(err, errno, "save `%s`: link `%s`", cs->id, tmp);
  hcs_pause_point("vm save: linked");
  if (rename(tmp, path) < 0) {
    int saved = errno;
    unlink(tmp);
    return hcs_error_make(err, saved, "save `%s`: rename to `%s`", cs->id, path);
  }
  return 0;
}

int hcs_vm_save(hcs_system_t *cs, const char *path, hcs_error_t *err) {
  if (!hcs_system_is_vm(cs)) return hcs_error_make(err, EINVAL, "save `%s`: not a virtual machine", cs->id);
  cleanup_close int lock = lock_dir(cs, err);
  if (lock < 0) return -1;
  hcs_state_t st = hcs_system_state(cs);
  if (st != HCS_STATE_RUNNING && st != HCS_STATE_PAUSED)
    return hcs_error_make(err, 0, "save `%s`: the system is %s, not Running or Paused", cs->id, hcs_state_name(st));
  /* Written as an unnamed file in the target's directory and linked into
   * place once complete: a killed save leaves nothing, a reader never sees
   * half a state. */
  cleanup_free char *dir = hcs_dir_of(path);
  sweep_save_tmps(dir, path);
  cleanup_close int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return hcs_error_make(err, errno, "save `%s`: create a file in `%s`", cs->id, dir);
  cleanup_free char *qmp = qmp_path(cs);
  hcs_qmp_t *q = hcs_qmp_connect(qmp, 0, err);
  if (q == NULL) return hcs_error_wrap(err, "save `%s`", cs->id);
  cleanup_json json_t *hdoc = json_deep_copy(cs->config);
  json_t *slots = pci_slots(q, err);
  if (slots == NULL) {
    hcs_qmp_close(q);
    return hcs_error_wrap(err, "save `%s`", cs->id);
  }
  json_object_set_new(hdoc, "PciSlots", slots);
  cleanup_free char *doc = json_dumps(hdoc, JSON_COMPACT | JSON_SORT_KEYS);
  cleanup_free char *head = hcs_xasprintf("%s%zu\n%s\n", HCS_VM_SAVE_MAGIC, strlen(doc), doc);
  if (write(fd, head, strlen(head)) != (ssize_t)strlen(head)) {
    hcs_qmp_close(q);
    return hcs_error_make(err, errno, "save `%s`: write `%s`", cs->id, path);
  }
  int r = 0;
  if (st == HCS_STATE_RUNNING) {
    json_t *v = hcs_qmp_execute(q, "stop", NULL, -1, err);
    r = v ? set_state(cs, "Paused", json_true(), err) : -1;
    json_decref(v);
    if (r == 0) hcs_system_emit(cs, "paused", NULL);
  }
  if (r == 0) r = migrate_to(q, fd, err);
  hcs_qmp_close(q);
  if (r < 0) return hcs_error_wrap(err, "save `%s`", cs->id);
  if (fsync(fd) < 0) return hcs_error_make(err, errno, "save `%s`: fsync `%s`", cs->id, path);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  /* A new file is linked under its name at once; one that replaces a file
   * goes through `PATH.tmp-PID` and a rename (linkat never replaces), a
   * name the next save to PATH sweeps if this one is killed in between. */
  if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0 && replace_with(cs, proc, path, err) < 0) return -1;
  hcs_fsync_dir(dir, NULL);
  hcs_system_emit(cs, "saved", json_pack("{s:s}", "SaveStateFilePath", path));
  return 0;
}

hcs_system_t *hcs_vm_restore(const char *root, const char *id, const char *path, hcs_error_t *err) {
  if (path == NULL || path[0] == '\0') {
    hcs_error_make(err, EINVAL, "restore `%s`: no saved state given", id);
    return NULL;
  }
  char abs[PATH_MAX];
  if (realpath(path, abs) == NULL) {
    hcs_error_make(err, errno, "restore `%s`: `%s`", id, path);
    return NULL;
  }
  cleanup_json json_t *doc = json_pack("{s:{s:{s:s}}}", "VirtualMachine", "RestoreState", "SaveStateFilePath", abs);
  cleanup_free char *text = json_dumps(doc, JSON_COMPACT);
  return hcs_compute_create(root, id, text, NULL, err);
}

char *hcs_vm_accelerator(const char *root, hcs_error_t *err) {
  cleanup_free char *run_root = hcs_run_root_resolve(root), *why = NULL;
  const char *a = hcs_vm_accel(run_root, &why);
  cleanup_json json_t *o = json_pack("{s:s?,s:s}", "Accelerator", a, "Reason", why ? why : "");
  (void)err;
  return hcs_json_dumps(o);
}

/* --- properties and modify --------------------------------------------------------- */

int hcs_vm_properties(hcs_system_t *cs, json_t *o, hcs_state_t st, json_t *query, hcs_error_t *err) {
  static const char *const copy[] = {"Accelerator", "MemorySizeInMB", "ProcessorCount", "RestoredFrom"};
  json_t *vm = json_object();
  for (size_t i = 0; i < HCS_ARRAY_SIZE(copy); i++)
    if (json_object_get(cs->state, copy[i])) json_object_set(vm, copy[i], json_object_get(cs->state, copy[i]));
  json_object_set_new(o, "VirtualMachine", vm);
  /* Made by the monitor's relay once the guest agent answered its hello. */
  if (st == HCS_STATE_RUNNING || st == HCS_STATE_PAUSED) {
    cleanup_free char *ready = hcs_xasprintf("%s/agent.ready", cs->dir);
    json_object_set_new(vm, "AgentReady", json_boolean(access(ready, F_OK) == 0));
  }
  json_t *types = json_object_get(query, "PropertyTypes"), *t;
  size_t i;
  bool stats = false;
  json_array_foreach(types, i, t) if (json_is_string(t) && strcmp(json_string_value(t), "Statistics") == 0) stats =
      true;
  if (!stats || st == HCS_STATE_STOPPED) return 0;
  /* The guest's view: the balloon's actual size and QEMU's run state. */
  cleanup_free char *qmp = qmp_path(cs);
  hcs_qmp_t *q = hcs_qmp_connect(qmp, 0, err);
  if (q == NULL) return hcs_error_wrap(err, "properties of `%s`", cs->id);
  json_t *b = hcs_qmp_execute(q, "query-balloon", NULL, -1, NULL);
  if (b) json_object_set_new(vm, "BalloonBytes", json_incref(json_object_get(b, "actual")));
  json_decref(b);
  json_t *s = hcs_qmp_execute(q, "query-status", NULL, -1, NULL);
  if (s) json_object_set(vm, "RunState", json_object_get(s, "status"));
  json_decref(s);
  hcs_qmp_close(q);
  return 0;
}
