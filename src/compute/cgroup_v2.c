/* cgroup v2 backend (unified hierarchy): controllers enabled down the tree
 * through cgroup.subtree_control, cgroup.freeze with the `frozen` event for
 * pause, cgroup.kill for terminate, memory.events for OOM kills, a
 * BPF_CGROUP_DEVICE program for the device allowlist. */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "compute/compute.h"

#define V2_ROOT "/sys/fs/cgroup"

static char *dir_of(const char *rel) { return hcs_xasprintf(V2_ROOT "/%s", rel); }

/* The controllers a system's cgroup gets when the hierarchy offers them:
 * memory and pids also feed Statistics and the OOM count (cpu.stat is a
 * core file, there without the cpu controller). */
static const char *const wanted[] = {"cpu", "cpuset", "io", "memory", "pids"};

/* The space-separated names of dir/file ("" when it cannot be read). */
static char *read_list(const char *dir, const char *file) {
  char path[PATH_MAX];
  char *text = NULL;
  snprintf(path, sizeof path, "%s/%s", dir, file);
  if (hcs_read_file(path, &text, NULL, NULL) < 0) return hcs_xstrdup("");
  text[strcspn(text, "\n")] = '\0';
  return text;
}

static bool in_list(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
    if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ')) return true;
  return false;
}

/* Enable in dir's cgroup.subtree_control those of `names` that dir offers
 * and has not enabled yet, in one write.  Names it does not offer are left
 * out: the kernel rejects the whole write (ENOENT) for a single one, and a
 * delegated subtree often lacks cpuset or io. */
static int enable_offered(const char *dir, const char *const *names, size_t n, hcs_error_t *err) {
  cleanup_free char *offered = read_list(dir, "cgroup.controllers"), *on = read_list(dir, "cgroup.subtree_control");
  char buf[128] = "";
  for (size_t i = 0; i < n; i++)
    if (in_list(offered, names[i]) && !in_list(on, names[i]))
      snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s+%s", *buf ? " " : "", names[i]);
  if (*buf == '\0') return 0;
  if (hcs_cg_write(dir, "cgroup.subtree_control", "%s", buf) < 0)
    return hcs_error_make(err, errno, "enable `%s` in `%s/cgroup.subtree_control`", buf, dir);
  return 0;
}

/* Parents (Linux.CgroupParent, `hcs` by default) are created on first use,
 * with the wanted controllers their parents offer enabled down the tree,
 * and stay, like docker's or a systemd slice: the leaf is one mkdir.  That
 * set-up is best effort; a limit that needs a missing controller says so
 * (need_controller). */
static int v2_create(const char *rel, const hcs_resources_t *r, hcs_error_t *err) {
  (void)r;
  cleanup_free char *leaf = dir_of(rel);
  if (mkdir(leaf, 0755) == 0) return 0;
  if (errno != ENOENT) return hcs_error_make(err, errno, "create cgroup `%s`", leaf);
  cleanup_free char *copy = hcs_xstrdup(rel);
  char cur[PATH_MAX] = V2_ROOT;
  for (char *save = NULL, *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
    bool is_leaf = save == NULL || *save == '\0';
    /* A child only gets what its parent enabled for its subtree. */
    enable_offered(cur, wanted, HCS_ARRAY_SIZE(wanted), NULL);
    strncat(cur, "/", sizeof cur - strlen(cur) - 1);
    strncat(cur, t, sizeof cur - strlen(cur) - 1);
    if (mkdir(cur, 0755) < 0 && (errno != EEXIST || is_leaf))
      return hcs_error_make(err, errno, "create cgroup `%s`", cur);
  }
  return 0;
}

/* A limit's files exist only when the controller is enabled for the leaf:
 * enable it in every ancestor, top down, or say which controller is missing
 * where (instead of ENOENT on the limit's file). */
static int need_controller(const char *rel, const char *ctrl, const char *what, hcs_error_t *err) {
  cleanup_free char *d = dir_of(rel);
  cleanup_free char *have = read_list(d, "cgroup.controllers");
  if (in_list(have, ctrl)) return 0;
  cleanup_free char *copy = hcs_xstrdup(rel);
  char *last = strrchr(copy, '/');
  *(last ? last : copy) = '\0'; /* the ancestors only */
  char cur[PATH_MAX] = V2_ROOT;
  for (char *save = NULL, *t = copy;; t = NULL) {
    cleanup_free char *offered = read_list(cur, "cgroup.controllers");
    if (!in_list(offered, ctrl))
      return hcs_error_make(err, ENOTSUP,
                            "%s needs the %s controller, which cgroup `%s` cannot have: `%s` offers only `%s`", what,
                            ctrl, d, cur, *offered ? offered : "(none)");
    if (enable_offered(cur, &ctrl, 1, err) < 0) return hcs_error_wrap(err, "%s for cgroup `%s`", what, d);
    char *next = strtok_r(t, "/", &save);
    if (next == NULL) break;
    strncat(cur, "/", sizeof cur - strlen(cur) - 1);
    strncat(cur, next, sizeof cur - strlen(cur) - 1);
  }
  return 0;
}

