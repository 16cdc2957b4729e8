/* Capture by copy: a scratch layer's changes become a new read-only layer in
 * one pass over its upper directory.  The exporter's walk (export.c) hashes
 * the canonical tar stream, headers made in memory and never written, while
 * mirror.c creates each entry in the new layer; no archive is written,
 * compressed or parsed.  The new layer is built in a locked temp dir, synced
 * and renamed in whole, as an import is: a capture killed at any point
 * leaves nothing visible, and the temp dir is swept by the next store open.
 * As in an import, a thread syncs the new layer's file system while the
 * files are made (writeback.c), so the final sync waits for little. */
#include <fcntl.h>
#include <string.h>

#include "core/crash.h"
#include "layer/internal.h"
#include "layer/mirror.h"

static json_t *scratch_chain(hcs_layer_store_t *s, const char *id, json_t **pmeta, hcs_error_t *err) {
  cleanup_close int lk = layer_store_lock(s, true, err);
  if (lk < 0) return NULL;
  cleanup_json json_t *meta = layer_meta_load(s, id, err);
  if (meta == NULL) return NULL;
  if (strcmp(json_string_value(json_object_get(meta, "Kind")) ?: "", "scratch") != 0) {
    hcs_error_make(err, 0, "`%s` is not a scratch layer", id);
    return NULL;
  }
  json_t *chain = json_object_get(meta, "Parents");
  const char *nearest = json_string_value(json_array_get(chain, 0));
  if (nearest && (*pmeta = layer_meta_load(s, nearest, err)) == NULL) return NULL;
  return json_incref(chain);
}

static char *capture_impl(hcs_layer_store_t *s, const char *id, int threads, hcs_layer_progress_fn progress,
                          void *pdata, hcs_error_t *err) {
  cleanup_json json_t *pmeta = NULL;
  cleanup_json json_t *chain = scratch_chain(s, id, &pmeta, err);
  if (chain == NULL) return NULL;
  struct layer_tmp t;
  if (layer_tmp_make(s, "capture", &t, err) < 0) return NULL;
  char *result = NULL;
  struct layer_mirror *m = NULL;
  struct layer_writeback *wb = NULL;
  cleanup_free char *diff = hcs_xasprintf("%s/diff", t.path);
  cleanup_close int rootfd = -1;
  if (mkdir(diff, 0755) < 0) {
    hcs_error_make(err, errno, "mkdir `%s`", diff);
    goto out;
  }
  rootfd = open(diff, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) {
    hcs_error_make(err, errno, "open `%s`", diff);
    goto out;
  }
  m = layer_mirror_start(rootfd, threads);
  wb = layer_writeback_start(rootfd);
  hcs_layer_export_opts_t eo = {
      .compression = HCS_LAYER_COMPRESSION_NONE, .progress = progress, .progress_data = pdata};
  hcs_layer_export_result_t r;
  if (layer_export_mirrored(s, id, &eo, m, &r, err) < 0) goto out;
  hcs_crash_point("capture: files copied, not synced"); /* a whole unsynced tree in .tmp: swept */
  {
    cleanup_free char *cid =
        hcs_layer_chain_id(pmeta ? json_string_value(json_object_get(pmeta, "ChainID")) : NULL, r.diff_id);
    const char *new_id = cid + 7;
    /* The same metadata as an import of the uncompressed stream. */
    cleanup_json json_t *meta = json_object();
    json_object_set_new(meta, "Id", json_string(new_id));
    json_object_set_new(meta, "Kind", json_string("layer"));
    json_object_set(meta, "Parents", chain);
    json_object_set_new(meta, "ChainID", json_string(cid));
    json_object_set_new(meta, "DiffID", json_string(r.diff_id));
    json_object_set_new(meta, "Digest", json_string(r.diff_id));
    json_object_set_new(meta, "Size", json_integer((json_int_t)r.uncompressed_size));
    json_object_set_new(meta, "CompressedSize", json_integer((json_int_t)r.uncompressed_size));
    json_object_set_new(meta, "Compression", json_string("none"));
    cleanup_free char *now = hcs_now_rfc3339();
    json_object_set_new(meta, "Created", json_string(now));
    json_object_set_new(meta, "RefCount", json_integer(0));
    cleanup_free char *metap = hcs_xasprintf("%s/" LAYER_META, t.path);
    layer_writeback_stop(wb);
    wb = NULL;
    if (syncfs(rootfd) < 0) {
      hcs_error_make(err, errno, "sync `%s`", diff);
      goto out;
    }
    if (layer_write_chain(s, t.path, chain, true, err) < 0 || hcs_json_write_atomic(metap, meta, err) < 0) goto out;
    cleanup_close int lk = layer_store_lock(s, false, err);
    if (lk < 0) goto out;
    /* the parents may have gone while the lock was not held */
    const char *parents[2] = {json_string_value(json_array_get(chain, 0)), NULL};
    cleanup_json json_t *again = layer_resolve_parents(s, parents, err);
    if (again == NULL) goto out;
    if (layer_commit_dir(s, t.path, new_id, true, err) < 0) {
      /* the id names the content: a layer under it holds the same files */
      if (hcs_layer_exists(s, new_id, NULL) != 1) goto out;
      hcs_error_release(err);
    }
    result = hcs_xstrdup(new_id);
  }
out:
  layer_writeback_stop(wb);
  layer_mirror_free(m);
  layer_tmp_done(&t);
  return result;
}

char *hcs_layer_capture_scratch(hcs_layer_store_t *s, const char *id, int threads, hcs_layer_progress_fn progress,
                                void *pdata, hcs_error_t *err) {
  char *new_id = capture_impl(s, id, threads, progress, pdata, err);
  if (new_id == NULL) hcs_error_wrap(err, "capture scratch layer `%s`", id);
  return new_id;
}
