/* ActivateLayer / DeactivateLayer / GetLayerMountPath / PrepareLayer /
 * UnprepareLayer: the overlay mount of a layer and its chain.
 *
 * The mount is made with the new mount API, one fsconfig("lowerdir+") per
 * layer (Linux 6.8+), so the length of a chain is not bounded by the
 * one-page limit of mount(2) options.  On older kernels (no `lowerdir+`)
 * we fall back to mount(2) with short relative names (`.l/<hash>` symlinks
 * to `<id>/diff`, as containerd does), which fit about 250 layers. */
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "layer/internal.h"
#include "layer/path.h"

/* Append the kernel's fs_context messages (fsopen log) to an error. */
static int fs_error(hcs_error_t *err, int fsfd, int e, const char *what) {
  char log[512] = "";
  size_t used = 0;
  for (int i = 0; i < 8 && fsfd >= 0; i++) {
    char line[256];
    ssize_t n = read(fsfd, line, sizeof line - 1);
    if (n <= 0) break;
    line[n] = '\0';
    int w = snprintf(log + used, sizeof log - used, "%s%s", used ? "; " : " (", line);
    if (w > 0 && (size_t)w < sizeof log - used) used += (size_t)w;
  }
  if (used && used + 1 < sizeof log) strcat(log, ")");
  return hcs_error_make(err, e, "%s%s", what, log);
}

static int mount_new_api(json_t *lowers, const char *upper, const char *work, const char *target, hcs_error_t *err,
                         bool *unsupported) {
  cleanup_close int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fsfd < 0) {
    *unsupported = errno == ENOSYS;
    return hcs_error_make(err, errno, "fsopen overlay");
  }
  size_t i;
  json_t *v;
  fsconfig(fsfd, FSCONFIG_SET_STRING, "source", "hcs", 0);
  json_array_foreach(lowers, i, v) {
    if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", json_string_value(v), 0) < 0) {
      *unsupported = i == 0 && errno == EINVAL;
      cleanup_free char *what = hcs_xasprintf("overlay lowerdir `%s`", json_string_value(v));
      return fs_error(err, fsfd, errno, what);
    }
  }
  if (upper && (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
                fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0))
    return fs_error(err, fsfd, errno, "overlay upperdir/workdir");
  if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) return fs_error(err, fsfd, errno, "create overlay");
  cleanup_close int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, upper ? 0 : MOUNT_ATTR_RDONLY);
  if (mfd < 0) return fs_error(err, fsfd, errno, "fsmount overlay");
  if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return hcs_error_make(err, errno, "mount overlay at `%s`", target);
  return 0;
}

/* `.l/<12 hex>` -> `../<id>/diff`: a short name for mount(2) options, as
 * containerd's overlay snapshotter does with its `l/` directory. */
static char *short_link(hcs_layer_store_t *s, const char *id, hcs_error_t *err) {
  EVP_MD_CTX *md = layer_sha256_new();
  EVP_DigestUpdate(md, id, strlen(id));
  char d[72];
  layer_sha256_final(md, d);
  EVP_MD_CTX_free(md);
  char *name = hcs_xasprintf(LAYER_LINKS "/%.12s", d + 7);
  cleanup_free char *target = hcs_xasprintf("../%s/diff", id);
  if (mkdirat(s->dirfd, LAYER_LINKS, 0700) < 0 && errno != EEXIST) {
    hcs_error_make(err, errno, "mkdir `%s/" LAYER_LINKS "`", s->path);
    free(name);
    return NULL;
  }
  if (symlinkat(target, s->dirfd, name) < 0 && errno != EEXIST) {
    hcs_error_make(err, errno, "symlink `%s/%s`", s->path, name);
    free(name);
    return NULL;
  }
  return name;
}

/* mount(2) with paths relative to the store, in a child that chdir()s there
 * (the working directory is process-wide: never change it in the caller). */
