/* Garbage collection of layers, containerd style.  Roots: the layers of
 * every image (and, through the layer store's own checks, every parent of a
 * scratch layer or of another layer, every activated layer).  Layers an
 * image operation is still making are protected by a lease; a lease whose
 * process died names what that process may have left, and is collected when
 * the store opens.
 *
 * A lease is `images/.leases/<op>-<pid>-XXXXXX.json` (what the operation
 * made: {Op, Created, Layers, Parent}) beside a `.lock` file its process
 * holds with flock for as long as it runs; a lease whose lock is free
 * belongs to a dead process.  Layer reference counts in an image root are
 * the image store's (hcs_image_record acquires one per image and layer): a
 * process killed between those acquires and the image's rename leaves them
 * too high, so a collection recounts them from the images first. */
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>

#include "image/internal.h"

#define LEASES ".leases"

static bool str_eq(json_t *j, const char *s) { return json_is_string(j) && strcmp(json_string_value(j), s) == 0; }

int hcs_image_lease_begin(hcs_image_store_t *s, const char *op, bool by_parent, const char *parent, const char *scratch,
                          struct hcs_image_lease *l, hcs_error_t *err) {
  l->path = NULL;
  l->lockfd = -1;
  l->doc = NULL;
  cleanup_free char *dir = hcs_xasprintf("%s/" LEASES, s->dir);
  if (hcs_mkdir_p(dir, 0700, err) < 0) return -1;
  cleanup_free char *tmpl = hcs_xasprintf("%s/%s-%d-XXXXXX.lock", dir, op, (int)getpid());
  int fd = mkostemps(tmpl, 5, O_CLOEXEC);
  if (fd < 0) return hcs_error_make(err, errno, "create a lease in `%s`", dir);
  if (flock(fd, LOCK_EX) < 0) {
    int e = errno;
    close(fd);
    unlink(tmpl);
    return hcs_error_make(err, e, "lock `%s`", tmpl);
  }
  l->lockfd = fd;
  l->path = hcs_xasprintf("%.*s.json", (int)(strlen(tmpl) - 5), tmpl);
  cleanup_free char *now = hcs_now_rfc3339();
  l->doc = json_pack("{s:s,s:s,s:[]}", "Op", op, "Created", now, "Layers");
  if (by_parent) json_object_set_new(l->doc, "Parent", parent ? json_string(parent) : json_null());
  if (scratch) json_object_set_new(l->doc, "Scratch", json_string(scratch));
  if (hcs_json_write_atomic(l->path, l->doc, err) < 0) {
    hcs_image_lease_end(s, l, false);
    return -1;
  }
  return 0;
}

int hcs_image_lease_add(struct hcs_image_lease *l, const char *layer_id, hcs_error_t *err) {
  json_t *layers = json_object_get(l->doc, "Layers");
  size_t i;
  json_t *v;
  json_array_foreach(layers, i, v) if (strcmp(json_string_value(v), layer_id) == 0) return 0;
  json_array_append_new(layers, json_string(layer_id));
  return hcs_json_write_atomic(l->path, l->doc, err);
}

void hcs_image_lease_end(hcs_image_store_t *s, struct hcs_image_lease *l, bool collect) {
  if (l->path == NULL) return;
  /* Unlocked first: the lease now reads as a dead one, so the collection
   * below takes its layers, and a crash before the end leaves it to the
   * next store open. */
  if (l->lockfd >= 0) close(l->lockfd);
  l->lockfd = -1;
  if (collect) {
    cleanup_error hcs_error_t e = NULL;
    cleanup_json json_t *scope = json_array();
    json_array_append(scope, l->doc);
    if (hcs_image_collect(s, scope, NULL, false, NULL, &e) < 0)
      hcs_warning("collect the layers of a failed %s: %s", json_string_value(json_object_get(l->doc, "Op")),
                  hcs_error_message(e));
  }
  unlink(l->path);
  cleanup_free char *lock = hcs_xasprintf("%.*s.lock", (int)(strlen(l->path) - 5), l->path);
  unlink(lock);
  hcs_crash_point("lease ended");
  json_decref(l->doc);
  free(l->path);
  l->path = NULL;
  l->doc = NULL;
  l->lockfd = -1;
}