static int v2_set_resources(const char *rel, const hcs_resources_t *r, hcs_error_t *err) {
  cleanup_free char *d = dir_of(rel);
  if (r->memory_mb > 0) {
    if (need_controller(rel, "memory", "Memory.SizeInMB", err) < 0) return -1;
    if (hcs_cg_write(d, "memory.max", "%lld", (long long)(r->memory_mb << 20)) < 0)
      return hcs_error_make(err, errno, "set memory.max of `%s`", d);
    /* No memory.swap.max without swap accounting: the limit is all there is. */
    hcs_cg_write(d, "memory.swap.max", "0");
  }
  if (r->cpu_max > 0) {
    if (need_controller(rel, "cpu", "Processor.Maximum", err) < 0) return -1;
    int64_t quota = 100000LL * hcs_cgroup_host_cpus() * r->cpu_max / 10000;
    if (hcs_cg_write(d, "cpu.max", "%lld 100000", (long long)(quota < 1000 ? 1000 : quota)) < 0)
      return hcs_error_make(err, errno, "set cpu.max of `%s`", d);
  }
  if (r->cpu_weight > 0) {
    if (need_controller(rel, "cpu", "Processor.Weight", err) < 0) return -1;
    if (hcs_cg_write(d, "cpu.weight", "%lld", (long long)r->cpu_weight) < 0)
      return hcs_error_make(err, errno, "set cpu.weight of `%s`", d);
  }
  if (r->cpu_count > 0) {
    if (need_controller(rel, "cpuset", "Processor.Count", err) < 0) return -1;
    if (hcs_cg_write(d, "cpuset.cpus", "0-%lld", (long long)r->cpu_count - 1) < 0)
      return hcs_error_make(err, errno, "set cpuset.cpus of `%s`", d);
  }
  if (r->pids_limit > 0) {
    if (need_controller(rel, "pids", "Linux.PidsLimit", err) < 0) return -1;
    if (hcs_cg_write(d, "pids.max", "%lld", (long long)r->pids_limit) < 0)
      return hcs_error_make(err, errno, "set pids.max of `%s`", d);
  }
  return 0;
}

/* v2 has no devices controller: the allowlist is a BPF program on the
 * cgroup (cgroup_devices.c), attached before init is let go, so nothing of
 * the system opens a device before it is in force. */
static int v2_set_devices(const char *rel, const hcs_config_t *c, hcs_error_t *err) {
  cleanup_free char *d = dir_of(rel);
  return hcs_device_filter_attach(d, c, err);
}

static int v2_enter(const char *rel, pid_t pid, hcs_error_t *err) {
  cleanup_free char *d = dir_of(rel);
  if (hcs_cg_write(d, "cgroup.procs", "%d", (int)pid) < 0) return hcs_error_make(err, errno, "join cgroup `%s`", d);
  return 0;
}

static int v2_enter_self(const char *rel, hcs_error_t *err) { return v2_enter(rel, 0, err); }

static int v2_freeze(const char *rel, bool frozen, hcs_error_t *err) {
  cleanup_free char *d = dir_of(rel);
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/cgroup.events", d);
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return hcs_error_make(err, errno, "open `%s`", path);
  if (hcs_cg_write(d, "cgroup.freeze", frozen ? "1" : "0") < 0)
    return hcs_error_make(err, errno, "%s `%s`", frozen ? "freeze" : "thaw", d);
  /* cgroup.events signals POLLPRI on every change of `frozen`. */
  for (int i = 0; i < 100; i++) {
    char buf[256];
    ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
    if (r < 0) return hcs_error_make(err, errno, "read `%s`", path);
    buf[r] = '\0';
    char *f = strstr(buf, "frozen ");
    if (f && (f[7] == '1') == frozen) return 0;
    struct pollfd pfd = {fd, POLLPRI, 0};
    if (poll(&pfd, 1, 50) < 0 && errno != EINTR) return hcs_error_make(err, errno, "poll `%s`", path);
  }
  /* As on v1: a system that cannot freeze (a task stuck in the kernel) is
   * left running, not half paused with State saying Paused. */
  if (frozen) hcs_cg_write(d, "cgroup.freeze", "0");
  return hcs_error_make(err, EBUSY, "%s `%s`: timed out", frozen ? "freeze" : "thaw", d);
}

