/* The compute system configuration document: hcsshim schema2 field names,
 * parsed and validated into hcs_config_t.  Every rejection names the JSON
 * path, what was expected and what was found. */
#include <ctype.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "compute/compute.h"
#include "compute/config_util.h"

static const struct {
  const char *name;
  int res;
} rlimit_names[] = {
    {"AS", RLIMIT_AS},           {"CORE", RLIMIT_CORE},         {"CPU", RLIMIT_CPU},
    {"DATA", RLIMIT_DATA},       {"FSIZE", RLIMIT_FSIZE},       {"LOCKS", RLIMIT_LOCKS},
    {"MEMLOCK", RLIMIT_MEMLOCK}, {"MSGQUEUE", RLIMIT_MSGQUEUE}, {"NICE", RLIMIT_NICE},
    {"NOFILE", RLIMIT_NOFILE},   {"NPROC", RLIMIT_NPROC},       {"RSS", RLIMIT_RSS},
    {"RTPRIO", RLIMIT_RTPRIO},   {"RTTIME", RLIMIT_RTTIME},     {"SIGPENDING", RLIMIT_SIGPENDING},
    {"STACK", RLIMIT_STACK},
};

static int parse_rlimits(json_t *lx, hcs_config_t *c, hcs_error_t *err) {
  json_t *arr = json_object_get(lx, "Rlimits"), *e;
  size_t i;
  if (arr == NULL || json_is_null(arr)) return 0;
  if (!json_is_array(arr)) return bad(err, "Linux.Rlimits", "array", arr);
  c->rlimits = hcs_xcalloc(json_array_size(arr) + 1, sizeof *c->rlimits);
  json_array_foreach(arr, i, e) {
    static const char *const keys[] = {"Type", "Soft", "Hard", NULL};
    cleanup_free char *p = hcs_xasprintf("Linux.Rlimits[%zu]", i);
    if (!json_is_object(e)) return bad(err, p, "object", e);
    if (check_keys(e, p, keys, err) < 0) return -1;
    json_t *t = json_object_get(e, "Type");
    cleanup_free char *tp = hcs_xasprintf("%s.Type", p);
    if (!json_is_string(t)) return bad(err, tp, "string (e.g. \"RLIMIT_NOFILE\")", t);
    const char *name = json_string_value(t);
    if (strncasecmp(name, "RLIMIT_", 7) == 0) name += 7;
    int res = -1;
    for (size_t k = 0; k < HCS_ARRAY_SIZE(rlimit_names); k++)
      if (strcasecmp(rlimit_names[k].name, name) == 0) res = rlimit_names[k].res;
    if (res < 0) return bad(err, tp, "an RLIMIT_* name", t);
    int64_t soft = -1, hard = -1;
    if (get_int(e, p, "Soft", 0, INT64_MAX, &soft, err) < 0 || get_int(e, p, "Hard", 0, INT64_MAX, &hard, err) < 0)
      return -1;
    if (soft < 0 || hard < 0) {
      cleanup_free char *sp = hcs_xasprintf("%s.%s", p, soft < 0 ? "Soft" : "Hard");
      return bad(err, sp, "integer", NULL);
    }
    if (soft > hard)
      return hcs_error_make(err, 0, "invalid configuration: `%s`: Soft (%lld) exceeds Hard (%lld)", p, (long long)soft,
                            (long long)hard);
    c->rlimits[c->n_rlimits].resource = res;
    c->rlimits[c->n_rlimits].lim.rlim_cur = (rlim_t)soft;
    c->rlimits[c->n_rlimits++].lim.rlim_max = (rlim_t)hard;
  }
  return 0;
}

static int parse_idmaps(json_t *lx, const char *key, hcs_id_map_t **out, size_t *n, hcs_error_t *err) {
  json_t *arr = json_object_get(lx, key), *e;
  size_t i;
  if (arr == NULL || json_is_null(arr)) return 0;
  cleanup_free char *ap = hcs_xasprintf("Linux.%s", key);
  if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > 340)
    return bad(err, ap, "array of 1..340 mappings", arr);
  *out = hcs_xcalloc(json_array_size(arr), sizeof **out);
  json_array_foreach(arr, i, e) {
    static const char *const keys[] = {"ContainerId", "HostId", "Size", NULL};
    cleanup_free char *p = hcs_xasprintf("%s[%zu]", ap, i);
    if (!json_is_object(e)) return bad(err, p, "object", e);
    if (check_keys(e, p, keys, err) < 0) return -1;
    int64_t in = -1, out_id = -1, size = -1;
    if (get_int(e, p, "ContainerId", 0, UINT32_MAX - 1, &in, err) < 0 ||
        get_int(e, p, "HostId", 0, UINT32_MAX - 1, &out_id, err) < 0 ||
        get_int(e, p, "Size", 1, UINT32_MAX, &size, err) < 0)
      return -1;
    if (in < 0 || out_id < 0 || size < 0) {
      cleanup_free char *mp = hcs_xasprintf("%s.%s", p, in < 0 ? "ContainerId" : out_id < 0 ? "HostId" : "Size");
      return bad(err, mp, "integer", NULL);
    }
    (*out)[i] = (hcs_id_map_t){(uint32_t)in, (uint32_t)out_id, (uint32_t)size};
  }
  *n = json_array_size(arr);
  return 0;
}