static int mount_legacy(hcs_layer_store_t *s, json_t *lower_ids, const char *id, bool scratch, const char *target,
                        hcs_error_t *err) {
  size_t cap = 4096, n = 0;
  cleanup_free char *opts = hcs_xmalloc(cap);
  n = (size_t)snprintf(opts, cap, "lowerdir=");
  size_t i;
  json_t *v;
  json_array_foreach(lower_ids, i, v) {
    cleanup_free char *p = json_is_null(v) ? hcs_xstrdup(LAYER_EMPTY) : short_link(s, json_string_value(v), err);
    if (p == NULL) return -1;
    size_t k = strlen(p);
    if (n + k + 2 >= cap) opts = hcs_xrealloc(opts, cap = 2 * (n + k + 2));
    if (i) opts[n++] = ':';
    memcpy(opts + n, p, k + 1);
    n += k;
  }
  if (scratch) {
    char *all = hcs_xasprintf("%s,upperdir=%s/diff,workdir=%s/work", opts, id, id);
    free(opts);
    opts = all;
  }
  if (strlen(opts) >= (size_t)sysconf(_SC_PAGESIZE))
    return hcs_error_make(err, E2BIG, "mount overlay at `%s`: a chain of %zu layers does not fit in mount options",
                          target, json_array_size(lower_ids));
  pid_t pid = fork();
  if (pid < 0) return hcs_error_make(err, errno, "fork");
  if (pid == 0) {
    if (fchdir(s->dirfd) < 0 || mount("hcs", target, "overlay", scratch ? 0 : MS_RDONLY, opts) < 0) _exit(errno & 0xff);
    _exit(0);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED(status)) return hcs_error_make(err, 0, "mount overlay at `%s`: helper process died", target);
  if (WEXITSTATUS(status)) return hcs_error_make(err, WEXITSTATUS(status), "mount overlay at `%s`", target);
  return 0;
}

/* *where gets the mount path (malloc'd) on success */
static int activate(hcs_layer_store_t *s, const char *id, const char *mount_path, char **where, hcs_error_t *err) {
  cleanup_close int lk = layer_store_lock(s, false, err);
  if (lk < 0) return -1;
  cleanup_json json_t *m = layer_meta_load(s, id, err);
  if (m == NULL) return hcs_error_wrap(err, "activate layer");
  cleanup_free char *dir = layer_dir(s, id);
  cleanup_free char *target = mount_path ? hcs_xstrdup(mount_path) : layer_default_mount(s, id);
  cleanup_json json_t *st = layer_state_load(s, id);
  const char *cur = json_string_value(json_object_get(st, "MountPath"));
  if (cur && layer_is_mountpoint(cur)) {
    if (strcmp(cur, target) == 0) {
      *where = steal_ptr(target);
      return 0;
    }
    return hcs_error_make(err, EBUSY, "activate layer `%s`: already activated at `%s`", id, cur);
  }
  if (target[0] != '/')
    return hcs_error_make(err, 0, "activate layer `%s`: mount path `%s` is not absolute", id, target);
  bool scratch = strcmp(json_string_value(json_object_get(m, "Kind")) ?: "", "scratch") == 0;
  cleanup_json json_t *lowers = json_array();
  cleanup_json json_t *lower_ids = json_array(); /* null: the empty dir */
  cleanup_free char *upper = NULL, *work = NULL;
  if (scratch) {
    upper = hcs_xasprintf("%s/diff", dir);
    work = hcs_xasprintf("%s/work", dir);
  } else {
    cleanup_free char *own = hcs_xasprintf("%s/diff", dir);
    json_array_append_new(lowers, json_string(own));
    json_array_append_new(lower_ids, json_string(id));
  }
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(m, "Parents"), i, v) {
    /* a missing parent fails its fsconfig, whose error names it (checked
     * here only for mount(2) below): no access() per layer of a chain */
    cleanup_free char *p = hcs_xasprintf("%s/%s/diff", s->path, json_string_value(v));
    json_array_append_new(lowers, json_string(p));
    json_array_append(lower_ids, v);
  }
  /* overlay wants a lower layer, and two when there is no upper */
  if (json_array_size(lowers) < (scratch ? 1u : 2u)) {
    cleanup_free char *empty = hcs_xasprintf("%s/" LAYER_EMPTY, s->path);
    json_array_append_new(lowers, json_string(empty));
    json_array_append_new(lower_ids, json_null());
  }
  if (hcs_mkdir_p(target, 0755, err) < 0) return hcs_error_wrap(err, "activate layer `%s`", id);
  /* HCS_LAYER_MOUNT=legacy forces mount(2) (tests, and kernels whose
   * fsconfig misbehaves) */
  const char *mode = getenv("HCS_LAYER_MOUNT");
  bool unsupported = mode && strcmp(mode, "legacy") == 0;
  if (!unsupported && mount_new_api(lowers, upper, work, target, err, &unsupported) < 0) {
    if (!unsupported) return hcs_error_wrap(err, "activate layer `%s`", id);
    hcs_error_release(err);
  }
  if (unsupported) {
    json_array_foreach(lowers, i, v) {
      if (access(json_string_value(v), F_OK) < 0)
        return hcs_error_make(err, errno, "activate layer `%s`: overlay lowerdir `%s`", id, json_string_value(v));
    }
    if (mount_legacy(s, lower_ids, id, scratch, target, err) < 0) return hcs_error_wrap(err, "activate layer `%s`", id);
  }
  json_object_clear(st);
  json_object_set_new(st, "MountPath", json_string(target));
  if (layer_state_save(s, id, st, err) < 0) {
    umount2(target, MNT_DETACH);
    return hcs_error_wrap(err, "activate layer `%s`", id);
  }
  *where = steal_ptr(target);
  return 0;
}

