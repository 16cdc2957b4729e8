/* The layer store: `<root>/layers/<id>/{diff,work,layerchain.json,layer.json}`,
 * its flock, temporary directories and their sweeping, metadata, parent
 * chains, listing, reference counts and destruction. */
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "core/crash.h"
#include "layer/internal.h"

int layer_store_lock(hcs_layer_store_t *s, bool shared, hcs_error_t *err) {
  cleanup_free char *p = hcs_xasprintf("%s/" LAYER_LOCK, s->path);
  return hcs_lock_file(p, shared, err);
}

char *layer_dir(hcs_layer_store_t *s, const char *id) { return hcs_xasprintf("%s/%s", s->path, id); }

int layer_is_mountpoint(const char *path) {
  struct statx stx;
  if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) < 0) return 0;
  return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* Remove what killed imports and destroys left in .tmp: every entry whose
 * `<name>.lock` is not held.  Runs under the exclusive store lock, and
 * temp dirs are only made under the shared one, so no half-made entry is
 * ever seen. */
static int sweep(hcs_layer_store_t *s, hcs_error_t *err) {
  cleanup_free char *tmp = hcs_xasprintf("%s/" LAYER_TMP, s->path);
  cleanup_dir DIR *d = opendir(tmp);
  if (d == NULL) return hcs_error_make(err, errno, "open `%s`", tmp);
  int dfd = dirfd(d);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    size_t n = strlen(de->d_name);
    bool is_lock = n > 5 && strcmp(de->d_name + n - 5, ".lock") == 0;
    cleanup_free char *base = is_lock ? strndup(de->d_name, n - 5) : hcs_xstrdup(de->d_name);
    cleanup_free char *lock = hcs_xasprintf("%s.lock", base);
    cleanup_close int lfd = openat(dfd, lock, O_RDWR | O_CLOEXEC);
    if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) < 0) continue; /* in use */
    if (lfd < 0 && is_lock) continue;                            /* already swept */
    hcs_debug("layer store: removing leftover `%s/%s`", tmp, base);
    if (hcs_rm_rf_at(dfd, base, err) < 0) return hcs_error_wrap(err, "sweep `%s`", tmp);
    if (lfd >= 0) unlinkat(dfd, lock, 0);
  }
  return 0;
}

const char *layer_boot_id(void) {
  static char id[64];
  if (id[0]) return id;
  const char *env = getenv("HCS_BOOT_ID");
  if (env && *env && strlen(env) < sizeof id && hcs_validate_id("boot id", env, NULL) == 0) {
    strcpy(id, env);
    return id;
  }
  FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
  if (f == NULL || fgets(id, sizeof id, f) == NULL) strcpy(id, "unknown");
  if (f) fclose(f);
  id[strcspn(id, "\n")] = '\0';
  return id;
}

/* Is the layer directory `name` debris of a volatile scratch layer made
 * in an earlier boot?  Yes when its layer.json says Volatile with another
 * boot id, or, when a host crash left no readable layer.json (a volatile
 * layer's files were never synced; every other layer's were, before the
 * directory got its name), when it holds nothing but what a scratch layer
 * holds, diff/ and work/ among them.  Anything else is kept. */
static bool stale_volatile(hcs_layer_store_t *s, const char *name) {
  cleanup_free char *meta = hcs_xasprintf("%s/%s/" LAYER_META, s->path, name);
  hcs_error_t e = NULL;
  cleanup_json json_t *m = hcs_json_load_file(meta, &e);
  hcs_error_release(&e);
  if (json_is_object(m)) {
    const char *boot = json_string_value(json_object_get(m, "Volatile"));
    return boot && strcmp(boot, layer_boot_id()) != 0;
  }
  cleanup_close int dfd = openat(s->dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return false;
  cleanup_dir DIR *d = fdopendir(dfd);
  if (d == NULL) return false;
  dfd = -1; /* owned by d */
  int need = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    const char *n = de->d_name;
    if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0) continue;
    if (strcmp(n, "diff") == 0 || strcmp(n, "work") == 0)
      need++;
    else if (strcmp(n, "mount") != 0 && strncmp(n, LAYER_META, strlen(LAYER_META)) != 0 &&
             strncmp(n, LAYER_CHAIN, strlen(LAYER_CHAIN)) != 0)
      return false;
  }
  return need == 2;
}