static int parse_devices(json_t *lx, hcs_config_t *c, hcs_error_t *err) {
  json_t *arr = json_object_get(lx, "Devices"), *e;
  size_t i;
  if (arr == NULL || json_is_null(arr)) return 0;
  if (!json_is_array(arr)) return bad(err, "Linux.Devices", "array", arr);
  c->devices = hcs_xcalloc(json_array_size(arr) + 1, sizeof *c->devices);
  json_array_foreach(arr, i, e) {
    static const char *const keys[] = {"Allow", "Type", "Major", "Minor", "Access", NULL};
    cleanup_free char *p = hcs_xasprintf("Linux.Devices[%zu]", i);
    if (!json_is_object(e)) return bad(err, p, "object", e);
    if (check_keys(e, p, keys, err) < 0) return -1;
    hcs_device_rule_t *d = &c->devices[c->n_devices];
    cleanup_free char *type = NULL, *access = NULL;
    d->allow = true;
    d->major = d->minor = -1;
    if (get_bool(e, p, "Allow", &d->allow, err) < 0 || get_str(e, p, "Type", &type, err) < 0 ||
        get_str(e, p, "Access", &access, err) < 0 || get_int(e, p, "Major", 0, 0xfff, &d->major, err) < 0 ||
        get_int(e, p, "Minor", 0, 0xfffff, &d->minor, err) < 0)
      return -1;
    if (type == NULL) type = hcs_xstrdup("a");
    if (strlen(type) != 1 || !strchr("abc", type[0])) {
      cleanup_free char *tp = hcs_xasprintf("%s.Type", p);
      return bad(err, tp, "\"a\", \"b\" or \"c\"", json_object_get(e, "Type"));
    }
    d->type = type[0];
    if (access == NULL) access = hcs_xstrdup("rwm");
    if (strlen(access) == 0 || strlen(access) > 3 || strspn(access, "rwm") != strlen(access)) {
      cleanup_free char *ap = hcs_xasprintf("%s.Access", p);
      return bad(err, ap, "a combination of \"r\", \"w\", \"m\"", json_object_get(e, "Access"));
    }
    strcpy(d->access, access);
    c->n_devices++;
  }
  return 0;
}

