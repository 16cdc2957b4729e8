/* cgroup v1 backend (also used on hybrid hosts): one directory per
 * controller, freezer.state for pause, memory.oom_control for OOM kills,
 * devices.allow/deny for the device allowlist. */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "compute/compute.h"

/* blkio is not used; see wanted() for which of these a system joins. */
static const char *const controllers[] = {"memory", "cpu", "cpuacct", "cpuset", "pids", "devices", "freezer"};

/* Which controllers are mounted does not change under us: probe once per
 * process (an inherited answer is as good in the monitor and in init). */
static bool mounted(const char *ctrl) {
  static signed char known[HCS_ARRAY_SIZE(controllers)];
  for (size_t i = 0; i < HCS_ARRAY_SIZE(controllers); i++) {
    if (strcmp(controllers[i], ctrl) != 0) continue;
    signed char k = __atomic_load_n(&known[i], __ATOMIC_RELAXED);
    if (k == 0) {
      char p[PATH_MAX];
      snprintf(p, sizeof p, "/sys/fs/cgroup/%s/cgroup.procs", ctrl);
      k = access(p, F_OK) == 0 ? 1 : -1;
      __atomic_store_n(&known[i], k, __ATOMIC_RELAXED);
    }
    return k > 0;
  }
  return false;
}

static char *dir_of(const char *ctrl, const char *rel) { return hcs_xasprintf("/sys/fs/cgroup/%s/%s", ctrl, rel); }

/* A new cpuset cgroup starts with no cpus and mems: copy the parent's, or
 * no task can join it. */
static int cpuset_inherit(const char *dir) {
  cleanup_free char *parent = hcs_xstrdup(dir);
  *strrchr(parent, '/') = '\0';
  static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
  for (size_t i = 0; i < 2; i++) {
    char path[PATH_MAX];
    cleanup_free char *cur = NULL, *val = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    if (hcs_read_file(path, &cur, NULL, NULL) == 0 && cur[0] != '\n' && cur[0]) continue;
    snprintf(path, sizeof path, "%s/%s", parent, files[i]);
    if (hcs_read_file(path, &val, NULL, NULL) < 0) return -1;
    if (hcs_cg_write(dir, files[i], "%s", val) < 0) return -1;
  }
  return 0;
}

/* Parents (Linux.CgroupParent, `hcs` by default) are created on first use
 * and stay, like docker's or a systemd slice: the leaf is one mkdir. */
static int make_dirs(const char *ctrl, const char *rel, hcs_error_t *err) {
  {
    cleanup_free char *leaf = dir_of(ctrl, rel);
    if (mkdir(leaf, 0755) == 0) {
      if (strcmp(ctrl, "cpuset") == 0 && cpuset_inherit(leaf) < 0)
        return hcs_error_make(err, errno, "set up cpuset cgroup `%s`", leaf);
      return 0;
    }
    if (errno != ENOENT) return hcs_error_make(err, errno, "create cgroup `%s`", leaf);
  }
  cleanup_free char *base = dir_of(ctrl, "");
  cleanup_free char *copy = hcs_xstrdup(rel);
  size_t blen = strlen(base);
  cleanup_free char *cur = hcs_xmalloc(blen + strlen(rel) + 2);
  strcpy(cur, base);
  cur[blen - 1] = '\0'; /* drop the trailing '/' */
  for (char *save = NULL, *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
    bool leaf = save == NULL || *save == '\0';
    strcat(cur, "/");
    strcat(cur, t);
    if (mkdir(cur, 0755) < 0) {
      if (errno != EEXIST || leaf) return hcs_error_make(err, errno, "create cgroup `%s`", cur);
    } else if (strcmp(ctrl, "cpuset") == 0 && cpuset_inherit(cur) < 0) {
      return hcs_error_make(err, errno, "set up cpuset cgroup `%s`", cur);
    }
  }
  return 0;
}

static int v1_destroy(const char *rel, hcs_error_t *err);