/* Rename layer directory `name` into .tmp under a fresh name (returned,
 * malloc'd), without creating a placeholder first: one inode less than
 * mkdtemp + rename.  Entries of .tmp without a lock are swept on open. */
static char *rename_away(hcs_layer_store_t *s, const char *name, hcs_error_t *err) {
  cleanup_free char *dir = layer_dir(s, name);
  for (int attempt = 0;; attempt++) {
    char *dst = hcs_xasprintf("%s/" LAYER_TMP "/destroy-%d-%ld-%s", s->path, (int)getpid(), random(), name);
    if (renameat2(AT_FDCWD, dir, AT_FDCWD, dst, RENAME_NOREPLACE) == 0) return dst;
    int e = errno;
    free(dst);
    if (e != EEXIST || attempt >= 8) {
      hcs_error_make(err, e, "rename `%s` away", dir);
      return NULL;
    }
  }
}

/* Once per boot (a marker named after the boot id in the run root):
 * collect what volatile scratch layers of earlier boots left.  Their
 * containers died with the boot, and nothing records them but themselves.
 * The caller holds the exclusive store lock. */
static void collect_volatile(hcs_layer_store_t *s) {
  cleanup_free char *mark = hcs_xasprintf("%s/.volatile-checked-%s", s->run, layer_boot_id());
  if (access(mark, F_OK) == 0) return;
  cleanup_dir DIR *d = opendir(s->path);
  if (d == NULL) return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.' || !stale_volatile(s, de->d_name)) continue;
    hcs_debug("layer store: removing `%s`, a volatile scratch layer of an earlier boot", de->d_name);
    cleanup_error hcs_error_t e = NULL;
    cleanup_free char *gone = rename_away(s, de->d_name, &e);
    if (gone == NULL || hcs_rm_rf(gone, &e) < 0)
      hcs_warning("remove volatile layer `%s`: %s", de->d_name, hcs_error_message(e));
  }
  cleanup_close int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
}

hcs_layer_store_t *hcs_layer_store_open(const char *root, hcs_error_t *err) {
  cleanup_free char *r = hcs_root_resolve(root);
  cleanup_free char *path = hcs_xasprintf("%s/layers", r);
  cleanup_free char *tmp = hcs_xasprintf("%s/" LAYER_TMP, path);
  cleanup_free char *empty = hcs_xasprintf("%s/" LAYER_EMPTY, path);
  cleanup_free char *run_root = hcs_run_root_resolve(root);
  cleanup_free char *run = hcs_xasprintf("%s/layers", run_root);
  if (hcs_mkdir_p(tmp, 0700, err) < 0 || hcs_mkdir_p(empty, 0755, err) < 0 || hcs_mkdir_p(run, 0700, err) < 0) {
    hcs_error_wrap(err, "open layer store `%s`", path);
    return NULL;
  }
  hcs_layer_store_t *s = hcs_xcalloc(1, sizeof *s);
  s->root = steal_ptr(r);
  s->path = steal_ptr(path);
  s->run = steal_ptr(run);
  s->dirfd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->dirfd < 0) {
    hcs_error_make(err, errno, "open layer store `%s`", s->path);
    hcs_layer_store_close(s);
    return NULL;
  }
  cleanup_close int lk = layer_store_lock(s, false, err);
  if (lk < 0 || layer_recover_commits(s, err) < 0 || sweep(s, err) < 0) {
    hcs_layer_store_close(s);
    return NULL;
  }
  collect_volatile(s);
  return s;
}