/* What a process killed while it began or updated its lease left: a
 * lock file without its lease (never written), a lease's temporary file.
 * Removed once the lock of the lease is free. */
static void sweep_lease_debris(int dfd, const char *name) {
  const char *end = strstr(name, ".json.tmp.");
  if (end == NULL) end = name + strlen(name) - 5; /* ".lock" */
  cleanup_free char *base = strndup(name, (size_t)(end - name));
  cleanup_free char *lock = hcs_xasprintf("%s.lock", base);
  cleanup_free char *json = hcs_xasprintf("%s.json", base);
  cleanup_close int lfd = openat(dfd, lock, O_RDWR | O_CLOEXEC);
  if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) < 0) return; /* its process lives */
  if (strstr(name, ".json.tmp.") || faccessat(dfd, json, F_OK, 0) < 0) unlinkat(dfd, name, 0);
}

/* Leases in the store: live ones into *live, dead ones into *dead (each
 * with "Path" set to its file). */
static int read_leases(hcs_image_store_t *s, json_t *live, json_t *dead, hcs_error_t *err) {
  cleanup_free char *dir = hcs_xasprintf("%s/" LEASES, s->dir);
  cleanup_dir DIR *d = opendir(dir);
  if (d == NULL) return errno == ENOENT ? 0 : hcs_error_make(err, errno, "open `%s`", dir);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t n = strlen(de->d_name);
    if (de->d_name[0] == '.') continue;
    if (strstr(de->d_name, ".json.tmp.") || (n > 5 && strcmp(de->d_name + n - 5, ".lock") == 0)) {
      sweep_lease_debris(dirfd(d), de->d_name);
      continue;
    }
    if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0) continue;
    cleanup_free char *path = hcs_xasprintf("%s/%s", dir, de->d_name);
    cleanup_free char *lock = hcs_xasprintf("%s/%.*s.lock", dir, (int)(n - 5), de->d_name);
    cleanup_close int lfd = open(lock, O_RDWR | O_CLOEXEC);
    bool alive = lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) < 0;
    cleanup_error hcs_error_t e = NULL;
    json_t *doc = hcs_json_load_file(path, &e);
    if (doc == NULL || !json_is_object(doc)) { /* torn: written atomically, so only a foreign file */
      hcs_warning("lease `%s`: %s", path, e ? hcs_error_message(e) : "not a JSON object");
      json_decref(doc);
      continue;
    }
    json_object_set_new(doc, "Path", json_string(path));
    json_array_append_new(alive ? live : dead, doc);
  }
  return 0;
}

static bool in_array(json_t *arr, const char *s) {
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) return true;
  return false;
}

/* Is layer L (an inspect document) one a lease's operation made?  A
 * capture's new layer is named only once made: until then its lease names
 * the parent, and any layer on that parent made since may be it.  A
 * capture by move (op "commit") makes a layer that holds the container's
 * only copy of its changes: protected while it runs, never collected
 * after (protect=false). */
static bool lease_made(json_t *lease, json_t *L, bool protect) {
  const char *id = json_string_value(json_object_get(L, "Id"));
  if (in_array(json_object_get(lease, "Layers"), id)) return true;
  json_t *parent = json_object_get(lease, "Parent");
  if (parent == NULL || (!protect && str_eq(json_object_get(lease, "Op"), "commit"))) return false;
  json_t *parents = json_object_get(L, "Parents");
  bool same = json_is_null(parent) ? json_array_size(parents) == 0
                                   : str_eq(json_array_get(parents, 0), json_string_value(parent));
  const char *created = json_string_value(json_object_get(L, "Created"));
  const char *since = json_string_value(json_object_get(lease, "Created"));
  return same && created && since && strcmp(created, since) >= 0;
}

