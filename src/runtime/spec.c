/* The OCI bundle's config.json (runtime-spec 1.1) translated into the hcs
 * compute document (docs/compute.md).  What hcs cannot do is refused here,
 * before anything is created, with the config.json field in the message;
 * the compute document then validates the rest (paths, limits). */
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <fcntl.h>

#include "compute/compute.h"
#include "runtime/runtime.h"

#define REFUSE(err, field, ...) hcs_error_make(err, 0, "config.json: `%s`: " __VA_ARGS__)

static int expect(hcs_error_t *err, const char *field, const char *what) {
  return hcs_error_make(err, 0, "config.json: `%s`: expected %s", field, what);
}

/* A string field, NULL when absent; -1 when present with another type. */
static int opt_str(json_t *o, const char *key, const char *field, const char **out, hcs_error_t *err) {
  json_t *v = json_object_get(o, key);
  *out = NULL;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_string(v)) return expect(err, field, "a string");
  *out = json_string_value(v);
  return 0;
}

json_t *rt_translate_process(json_t *proc, const char *where, hcs_error_t *err) {
  cleanup_free char *f = NULL;
  if (!json_is_object(proc)) {
    expect(err, where, "an object");
    return NULL;
  }
  cleanup_json json_t *p = json_object();
  json_t *args = json_object_get(proc, "args"), *v;
  size_t i;
  f = hcs_xasprintf("%s.args", where);
  if (!json_is_array(args) || json_array_size(args) == 0) {
    expect(err, f, "a non-empty array of strings");
    return NULL;
  }
  json_array_foreach(args, i, v) if (!json_is_string(v)) {
    expect(err, f, "a non-empty array of strings");
    return NULL;
  }
  json_object_set(p, "CommandArgs", args);
  const char *cwd = NULL;
  free(f);
  f = hcs_xasprintf("%s.cwd", where);
  if (opt_str(proc, "cwd", f, &cwd, err) < 0) return NULL;
  if (cwd && cwd[0] != '/') {
    hcs_error_make(err, 0, "config.json: `%s`: expected an absolute path, got \"%s\"", f, cwd);
    return NULL;
  }
  json_object_set_new(p, "WorkingDirectory", json_string(cwd ? cwd : "/"));
  json_t *env = json_object_get(proc, "env");
  json_t *m = json_object();
  json_object_set_new(p, "Environment", m);
  if (env && !json_is_null(env)) {
    free(f);
    f = hcs_xasprintf("%s.env", where);
    if (!json_is_array(env)) {
      expect(err, f, "an array of \"KEY=value\" strings");
      return NULL;
    }
    json_array_foreach(env, i, v) {
      const char *s = json_is_string(v) ? json_string_value(v) : NULL;
      const char *eq = s ? strchr(s, '=') : NULL;
      if (eq == NULL || eq == s) {
        hcs_error_make(err, 0, "config.json: `%s[%zu]`: expected \"KEY=value\"", f, i);
        return NULL;
      }
      cleanup_free char *k = strndup(s, (size_t)(eq - s));
      json_object_set_new(m, k, json_string(eq + 1));
    }
  }
  json_t *user = json_object_get(proc, "user");
  if (user && !json_is_null(user)) {
    free(f);
    f = hcs_xasprintf("%s.user", where);
    json_t *uid = json_object_get(user, "uid"), *gid = json_object_get(user, "gid");
    if (!json_is_object(user) || (uid && !json_is_integer(uid)) || (gid && !json_is_integer(gid)))
      return expect(err, f, "an object {uid, gid, additionalGids}"), NULL;
    json_int_t u = uid ? json_integer_value(uid) : 0, g = gid ? json_integer_value(gid) : 0;
    if (u < 0 || u > UINT32_MAX - 1 || g < 0 || g > UINT32_MAX - 1) return expect(err, f, "ids in [0, 2^32-2]"), NULL;
    json_object_set_new(p, "User", json_sprintf("%lld:%lld", (long long)u, (long long)g));
    json_t *um = json_object_get(user, "umask");
    if (um && !json_is_null(um)) {
      if (!json_is_integer(um) || json_integer_value(um) < 0 || json_integer_value(um) > 0777) {
        hcs_error_make(err, 0, "config.json: `%s.umask`: expected an integer in [0, 0777]", f);
        return NULL;
      }
      json_object_set(p, "Umask", um);
    }
    json_t *ag = json_object_get(user, "additionalGids"), *eg;
    size_t k;
    if (ag && !json_is_null(ag)) {
      if (!json_is_array(ag)) return expect(err, "process.user.additionalGids", "an array of group ids"), NULL;
      json_array_foreach(ag, k, eg) if (!json_is_integer(eg) || json_integer_value(eg) < 0 ||
                                        json_integer_value(eg) > UINT32_MAX - 1) {
        hcs_error_make(err, 0, "config.json: `%s.additionalGids[%zu]`: expected a group id", f, k);
        return NULL;
      }
      json_object_set(p, "AdditionalGroups", ag);
    }
  }
  json_t *term = json_object_get(proc, "terminal");
  if (term && !json_is_null(term) && !json_is_boolean(term)) {
    free(f);
    f = hcs_xasprintf("%s.terminal", where);
    return expect(err, f, "a boolean"), NULL;
  }
  if (json_is_true(term)) {
    json_object_set_new(p, "EmulateConsole", json_true());
    json_t *cs = json_object_get(proc, "consoleSize");
    if (json_is_object(cs))
      json_object_set_new(p, "ConsoleSize",
                          json_pack("[I,I]", json_integer_value(json_object_get(cs, "height")),
                                    json_integer_value(json_object_get(cs, "width"))));
  }
  static const char *const labels[] = {"apparmorProfile", "selinuxLabel"};
  for (size_t k = 0; k < HCS_ARRAY_SIZE(labels); k++) {
    const char *s = NULL;
    free(f);
    f = hcs_xasprintf("%s.%s", where, labels[k]);
    if (opt_str(proc, labels[k], f, &s, err) < 0) return NULL;
    if (s && *s) {
      hcs_error_make(err, 0, "config.json: `%s`: \"%s\": this host has no %s", f, s, k == 0 ? "AppArmor" : "SELinux");
      return NULL;
    }
  }
  return steal_ptr(p);
}