int hcs_layer_activate(hcs_layer_store_t *s, const char *id, const char *mount_path, hcs_error_t *err) {
  cleanup_free char *where = NULL;
  return activate(s, id, mount_path, &where, err);
}

char *hcs_layer_activate_path(hcs_layer_store_t *s, const char *id, const char *mount_path, hcs_error_t *err) {
  char *where = NULL;
  return activate(s, id, mount_path, &where, err) < 0 ? NULL : where;
}

int hcs_layer_deactivate(hcs_layer_store_t *s, const char *id, hcs_error_t *err) {
  cleanup_close int lk = layer_store_lock(s, false, err);
  if (lk < 0) return -1;
  cleanup_json json_t *m = layer_meta_load(s, id, err);
  if (m == NULL) return hcs_error_wrap(err, "deactivate layer");
  cleanup_json json_t *st = layer_state_load(s, id);
  const char *mp = json_string_value(json_object_get(st, "MountPath"));
  if (mp == NULL) return 0;
  if (layer_is_mountpoint(mp) && umount2(mp, UMOUNT_NOFOLLOW) < 0)
    return hcs_error_make(err, errno, "deactivate layer `%s`: unmount `%s`", id, mp);
  json_object_clear(st);
  return layer_state_save(s, id, st, err);
}

char *hcs_layer_get_mount_path(hcs_layer_store_t *s, const char *id, hcs_error_t *err) {
  cleanup_close int lk = layer_store_lock(s, true, err);
  if (lk < 0) return NULL;
  cleanup_json json_t *m = layer_meta_load(s, id, err);
  if (m == NULL) return NULL;
  cleanup_json json_t *st = layer_state_load(s, id);
  const char *mp = json_string_value(json_object_get(st, "MountPath"));
  if (mp == NULL || !layer_is_mountpoint(mp)) {
    hcs_error_make(err, 0, "layer `%s` is not activated", id);
    return NULL;
  }
  return hcs_xstrdup(mp);
}

static const char *const skeleton[] = {"proc", "sys", "dev", "dev/pts", "dev/shm", "dev/mqueue", "etc", "tmp"};

static int check_abs_clean(const char *what, const char *p, hcs_error_t *err) {
  if (p == NULL || p[0] != '/') return hcs_error_make(err, 0, "%s `%s` is not an absolute path", what, p ? p : "");
  cleanup_free char *clean = NULL;
  if (layer_clean_path(p + 1, &clean) < 0) return hcs_error_make(err, 0, "%s `%s` contains `..`", what, p);
  return 0;
}