static bool leaf_exists(const char *ctrl, const char *rel) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "/sys/fs/cgroup/%s/%s", ctrl, rel);
  return access(p, F_OK) == 0;
}

/* Every hierarchy costs a mkdir, a join and an rmdir per run.  memory
 * (task list, OOM kills, usage), cpuacct (CPU time), freezer (pause) and
 * devices (the allowlist) are always used; cpu only for a quota or shares
 * (a later modify moves the system into it: ctrl_join), pids only for a
 * limit (likewise), cpuset only for Processor.Count. */
static bool wanted(const char *ctrl, const hcs_resources_t *r) {
  if (strcmp(ctrl, "cpuset") == 0) return r->cpu_count > 0;
  if (strcmp(ctrl, "cpu") == 0) return r->cpu_max > 0 || r->cpu_weight > 0;
  if (strcmp(ctrl, "pids") == 0) return r->pids_limit > 0;
  return true;
}

static int v1_create(const char *rel, const hcs_resources_t *r, hcs_error_t *err) {
  for (size_t i = 0; i < HCS_ARRAY_SIZE(controllers); i++) {
    if (!mounted(controllers[i]) || !wanted(controllers[i], r)) continue;
    if (make_dirs(controllers[i], rel, err) < 0) {
      v1_destroy(rel, NULL);
      return -1;
    }
  }
  return 0;
}

static int set_memory(const char *dir, int64_t mb, hcs_error_t *err) {
  int64_t bytes = mb << 20;
  bool has_memsw = hcs_cg_read_int(dir, "memory.memsw.limit_in_bytes") >= 0;
  /* memsw must stay >= limit: order the two writes by direction. */
  if (hcs_cg_write(dir, "memory.limit_in_bytes", "%lld", (long long)bytes) < 0) {
    if (errno != EINVAL || !has_memsw) return hcs_error_make(err, errno, "set memory limit of `%s`", dir);
    if (hcs_cg_write(dir, "memory.memsw.limit_in_bytes", "%lld", (long long)bytes) < 0 ||
        hcs_cg_write(dir, "memory.limit_in_bytes", "%lld", (long long)bytes) < 0)
      return hcs_error_make(err, errno, "set memory limit of `%s`", dir);
  } else if (has_memsw && hcs_cg_write(dir, "memory.memsw.limit_in_bytes", "%lld", (long long)bytes) < 0) {
    return hcs_error_make(err, errno, "set memory+swap limit of `%s`", dir);
  }
  return 0;
}

/* A system created without a cpu (or pids) limit has no cgroup in that
 * hierarchy: create it and move every task of the system (listed by the
 * memory cgroup) into it, again until none is left behind by a concurrent
 * fork. */