void hcs_layer_store_close(hcs_layer_store_t *s) {
  if (s == NULL) return;
  if (s->dirfd >= 0) close(s->dirfd);
  free(s->root);
  free(s->path);
  free(s->run);
  free(s);
}

const char *hcs_layer_store_path(hcs_layer_store_t *s) { return s->path; }

int layer_tmp_make(hcs_layer_store_t *s, const char *what, struct layer_tmp *t, hcs_error_t *err) {
  t->path = NULL;
  t->lockfd = -1;
  cleanup_close int lk = layer_store_lock(s, true, err);
  if (lk < 0) return -1;
  cleanup_free char *tmpl = hcs_xasprintf("%s/" LAYER_TMP "/%s-XXXXXX", s->path, what);
  if (mkdtemp(tmpl) == NULL) return hcs_error_make(err, errno, "create temporary directory in `%s`", s->path);
  cleanup_free char *lock = hcs_xasprintf("%s.lock", tmpl);
  int fd = hcs_lock_file(lock, false, err);
  if (fd < 0) {
    rmdir(tmpl);
    return -1;
  }
  t->path = steal_ptr(tmpl);
  t->lockfd = fd;
  return 0;
}

void layer_tmp_done(struct layer_tmp *t) {
  if (t->path == NULL) return;
  hcs_error_t e = NULL;
  if (hcs_rm_rf(t->path, &e) < 0) {
    hcs_warning("remove `%s`: %s", t->path, hcs_error_message(e)); /* swept on the next open */
    hcs_error_release(&e);
  } else {
    cleanup_free char *lock = hcs_xasprintf("%s.lock", t->path);
    unlink(lock);
  }
  if (t->lockfd >= 0) close(t->lockfd);
  free(t->path);
  t->path = NULL;
  t->lockfd = -1;
}

json_t *layer_meta_load(hcs_layer_store_t *s, const char *id, hcs_error_t *err) {
  if (hcs_validate_id("layer id", id, err) < 0) return NULL;
  cleanup_free char *p = hcs_xasprintf("%s/%s/" LAYER_META, s->path, id);
  if (access(p, F_OK) < 0) {
    hcs_error_make(err, ENOENT, "layer `%s` not found in `%s`", id, s->path);
    return NULL;
  }
  json_t *m = hcs_json_load_file(p, err);
  if (m && !json_is_object(m)) {
    json_decref(m);
    hcs_error_make(err, 0, "`%s`: not a JSON object", p);
    return NULL;
  }
  return m;
}

int layer_meta_save(hcs_layer_store_t *s, const char *id, json_t *meta, hcs_error_t *err) {
  cleanup_free char *p = hcs_xasprintf("%s/%s/" LAYER_META, s->path, id);
  return hcs_json_write_atomic(p, meta, err);
}

/* The runtime state of an activated layer.  A layer mounted at its default
 * path `<dir>/mount` needs no record: the mount itself is the record (a
 * mount root there is ours, and a reboot or a kill can't make the two
 * disagree), so activation writes nothing and a kill between the mount and
 * a state write can't leave an unrecorded mount.  A record is kept only for
 * what can't be derived: a custom mount path, `Prepared`. */
json_t *layer_state_load(hcs_layer_store_t *s, const char *id) {
  cleanup_free char *p = hcs_xasprintf("%s/%s.json", s->run, id);
  hcs_error_t e = NULL;
  json_t *st = access(p, F_OK) == 0 ? hcs_json_load_file(p, &e) : NULL;
  hcs_error_release(&e);
  if (st == NULL || !json_is_object(st)) {
    json_decref(st);
    st = json_object();
    cleanup_free char *mp = layer_default_mount(s, id);
    if (layer_is_mountpoint(mp)) json_object_set_new(st, "MountPath", json_string(mp));
  }
  return st;
}

char *layer_default_mount(hcs_layer_store_t *s, const char *id) { return hcs_xasprintf("%s/%s/mount", s->path, id); }