int hcs_layer_prepare(hcs_layer_store_t *s, const char *id, const char *mapped_json, hcs_error_t *err) {
  cleanup_json json_t *mapped = NULL;
  if (mapped_json) {
    mapped = hcs_json_parse(mapped_json, "mapped directories", err);
    if (mapped == NULL) return hcs_error_wrap(err, "prepare layer `%s`", id);
    if (!json_is_array(mapped))
      return hcs_error_make(err, 0, "prepare layer `%s`: mapped directories: not an array", id);
  }
  cleanup_close int lk = layer_store_lock(s, false, err);
  if (lk < 0) return -1;
  cleanup_json json_t *m = layer_meta_load(s, id, err);
  if (m == NULL) return hcs_error_wrap(err, "prepare layer");
  cleanup_json json_t *st = layer_state_load(s, id);
  const char *mp = json_string_value(json_object_get(st, "MountPath"));
  if (mp == NULL || !layer_is_mountpoint(mp)) return hcs_error_make(err, 0, "prepare layer `%s`: not activated", id);
  if (strcmp(json_string_value(json_object_get(m, "Kind")) ?: "", "scratch") != 0)
    return hcs_error_make(err, 0, "prepare layer `%s`: only a scratch layer can be prepared", id);
  cleanup_close int rootfd = open(mp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return hcs_error_make(err, errno, "prepare layer `%s`: open `%s`", id, mp);
  for (size_t i = 0; i < HCS_ARRAY_SIZE(skeleton); i++) {
    int fd = layer_resolve_dir(rootfd, skeleton[i], true, O_PATH);
    if (fd < 0) return hcs_error_make(err, errno, "prepare layer `%s`: create `/%s`", id, skeleton[i]);
    close(fd);
  }
  size_t i;
  json_t *d;
  json_array_foreach(mapped, i, d) {
    const char *host = json_string_value(json_object_get(d, "HostPath"));
    const char *cont = json_string_value(json_object_get(d, "ContainerPath"));
    if (check_abs_clean("HostPath", host, err) < 0 || check_abs_clean("ContainerPath", cont, err) < 0)
      return hcs_error_wrap(err, "prepare layer `%s`: mapped directory %zu", id, i);
    struct stat hst;
    if (stat(host, &hst) < 0) return hcs_error_make(err, errno, "prepare layer `%s`: mapped directory `%s`", id, host);
    cleanup_free char *rel = NULL;
    layer_clean_path(cont + 1, &rel);
    if (rel[0] == '\0') return hcs_error_make(err, 0, "prepare layer `%s`: cannot map over `/`", id);
    if (S_ISDIR(hst.st_mode)) {
      int fd = layer_resolve_dir(rootfd, rel, true, O_PATH);
      if (fd < 0) return hcs_error_make(err, errno, "prepare layer `%s`: create `%s`", id, cont);
      close(fd);
    } else { /* a file mapping needs a file to mount over */
      char *slash = strrchr(rel, '/');
      const char *base = slash ? slash + 1 : rel;
      if (slash) *slash = '\0';
      cleanup_close int pfd = layer_resolve_dir(rootfd, slash ? rel : "", true, O_PATH);
      cleanup_close int fd = pfd >= 0 ? openat(pfd, base, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644) : -1;
      if (fd < 0) return hcs_error_make(err, errno, "prepare layer `%s`: create `%s`", id, cont);
    }
  }
  json_object_set_new(st, "Prepared", json_true());
  return layer_state_save(s, id, st, err);
}

int hcs_layer_unprepare(hcs_layer_store_t *s, const char *id, hcs_error_t *err) {
  cleanup_close int lk = layer_store_lock(s, false, err);
  if (lk < 0) return -1;
  cleanup_json json_t *m = layer_meta_load(s, id, err);
  if (m == NULL) return hcs_error_wrap(err, "unprepare layer");
  cleanup_json json_t *st = layer_state_load(s, id);
  if (json_object_get(st, "MountPath") == NULL) return 0;
  json_object_del(st, "Prepared");
  return layer_state_save(s, id, st, err);
}