static int ctrl_join(const char *ctrl, const char *rel, hcs_error_t *err) {
  if (!mounted(ctrl) || leaf_exists(ctrl, rel)) return 0;
  cleanup_free char *d = dir_of(ctrl, rel), *mem = dir_of("memory", rel);
  if (make_dirs(ctrl, rel, err) < 0) return -1;
  for (int round = 0; round < 100; round++) {
    json_t *pids = hcs_cg_read_pids(mem, err), *p;
    size_t i, moved = 0;
    if (pids == NULL) return -1;
    cleanup_free char *path = hcs_xasprintf("%s/tasks", d), *text = NULL;
    hcs_read_file(path, &text, NULL, NULL);
    json_array_foreach(pids, i, p) {
      char needle[32];
      snprintf(needle, sizeof needle, "%lld\n", (long long)json_integer_value(p));
      bool in = false;
      for (char *l = text; l && *l && !in; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        in = strncmp(l, needle, strlen(needle)) == 0;
      if (in) continue;
      if (hcs_cg_write(d, "cgroup.procs", "%lld", (long long)json_integer_value(p)) < 0 && errno != ESRCH) {
        json_decref(pids);
        return hcs_error_make(err, errno, "join cgroup `%s`", d);
      }
      moved++;
    }
    json_decref(pids);
    if (moved == 0) return 0;
  }
  return hcs_error_make(err, EAGAIN, "join cgroup `%s`: tasks keep forking", d);
}

static int v1_set_resources(const char *rel, const hcs_resources_t *r, hcs_error_t *err) {
  if (r->memory_mb > 0) {
    cleanup_free char *d = dir_of("memory", rel);
    if (set_memory(d, r->memory_mb, err) < 0) return -1;
  }
  if ((r->cpu_max > 0 || r->cpu_weight > 0) && ctrl_join("cpu", rel, err) < 0) return -1;
  if (r->pids_limit > 0 && ctrl_join("pids", rel, err) < 0) return -1;
  if (r->cpu_max > 0) {
    cleanup_free char *d = dir_of("cpu", rel);
    int64_t quota = 100000LL * hcs_cgroup_host_cpus() * r->cpu_max / 10000;
    if (quota < 1000) quota = 1000;
    if (hcs_cg_write(d, "cpu.cfs_period_us", "100000") < 0 ||
        hcs_cg_write(d, "cpu.cfs_quota_us", "%lld", (long long)quota) < 0)
      return hcs_error_make(err, errno, "set cpu quota of `%s`", d);
  }
  if (r->cpu_weight > 0) {
    cleanup_free char *d = dir_of("cpu", rel);
    int64_t shares = r->cpu_weight * 1024 / 100;
    if (hcs_cg_write(d, "cpu.shares", "%lld", (long long)(shares < 2 ? 2 : shares)) < 0)
      return hcs_error_make(err, errno, "set cpu shares of `%s`", d);
  }
  if (r->cpu_count > 0) {
    cleanup_free char *d = dir_of("cpuset", rel);
    if (!leaf_exists("cpuset", rel))
      return hcs_error_make(err, ENOTSUP, "set cpuset of `%s`: Processor.Count can only change if it was set at create",
                            d);
    if (hcs_cg_write(d, "cpuset.cpus", "0-%lld", (long long)r->cpu_count - 1) < 0)
      return hcs_error_make(err, errno, "set cpuset of `%s`", d);
  }
  if (r->pids_limit > 0 && mounted("pids")) {
    cleanup_free char *d = dir_of("pids", rel);
    if (hcs_cg_write(d, "pids.max", "%lld", (long long)r->pids_limit) < 0)
      return hcs_error_make(err, errno, "set pids limit of `%s`", d);
  }
  return 0;
}

/* One rule per write().  A type `a` rule is the kernel's "everything"
 * whatever its device and access (`allow a` allows all, `deny a` resets to
 * deny all): only `a *:* rwm` is written as such, any narrower one as its
 * `b` and `c` halves, which is what it means on v2. */
static unsigned access_mask(const char *a) {
  return (strchr(a, 'r') ? 1u : 0) | (strchr(a, 'w') ? 2u : 0) | (strchr(a, 'm') ? 4u : 0);
}

/* The types rule r is written as: 1 or 2 of them in types[]. */
static size_t v1_types(const hcs_device_rule_t *r, char types[2]) {
  bool all = r->major < 0 && r->minor < 0 && access_mask(r->access) == 7;
  if (r->type != 'a' || all) {
    types[0] = r->type;
    return 1;
  }
  types[0] = 'b', types[1] = 'c';
  return 2;
}

static int write_rule(int allow_fd, int deny_fd, const hcs_device_rule_t *r, const char *d, hcs_error_t *err) {
  char types[2];
  for (size_t i = 0, n = v1_types(r, types); i < n; i++) {
    char buf[64];
    int len = hcs_device_rule_format(r, types[i], buf, sizeof buf);
    if (write(r->allow ? allow_fd : deny_fd, buf, (size_t)len) != len)
      return hcs_error_make(err, errno, "%s device `%s` in `%s`", r->allow ? "allow" : "deny", buf, d);
  }
  return 0;
}

/* What the kernel's v1 list does with each rule, to refuse the rules it
 * would not enforce.  The list has a default (deny, or allow after a full
 * `allow a`) and exceptions; a rule against the default adds an exception,
 * a rule with it takes access bits from the exception of *exactly* the same
 * type, major and minor, and from nothing else: after `allow c 240:*`,
 * `deny c 240:1` changes nothing (v2's program does deny it). */
struct v1_list {
  bool allow_all;
  size_t n;
  struct {
    char type;
    int64_t major, minor;
    unsigned access;
  } ex[256];
};

static bool overlaps(int64_t a, int64_t b) { return a < 0 || b < 0 || a == b; }

/* Apply rule r (type b or c, or a for all devices) to the simulated list;
 * false when the kernel would leave part of it undone. */
static bool v1_apply(struct v1_list *l, const hcs_device_rule_t *r, char type) {
  unsigned acc = access_mask(r->access);
  if (type == 'a') { /* all devices, all access: a new default, no exceptions */
    l->allow_all = r->allow;
    l->n = 0;
    return true;
  }
  if (r->allow != l->allow_all) { /* an exception: merged into an exact one, else added */
    for (size_t i = 0; i < l->n; i++)
      if (l->ex[i].type == type && l->ex[i].major == r->major && l->ex[i].minor == r->minor) {
        l->ex[i].access |= acc;
        return true;
      }
    if (l->n == HCS_ARRAY_SIZE(l->ex)) return false;
    l->ex[l->n].type = type, l->ex[l->n].major = r->major, l->ex[l->n].minor = r->minor, l->ex[l->n].access = acc;
    l->n++;
    return true;
  }
  /* With the default: bits come off the exact exception only; any other
   * exception it overlaps keeps them. */
  bool enforced = true;
  for (size_t i = 0; i < l->n; i++) {
    bool exact = l->ex[i].type == type && l->ex[i].major == r->major && l->ex[i].minor == r->minor;
    if (exact)
      l->ex[i].access &= ~acc;
    else if (l->ex[i].type == type && overlaps(l->ex[i].major, r->major) && overlaps(l->ex[i].minor, r->minor) &&
             (l->ex[i].access & acc))
      enforced = false;
  }
  return enforced;
}

/* `deny a` empties the list, then the default rules and Linux.Devices in
 * order (hcs_default_devices); a rule the kernel would not enforce as given
 * is refused (v1_apply). */
static int v1_set_devices(const char *rel, const hcs_config_t *c, hcs_error_t *err) {
  if (!mounted("devices")) return 0;
  {
    struct v1_list sim = {.allow_all = false, .n = 0};
    for (size_t i = 0; i < hcs_n_default_devices + c->n_devices; i++) {
      bool user = i >= hcs_n_default_devices;
      const hcs_device_rule_t *r = user ? &c->devices[i - hcs_n_default_devices] : &hcs_default_devices[i];
      char types[2];
      for (size_t h = 0, n = v1_types(r, types); h < n; h++) {
        if (v1_apply(&sim, r, types[h])) continue;
        char buf[64];
        hcs_device_rule_format(r, 0, buf, sizeof buf);
        return hcs_error_make(err, ENOTSUP,
                              "Linux.Devices[%zu]: `%s %s` cannot be enforced on a cgroup v1 host: v1 only changes an "
                              "earlier rule for exactly the same devices, not one for a wider or narrower set",
                              user ? i - hcs_n_default_devices : i, r->allow ? "allow" : "deny", buf);
      }
    }
  }
  cleanup_free char *d = dir_of("devices", rel);
  if (hcs_cg_write(d, "devices.deny", "a") < 0) return hcs_error_make(err, errno, "deny devices in `%s`", d);
  /* One open for the whole list: each write() is one rule. */
  cleanup_free char *allow = hcs_xasprintf("%s/devices.allow", d), *deny = hcs_xasprintf("%s/devices.deny", d);
  cleanup_close int afd = open(allow, O_WRONLY | O_CLOEXEC);
  if (afd < 0) return hcs_error_make(err, errno, "open `%s`", allow);
  cleanup_close int dfd = -1;
  if (c->n_devices && (dfd = open(deny, O_WRONLY | O_CLOEXEC)) < 0)
    return hcs_error_make(err, errno, "open `%s`", deny);
  for (size_t i = 0; i < hcs_n_default_devices; i++)
    if (write_rule(afd, dfd, &hcs_default_devices[i], d, err) < 0) return -1;
  for (size_t i = 0; i < c->n_devices; i++)
    if (write_rule(afd, dfd, &c->devices[i], d, err) < 0) return hcs_error_wrap(err, "Linux.Devices[%zu]", i);
  return 0;
}

static int v1_enter(const char *rel, pid_t pid, hcs_error_t *err) {
  for (size_t i = 0; i < HCS_ARRAY_SIZE(controllers); i++) {
    if (!mounted(controllers[i]) || !leaf_exists(controllers[i], rel)) continue;
    cleanup_free char *d = dir_of(controllers[i], rel);
    if (hcs_cg_write(d, "cgroup.procs", "%d", (int)pid) < 0) return hcs_error_make(err, errno, "join cgroup `%s`", d);
  }
  return 0;
}

/* Move the calling (single-threaded) task by writing 0 to `tasks`: the
 * kernel then skips the global threadgroup rwsem, whose write side waits for
 * an RCU grace period (milliseconds) on every cgroup.procs write. */
static int v1_enter_self(const char *rel, hcs_error_t *err) {
  for (size_t i = 0; i < HCS_ARRAY_SIZE(controllers); i++) {
    if (!mounted(controllers[i])) continue;
    cleanup_free char *d = dir_of(controllers[i], rel);
    /* ENOENT: a controller this system has no cgroup in (see wanted()). */
    if (hcs_cg_write(d, "tasks", "0") < 0 && errno != ENOENT) return hcs_error_make(err, errno, "join cgroup `%s`", d);
  }
  return 0;
}

static int v1_freeze(const char *rel, bool frozen, hcs_error_t *err) {
  cleanup_free char *d = dir_of("freezer", rel);
  if (hcs_cg_write(d, "freezer.state", frozen ? "FROZEN" : "THAWED") < 0)
    return hcs_error_make(err, errno, "%s `%s`", frozen ? "freeze" : "thaw", d);
  if (!frozen) return 0;
  /* v1 reports FREEZING until every task stopped; it has no notification,
   * so re-read with a short pause (bounded to ~5 s). */
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/freezer.state", d);
  for (int i = 0; i < 50000; i++) {
    char buf[32] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return hcs_error_make(err, errno, "read `%s`", path);
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r > 0 && strncmp(buf, "FROZEN", 6) == 0) return 0;
    if (i > 10) nanosleep(&(struct timespec){0, 100000}, NULL);
    if (i % 1000 == 999) hcs_cg_write(d, "freezer.state", "FROZEN");
  }
  hcs_cg_write(d, "freezer.state", "THAWED");
  return hcs_error_make(err, EBUSY, "freeze `%s`: tasks did not freeze", d);
}