/* process.capabilities: the bounding set as `Capabilities`, the other
 * four as `CapabilitySets`, into `dst` (the Linux section, or an exec'd
 * process's ProcessParameters). */
int rt_translate_caps(json_t *caps, const char *src, json_t *dst, hcs_error_t *err) {
  json_t *v;
  size_t i;
  if (caps && !json_is_null(caps)) {
    if (!json_is_object(caps)) return hcs_error_make(err, 0, "%s: `process.capabilities`: expected an object", src);
    static const char *const sets[] = {"bounding", "effective", "permitted", "inheritable", "ambient"};
    for (size_t k = 0; k < HCS_ARRAY_SIZE(sets); k++) {
      json_t *s = json_object_get(caps, sets[k]);
      if (s == NULL || json_is_null(s)) continue;
      cleanup_free char *f = hcs_xasprintf("process.capabilities.%s", sets[k]);
      if (!json_is_array(s)) return hcs_error_make(err, 0, "%s: `%s`: expected an array of capability names", src, f);
      json_array_foreach(s, i, v) if (!json_is_string(v) ||
                                      hcs_cap_from_name(json_string_value(v)) <
                                          0) return hcs_error_make(err, 0, "%s: `%s[%zu]`: unknown capability %s%s%s",
                                                                   src, f, i, json_is_string(v) ? "\"" : "",
                                                                   json_is_string(v) ? json_string_value(v)
                                                                                     : "(not a string)",
                                                                   json_is_string(v) ? "\"" : "");
    }
    /* Each set as given; the bounding set is Capabilities. */
    json_t *cs = json_object();
    static const char *const oci[][2] = {
        {"effective", "Effective"}, {"permitted", "Permitted"}, {"inheritable", "Inheritable"}, {"ambient", "Ambient"}};
    for (size_t k = 0; k < HCS_ARRAY_SIZE(oci); k++) {
      json_t *s = json_object_get(caps, oci[k][0]);
      json_object_set_new(cs, oci[k][1], json_is_array(s) ? json_incref(s) : json_array());
    }
    json_object_set_new(dst, "CapabilitySets", cs);
    /* capabilities(7): an ambient capability must be permitted and inheritable. */
    json_array_foreach(json_object_get(cs, "Ambient"), i, v) {
      bool perm = false, inh = false;
      json_t *w;
      size_t j;
      json_array_foreach(json_object_get(cs, "Permitted"), j, w) perm |= json_equal(v, w);
      json_array_foreach(json_object_get(cs, "Inheritable"), j, w) inh |= json_equal(v, w);
      if (!perm || !inh)
        return hcs_error_make(err, 0,
                              "%s: `process.capabilities.ambient[%zu]`: \"%s\" is not also permitted and "
                              "inheritable",
                              src, i, json_string_value(v));
    }
    json_t *b = json_object_get(caps, "bounding");
    if (!json_is_array(b)) b = json_object_get(caps, "effective");
    json_object_set_new(dst, "Capabilities", json_is_array(b) ? json_incref(b) : json_array());
  } else {
    json_object_set_new(dst, "Capabilities", json_array());
  }
  return 0;
}

/* The Linux section's parts of `process` (they apply to the whole system). */
static int translate_process_security(json_t *proc, json_t *lx, hcs_error_t *err) {
  json_t *v;
  size_t i;
  if (rt_translate_caps(json_object_get(proc, "capabilities"), "config.json", lx, err) < 0) return -1;
  json_t *rl = json_object_get(proc, "rlimits");
  if (rl && !json_is_null(rl)) {
    if (!json_is_array(rl)) return expect(err, "process.rlimits", "an array");
    json_t *out = json_array();
    json_object_set_new(lx, "Rlimits", out);
    json_array_foreach(rl, i, v) {
      const char *type = json_string_value(json_object_get(v, "type"));
      json_t *soft = json_object_get(v, "soft"), *hard = json_object_get(v, "hard");
      if (type == NULL || strncmp(type, "RLIMIT_", 7) != 0)
        return hcs_error_make(err, 0, "config.json: `process.rlimits[%zu].type`: expected an RLIMIT_* name", i);
      if (!json_is_integer(soft) || !json_is_integer(hard))
        return hcs_error_make(err, 0, "config.json: `process.rlimits[%zu]`: expected integer soft and hard", i);
      json_array_append_new(out, json_pack("{s:s,s:O,s:O}", "Type", type, "Soft", soft, "Hard", hard));
    }
  }
  json_t *nnp = json_object_get(proc, "noNewPrivileges");
  if (nnp && !json_is_boolean(nnp) && !json_is_null(nnp)) return expect(err, "process.noNewPrivileges", "a boolean");
  json_object_set_new(lx, "NoNewPrivileges", json_boolean(json_is_true(nnp)));
  return 0;
}

/* The mounts hcs makes itself (docs/compute.md): the OCI entries for them
 * are what runc would mount there anyway. */
static bool builtin_mount(const char *type, const char *dest) {
  static const char *const builtins[][2] = {{"proc", "/proc"},      {"sysfs", "/sys"},         {"tmpfs", "/dev"},
                                            {"devpts", "/dev/pts"}, {"mqueue", "/dev/mqueue"}, {"tmpfs", "/dev/shm"},
                                            {"shm", "/dev/shm"}};
  for (size_t i = 0; i < HCS_ARRAY_SIZE(builtins); i++)
    if (type && strcmp(builtins[i][0], type) == 0 && strcmp(builtins[i][1], dest) == 0) return true;
  return false;
}