int hcs_image_collect(hcs_image_store_t *s, json_t *scope, json_t *extra, bool dry_run, json_t **removed_out,
                      hcs_error_t *err) {
  cleanup_json json_t *images = hcs_image_all(s, err);
  if (images == NULL) return -1;
  cleanup_json json_t *live = json_array(), *dead = json_array();
  if (read_leases(s, live, dead, err) < 0) return -1;
  cleanup_free char *text = hcs_layer_list(s->layers, err);
  if (text == NULL) return -1;
  cleanup_json json_t *layers = hcs_json_parse(text, "layer list", err);
  if (layers == NULL) return -1;
  /* references from images */
  cleanup_json json_t *refs = json_object();
  size_t i, j;
  json_t *m, *v;
  json_array_foreach(images, i, m) json_array_foreach(json_object_get(m, "Layers"), j, v) {
    json_int_t n = json_integer_value(json_object_get(refs, json_string_value(v)));
    json_object_set_new(refs, json_string_value(v), json_integer(n + 1));
  }
  cleanup_json json_t *removed = json_array();
  /* recount (see the top of the file), then destroy candidates until none goes */
  json_array_foreach(layers, i, m) {
    const char *id = json_string_value(json_object_get(m, "Id"));
    if (!str_eq(json_object_get(m, "Kind"), "layer") || dry_run) continue;
    json_int_t want = json_integer_value(json_object_get(refs, id));
    json_int_t have = json_integer_value(json_object_get(m, "RefCount"));
    for (; have < want; have++)
      if (hcs_layer_acquire(s->layers, id, err) < 0) return -1;
    for (; have > want; have--)
      if (hcs_layer_release(s->layers, id, err) < 0) return -1;
    json_object_set_new(m, "RefCount", json_integer(have));
  }
  for (bool progress = true; progress;) {
    progress = false;
    json_array_foreach(layers, i, m) {
      const char *id = json_string_value(json_object_get(m, "Id"));
      if (!str_eq(json_object_get(m, "Kind"), "layer") || json_object_get(refs, id) || in_array(removed, id) ||
          json_is_true(json_object_get(m, "Active")))
        continue;
      if (!dry_run && json_integer_value(json_object_get(m, "RefCount")) > 0) continue;
      bool protected = false, wanted = scope == NULL || in_array(extra, id);
      json_array_foreach(live, j, v) protected = protected || lease_made(v, m, true);
      json_array_foreach(scope, j, v) wanted = wanted || lease_made(v, m, false);
      if (protected || !wanted) continue;
      /* a layer other remaining layers are built on stays */
      bool has_child = false;
      size_t k;
      json_t *o;
      json_array_foreach(layers, k, o) {
        if (in_array(removed, json_string_value(json_object_get(o, "Id")))) continue;
        if (in_array(json_object_get(o, "Parents"), id)) has_child = true;
      }
      if (has_child) continue;
      if (!dry_run) {
        cleanup_error hcs_error_t e = NULL;
        if (hcs_layer_destroy(s->layers, id, false, &e) < 0) {
          hcs_debug("keep layer `%s`: %s", id, hcs_error_message(e));
          continue;
        }
        hcs_info("image store: collected unreferenced layer `%s`", id);
      }
      json_array_append_new(removed, json_string(id));
      progress = true;
    }
  }
  if (!dry_run) { /* the compressed blobs of the layers that went */
    cleanup_error hcs_error_t e = NULL;
    if (hcs_image_blob_collect(s, &e) < 0) hcs_warning("image store: collect blobs: %s", hcs_error_message(e));
  }
  if (removed_out) *removed_out = json_incref(removed);
  return 0;
}

static bool dir_is_empty(const char *path) {
  cleanup_dir DIR *d = opendir(path);
  if (d == NULL) return false;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) return false;
  return true;
}

/* A capture by move killed after its layer was committed but before the
 * image held it: the changes go back into the (now empty) scratch and the
 * layer goes, so the capture happened entirely or not at all.  If the
 * scratch has changed since, the layer is kept (never lose data). */
