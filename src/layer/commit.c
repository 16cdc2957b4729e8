/* Commit a scratch layer in place: its changes become a read-only layer
 * without copying a byte.  The scratch's upper directory already holds the
 * changes in the store's own format (overlay whiteouts, opaque markers), so
 * once the container is stopped and the layer deactivated, that directory
 * can simply be renamed into a new layer.  One read pass computes the diff
 * id of the canonical export (so exporting the new layer later reproduces
 * it byte for byte); overlay's private xattrs are dropped on the way. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "core/crash.h"
#include "layer/internal.h"

/* Remove trusted.overlay.* attributes other than the opaque marker from
 * every entry below dirfd (origin, impure, ... only mean something in an
 * upper directory). */
static int strip_overlay_xattrs(int dirfd, const char *where, hcs_error_t *err) {
  int dfd = dup(dirfd);
  if (dfd < 0) return hcs_error_make(err, errno, "dup `%s`", where);
  cleanup_dir DIR *d = fdopendir(dfd);
  if (d == NULL) {
    close(dfd);
    return hcs_error_make(err, errno, "read `%s`", where);
  }
  struct dirent *de;
  char list[4096];
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (de->d_type == DT_LNK) continue; /* overlay never sets trusted.* on symlinks it keeps */
    cleanup_close int fd = openat(dirfd, de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return hcs_error_make(err, errno, "open `%s/%s`", where, de->d_name);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t n = listxattr(proc, list, sizeof list);
    for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(list + i) + 1) {
      const char *name = list + i;
      if (layer_is_overlay_xattr(name) && strcmp(name, OVL_OPAQUE_XATTR) != 0 && removexattr(proc, name) < 0)
        return hcs_error_make(err, errno, "remove `%s` from `%s/%s`", name, where, de->d_name);
    }
    if (de->d_type == DT_DIR) {
      cleanup_close int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) return hcs_error_make(err, errno, "open `%s/%s`", where, de->d_name);
      cleanup_free char *subwhere = hcs_xasprintf("%s/%s", where, de->d_name);
      if (strip_overlay_xattrs(sub, subwhere, err) < 0) return -1;
    }
  }
  return 0;
}

/* The move is journaled so that a process killed at any instruction leaves
 * the changes either in the scratch or in the new layer, never in a place a
 * sweep removes:
 *
 *   1. `.commits/<scratch>` is written (fsync): {Scratch, Layer};
 *   2. `<scratch>/commit/` is made inside the scratch's own directory
 *      (never under .tmp, which store opens sweep);
 *   3. `<scratch>/diff` is renamed to `<scratch>/commit/diff`;
 *   4. metadata is written into `<scratch>/commit/`, the files synced;
 *   5. `<scratch>/commit` is renamed to `<new layer>` (the commit point);
 *   6. an empty `<scratch>/diff` is made, the journal entry removed.
 *
 * Every step runs under the exclusive store lock, so an entry in .commits
 * found by a store open (which takes that lock) belongs to a dead process:
 * layer_recover_commits rolls it back before step 5 (the diff goes back to
 * the scratch) and forward after it (an empty diff is made). */
#define COMMITS_DIR ".commits"
#define STAGING "commit"

static int fsync_dirfd(int dfd, const char *label) {
  if (fsync(dfd) < 0) return -1;
  hcs_crash_point(label);
  return 0;
}

/* Roll one journaled commit of scratch `id` back or forward (see above);
 * the caller holds the exclusive store lock. */