static int translate_mounts(json_t *spec, const char *bundle, json_t *lx, hcs_error_t *err) {
  json_t *mounts = json_object_get(spec, "mounts"), *m;
  size_t i;
  if (mounts == NULL || json_is_null(mounts)) return 0;
  if (!json_is_array(mounts)) return expect(err, "mounts", "an array");
  json_t *out = json_array();
  json_object_set_new(lx, "Mounts", out);
  json_array_foreach(mounts, i, m) {
    cleanup_free char *f = hcs_xasprintf("mounts[%zu]", i);
    if (!json_is_object(m)) return expect(err, f, "an object");
    const char *dest = json_string_value(json_object_get(m, "destination"));
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *src = json_string_value(json_object_get(m, "source"));
    json_t *opts = json_object_get(m, "options"), *o;
    size_t k;
    if (dest == NULL) return hcs_error_make(err, 0, "config.json: `%s.destination`: expected a path, missing", f);
    if (dest[0] != '/')
      return hcs_error_make(err, 0, "config.json: `%s.destination`: expected an absolute path, got \"%s\"", f, dest);
    if (strstr(dest, "/../") || (strlen(dest) >= 3 && strcmp(dest + strlen(dest) - 3, "/..") == 0))
      return hcs_error_make(err, 0, "config.json: `%s.destination`: \"..\" is not allowed, got \"%s\"", f, dest);
    if (opts && !json_is_null(opts) && !json_is_array(opts)) {
      cleanup_free char *of = hcs_xasprintf("%s.options", f);
      return expect(err, of, "an array of strings");
    }
    bool bind = type && strcmp(type, "bind") == 0;
    json_array_foreach(opts, k, o) {
      if (!json_is_string(o)) {
        cleanup_free char *of = hcs_xasprintf("%s.options[%zu]", f, k);
        return expect(err, of, "a string");
      }
      if (strcmp(json_string_value(o), "bind") == 0 || strcmp(json_string_value(o), "rbind") == 0) bind = true;
    }
    if (!bind && builtin_mount(type, dest)) continue;
    if (type && (strcmp(type, "cgroup") == 0 || strcmp(type, "cgroup2") == 0)) {
      /* The container's own cgroup (v2: its directory; v1: each
       * hierarchy's directory of the system under a tmpfs). */
      json_t *e = json_pack("{s:s,s:s,s:[]}", "Destination", dest, "Type", "cgroup", "Options"), *eo;
      eo = json_object_get(e, "Options");
      bool rw = false;
      json_array_foreach(opts, k, o) {
        const char *os = json_string_value(o);
        rw |= strcmp(os, "rw") == 0;
        if (strcmp(os, "ro") && strcmp(os, "rw") && strcmp(os, "nosuid") && strcmp(os, "nodev") &&
            strcmp(os, "noexec") && strcmp(os, "relatime") && strcmp(os, "private") && strcmp(os, "rprivate"))
          return hcs_error_make(err, 0, "config.json: `%s.options[%zu]`: \"%s\" is not supported for a cgroup mount", f,
                                k, os);
      }
      json_array_append_new(eo, json_string(rw ? "rw" : "ro"));
      json_array_append_new(out, e);
      continue;
    }
    cleanup_free char *abs_src = NULL;
    if (bind) {
      if (src == NULL || !*src) return hcs_error_make(err, 0, "config.json: `%s.source`: expected a path, missing", f);
      abs_src = src[0] == '/' ? hcs_xstrdup(src) : hcs_xasprintf("%s/%s", bundle, src);
      struct stat st;
      if (stat(abs_src, &st) < 0) return hcs_error_make(err, errno, "config.json: `%s.source`: `%s`", f, abs_src);
    }
    json_t *e = json_pack("{s:s}", "Destination", dest);
    if (type && !bind) json_object_set_new(e, "Type", json_string(type));
    if (abs_src || src) json_object_set_new(e, "Source", json_string(abs_src ? abs_src : src));
    json_t *eo = json_array();
    json_array_foreach(opts, k, o) json_array_append(eo, o);
    if (bind && type && strcmp(type, "bind") == 0) {
      bool has = false;
      json_array_foreach(eo, k, o) if (strstr(json_string_value(o), "bind")) has = true;
      if (!has) json_array_append_new(eo, json_string("bind"));
    }
    json_object_set_new(e, "Options", eo);
    json_array_append_new(out, e);
  }
  return 0;
}

static const struct {
  const char *name;
  int type; /* CLONE_NEW* */
} ns_types[] = {{"pid", CLONE_NEWPID}, {"network", CLONE_NEWNET}, {"mount", CLONE_NEWNS},      {"ipc", CLONE_NEWIPC},
                {"uts", CLONE_NEWUTS}, {"user", CLONE_NEWUSER},   {"cgroup", CLONE_NEWCGROUP}, {"time", 0x00000080}};