static int rollback_commit(hcs_image_store_t *s, json_t *lease, json_t *layers, json_t *refs, hcs_error_t *err) {
  const char *scratch = json_string_value(json_object_get(lease, "Scratch"));
  if (scratch == NULL || hcs_validate_id("layer id", scratch, NULL) < 0) return 0;
  const char *store = hcs_layer_store_path(s->layers);
  cleanup_free char *sdiff = hcs_xasprintf("%s/%s/diff", store, scratch);
  size_t i;
  json_t *m;
  json_array_foreach(layers, i, m) {
    const char *id = json_string_value(json_object_get(m, "Id"));
    if (!str_eq(json_object_get(m, "Kind"), "layer") || json_object_get(refs, id) || !lease_made(lease, m, true))
      continue;
    bool has_child = false;
    size_t k;
    json_t *o;
    json_array_foreach(layers, k, o) has_child = has_child || in_array(json_object_get(o, "Parents"), id);
    if (has_child) continue;
    cleanup_free char *ldiff = hcs_xasprintf("%s/%s/diff", store, id);
    cleanup_free char *sdir = hcs_xasprintf("%s/%s", store, scratch);
    if (hcs_path_exists(ldiff)) {
      if (!dir_is_empty(sdiff)) {
        hcs_warning("image store: keeping layer `%s` (a killed capture's changes): scratch `%s` changed since", id,
                    scratch);
        return 0;
      }
      if (rmdir(sdiff) < 0 && errno != ENOENT) return hcs_error_make(err, errno, "remove `%s`", sdiff);
      hcs_crash_point("capture rollback: scratch diff removed");
      if (rename(ldiff, sdiff) < 0) return hcs_error_make(err, errno, "move `%s` back to `%s`", ldiff, sdiff);
      if (hcs_fsync_dir(sdir, err) < 0) return -1;
    }
    /* a layer without diff is only this rollback's leftover */
    if (hcs_layer_destroy(s->layers, id, true, err) < 0) return -1;
    hcs_info("image store: rolled back the killed capture of scratch layer `%s`", scratch);
    return 0;
  }
  return 0;
}

int hcs_image_recover(hcs_image_store_t *s, json_t *removed_images, hcs_error_t *err) {
  cleanup_json json_t *live = json_array(), *dead = json_array();
  if (read_leases(s, live, dead, err) < 0) return -1;
  if (json_array_size(dead) == 0 && json_array_size(removed_images) == 0) return 0;
  cleanup_json json_t *extra = json_array();
  size_t i;
  json_t *v;
  json_array_foreach(removed_images, i, v) json_array_extend(extra, json_object_get(v, "Layers"));
  json_array_foreach(dead, i, v) {
    if (!str_eq(json_object_get(v, "Op"), "commit")) continue;
    cleanup_json json_t *images = hcs_image_all(s, err);
    if (images == NULL) return -1;
    cleanup_free char *text = hcs_layer_list(s->layers, err);
    if (text == NULL) return -1;
    cleanup_json json_t *layers = hcs_json_parse(text, "layer list", err);
    if (layers == NULL) return -1;
    cleanup_json json_t *refs = json_object();
    size_t a, b;
    json_t *m, *l;
    json_array_foreach(images, a, m) json_array_foreach(json_object_get(m, "Layers"), b, l)
        json_object_set_new(refs, json_string_value(l), json_true());
    if (rollback_commit(s, v, layers, refs, err) < 0) return -1;
  }
  if (hcs_image_collect(s, dead, extra, false, NULL, err) < 0) return -1;
  json_array_foreach(dead, i, v) {
    const char *path = json_string_value(json_object_get(v, "Path"));
    unlink(path);
    cleanup_free char *lock = hcs_xasprintf("%.*s.lock", (int)(strlen(path) - 5), path);
    unlink(lock);
  }
  return 0;
}

char *hcs_image_prune(hcs_image_store_t *s, bool dry_run, hcs_error_t *err) {
  cleanup_close int lock = hcs_image_lock(s, true, err);
  if (lock < 0) return NULL;
  if (!dry_run && hcs_image_recover(s, NULL, err) < 0) return NULL;
  cleanup_json json_t *removed = NULL;
  if (hcs_image_collect(s, NULL, NULL, dry_run, &removed, err) < 0) {
    hcs_error_wrap(err, "prune images");
    return NULL;
  }
  cleanup_json json_t *out = json_pack("{s:O}", "Layers", removed);
  return hcs_json_dumps(out);
}