/* Linux.Mounts[i].Options: the flags mount(8) knows, the rest is data. */
static int parse_mount_options(hcs_mount_t *m, char **opts, const char *path, hcs_error_t *err) {
  static const struct {
    const char *name;
    unsigned long set, clear;
  } flags[] = {{"ro", MS_RDONLY, 0},
               {"rw", 0, MS_RDONLY},
               {"nosuid", MS_NOSUID, 0},
               {"suid", 0, MS_NOSUID},
               {"nodev", MS_NODEV, 0},
               {"dev", 0, MS_NODEV},
               {"noexec", MS_NOEXEC, 0},
               {"exec", 0, MS_NOEXEC},
               {"sync", MS_SYNCHRONOUS, 0},
               {"async", 0, MS_SYNCHRONOUS},
               {"noatime", MS_NOATIME, 0},
               {"atime", 0, MS_NOATIME},
               {"nodiratime", MS_NODIRATIME, 0},
               {"diratime", 0, MS_NODIRATIME},
               {"relatime", MS_RELATIME, 0},
               {"norelatime", 0, MS_RELATIME},
               {"strictatime", MS_STRICTATIME, 0},
               {"bind", MS_BIND, 0},
               {"rbind", MS_BIND | MS_REC, 0},
               {"mand", MS_MANDLOCK, 0},
               {"nomand", 0, MS_MANDLOCK}};
  static const struct {
    const char *name;
    unsigned long flag;
  } props[] = {{"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
               {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
               {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
               {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC}};
  size_t dlen = 0;
  for (size_t i = 0; opts && opts[i]; i++)
    dlen += strlen(opts[i]) + 1;
  m->data = hcs_xcalloc(1, dlen + 1);
  for (size_t i = 0; opts && opts[i]; i++) {
    const char *o = opts[i];
    bool done = false;
    for (size_t k = 0; k < HCS_ARRAY_SIZE(flags) && !done; k++)
      if (strcmp(flags[k].name, o) == 0) m->flags = (m->flags | flags[k].set) & ~flags[k].clear, done = true;
    for (size_t k = 0; k < HCS_ARRAY_SIZE(props) && !done; k++)
      if (strcmp(props[k].name, o) == 0) m->propagation = props[k].flag, done = true;
    if (done) continue;
    if (!*o || strchr(o, ',')) {
      cleanup_free char *op = hcs_xasprintf("%s.Options[%zu]", path, i);
      return hcs_error_make(err, 0, "invalid configuration: `%s`: invalid mount option \"%s\"", op, o);
    }
    if (*m->data) strcat(m->data, ",");
    strcat(m->data, o);
  }
  if ((m->flags & MS_BIND) && (m->flags & MS_RDONLY)) m->bind_ro = true, m->flags &= ~MS_RDONLY;
  if (!*m->data) {
    free(m->data);
    m->data = NULL;
  }
  return 0;
}

static int parse_mounts(json_t *lx, hcs_config_t *c, hcs_error_t *err) {
  json_t *arr = json_object_get(lx, "Mounts"), *e;
  size_t i;
  if (arr == NULL || json_is_null(arr)) return 0;
  if (!json_is_array(arr)) return bad(err, "Linux.Mounts", "array", arr);
  c->extra_mounts = hcs_xcalloc(json_array_size(arr) + 1, sizeof *c->extra_mounts);
  json_array_foreach(arr, i, e) {
    static const char *const keys[] = {"Destination", "Type", "Source", "Options", NULL};
    cleanup_free char *p = hcs_xasprintf("Linux.Mounts[%zu]", i);
    if (!json_is_object(e)) return bad(err, p, "object", e);
    if (check_keys(e, p, keys, err) < 0) return -1;
    hcs_mount_t *m = &c->extra_mounts[c->n_extra_mounts++];
    char **opts = NULL;
    if (get_str(e, p, "Destination", &m->destination, err) < 0 || get_str(e, p, "Type", &m->type, err) < 0 ||
        get_str(e, p, "Source", &m->source, err) < 0 || get_strv(e, p, "Options", &opts, err) < 0)
      return -1;
    int r = parse_mount_options(m, opts, p, err);
    hcs_strv_free(opts);
    if (r < 0) return -1;
    m->cgroup = m->type && (strcmp(m->type, "cgroup") == 0 || strcmp(m->type, "cgroup2") == 0);
    if (m->cgroup && (m->flags & MS_BIND)) {
      cleanup_free char *tp = hcs_xasprintf("%s.Type", p);
      return hcs_error_make(err, 0, "invalid configuration: `%s`: a cgroup mount is not a bind mount", tp);
    }
    cleanup_free char *dp = hcs_xasprintf("%s.Destination", p);
    if (m->destination == NULL || m->destination[0] != '/' || strcmp(m->destination, "/") == 0)
      return bad(err, dp, "an absolute path below /", json_object_get(e, "Destination"));
    if (m->flags & MS_BIND) {
      cleanup_free char *sp = hcs_xasprintf("%s.Source", p);
      if (m->source == NULL || m->source[0] != '/')
        return bad(err, sp, "an absolute path", json_object_get(e, "Source"));
      struct stat st;
      if (stat(m->source, &st) < 0)
        return hcs_error_make(err, errno, "invalid configuration: `%s`: `%s`", sp, m->source);
    } else if (m->type == NULL || !*m->type) {
      cleanup_free char *tp = hcs_xasprintf("%s.Type", p);
      return bad(err, tp, "a file system type (or a bind option)", json_object_get(e, "Type"));
    }
  }
  return 0;
}

const struct hcs_ns_kind_s hcs_ns_kinds[HCS_NS_COUNT] = {[HCS_NS_USER] = {"User", CLONE_NEWUSER},
                                                         [HCS_NS_MOUNT] = {"Mount", CLONE_NEWNS},
                                                         [HCS_NS_PID] = {"Pid", CLONE_NEWPID},
                                                         [HCS_NS_IPC] = {"Ipc", CLONE_NEWIPC},
                                                         [HCS_NS_UTS] = {"Uts", CLONE_NEWUTS},
                                                         [HCS_NS_CGROUP] = {"Cgroup", CLONE_NEWCGROUP},
                                                         [HCS_NS_TIME] = {"Time", 0x00000080 /* CLONE_NEWTIME */}};

/* A namespace type as /proc/PID/ns names it (but "mount" and "network"). */
static const char *ns_type_name(int type) {
  static const struct {
    int type;
    const char *name;
  } names[] = {{CLONE_NEWNET, "network"}, {CLONE_NEWUSER, "user"}, {CLONE_NEWNS, "mount"},      {CLONE_NEWPID, "pid"},
               {CLONE_NEWIPC, "ipc"},     {CLONE_NEWUTS, "uts"},   {CLONE_NEWCGROUP, "cgroup"}, {0x00000080, "time"}};
  for (size_t i = 0; i < HCS_ARRAY_SIZE(names); i++)
    if (names[i].type == type) return names[i].name;
  return "unknown";
}

/* Linux.Namespaces {Pid: PATH, ...}: each path must be an nsfs file of
 * that type (checked on the opened fd), so a wrong path fails here and
 * not half-way through init's setup. */
static int parse_namespaces(json_t *lx, hcs_config_t *c, hcs_error_t *err) {
  json_t *o = NULL;
  if (get_obj(lx, "Linux", "Namespaces", &o, err) < 0 || o == NULL) return 0;
  const char *keys[HCS_NS_COUNT + 1];
  for (size_t i = 0; i < HCS_NS_COUNT; i++)
    keys[i] = hcs_ns_kinds[i].field;
  keys[HCS_NS_COUNT] = NULL;
  if (check_keys(o, "Linux.Namespaces", keys, err) < 0) return -1;
  for (size_t i = 0; i < HCS_NS_COUNT; i++) {
    cleanup_free char *p = hcs_xasprintf("Linux.Namespaces.%s", hcs_ns_kinds[i].field);
    json_t *v = json_object_get(o, hcs_ns_kinds[i].field);
    if (v == NULL || json_is_null(v)) continue;
    if (!json_is_string(v) || json_string_value(v)[0] != '/') return bad(err, p, "an absolute path", v);
    const char *path = json_string_value(v);
    if (i == HCS_NS_TIME && access("/proc/self/ns/time", F_OK) < 0)
      return hcs_error_make(err, 0, "invalid configuration: `%s`: this kernel has no time namespaces", p);
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return hcs_error_make(err, errno, "invalid configuration: `%s`: `%s`", p, path);
    int got = 0;
    if (hcs_ns_check(fd, hcs_ns_kinds[i].type, &got) < 0) {
      if (errno == ENOTTY)
        return hcs_error_make(err, 0, "invalid configuration: `%s`: `%s` is a %s namespace (expected %s)", p, path,
                              ns_type_name(got), ns_type_name(hcs_ns_kinds[i].type));
      return hcs_error_make(err, 0, "invalid configuration: `%s`: `%s` is not a namespace file (nsfs)", p, path);
    }
    c->ns_paths[i] = hcs_xstrdup(path);
  }
  return 0;
}

static int parse_linux(json_t *lx, hcs_config_t *c, hcs_error_t *err) {
  static const char *const keys[] = {"CgroupParent",
                                     "Capabilities",
                                     "Seccomp",
                                     "NoNewPrivileges",
                                     "Rlimits",
                                     "Sysctl",
                                     "Devices",
                                     "UidMappings",
                                     "GidMappings",
                                     "MaskedPaths",
                                     "ReadonlyPaths",
                                     "PidsLimit",
                                     "Init",
                                     "ExitCommand",
                                     "CapabilitySets",
                                     "CallerReapsInit",
                                     "ReadonlyRootfs",
                                     "Mounts",
                                     "Log",
                                     "Namespaces",
                                     NULL};
  if (check_keys(lx, "Linux", keys, err) < 0) return -1;
  if (get_bool(lx, "Linux", "CallerReapsInit", &c->caller_reaps_init, err) < 0 ||
      get_bool(lx, "Linux", "ReadonlyRootfs", &c->readonly_rootfs, err) < 0 || parse_mounts(lx, c, err) < 0)
    return -1;
  /* The system log's cap (docs/compute.md, Logs): a file is rotated before
   * a record would take it past MaxSize; MaxFiles counts the current one. */
  json_t *log = json_object_get(lx, "Log");
  if (log && !json_is_null(log)) {
    static const char *const lk[] = {"MaxSize", "MaxFiles", NULL};
    if (!json_is_object(log)) return bad(err, "Linux.Log", "object", log);
    if (check_keys(log, "Linux.Log", lk, err) < 0 ||
        get_int(log, "Linux.Log", "MaxSize", HCS_LOG_MIN_SIZE, INT64_MAX / 2, &c->log_max_size, err) < 0 ||
        get_int(log, "Linux.Log", "MaxFiles", 2, 100, &c->log_max_files, err) < 0)
      return -1;
  }
  if (get_str(lx, "Linux", "CgroupParent", &c->cgroup_parent, err) < 0 ||
      get_bool(lx, "Linux", "NoNewPrivileges", &c->no_new_privs, err) < 0 ||
      get_strv(lx, "Linux", "MaskedPaths", &c->masked, err) < 0 ||
      get_strv(lx, "Linux", "ReadonlyPaths", &c->readonly, err) < 0 ||
      get_int(lx, "Linux", "PidsLimit", 1, INT32_MAX, &c->pids_limit, err) < 0 ||
      check_ctr_paths(c->masked, "Linux.MaskedPaths", json_object_get(lx, "MaskedPaths"), err) < 0 ||
      check_ctr_paths(c->readonly, "Linux.ReadonlyPaths", json_object_get(lx, "ReadonlyPaths"), err) < 0 ||
      get_strv(lx, "Linux", "ExitCommand", &c->exit_command, err) < 0)
    return -1;
  /* Run on the host by the monitor (an auto-remove clean-up): an absolute
   * program, as no PATH search is done. */
  if (c->exit_command && (c->exit_command[0] == NULL || c->exit_command[0][0] != '/'))
    return bad(err, "Linux.ExitCommand", "a non-empty array whose first element is an absolute path",
               json_object_get(lx, "ExitCommand"));
  /* The parent is a relative cgroup path: no "..", no leading "/". */
  if (c->cgroup_parent) {
    const char *s = c->cgroup_parent;
    if (!*s || *s == '/' || strstr(s, "..") ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123"
                  "456789_.-/") != strlen(s))
      return bad(err, "Linux.CgroupParent", "a relative cgroup path of [A-Za-z0-9_.-/]",
                 json_object_get(lx, "CgroupParent"));
  }
  if (parse_cap_list(lx, "Linux", "Capabilities", &c->caps, &c->caps_given, err) < 0) return -1;
  json_t *sets = NULL;
  if (get_obj(lx, "Linux", "CapabilitySets", &sets, err) < 0) return -1;
  if (sets) {
    if (parse_cap_sets(sets, "Linux.CapabilitySets", &c->cap_eff, &c->cap_perm, &c->cap_inh, &c->cap_amb, err) < 0)
      return -1;
    c->cap_sets = true;
  }
  json_t *sc = NULL;
  if (get_obj(lx, "Linux", "Seccomp", &sc, err) < 0) return -1;
  if (sc) {
    static const char *const sk[] = {"Disabled", "Deny", "ProgramFile", "Listener", NULL};
    bool disabled = false;
    if (check_keys(sc, "Linux.Seccomp", sk, err) < 0 || get_bool(sc, "Linux.Seccomp", "Disabled", &disabled, err) < 0 ||
        get_bool(sc, "Linux.Seccomp", "Listener", &c->seccomp_listener, err) < 0 ||
        get_strv(sc, "Linux.Seccomp", "Deny", &c->seccomp_deny, err) < 0 ||
        get_str(sc, "Linux.Seccomp", "ProgramFile", &c->seccomp_program, err) < 0)
      return -1;
    if (c->seccomp_program) {
      struct stat st;
      json_t *v = json_object_get(sc, "ProgramFile");
      if (c->seccomp_program[0] != '/') return bad(err, "Linux.Seccomp.ProgramFile", "an absolute path", v);
      if (stat(c->seccomp_program, &st) < 0)
        return hcs_error_make(err, errno, "invalid configuration: `Linux.Seccomp.ProgramFile`: `%s`",
                              c->seccomp_program);
      if (!S_ISREG(st.st_mode) || st.st_size == 0 || st.st_size % 8)
        return hcs_error_make(err, 0, "invalid configuration: `Linux.Seccomp.ProgramFile`: `%s` is not a BPF program",
                              c->seccomp_program);
      if (c->seccomp_deny)
        return hcs_error_make(err, 0, "invalid configuration: `Linux.Seccomp`: give Deny or ProgramFile, not both");
    }
    /* Only a program of the caller's can hold notify returns. */
    if (c->seccomp_listener && !c->seccomp_program)
      return hcs_error_make(err, 0, "invalid configuration: `Linux.Seccomp.Listener`: needs a ProgramFile");
    c->seccomp = !disabled;
  }
  json_t *sysctl = NULL;
  if (get_obj(lx, "Linux", "Sysctl", &sysctl, err) < 0) return -1;
  if (sysctl) {
    const char *k;
    json_t *v;
    c->sysctl_keys = hcs_xcalloc(json_object_size(sysctl) + 1, sizeof(char *));
    c->sysctl_values = hcs_xcalloc(json_object_size(sysctl) + 1, sizeof(char *));
    json_object_foreach(sysctl, k, v) {
      cleanup_free char *p = hcs_xasprintf("Linux.Sysctl.%s", k);
      if (!json_is_string(v)) return bad(err, p, "string", v);
      /* Only namespaced knobs make sense in a container; refuse the rest. */
      if (strncmp(k, "net.", 4) && strncmp(k, "kernel.msg", 10) && strncmp(k, "kernel.sem", 10) &&
          strncmp(k, "kernel.shm", 10) && strcmp(k, "kernel.hostname") && strcmp(k, "kernel.domainname") &&
          strncmp(k, "fs.mqueue.", 10))
        return hcs_error_make(err, 0,
                              "invalid configuration: `%s`: expected a namespaced sysctl (net.*, kernel.shm*, "
                              "kernel.msg*, kernel.sem, fs.mqueue.*)",
                              p);
      if (strstr(k, "..") || strchr(k, '/'))
        return hcs_error_make(err, 0, "invalid configuration: `%s`: invalid sysctl name", p);
      c->sysctl_keys[c->n_sysctl] = hcs_xstrdup(k);
      c->sysctl_values[c->n_sysctl++] = hcs_xstrdup(json_string_value(v));
    }
  }
  if (parse_namespaces(lx, c, err) < 0) return -1;
  if (parse_rlimits(lx, c, err) < 0 || parse_devices(lx, c, err) < 0 ||
      parse_idmaps(lx, "UidMappings", &c->uid_maps, &c->n_uid_maps, err) < 0 ||
      parse_idmaps(lx, "GidMappings", &c->gid_maps, &c->n_gid_maps, err) < 0)
    return -1;
  if (c->ns_paths[HCS_NS_USER] && c->n_uid_maps)
    return hcs_error_make(err, 0,
                          "invalid configuration: `Linux.Namespaces.User`: a joined user namespace has its own maps "
                          "(give User or UidMappings, not both)");
  if ((c->n_uid_maps == 0) != (c->n_gid_maps == 0))
    return hcs_error_make(err, 0, "invalid configuration: `Linux.%s`: expected together with %s, missing",
                          c->n_uid_maps ? "GidMappings" : "UidMappings", c->n_uid_maps ? "UidMappings" : "GidMappings");
  json_t *init = json_object_get(lx, "Init");
  if (init && !json_is_null(init)) {
    c->init = hcs_proc_spec_parse(init, "Linux.Init", err);
    if (c->init == NULL) return -1;
  }
  return 0;
}

static int check_abs_path(json_t *obj, const char *path, const char *key, bool must_be_dir, hcs_error_t *err) {
  json_t *v = json_object_get(obj, key);
  cleanup_free char *p = hcs_xasprintf("%s.%s", path, key);
  if (!json_is_string(v) || json_string_value(v)[0] != '/') return bad(err, p, "an absolute path", v);
  if (must_be_dir) {
    struct stat st;
    if (stat(json_string_value(v), &st) < 0)
      return hcs_error_make(err, errno, "invalid configuration: `%s`: `%s`", p, json_string_value(v));
    if (!S_ISDIR(st.st_mode))
      return hcs_error_make(err, 0, "invalid configuration: `%s`: `%s` is not a directory", p, json_string_value(v));
  }
  return 0;
}

static int parse_container(json_t *ct, const char *run_root, hcs_config_t *c, hcs_error_t *err) {
  static const char *const keys[] = {"GuestOs",    "Storage", "MappedDirectories", "Processor", "Memory",
                                     "Networking", NULL};
  json_t *o;
  if (check_keys(ct, "Container", keys, err) < 0) return -1;
  if (get_obj(ct, "Container", "GuestOs", &o, err) < 0) return -1;
  if (o) {
    static const char *const k[] = {"HostName", NULL};
    if (check_keys(o, "Container.GuestOs", k, err) < 0 ||
        get_str(o, "Container.GuestOs", "HostName", &c->hostname, err) < 0)
      return -1;
    if (c->hostname && (strlen(c->hostname) == 0 || strlen(c->hostname) > 64))
      return bad(err, "Container.GuestOs.HostName", "1..64 characters", json_object_get(o, "HostName"));
  }
  if (get_obj(ct, "Container", "Storage", &o, err) < 0) return -1;
  if (o == NULL) return bad(err, "Container.Storage", "object", NULL);
  static const char *const sk[] = {"Layers", "Path", NULL};
  if (check_keys(o, "Container.Storage", sk, err) < 0 || check_abs_path(o, "Container.Storage", "Path", true, err) < 0)
    return -1;
  c->rootfs = hcs_xstrdup(json_string_value(json_object_get(o, "Path")));
  json_t *layers = json_object_get(o, "Layers"), *e;
  size_t i;
  if (layers && !json_is_null(layers)) {
    if (!json_is_array(layers)) return bad(err, "Container.Storage.Layers", "array", layers);
    json_array_foreach(layers, i, e) {
      static const char *const lk[] = {"Id", "Path", "PathType", NULL};
      cleanup_free char *p = hcs_xasprintf("Container.Storage.Layers[%zu]", i);
      if (!json_is_object(e)) return bad(err, p, "object {Id, Path}", e);
      if (check_keys(e, p, lk, err) < 0) return -1;
      cleanup_free char *ip = hcs_xasprintf("%s.Id", p);
      if (!json_is_string(json_object_get(e, "Id"))) return bad(err, ip, "string", json_object_get(e, "Id"));
      if (check_abs_path(e, p, "Path", false, err) < 0) return -1;
    }
  }
  json_t *md = json_object_get(ct, "MappedDirectories");
  if (md && !json_is_null(md)) {
    if (!json_is_array(md)) return bad(err, "Container.MappedDirectories", "array", md);
    c->mounts = hcs_xcalloc(json_array_size(md) + 1, sizeof *c->mounts);
    json_array_foreach(md, i, e) {
      static const char *const mk[] = {"HostPath", "ContainerPath", "ReadOnly", NULL};
      cleanup_free char *p = hcs_xasprintf("Container.MappedDirectories[%zu]", i);
      if (!json_is_object(e)) return bad(err, p, "object", e);
      cleanup_free char *cp = hcs_xasprintf("%s.ContainerPath", p);
      json_t *ctr = json_object_get(e, "ContainerPath");
      if (check_keys(e, p, mk, err) < 0 || check_abs_path(e, p, "HostPath", false, err) < 0 ||
          check_ctr_path(json_string_value(ctr), cp, ctr, err) < 0)
        return -1;
      if (strspn(json_string_value(ctr), "/") == strlen(json_string_value(ctr)))
        return bad(err, cp, "a path below /", ctr);
      hcs_mapped_dir_t *m = &c->mounts[c->n_mounts++];
      m->host_path = hcs_xstrdup(json_string_value(json_object_get(e, "HostPath")));
      m->container_path = hcs_xstrdup(json_string_value(ctr));
      if (get_bool(e, p, "ReadOnly", &m->read_only, err) < 0) return -1;
      struct stat st;
      if (stat(m->host_path, &st) < 0)
        return hcs_error_make(err, errno, "invalid configuration: `%s.HostPath`: `%s`", p, m->host_path);
    }
  }
  if (get_obj(ct, "Container", "Processor", &o, err) < 0) return -1;
  if (o) {
    static const char *const pk[] = {"Count", "Maximum", "Weight", NULL};
    if (check_keys(o, "Container.Processor", pk, err) < 0 ||
        get_int(o, "Container.Processor", "Count", 1, hcs_cgroup_host_cpus(), &c->cpu_count, err) < 0 ||
        get_int(o, "Container.Processor", "Maximum", 1, 10000, &c->cpu_max, err) < 0 ||
        get_int(o, "Container.Processor", "Weight", 1, 10000, &c->cpu_weight, err) < 0)
      return -1;
  }
  if (get_obj(ct, "Container", "Memory", &o, err) < 0) return -1;
  if (o) {
    static const char *const mk[] = {"SizeInMB", NULL};
    if (check_keys(o, "Container.Memory", mk, err) < 0 ||
        get_int(o, "Container.Memory", "SizeInMB", 4, INT64_MAX >> 20, &c->memory_mb, err) < 0)
      return -1;
  }
  if (get_obj(ct, "Container", "Networking", &o, err) < 0) return -1;
  if (o) {
    static const char *const nk[] = {"Namespace", NULL};
    char *ns = NULL;
    if (check_keys(o, "Container.Networking", nk, err) < 0 ||
        get_str(o, "Container.Networking", "Namespace", &ns, err) < 0)
      return -1;
    if (ns && ns[0] != '/') {
      hcs_error_t e2 = NULL;
      if (hcs_validate_id("network namespace", ns, &e2) < 0) {
        hcs_error_release(&e2);
        json_t *v = json_object_get(o, "Namespace");
        free(ns);
        return bad(err, "Container.Networking.Namespace", "an absolute path or a namespace id", v);
      }
      char *full = hcs_xasprintf("%s/netns/%s", run_root, ns);
      free(ns);
      ns = full;
    }
    if (ns && access(ns, F_OK) < 0) {
      int saved = errno;
      hcs_error_make(err, saved, "invalid configuration: `Container.Networking.Namespace`: `%s`", ns);
      free(ns);
      return -1;
    }
    if (ns) {
      cleanup_close int fd = open(ns, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      int got = 0;
      if (fd < 0 || hcs_ns_check(fd, CLONE_NEWNET, &got) < 0) {
        int saved = errno;
        if (fd < 0)
          hcs_error_make(err, saved, "invalid configuration: `Container.Networking.Namespace`: `%s`", ns);
        else if (saved == ENOTTY)
          hcs_error_make(err, 0,
                         "invalid configuration: `Container.Networking.Namespace`: `%s` is a %s namespace "
                         "(expected network)",
                         ns, ns_type_name(got));
        else
          hcs_error_make(err, 0,
                         "invalid configuration: `Container.Networking.Namespace`: `%s` is not a namespace "
                         "file (nsfs)",
                         ns);
        free(ns);
        return -1;
      }
    }
    c->netns = ns;
  }
  return 0;
}

hcs_config_t *hcs_config_parse(json_t *doc, const char *run_root, hcs_error_t *err) {
  static const char *const keys[] = {
      "Owner", "SchemaVersion", "Container", "Linux", "ShouldTerminateOnLastHandleClosed", NULL};
  if (!json_is_object(doc)) {
    bad(err, "(document)", "object", doc);
    return NULL;
  }
  hcs_config_t *c = hcs_xcalloc(1, sizeof *c);
  c->device_filter_fd = -1;
  c->caps = hcs_default_caps();
  c->seccomp = true;
  c->no_new_privs = true;
  bool ignored = false;
  json_t *o;
  if (check_keys(doc, "", keys, err) < 0 || get_str(doc, "", "Owner", &c->owner, err) < 0 ||
      get_bool(doc, "", "ShouldTerminateOnLastHandleClosed", &ignored, err) < 0)
    goto fail;
  if (get_obj(doc, "", "SchemaVersion", &o, err) < 0) goto fail;
  if (o) {
    static const char *const sk[] = {"Major", "Minor", NULL};
    int64_t major = 2, minor = 0;
    if (check_keys(o, "SchemaVersion", sk, err) < 0 || get_int(o, "SchemaVersion", "Major", 2, 2, &major, err) < 0 ||
        get_int(o, "SchemaVersion", "Minor", 0, INT32_MAX, &minor, err) < 0)
      goto fail;
  }
  if (get_obj(doc, "", "Container", &o, err) < 0) goto fail;
  if (o == NULL) {
    bad(err, "Container", "object", NULL);
    goto fail;
  }
  if (parse_container(o, run_root, c, err) < 0) goto fail;
  if (get_obj(doc, "", "Linux", &o, err) < 0) goto fail;
  if (o && parse_linux(o, c, err) < 0) goto fail;
  if (c->cgroup_parent == NULL) {
    c->cgroup_parent = hcs_xstrdup("hcs");
    c->cgroup_parent_default = true;
  }
  if (c->hostname == NULL) c->hostname = NULL; /* set to the id by the caller */
  return c;
fail:
  hcs_config_free(c);
  return NULL;
}

void hcs_config_without_device_cgroup(hcs_config_t *c) {
  if (!c->caps_given) c->caps &= ~(1ULL << CAP_MKNOD);
}

void hcs_config_free(hcs_config_t *c) {
  if (c == NULL) return;
  free(c->owner);
  free(c->hostname);
  free(c->rootfs);
  for (size_t i = 0; i < c->n_mounts; i++) {
    free(c->mounts[i].host_path);
    free(c->mounts[i].container_path);
  }
  free(c->mounts);
  free(c->netns);
  for (size_t i = 0; i < HCS_NS_COUNT; i++)
    free(c->ns_paths[i]);
  free(c->cgroup_parent);
  hcs_strv_free(c->seccomp_deny);
  free(c->seccomp_program);
  free(c->rlimits);
  for (size_t i = 0; i < c->n_sysctl; i++) {
    free(c->sysctl_keys[i]);
    free(c->sysctl_values[i]);
  }
  free(c->sysctl_keys);
  free(c->sysctl_values);
  free(c->devices);
  for (size_t i = 0; i < c->n_extra_mounts; i++) {
    free(c->extra_mounts[i].destination);
    free(c->extra_mounts[i].type);
    free(c->extra_mounts[i].source);
    free(c->extra_mounts[i].data);
  }
  free(c->extra_mounts);
  free(c->uid_maps);
  free(c->gid_maps);
  hcs_strv_free(c->masked);
  hcs_strv_free(c->readonly);
  hcs_proc_spec_free(c->init);
  hcs_strv_free(c->exit_command);
  free(c);
}