static int translate_namespaces(json_t *lnx, json_t *doc, json_t *lx, hcs_error_t *err) {
  json_t *nss = json_object_get(lnx, "namespaces"), *n;
  size_t i;
  int seen = 0;
  if (nss && !json_is_null(nss) && !json_is_array(nss)) return expect(err, "linux.namespaces", "an array");
  json_array_foreach(nss, i, n) {
    const char *type = json_string_value(json_object_get(n, "type"));
    const char *path = json_string_value(json_object_get(n, "path"));
    int t = -1;
    for (size_t k = 0; type && k < HCS_ARRAY_SIZE(ns_types); k++)
      if (strcmp(ns_types[k].name, type) == 0) t = ns_types[k].type;
    if (t < 0)
      return hcs_error_make(err, 0, "config.json: `linux.namespaces[%zu].type`: unknown namespace type \"%s\"", i,
                            type ? type : "(missing)");
    if (seen & t)
      return hcs_error_make(err, 0, "config.json: `linux.namespaces[%zu]`: namespace \"%s\" given twice", i, type);
    seen |= t;
    if (t == 0x00000080 && !(path && *path))
      return hcs_error_make(err, 0,
                            "config.json: `linux.namespaces[%zu]`: a new time namespace is not supported (join one "
                            "by path)",
                            i);
    if (path && *path) {
      if (path[0] != '/')
        return hcs_error_make(
            err, 0, "config.json: `linux.namespaces[%zu].path`: expected an absolute path, got \"%s\"", i, path);
      /* The file must be a namespace of that type: checked on the fd
       * here, so a wrong path names its config.json field. */
      if (t == 0x00000080 && access("/proc/self/ns/time", F_OK) < 0)
        return hcs_error_make(err, 0, "config.json: `linux.namespaces[%zu]`: this kernel has no time namespaces", i);
      cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      int got = 0;
      if (fd < 0) return hcs_error_make(err, errno, "config.json: `linux.namespaces[%zu].path`: `%s`", i, path);
      if (hcs_ns_check(fd, t, &got) < 0) {
        const char *gname = "another";
        for (size_t k = 0; k < HCS_ARRAY_SIZE(ns_types); k++)
          if (ns_types[k].type == got) gname = ns_types[k].name;
        if (errno == ENOTTY)
          return hcs_error_make(err, 0,
                                "config.json: `linux.namespaces[%zu].path`: `%s` is a %s namespace (expected %s)", i,
                                path, gname, type);
        return hcs_error_make(err, 0, "config.json: `linux.namespaces[%zu].path`: `%s` is not a namespace file (nsfs)",
                              i, path);
      }
      if (t == CLONE_NEWUSER)
        return hcs_error_make(err, 0,
                              "config.json: `linux.namespaces[%zu].path`: joining an existing user namespace is not "
                              "supported by hcs",
                              i);
      if (t == CLONE_NEWNET) {
        json_t *ct = json_object_get(doc, "Container");
        json_object_set_new(ct, "Networking", json_pack("{s:s}", "Namespace", path));
        continue;
      }
      json_t *nso = json_object_get(lx, "Namespaces");
      if (nso == NULL) json_object_set_new(lx, "Namespaces", nso = json_object());
      char field[16];
      snprintf(field, sizeof field, "%s", type);
      field[0] = (char)(field[0] - 32);
      json_object_set_new(nso, strcmp(type, "mount") == 0 ? "Mount" : field, json_string(path));
    }
  }
  static const int required[] = {CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUTS};
  for (size_t k = 0; k < HCS_ARRAY_SIZE(required); k++)
    if (!(seen & required[k])) {
      const char *name = "";
      for (size_t j = 0; j < HCS_ARRAY_SIZE(ns_types); j++)
        if (ns_types[j].type == required[k]) name = ns_types[j].name;
      return hcs_error_make(err, 0,
                            "config.json: `linux.namespaces`: no \"%s\" entry: sharing the host's %s namespace is not "
                            "supported",
                            name, name);
    }
  static const char *const maps[][2] = {{"uidMappings", "UidMappings"}, {"gidMappings", "GidMappings"}};
  for (size_t k = 0; k < 2; k++) {
    json_t *arr = json_object_get(lnx, maps[k][0]), *e;
    if (arr == NULL || json_is_null(arr) || json_array_size(arr) == 0) continue;
    if (!(seen & CLONE_NEWUSER))
      return hcs_error_make(err, 0, "config.json: `linux.%s`: given without a \"user\" namespace", maps[k][0]);
    json_t *out = json_array();
    json_object_set_new(lx, maps[k][1], out);
    json_array_foreach(arr, i, e) {
      json_t *c = json_object_get(e, "containerID"), *h = json_object_get(e, "hostID"), *s = json_object_get(e, "size");
      if (!json_is_integer(c) || !json_is_integer(h) || !json_is_integer(s))
        return hcs_error_make(err, 0, "config.json: `linux.%s[%zu]`: expected integers containerID, hostID, size",
                              maps[k][0], i);
      json_array_append_new(out, json_pack("{s:O,s:O,s:O}", "ContainerId", c, "HostId", h, "Size", s));
    }
  }
  if ((seen & CLONE_NEWUSER) && !json_object_get(lx, "UidMappings"))
    return hcs_error_make(err, 0, "config.json: `linux.uidMappings`: a \"user\" namespace needs uid and gid mappings");
  return 0;
}

/* "slice:prefix:name" (systemd) or a path; the system's cgroup is always
 * <parent>/<id>, so the last element names nothing hcs uses. */