int layer_state_save(hcs_layer_store_t *s, const char *id, json_t *st, hcs_error_t *err) {
  cleanup_free char *p = hcs_xasprintf("%s/%s.json", s->run, id);
  cleanup_free char *dflt = layer_default_mount(s, id);
  const char *mp = json_string_value(json_object_get(st, "MountPath"));
  /* nothing, or only what the mount at the default path says: no record */
  if (json_object_size(st) == 0 || (json_object_size(st) == 1 && mp && strcmp(mp, dflt) == 0)) {
    if (unlink(p) < 0 && errno != ENOENT) return hcs_error_make(err, errno, "remove `%s`", p);
    return 0;
  }
  cleanup_free char *tmp = hcs_xasprintf("%s.tmp.%d", p, (int)getpid());
  if (json_dump_file(st, tmp, JSON_COMPACT | JSON_SORT_KEYS) < 0) return hcs_error_make(err, errno, "write `%s`", tmp);
  if (rename(tmp, p) < 0) {
    int e = errno;
    unlink(tmp);
    return hcs_error_make(err, e, "rename `%s`", tmp);
  }
  return 0;
}

json_t *layer_resolve_parents(hcs_layer_store_t *s, const char *const *parents, hcs_error_t *err) {
  if (parents == NULL || parents[0] == NULL) return json_array();
  if (hcs_validate_id("parent layer id", parents[0], err) < 0) return NULL;
  if (hcs_layer_exists(s, parents[0], err) == 0) {
    hcs_error_make(err, ENOENT, "unknown parent layer `%s`", parents[0]);
    return NULL;
  }
  cleanup_json json_t *pm = layer_meta_load(s, parents[0], err);
  if (pm == NULL) return NULL;
  const char *kind = json_string_value(json_object_get(pm, "Kind"));
  if (kind && strcmp(kind, "scratch") == 0) {
    hcs_error_make(err, 0, "parent `%s` is a scratch layer (only read-only layers can be parents)", parents[0]);
    return NULL;
  }
  json_t *chain = json_array();
  json_array_append_new(chain, json_string(parents[0]));
  json_t *pp = json_object_get(pm, "Parents");
  size_t i;
  json_t *v;
  json_array_foreach(pp, i, v) json_array_append(chain, v);
  if (parents[1] != NULL) {
    size_t n = 0;
    while (parents[n])
      n++;
    bool same = n == json_array_size(chain);
    for (size_t k = 0; same && k < n; k++)
      same = strcmp(parents[k], json_string_value(json_array_get(chain, k))) == 0;
    if (!same) {
      cleanup_free char *have = hcs_json_dumps(chain);
      json_decref(chain);
      hcs_error_make(err, 0, "parents do not match the chain of `%s` (nearest first): %s", parents[0], have);
      return NULL;
    }
  }
  return chain;
}

int layer_write_chain(hcs_layer_store_t *s, const char *dir, json_t *chain, bool durable, hcs_error_t *err) {
  cleanup_json json_t *paths = json_array();
  size_t i;
  json_t *v;
  json_array_foreach(chain, i, v) {
    cleanup_free char *path = hcs_xasprintf("%s/%s", s->path, json_string_value(v));
    json_array_append_new(paths, json_string(path));
  }
  cleanup_free char *p = hcs_xasprintf("%s/" LAYER_CHAIN, dir);
  return durable ? hcs_json_write_atomic(p, paths, err) : hcs_json_write_replace(p, paths, err);
}

int layer_commit_dir(hcs_layer_store_t *s, const char *tmpdir, const char *id, bool durable, hcs_error_t *err) {
  cleanup_free char *dst = layer_dir(s, id);
  hcs_crash_point("layer store: before a new layer is renamed in");
  if (renameat2(AT_FDCWD, tmpdir, AT_FDCWD, dst, RENAME_NOREPLACE) < 0) {
    if (errno == EEXIST) return hcs_error_make(err, EEXIST, "layer `%s` already exists", id);
    return hcs_error_make(err, errno, "rename `%s` to `%s`", tmpdir, dst);
  }
  return durable ? hcs_fsync_dir(s->path, err) : 0;
}