static int recover_one(hcs_layer_store_t *s, const char *id, hcs_error_t *err) {
  if (hcs_validate_id("layer id", id, err) < 0) return -1;
  cleanup_free char *dir = layer_dir(s, id);
  cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0 && errno != ENOENT) return hcs_error_make(err, errno, "open `%s`", dir);
  if (dfd >= 0) {
    struct stat st;
    bool has_diff = fstatat(dfd, "diff", &st, AT_SYMLINK_NOFOLLOW) == 0;
    bool has_staging = fstatat(dfd, STAGING, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (has_staging) { /* before the commit point: the changes go back */
      cleanup_close int sfd = openat(dfd, STAGING, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sfd < 0) return hcs_error_make(err, errno, "open `%s/" STAGING "`", dir);
      if (!has_diff && fstatat(sfd, "diff", &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (renameat(sfd, "diff", dfd, "diff") < 0)
          return hcs_error_make(err, errno, "restore `%s/diff` from `%s/" STAGING "/diff`", dir, dir);
        has_diff = true;
        hcs_info("layer store: rolled back the interrupted commit of scratch layer `%s`", id);
      }
      if (hcs_rm_rf_at(dfd, STAGING, err) < 0) return -1;
    }
    if (!has_diff) { /* after the commit point: the new layer holds the changes */
      if (mkdirat(dfd, "diff", 0755) < 0 && errno != EEXIST) return hcs_error_make(err, errno, "create `%s/diff`", dir);
      hcs_info("layer store: finished the interrupted commit of scratch layer `%s`", id);
    }
    if (fsync(dfd) < 0) return hcs_error_make(err, errno, "fsync `%s`", dir);
  }
  cleanup_free char *journal = hcs_xasprintf("%s/" COMMITS_DIR "/%s", s->path, id);
  if (unlink(journal) < 0 && errno != ENOENT) return hcs_error_make(err, errno, "remove `%s`", journal);
  hcs_crash_point("commit: journal removed");
  return 0;
}

int layer_recover_commits(hcs_layer_store_t *s, hcs_error_t *err) {
  cleanup_free char *jdir = hcs_xasprintf("%s/" COMMITS_DIR, s->path);
  cleanup_dir DIR *d = opendir(jdir);
  if (d == NULL) return errno == ENOENT ? 0 : hcs_error_make(err, errno, "open `%s`", jdir);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue; /* ., .., and temp files of the journal writes */
    if (recover_one(s, de->d_name, err) < 0) return hcs_error_wrap(err, "recover the commit of `%s`", de->d_name);
  }
  return 0;
}