static int translate_cgroups_path(const char *cp, json_t *lx, hcs_error_t *err) {
  cleanup_free char *parent = NULL;
  const char *colon = strchr(cp, ':');
  if (colon && cp[0] != '/') {
    cleanup_free char *slice = strndup(cp, (size_t)(colon - cp));
    if (!*slice) slice = (free(slice), hcs_xstrdup("system.slice"));
    if (strstr(slice, "/") || strlen(slice) < 7 || strcmp(slice + strlen(slice) - 6, ".slice"))
      return hcs_error_make(err, 0, "config.json: `linux.cgroupsPath`: expected \"name.slice:prefix:name\", got \"%s\"",
                            cp);
    /* a-b.slice lives in a.slice/a-b.slice */
    size_t cap = strlen(slice) * strlen(slice) + 16;
    parent = hcs_xcalloc(1, cap);
    for (char *d = strchr(slice, '-'); d; d = strchr(d + 1, '-')) {
      if (*parent) strcat(parent, "/");
      strncat(parent, slice, (size_t)(d - slice));
      strcat(parent, ".slice");
    }
    if (*parent) strcat(parent, "/");
    strcat(parent, slice);
  } else {
    while (*cp == '/')
      cp++;
    const char *slash = strrchr(cp, '/');
    parent = slash ? strndup(cp, (size_t)(slash - cp)) : hcs_xstrdup("");
  }
  if (*parent) {
    if (strstr(parent, "..") ||
        strspn(parent, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/:@") != strlen(parent))
      return hcs_error_make(err, 0, "config.json: `linux.cgroupsPath`: invalid cgroup path \"%s\"", parent);
    json_object_set_new(lx, "CgroupParent", json_string(parent));
  }
  return 0;
}

/* The device nodes every container may use (runc's AllowedDevices): the
 * spec's rules come first, so a deny-all there must not remove these. */
static const char *const default_allow[][4] = {
    {"c", "-1", "-1", "m"}, {"b", "-1", "-1", "m"}, {"c", "1", "3", "rwm"},    {"c", "1", "5", "rwm"},
    {"c", "1", "7", "rwm"}, {"c", "1", "8", "rwm"}, {"c", "1", "9", "rwm"},    {"c", "5", "0", "rwm"},
    {"c", "5", "1", "rwm"}, {"c", "5", "2", "rwm"}, {"c", "136", "-1", "rwm"}, {"c", "10", "200", "rwm"}};

static int translate_resources(json_t *res, json_t *doc, json_t *lx, hcs_error_t *err) {
  if (res == NULL || json_is_null(res)) return 0;
  if (!json_is_object(res)) return expect(err, "linux.resources", "an object");
  json_t *ct = json_object_get(doc, "Container");
  const char *key;
  json_t *v;
  json_object_foreach(res, key, v) {
    if (strcmp(key, "devices") && strcmp(key, "memory") && strcmp(key, "cpu") && strcmp(key, "pids") &&
        !json_is_null(v) && !(json_is_object(v) && json_object_size(v) == 0) &&
        !(json_is_array(v) && json_array_size(v) == 0))
      return hcs_error_make(err, 0, "config.json: `linux.resources.%s`: not supported by hcs", key);
  }
  json_t *mem = json_object_get(res, "memory");
  if (json_is_object(mem)) {
    json_object_foreach(mem, key, v) {
      if (strcmp(key, "limit") && strcmp(key, "swap") && strcmp(key, "reservation") &&
          strcmp(key, "disableOOMKiller") && strcmp(key, "useHierarchy") && strcmp(key, "checkBeforeUpdate"))
        return hcs_error_make(err, 0, "config.json: `linux.resources.memory.%s`: not supported by hcs", key);
    }
    json_t *l = json_object_get(mem, "limit");
    if (l && !json_is_integer(l)) return expect(err, "linux.resources.memory.limit", "an integer");
    if (json_integer_value(l) > 0) {
      json_int_t mb = (json_integer_value(l) + (1 << 20) - 1) >> 20;
      json_object_set_new(ct, "Memory", json_pack("{s:I}", "SizeInMB", mb < 4 ? 4 : mb));
    }
  }
  json_t *cpu = json_object_get(res, "cpu");
  if (json_is_object(cpu)) {
    json_t *proc = json_object();
    json_object_set_new(ct, "Processor", proc);
    json_object_foreach(cpu, key, v) {
      if (strcmp(key, "shares") && strcmp(key, "quota") && strcmp(key, "period") && strcmp(key, "cpus") &&
          strcmp(key, "mems") && !json_is_null(v) && !(json_is_string(v) && !*json_string_value(v)))
        return hcs_error_make(err, 0, "config.json: `linux.resources.cpu.%s`: not supported by hcs", key);
    }
    json_int_t shares = json_integer_value(json_object_get(cpu, "shares"));
    if (shares > 0) {
      json_int_t w = shares * 100 / 1024;
      json_object_set_new(proc, "Weight", json_integer(w < 1 ? 1 : w > 10000 ? 10000 : w));
    }
    json_int_t quota = json_integer_value(json_object_get(cpu, "quota"));
    json_int_t period = json_integer_value(json_object_get(cpu, "period"));
    if (quota > 0) {
      if (period <= 0) period = 100000;
      json_int_t max = quota * 10000 / (period * hcs_cgroup_host_cpus());
      json_object_set_new(proc, "Maximum", json_integer(max < 1 ? 1 : max > 10000 ? 10000 : max));
    }
    const char *cpus = json_string_value(json_object_get(cpu, "cpus"));
    if (cpus && *cpus) {
      int n = 0;
      if (strcmp(cpus, "0") == 0)
        n = 1;
      else if (sscanf(cpus, "0-%d", &n) == 1 && n >= 1)
        n++;
      else
        return hcs_error_make(
            err, 0, "config.json: `linux.resources.cpu.cpus`: only \"0\" or \"0-N\" is supported, got \"%s\"", cpus);
      json_object_set_new(proc, "Count", json_integer(n));
    }
    const char *mems = json_string_value(json_object_get(cpu, "mems"));
    if (mems && *mems) return hcs_error_make(err, 0, "config.json: `linux.resources.cpu.mems`: not supported by hcs");
  }
  json_int_t pids = json_integer_value(json_object_get(json_object_get(res, "pids"), "limit"));
  if (pids > 0) json_object_set_new(lx, "PidsLimit", json_integer(pids));
  json_t *devs = json_object_get(res, "devices"), *d;
  size_t i;
  if (devs && !json_is_null(devs)) {
    if (!json_is_array(devs)) return expect(err, "linux.resources.devices", "an array");
    json_t *out = json_array();
    json_object_set_new(lx, "Devices", out);
    json_array_foreach(devs, i, d) {
      json_t *allow = json_object_get(d, "allow");
      const char *type = json_string_value(json_object_get(d, "type"));
      const char *access = json_string_value(json_object_get(d, "access"));
      if (!json_is_boolean(allow))
        return hcs_error_make(err, 0, "config.json: `linux.resources.devices[%zu].allow`: expected a boolean", i);
      json_t *r = json_pack("{s:b,s:s}", "Allow", json_is_true(allow), "Type", type && *type ? type : "a");
      if (access && *access) json_object_set_new(r, "Access", json_string(access));
      json_t *maj = json_object_get(d, "major"), *min = json_object_get(d, "minor");
      if (json_is_integer(maj) && json_integer_value(maj) >= 0) json_object_set(r, "Major", maj);
      if (json_is_integer(min) && json_integer_value(min) >= 0) json_object_set(r, "Minor", min);
      json_array_append_new(out, r);
    }
    for (size_t k = 0; k < HCS_ARRAY_SIZE(default_allow); k++) {
      json_t *r = json_pack("{s:b,s:s,s:s}", "Allow", 1, "Type", default_allow[k][0], "Access", default_allow[k][3]);
      if (atoi(default_allow[k][1]) >= 0) json_object_set_new(r, "Major", json_integer(atoi(default_allow[k][1])));
      if (atoi(default_allow[k][2]) >= 0) json_object_set_new(r, "Minor", json_integer(atoi(default_allow[k][2])));
      json_array_append_new(out, r);
    }
  }
  return 0;
}

static const char *const seccomp_actions[] = {"SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                              "SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",        "SCMP_ACT_TRACE",
                                              "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",          "SCMP_ACT_NOTIFY"};

/* The profile is compiled at create (seccomp.c) into Linux.Seccomp.
 * ProgramFile; what no program can express is refused here. */
static int translate_seccomp(json_t *sc, json_t *lx, hcs_error_t *err) {
  if (sc == NULL || json_is_null(sc)) {
    json_object_set_new(lx, "Seccomp", json_pack("{s:b}", "Disabled", 1));
    return 0;
  }
  if (!json_is_object(sc)) return expect(err, "linux.seccomp", "an object");
  const char *def = json_string_value(json_object_get(sc, "defaultAction"));
  bool known = false;
  for (size_t k = 0; def && k < HCS_ARRAY_SIZE(seccomp_actions); k++)
    if (strcmp(def, seccomp_actions[k]) == 0) known = true;
  if (!known)
    return hcs_error_make(err, 0, "config.json: `linux.seccomp.defaultAction`: unknown action \"%s\"",
                          def ? def : "(missing)");
  json_t *lpv = json_object_get(sc, "listenerPath"), *lmv = json_object_get(sc, "listenerMetadata");
  if (lpv && !json_is_null(lpv) && !json_is_string(lpv)) return expect(err, "linux.seccomp.listenerPath", "a path");
  if (lmv && !json_is_null(lmv) && !json_is_string(lmv))
    return expect(err, "linux.seccomp.listenerMetadata", "a string");
  const char *lp = json_string_value(lpv);
  if (lp && *lp && lp[0] != '/')
    return hcs_error_make(err, 0, "config.json: `linux.seccomp.listenerPath`: expected an absolute path, got \"%s\"",
                          lp);
  /* Init's own syscalls between the filter's load and its execve would
   * wait for an agent that has no listener yet. */
  if (strcmp(def, "SCMP_ACT_NOTIFY") == 0)
    return hcs_error_make(err, 0,
                          "config.json: `linux.seccomp.defaultAction`: SCMP_ACT_NOTIFY cannot be the default action");
  json_t *calls = json_object_get(sc, "syscalls"), *c;
  size_t i;
  bool notify = false;
  if (calls && !json_is_null(calls) && !json_is_array(calls)) return expect(err, "linux.seccomp.syscalls", "an array");
  json_array_foreach(calls, i, c) {
    const char *act = json_string_value(json_object_get(c, "action"));
    known = false;
    for (size_t k = 0; act && k < HCS_ARRAY_SIZE(seccomp_actions); k++)
      if (strcmp(act, seccomp_actions[k]) == 0) known = true;
    if (!known)
      return hcs_error_make(err, 0, "config.json: `linux.seccomp.syscalls[%zu].action`: unknown action \"%s\"", i,
                            act ? act : "(missing)");
    if (strcmp(act, "SCMP_ACT_NOTIFY")) continue;
    notify = true;
    json_t *nm;
    size_t k;
    /* Init hands its listener over with sendmsg after the load (runc
     * refuses write for the same reason). */
    json_array_foreach(json_object_get(c, "names"), k, nm) {
      const char *name = json_string_value(nm);
      if (name && (strcmp(name, "sendmsg") == 0 || strcmp(name, "write") == 0))
        return hcs_error_make(err, 0,
                              "config.json: `linux.seccomp.syscalls[%zu].names[%zu]`: SCMP_ACT_NOTIFY cannot be used "
                              "for \"%s\"",
                              i, k, name);
    }
  }
  if (notify && !(lp && *lp))
    return hcs_error_make(
        err, 0, "config.json: `linux.seccomp.listenerPath`: expected a socket path for SCMP_ACT_NOTIFY, missing");
  (void)lx;
  return 0;
}

static int translate_linux(json_t *spec, json_t *doc, json_t *lx, hcs_error_t *err) {
  json_t *lnx = json_object_get(spec, "linux");
  if (lnx == NULL || json_is_null(lnx)) return expect(err, "linux", "an object (hcs runs Linux containers)");
  if (!json_is_object(lnx)) return expect(err, "linux", "an object");
  const char *key;
  json_t *v;
  json_object_foreach(lnx, key, v) {
    static const char *const unsupported[] = {"intelRdt", "timeOffsets", "memoryPolicy", "netDevices"};
    for (size_t k = 0; k < HCS_ARRAY_SIZE(unsupported); k++)
      if (strcmp(key, unsupported[k]) == 0 && !json_is_null(v))
        return hcs_error_make(err, 0, "config.json: `linux.%s`: not supported by hcs", key);
  }
  if (translate_namespaces(lnx, doc, lx, err) < 0) return -1;
  const char *cp = NULL;
  if (opt_str(lnx, "cgroupsPath", "linux.cgroupsPath", &cp, err) < 0) return -1;
  if (cp && *cp && translate_cgroups_path(cp, lx, err) < 0) return -1;
  if (translate_resources(json_object_get(lnx, "resources"), doc, lx, err) < 0) return -1;
  if (translate_seccomp(json_object_get(lnx, "seccomp"), lx, err) < 0) return -1;
  json_t *devs = json_object_get(lnx, "devices"), *d;
  size_t i;
  json_array_foreach(devs, i, d) {
    const char *path = json_string_value(json_object_get(d, "path"));
    static const char *const made[] = {"/dev/null",   "/dev/zero",    "/dev/full",
                                       "/dev/random", "/dev/urandom", "/dev/tty"};
    bool ok = false;
    for (size_t k = 0; path && k < HCS_ARRAY_SIZE(made); k++)
      if (strcmp(path, made[k]) == 0) ok = true;
    if (!ok)
      return hcs_error_make(err, 0,
                            "config.json: `linux.devices[%zu]`: creating the device node `%s` is not supported by hcs",
                            i, path ? path : "(no path)");
  }
  json_t *sysctl = json_object_get(lnx, "sysctl");
  if (json_is_object(sysctl) && json_object_size(sysctl)) json_object_set(lx, "Sysctl", sysctl);
  static const char *const lists[][2] = {{"maskedPaths", "MaskedPaths"}, {"readonlyPaths", "ReadonlyPaths"}};
  for (size_t k = 0; k < 2; k++) {
    json_t *a = json_object_get(lnx, lists[k][0]), *e;
    if (a == NULL || json_is_null(a)) continue;
    cleanup_free char *f = hcs_xasprintf("linux.%s", lists[k][0]);
    if (!json_is_array(a)) return expect(err, f, "an array of absolute paths");
    json_array_foreach(a, i, e) if (!json_is_string(e) || json_string_value(e)[0] != '/') return hcs_error_make(
        err, 0, "config.json: `%s[%zu]`: expected an absolute path", f, i);
    json_object_set(lx, lists[k][1], a);
  }
  const char *prop = NULL;
  if (opt_str(lnx, "rootfsPropagation", "linux.rootfsPropagation", &prop, err) < 0) return -1;
  if (prop && *prop && strcmp(prop, "private") && strcmp(prop, "rprivate") && strcmp(prop, "slave") &&
      strcmp(prop, "rslave"))
    return hcs_error_make(
        err, 0, "config.json: `linux.rootfsPropagation`: \"%s\" is not supported (hcs makes the root a slave)", prop);
  json_t *pers = json_object_get(lnx, "personality");
  if (pers && !json_is_null(pers)) {
    const char *dom = json_string_value(json_object_get(pers, "domain"));
    if (dom == NULL || strcmp(dom, "LINUX"))
      return hcs_error_make(err, 0, "config.json: `linux.personality.domain`: only \"LINUX\" is supported, got \"%s\"",
                            dom ? dom : "(missing)");
  }
  const char *label = NULL;
  if (opt_str(lnx, "mountLabel", "linux.mountLabel", &label, err) < 0) return -1;
  if (label && *label) return hcs_error_make(err, 0, "config.json: `linux.mountLabel`: this host has no SELinux");
  return 0;
}

json_t *rt_translate(json_t *spec, const char *bundle, const char *id, hcs_error_t *err) {
  if (!json_is_object(spec)) {
    hcs_error_make(err, 0, "config.json: expected an object");
    return NULL;
  }
  const char *ver = json_string_value(json_object_get(spec, "ociVersion"));
  if (ver == NULL) {
    hcs_error_make(err, 0, "config.json: `ociVersion`: expected a version string, missing");
    return NULL;
  }
  if (strncmp(ver, "1.", 2) != 0) {
    hcs_error_make(err, 0, "config.json: `ociVersion`: unsupported version \"%s\" (expected 1.x)", ver);
    return NULL;
  }
  json_t *root = json_object_get(spec, "root");
  const char *rp = json_string_value(json_object_get(root, "path"));
  if (!json_is_object(root) || rp == NULL || !*rp) {
    hcs_error_make(err, 0, "config.json: `root.path`: expected a path, missing");
    return NULL;
  }
  cleanup_free char *joined = rp[0] == '/' ? hcs_xstrdup(rp) : hcs_xasprintf("%s/%s", bundle, rp);
  char real[PATH_MAX];
  struct stat st;
  if (realpath(joined, real) == NULL || stat(real, &st) < 0) {
    hcs_error_make(err, errno, "config.json: `root.path`: `%s`", joined);
    return NULL;
  }
  if (!S_ISDIR(st.st_mode)) {
    hcs_error_make(err, 0, "config.json: `root.path`: `%s` is not a directory", joined);
    return NULL;
  }
  cleanup_json json_t *doc =
      json_pack("{s:s,s:{s:i,s:i},s:{s:{s:s}},s:{s:b}}", "Owner", "hcs-runtime", "SchemaVersion", "Major", 2, "Minor",
                1, "Container", "Storage", "Path", real, "Linux", "CallerReapsInit", 1);
  json_t *ct = json_object_get(doc, "Container"), *lx = json_object_get(doc, "Linux");
  json_t *ro = json_object_get(root, "readonly");
  if (ro && !json_is_boolean(ro) && !json_is_null(ro)) {
    expect(err, "root.readonly", "a boolean");
    return NULL;
  }
  if (json_is_true(ro)) json_object_set_new(lx, "ReadonlyRootfs", json_true());
  const char *hn = NULL, *dn = NULL;
  if (opt_str(spec, "hostname", "hostname", &hn, err) < 0 || opt_str(spec, "domainname", "domainname", &dn, err) < 0)
    return NULL;
  json_object_set_new(ct, "GuestOs", json_pack("{s:s}", "HostName", hn && *hn ? hn : id));
  bool uts_joined = false;
  json_t *nsl = json_object_get(json_object_get(spec, "linux"), "namespaces"), *nse;
  size_t nsi;
  json_array_foreach(nsl, nsi, nse) {
    const char *np = json_string_value(json_object_get(nse, "path"));
    if (np && *np && json_string_value(json_object_get(nse, "type")) &&
        strcmp(json_string_value(json_object_get(nse, "type")), "uts") == 0)
      uts_joined = true;
  }
  /* A joined uts namespace keeps its host name unless one is given. */
  if (uts_joined && !(hn && *hn)) json_object_del(ct, "GuestOs");
  json_t *proc = json_object_get(spec, "process");
  if (proc == NULL || json_is_null(proc)) {
    hcs_error_make(err, 0, "config.json: `process`: expected an object, missing (needed to start the container)");
    return NULL;
  }
  json_t *init = rt_translate_process(proc, "process", err);
  if (init == NULL) return NULL;
  json_object_set_new(lx, "Init", init);
  json_t *oom = json_object_get(proc, "oomScoreAdj");
  if (oom && !json_is_null(oom) &&
      (!json_is_integer(oom) || json_integer_value(oom) < -1000 || json_integer_value(oom) > 1000)) {
    expect(err, "process.oomScoreAdj", "an integer in [-1000, 1000]");
    return NULL;
  }
  if (translate_process_security(proc, lx, err) < 0 || translate_linux(spec, doc, lx, err) < 0 ||
      translate_mounts(spec, bundle, lx, err) < 0)
    return NULL;
  if (dn && *dn) {
    json_t *sys = json_object_get(lx, "Sysctl");
    if (sys == NULL) json_object_set_new(lx, "Sysctl", sys = json_object());
    json_object_set_new(sys, "kernel.domainname", json_string(dn));
  }
  json_t *hooks = json_object_get(spec, "hooks");
  if (hooks && !json_is_null(hooks)) {
    if (!json_is_object(hooks)) {
      expect(err, "hooks", "an object");
      return NULL;
    }
    const char *name;
    json_t *list, *h;
    size_t i;
    json_object_foreach(hooks, name, list) {
      static const char *const known[] = {"prestart",       "createRuntime", "createContainer",
                                          "startContainer", "poststart",     "poststop"};
      bool ok = false;
      for (size_t k = 0; k < HCS_ARRAY_SIZE(known); k++)
        if (strcmp(known[k], name) == 0) ok = true;
      if (!ok) {
        hcs_error_make(err, 0, "config.json: `hooks.%s`: unknown hook", name);
        return NULL;
      }
      if (!json_is_array(list)) {
        cleanup_free char *f = hcs_xasprintf("hooks.%s", name);
        expect(err, f, "an array");
        return NULL;
      }
      json_array_foreach(list, i, h) {
        const char *path = json_string_value(json_object_get(h, "path"));
        if (path == NULL || path[0] != '/') {
          hcs_error_make(err, 0, "config.json: `hooks.%s[%zu].path`: expected an absolute path", name, i);
          return NULL;
        }
        json_t *t = json_object_get(h, "timeout");
        if (t && !json_is_null(t) && (!json_is_integer(t) || json_integer_value(t) <= 0)) {
          hcs_error_make(err, 0, "config.json: `hooks.%s[%zu].timeout`: expected a positive integer", name, i);
          return NULL;
        }
      }
    }
  }
  return steal_ptr(doc);
}

int rt_parse_signal(const char *s) {
  static const struct {
    const char *name;
    int sig;
  } sigs[] = {{"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},     {"TRAP", SIGTRAP},
              {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},   {"FPE", SIGFPE},     {"KILL", SIGKILL},
              {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},     {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},
              {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},   {"STOP", SIGSTOP},
              {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU}, {"URG", SIGURG},     {"XCPU", SIGXCPU},
              {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
              {"POLL", SIGPOLL}, {"PWR", SIGPWR},       {"SYS", SIGSYS}};
  if (s == NULL || !*s) return -1;
  char *end;
  long n = strtol(s, &end, 10);
  if (*end == '\0') return n > 0 && n < _NSIG ? (int)n : -1;
  if (strncasecmp(s, "SIG", 3) == 0) s += 3;
  for (size_t i = 0; i < HCS_ARRAY_SIZE(sigs); i++)
    if (strcasecmp(sigs[i].name, s) == 0) return sigs[i].sig;
  if (strncasecmp(s, "RTMIN", 5) == 0 || strncasecmp(s, "RTMAX", 5) == 0) {
    long off = s[5] ? strtol(s + 5, &end, 10) : 0;
    if (*end) return -1;
    int sig = strncasecmp(s, "RTMIN", 5) == 0 ? SIGRTMIN + (int)off : SIGRTMAX + (int)off;
    return sig >= SIGRTMIN && sig <= SIGRTMAX ? sig : -1;
  }
  return -1;
}