int hcs_layer_exists(hcs_layer_store_t *s, const char *id, hcs_error_t *err) {
  if (hcs_validate_id("layer id", id, err) < 0) return -1;
  cleanup_free char *p = hcs_xasprintf("%s/%s/" LAYER_META, s->path, id);
  return access(p, F_OK) == 0;
}

/* The inspect document: the metadata plus live facts. */
static json_t *inspect_doc(hcs_layer_store_t *s, const char *id, hcs_error_t *err) {
  json_t *m = layer_meta_load(s, id, err);
  if (m == NULL) return NULL;
  cleanup_free char *dir = layer_dir(s, id);
  cleanup_free char *chainp = hcs_xasprintf("%s/" LAYER_CHAIN, dir);
  hcs_error_t e = NULL;
  json_t *chain = hcs_json_load_file(chainp, &e);
  hcs_error_release(&e);
  json_object_set_new(m, "LayerChain", chain ? chain : json_array());
  json_object_set_new(m, "Path", json_string(dir));
  cleanup_json json_t *st = layer_state_load(s, id);
  const char *mp = json_string_value(json_object_get(st, "MountPath"));
  bool active = mp && layer_is_mountpoint(mp);
  json_object_set_new(m, "Active", json_boolean(active));
  if (active) {
    json_object_set_new(m, "MountPath", json_string(mp));
    json_object_set_new(m, "Prepared", json_boolean(json_is_true(json_object_get(st, "Prepared"))));
  }
  return m;
}

char *hcs_layer_inspect(hcs_layer_store_t *s, const char *id, hcs_error_t *err) {
  cleanup_close int lk = layer_store_lock(s, true, err);
  if (lk < 0) return NULL;
  cleanup_json json_t *m = inspect_doc(s, id, err);
  return m ? hcs_json_dumps(m) : NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Ids of all layers, sorted; *n gets the count. */
static char **list_ids(hcs_layer_store_t *s, size_t *n, hcs_error_t *err) {
  cleanup_dir DIR *d = opendir(s->path);
  if (d == NULL) {
    hcs_error_make(err, errno, "open `%s`", s->path);
    return NULL;
  }
  size_t cap = 16, k = 0;
  char **ids = hcs_xmalloc(cap * sizeof *ids);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    if (k + 1 >= cap) ids = hcs_xrealloc(ids, (cap *= 2) * sizeof *ids);
    ids[k++] = hcs_xstrdup(de->d_name);
  }
  qsort(ids, k, sizeof *ids, cmp_str);
  ids[k] = NULL;
  *n = k;
  return ids;
}

static void free_ids(char **ids) {
  for (size_t i = 0; ids && ids[i]; i++)
    free(ids[i]);
  free(ids);
}

char *hcs_layer_list(hcs_layer_store_t *s, hcs_error_t *err) {
  cleanup_close int lk = layer_store_lock(s, true, err);
  if (lk < 0) return NULL;
  size_t n;
  char **ids = list_ids(s, &n, err);
  if (ids == NULL) return NULL;
  cleanup_json json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    hcs_error_t e = NULL;
    json_t *m = inspect_doc(s, ids[i], &e);
    if (m == NULL) { /* a foreign directory: not a layer */
      hcs_debug("layer list: skipping `%s`: %s", ids[i], hcs_error_message(e));
      hcs_error_release(&e);
      continue;
    }
    json_array_append_new(arr, m);
  }
  free_ids(ids);
  return hcs_json_dumps(arr);
}