static int v1_is_frozen(const char *rel) {
  cleanup_free char *d = dir_of("freezer", rel);
  char path[PATH_MAX];
  cleanup_free char *text = NULL;
  snprintf(path, sizeof path, "%s/freezer.state", d);
  if (hcs_read_file(path, &text, NULL, NULL) < 0) return 0;
  return strncmp(text, "THAWED", 6) != 0;
}

static int v1_kill_all(const char *rel, hcs_error_t *err) {
  cleanup_free char *d = dir_of("memory", rel);
  json_t *pids = hcs_cg_read_pids(d, err);
  size_t i;
  json_t *p;
  if (pids == NULL) return -1;
  json_array_foreach(pids, i, p) kill((pid_t)json_integer_value(p), SIGKILL);
  json_decref(pids);
  v1_freeze(rel, false, NULL); /* frozen tasks only die once thawed */
  return 0;
}

static json_t *v1_stats(const char *rel, hcs_error_t *err) {
  cleanup_free char *acct = dir_of("cpuacct", rel), *mem = dir_of("memory", rel), *pids = dir_of("pids", rel);
  long hz = sysconf(_SC_CLK_TCK);
  int64_t usage = hcs_cg_read_int(acct, "cpuacct.usage");
  int64_t user = hcs_cg_read_key(acct, "cpuacct.stat", "user");
  int64_t sys = hcs_cg_read_key(acct, "cpuacct.stat", "system");
  int64_t cur = hcs_cg_read_int(mem, "memory.usage_in_bytes");
  int64_t peak = hcs_cg_read_int(mem, "memory.max_usage_in_bytes");
  int64_t rss = hcs_cg_read_key(mem, "memory.stat", "total_rss");
  json_t *s = json_object();
  json_object_set_new(s, "Processor",
                      json_pack("{s:I,s:I,s:I}", "TotalRuntime100ns", (json_int_t)(usage > 0 ? usage / 100 : 0),
                                "RuntimeUser100ns", (json_int_t)(user > 0 ? user * 10000000 / hz : 0),
                                "RuntimeKernel100ns", (json_int_t)(sys > 0 ? sys * 10000000 / hz : 0)));
  json_object_set_new(s, "Memory",
                      json_pack("{s:I,s:I,s:I,s:I,s:I}", "UsageBytes", (json_int_t)(cur > 0 ? cur : 0), "PeakBytes",
                                (json_int_t)(peak > 0 ? peak : 0), "MemoryUsageCommitBytes",
                                (json_int_t)(cur > 0 ? cur : 0), "MemoryUsageCommitPeakBytes",
                                (json_int_t)(peak > 0 ? peak : 0), "MemoryUsagePrivateWorkingSetBytes",
                                (json_int_t)(rss > 0 ? rss : 0)));
  int64_t n = hcs_cg_read_int(pids, "pids.current");
  if (n >= 0) json_object_set_new(s, "Pids", json_pack("{s:I}", "Current", (json_int_t)n));
  (void)err;
  return s;
}