static int v2_is_frozen(const char *rel) {
  cleanup_free char *d = dir_of(rel);
  return hcs_cg_read_int(d, "cgroup.freeze") == 1;
}

static int v2_kill_all(const char *rel, hcs_error_t *err) {
  cleanup_free char *d = dir_of(rel);
  if (hcs_cg_write(d, "cgroup.kill", "1") == 0) return 0;
  if (errno != ENOENT) return hcs_error_make(err, errno, "kill cgroup `%s`", d);
  /* cgroup.kill is Linux 5.14 (Debian 11 is v2 on 5.10): signal the tasks
   * listed instead.  On v2 a frozen task dies of SIGKILL without a thaw. */
  json_t *pids = hcs_cg_read_pids(d, err), *p;
  size_t i;
  if (pids == NULL) return -1;
  json_array_foreach(pids, i, p) kill((pid_t)json_integer_value(p), SIGKILL);
  json_decref(pids);
  return 0;
}

static json_t *v2_stats(const char *rel, hcs_error_t *err) {
  cleanup_free char *d = dir_of(rel);
  int64_t usage = hcs_cg_read_key(d, "cpu.stat", "usage_usec"), user = hcs_cg_read_key(d, "cpu.stat", "user_usec"),
          sys = hcs_cg_read_key(d, "cpu.stat", "system_usec");
  int64_t cur = hcs_cg_read_int(d, "memory.current"), peak = hcs_cg_read_int(d, "memory.peak"),
          anon = hcs_cg_read_key(d, "memory.stat", "anon");
  json_t *s = json_object();
  json_object_set_new(s, "Processor",
                      json_pack("{s:I,s:I,s:I}", "TotalRuntime100ns", (json_int_t)(usage > 0 ? usage * 10 : 0),
                                "RuntimeUser100ns", (json_int_t)(user > 0 ? user * 10 : 0), "RuntimeKernel100ns",
                                (json_int_t)(sys > 0 ? sys * 10 : 0)));
  json_object_set_new(s, "Memory",
                      json_pack("{s:I,s:I,s:I,s:I,s:I}", "UsageBytes", (json_int_t)(cur > 0 ? cur : 0), "PeakBytes",
                                (json_int_t)(peak > 0 ? peak : 0), "MemoryUsageCommitBytes",
                                (json_int_t)(cur > 0 ? cur : 0), "MemoryUsageCommitPeakBytes",
                                (json_int_t)(peak > 0 ? peak : 0), "MemoryUsagePrivateWorkingSetBytes",
                                (json_int_t)(anon > 0 ? anon : 0)));
  int64_t n = hcs_cg_read_int(d, "pids.current");
  if (n >= 0) json_object_set_new(s, "Pids", json_pack("{s:I}", "Current", (json_int_t)n));
  (void)err;
  return s;
}

static json_t *v2_pids(const char *rel, hcs_error_t *err) {
  cleanup_free char *d = dir_of(rel);
  return hcs_cg_read_pids(d, err);
}

static int64_t v2_oom_kills(const char *rel) {
  cleanup_free char *d = dir_of(rel);
  return hcs_cg_read_key(d, "memory.events", "oom_kill");
}

static int v2_destroy(const char *rel, hcs_error_t *err) {
  cleanup_free char *d = dir_of(rel);
  int ret = 0;
  for (int i = 0; i < 200; i++) {
    if (rmdir(d) == 0 || errno == ENOENT) break;
    if (errno != EBUSY || i == 199) {
      ret = hcs_error_make(err, errno, "remove cgroup `%s`", d);
      break;
    }
    nanosleep(&(struct timespec){0, 500000}, NULL);
  }
  /* Parents are shared and stay, as on v1. */
  return ret;
}

const hcs_cgroup_ops_t hcs_cgroup_v2_ops = {
    .name = "v2",
    .create = v2_create,
    .set_resources = v2_set_resources,
    .set_devices = v2_set_devices,
    .enter = v2_enter,
    .enter_self = v2_enter_self,
    .freeze = v2_freeze,
    .is_frozen = v2_is_frozen,
    .kill_all = v2_kill_all,
    .stats = v2_stats,
    .pids = v2_pids,
    .oom_kills = v2_oom_kills,
    .destroy = v2_destroy,
};