static int refcount_add(hcs_layer_store_t *s, const char *id, int delta, hcs_error_t *err) {
  cleanup_close int lk = layer_store_lock(s, false, err);
  if (lk < 0) return -1;
  cleanup_json json_t *m = layer_meta_load(s, id, err);
  if (m == NULL) return -1;
  json_int_t rc = json_integer_value(json_object_get(m, "RefCount")) + delta;
  if (rc < 0) return hcs_error_make(err, 0, "release layer `%s`: it holds no reference", id);
  json_object_set_new(m, "RefCount", json_integer(rc));
  if (layer_meta_save(s, id, m, err) < 0) return -1;
  return (int)rc;
}

int hcs_layer_acquire(hcs_layer_store_t *s, const char *id, hcs_error_t *err) { return refcount_add(s, id, 1, err); }
int hcs_layer_release(hcs_layer_store_t *s, const char *id, hcs_error_t *err) { return refcount_add(s, id, -1, err); }

int hcs_layer_destroy(hcs_layer_store_t *s, const char *id, bool force, hcs_error_t *err) {
  cleanup_close int lk = layer_store_lock(s, false, err);
  if (lk < 0) return -1;
  cleanup_json json_t *m = layer_meta_load(s, id, err);
  if (m == NULL) return hcs_error_wrap(err, "destroy layer");
  /* Only a read-only layer can have children: every layer is created
   * through layer_resolve_parents, which refuses a scratch layer as a
   * parent.  So a scratch layer (one per system: a host with 1000 systems
   * has 1000 of them) is destroyed without reading every layer.json. */
  const char *kind = json_string_value(json_object_get(m, "Kind"));
  size_t n = 0;
  char **ids = kind && strcmp(kind, "scratch") == 0 ? hcs_xcalloc(1, sizeof *ids) : list_ids(s, &n, err);
  if (ids == NULL) return -1;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(ids[i], id) == 0) continue;
    hcs_error_t e = NULL;
    cleanup_json json_t *other = layer_meta_load(s, ids[i], &e);
    hcs_error_release(&e);
    size_t k;
    json_t *v;
    json_array_foreach(json_object_get(other, "Parents"), k, v) {
      if (strcmp(json_string_value(v), id) == 0) {
        hcs_error_make(err, EBUSY, "destroy layer `%s`: layer `%s` depends on it", id, ids[i]);
        free_ids(ids);
        return -1;
      }
    }
  }
  free_ids(ids);
  json_int_t rc = json_integer_value(json_object_get(m, "RefCount"));
  if (rc > 0 && !force)
    return hcs_error_make(err, EBUSY, "destroy layer `%s`: in use (%lld references)", id, (long long)rc);
  cleanup_json json_t *st = layer_state_load(s, id);
  const char *mp = json_string_value(json_object_get(st, "MountPath"));
  if (mp && layer_is_mountpoint(mp)) {
    if (!force) return hcs_error_make(err, EBUSY, "destroy layer `%s`: activated at `%s`", id, mp);
    if (umount2(mp, 0) < 0 && umount2(mp, MNT_DETACH) < 0) return hcs_error_make(err, errno, "unmount `%s`", mp);
  }
  /* Make it vanish at once, then remove at leisure (a crash leaves it in
   * .tmp, swept on the next open). */
  struct layer_tmp t;
  hcs_crash_point("layer store: before a destroyed layer is renamed away");
  cleanup_free char *tmpl = rename_away(s, id, err);
  if (tmpl == NULL) return hcs_error_wrap(err, "destroy layer `%s`", id);
  if (json_object_get(m, "Volatile") == NULL) hcs_fsync_dir(s->path, NULL);
  json_object_clear(st);
  layer_state_save(s, id, st, NULL);
  /* Only a store where a legacy mount made `.l` can hold a short name:
   * without it, hashing would load libcrypto for nothing. */
  if (faccessat(s->dirfd, LAYER_LINKS, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
    EVP_MD_CTX *md = layer_sha256_new();
    EVP_DigestUpdate(md, id, strlen(id));
    char d[72];
    layer_sha256_final(md, d);
    EVP_MD_CTX_free(md);
    cleanup_free char *link = hcs_xasprintf(LAYER_LINKS "/%.12s", d + 7);
    unlinkat(s->dirfd, link, 0); /* the short name, if a legacy mount made one */
  }
  t.path = steal_ptr(tmpl);
  t.lockfd = -1;
  layer_tmp_done(&t);
  return 0;
}