static json_t *v1_pids(const char *rel, hcs_error_t *err) {
  cleanup_free char *d = dir_of("memory", rel);
  return hcs_cg_read_pids(d, err);
}

static int64_t v1_oom_kills(const char *rel) {
  cleanup_free char *d = dir_of("memory", rel);
  return hcs_cg_read_key(d, "memory.oom_control", "oom_kill");
}

/* rmdir may see EBUSY for a moment after the last task exited (its css is
 * released asynchronously); retry briefly. */
static int rmdir_retry(const char *d) {
  for (int i = 0; i < 200; i++) {
    if (rmdir(d) == 0 || errno == ENOENT) return 0;
    if (errno != EBUSY) return -1;
    nanosleep(&(struct timespec){0, 500000}, NULL);
  }
  return -1;
}

static int v1_destroy(const char *rel, hcs_error_t *err) {
  int ret = 0;
  for (size_t i = 0; i < HCS_ARRAY_SIZE(controllers); i++) {
    if (!mounted(controllers[i])) continue;
    cleanup_free char *d = dir_of(controllers[i], rel);
    /* The leaf only: parents are shared and stay (make_dirs). */
    if (rmdir_retry(d) < 0 && errno != ENOENT && ret == 0) ret = hcs_error_make(err, errno, "remove cgroup `%s`", d);
  }
  return ret;
}

const hcs_cgroup_ops_t hcs_cgroup_v1_ops = {
    .name = "v1",
    .create = v1_create,
    .set_resources = v1_set_resources,
    .set_devices = v1_set_devices,
    .enter = v1_enter,
    .enter_self = v1_enter_self,
    .freeze = v1_freeze,
    .is_frozen = v1_is_frozen,
    .kill_all = v1_kill_all,
    .stats = v1_stats,
    .pids = v1_pids,
    .oom_kills = v1_oom_kills,
    .destroy = v1_destroy,
};