/* Steps 2-6 (see above) with the staging directory open as sfd. */
static int move_steps(hcs_layer_store_t *s, int dfd, const char *dir, const char *new_id, json_t *chain,
                      const char *cid, const hcs_layer_export_result_t *r, hcs_error_t *err) {
  if (mkdirat(dfd, STAGING, 0700) < 0) return hcs_error_make(err, errno, "create `%s/" STAGING "`", dir);
  if (fsync_dirfd(dfd, "commit: staging made") < 0) return hcs_error_make(err, errno, "fsync `%s`", dir);
  if (renameat(dfd, "diff", dfd, STAGING "/diff") < 0)
    return hcs_error_make(err, errno, "move `%s/diff` to `%s/" STAGING "/diff`", dir, dir);
  if (fsync_dirfd(dfd, "commit: diff moved") < 0) return hcs_error_make(err, errno, "fsync `%s`", dir);
  cleanup_free char *staging = hcs_xasprintf("%s/" STAGING, dir);
  cleanup_free char *diff = hcs_xasprintf("%s/diff", staging);
  cleanup_close int rootfd = open(diff, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return hcs_error_make(err, errno, "open `%s`", diff);
  if (strip_overlay_xattrs(rootfd, diff, err) < 0) return -1;
  cleanup_json json_t *m = json_object();
  json_object_set_new(m, "Id", json_string(new_id));
  json_object_set_new(m, "Kind", json_string("layer"));
  json_object_set(m, "Parents", chain);
  json_object_set_new(m, "ChainID", json_string(cid));
  json_object_set_new(m, "DiffID", json_string(r->diff_id));
  json_object_set_new(m, "Digest", json_string(r->diff_id));
  json_object_set_new(m, "Size", json_integer((json_int_t)r->uncompressed_size));
  json_object_set_new(m, "CompressedSize", json_integer((json_int_t)r->uncompressed_size));
  json_object_set_new(m, "Compression", json_string("none"));
  cleanup_free char *now = hcs_now_rfc3339();
  json_object_set_new(m, "Created", json_string(now));
  json_object_set_new(m, "RefCount", json_integer(0));
  cleanup_free char *metap = hcs_xasprintf("%s/" LAYER_META, staging);
  if (syncfs(rootfd) < 0) return hcs_error_make(err, errno, "sync `%s`", diff);
  if (layer_write_chain(s, staging, chain, true, err) < 0 || hcs_json_write_atomic(metap, m, err) < 0) return -1;
  if (layer_commit_dir(s, staging, new_id, true, err) < 0) return -1; /* the commit point */
  if (mkdirat(dfd, "diff", 0755) < 0 && errno != EEXIST) return hcs_error_make(err, errno, "create `%s/diff`", dir);
  if (fsync_dirfd(dfd, "commit: scratch emptied") < 0) return hcs_error_make(err, errno, "fsync `%s`", dir);
  return 0;
}

/* Move the scratch's diff dir into a new layer `new_id`, journaled; on
 * failure the changes are put back. */
static int move_into_layer(hcs_layer_store_t *s, const char *id, const char *new_id, json_t *chain, const char *cid,
                           const hcs_layer_export_result_t *r, hcs_error_t *err) {
  cleanup_close int lk = layer_store_lock(s, false, err);
  if (lk < 0) return -1;
  /* A leftover of a commit killed since this store was opened. */
  if (layer_recover_commits(s, err) < 0) return -1;
  cleanup_free char *dir = layer_dir(s, id);
  cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return hcs_error_make(err, errno, "open `%s`", dir);
  cleanup_free char *jdir = hcs_xasprintf("%s/" COMMITS_DIR, s->path);
  cleanup_free char *journal = hcs_xasprintf("%s/%s", jdir, id);
  cleanup_json json_t *entry = json_pack("{s:s,s:s}", "Scratch", id, "Layer", new_id);
  if (hcs_mkdir_p(jdir, 0700, err) < 0 || hcs_json_write_atomic(journal, entry, err) < 0) return -1;
  if (move_steps(s, dfd, dir, new_id, chain, cid, r, err) == 0) {
    if (unlink(journal) < 0) hcs_warning("remove `%s`: %s", journal, strerror(errno)); /* recovered on next open */
    hcs_crash_point("commit: journal removed");
    return 0;
  }
  cleanup_error hcs_error_t e = NULL;
  if (recover_one(s, id, &e) < 0) /* put the changes back where they were */
    hcs_warning("roll back the commit of `%s`: %s", id, hcs_error_message(e));
  return -1;
}

static char *commit_impl(hcs_layer_store_t *s, const char *id, hcs_layer_progress_fn progress, void *pdata,
                         hcs_error_t *err) {
  cleanup_json json_t *chain = NULL;
  {
    cleanup_close int lk = layer_store_lock(s, true, err);
    if (lk < 0) return NULL;
    cleanup_json json_t *meta = layer_meta_load(s, id, err);
    if (meta == NULL) return NULL;
    if (strcmp(json_string_value(json_object_get(meta, "Kind")) ?: "", "scratch") != 0) {
      hcs_error_make(err, 0, "`%s` is not a scratch layer", id);
      return NULL;
    }
    cleanup_json json_t *st = layer_state_load(s, id);
    const char *mp = json_string_value(json_object_get(st, "MountPath"));
    if (mp && layer_is_mountpoint(mp)) {
      hcs_error_make(err, EBUSY, "it is activated at `%s`: stop its system and deactivate it first", mp);
      return NULL;
    }
    chain = json_incref(json_object_get(meta, "Parents"));
  }
  /* The read pass: the canonical tar stream, hashed and thrown away. */
  hcs_layer_export_opts_t eo = {
      .compression = HCS_LAYER_COMPRESSION_NONE, .progress = progress, .progress_data = pdata};
  hcs_layer_export_result_t r;
  cleanup_close int sink = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (sink < 0) {
    hcs_error_make(err, errno, "open `/dev/null`");
    return NULL;
  }
  if (hcs_layer_export(s, id, sink, &eo, &r, err) < 0) return NULL;
  const char *nearest = json_string_value(json_array_get(chain, 0));
  cleanup_free char *parent_cid = NULL;
  if (nearest) {
    cleanup_json json_t *pm = layer_meta_load(s, nearest, err);
    if (pm == NULL) return NULL;
    parent_cid = hcs_xstrdup(json_string_value(json_object_get(pm, "ChainID")));
  }
  cleanup_free char *cid = hcs_layer_chain_id(parent_cid, r.diff_id);
  const char *new_id = cid + 7;
  if (hcs_layer_exists(s, new_id, NULL) == 1) return hcs_xstrdup(new_id); /* the same content is there already */
  if (move_into_layer(s, id, new_id, chain, cid, &r, err) < 0) return NULL;
  return hcs_xstrdup(new_id);
}

char *hcs_layer_commit_scratch(hcs_layer_store_t *s, const char *id, hcs_layer_progress_fn progress, void *pdata,
                               hcs_error_t *err) {
  char *new_id = commit_impl(s, id, progress, pdata, err);
  if (new_id == NULL) hcs_error_wrap(err, "commit scratch layer `%s`", id);
  return new_id;
}