static int create_scratch(hcs_layer_store_t *s, const char *id, const char *const *parents, bool durable,
                          hcs_error_t *err) {
  if (hcs_validate_id("layer id", id, err) < 0) return -1;
  if (hcs_layer_exists(s, id, err) > 0) return hcs_error_make(err, EEXIST, "layer `%s` already exists", id);
  cleanup_json json_t *chain = NULL;
  {
    cleanup_close int lk = layer_store_lock(s, true, err);
    if (lk < 0) return -1;
    chain = layer_resolve_parents(s, parents, err);
    if (chain == NULL) return hcs_error_wrap(err, "create scratch layer `%s`", id);
  }
  struct layer_tmp t;
  if (layer_tmp_make(s, "scratch", &t, err) < 0) return -1;
  int ret = -1;
  cleanup_free char *diff = hcs_xasprintf("%s/diff", t.path);
  cleanup_free char *work = hcs_xasprintf("%s/work", t.path);
  cleanup_json json_t *m = json_object();
  json_object_set_new(m, "Id", json_string(id));
  json_object_set_new(m, "Kind", json_string("scratch"));
  json_object_set(m, "Parents", chain);
  cleanup_free char *now = hcs_now_rfc3339();
  json_object_set_new(m, "Created", json_string(now));
  json_object_set_new(m, "RefCount", json_integer(0));
  if (!durable) json_object_set_new(m, "Volatile", json_string(layer_boot_id()));
  cleanup_free char *metap = hcs_xasprintf("%s/" LAYER_META, t.path);
  if (mkdir(diff, 0755) < 0 || mkdir(work, 0700) < 0) {
    hcs_error_make(err, errno, "create scratch layer `%s`: mkdir", id);
    goto out;
  }
  if (layer_write_chain(s, t.path, chain, durable, err) < 0 ||
      (durable ? hcs_json_write_atomic(metap, m, err) : hcs_json_write_replace(metap, m, err)) < 0)
    goto out;
  {
    cleanup_close int lk = layer_store_lock(s, false, err);
    if (lk < 0) goto out;
    cleanup_json json_t *again = layer_resolve_parents(s, parents, err);
    if (again == NULL || layer_commit_dir(s, t.path, id, durable, err) < 0) {
      hcs_error_wrap(err, "create scratch layer `%s`", id);
      goto out;
    }
  }
  ret = 0;
out:
  layer_tmp_done(&t);
  return ret;
}

int hcs_layer_create_scratch(hcs_layer_store_t *s, const char *id, const char *const *parents, hcs_error_t *err) {
  return create_scratch(s, id, parents, true, err);
}

int hcs_layer_create_scratch_volatile(hcs_layer_store_t *s, const char *id, const char *const *parents,
                                      hcs_error_t *err) {
  return create_scratch(s, id, parents, false, err);
}

const char *hcs_layer_compression_name(hcs_layer_compression_t c) {
  switch (c) {
  case HCS_LAYER_COMPRESSION_NONE: return "none";
  case HCS_LAYER_COMPRESSION_GZIP: return "gzip";
  case HCS_LAYER_COMPRESSION_ZSTD: return "zstd";
  }
  return "unknown";
}

int hcs_layer_compression_from_string(const char *name) {
  if (name == NULL) return -1;
  if (strcmp(name, "none") == 0 || strcmp(name, "tar") == 0) return HCS_LAYER_COMPRESSION_NONE;
  if (strcmp(name, "gzip") == 0 || strcmp(name, "gz") == 0) return HCS_LAYER_COMPRESSION_GZIP;
  if (strcmp(name, "zstd") == 0 || strcmp(name, "zst") == 0) return HCS_LAYER_COMPRESSION_ZSTD;
  return -1;
}
