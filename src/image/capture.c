/* Capture: a container's scratch layer becomes a new read-only layer and a
 * new image (the seed's "convert a container into an image").  By copy
 * (hcs_layer_capture_scratch: one pass that creates the files and hashes
 * the canonical tar stream, no archive) while the container may keep
 * running, or by moving a stopped container's files
 * (hcs_layer_commit_scratch).  hcs_image_reimport_layer, an export piped
 * into an import, re-canonicalizes any layer (oci.c, install) and is the
 * former capture path (HCS_CAPTURE=reimport). */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "image/internal.h"

struct exporter {
  hcs_layer_store_t *layers;
  const char *id;
  int fd;
  hcs_layer_export_result_t result;
  hcs_error_t err;
  int rc;
};

static void *export_thread(void *arg) {
  struct exporter *x = arg;
  /* A failed import closes the read end: get EPIPE, not a process-wide SIGPIPE. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  hcs_layer_export_opts_t o = {.compression = HCS_LAYER_COMPRESSION_NONE};
  x->rc = hcs_layer_export(x->layers, x->id, x->fd, &o, &x->result, &x->err);
  close(x->fd);
  x->fd = -1;
  return NULL;
}

/* Export layer `src` as a canonical tar piped straight into a new layer on
 * `nearest` (NULL for a base layer).  Returns the new layer id: the chain
 * id of the canonical stream, so re-exporting it reproduces its DiffID
 * byte for byte. */
char *hcs_image_reimport_layer(hcs_image_store_t *s, const char *src, const char *nearest,
                               hcs_layer_progress_fn progress, void *pdata, hcs_error_t *err) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    hcs_error_make(err, errno, "pipe");
    return NULL;
  }
  fcntl(fds[0], F_SETPIPE_SZ, 1 << 20); /* fewer context switches between the two threads */
  struct exporter x = {.layers = s->layers, .id = src, .fd = fds[1]};
  pthread_t th;
  if (pthread_create(&th, NULL, export_thread, &x) != 0) {
    close(fds[0]);
    close(fds[1]);
    hcs_error_make(err, EAGAIN, "start export thread");
    return NULL;
  }
  const char *parents[2] = {nearest, NULL};
  hcs_layer_import_opts_t io = {.parents = nearest ? parents : NULL, .progress = progress, .progress_data = pdata};
  hcs_error_t import_err = NULL;
  char *layer = hcs_layer_import(s->layers, fds[0], &io, &import_err);
  close(fds[0]);
  pthread_join(th, NULL);
  if (x.rc < 0) { /* the export's error explains a broken import stream */
    if (layer) hcs_layer_destroy(s->layers, layer, false, NULL);
    free(layer);
    hcs_error_release(&import_err);
    if (err)
      *err = x.err;
    else
      hcs_error_release(&x.err);
    return NULL;
  }
  hcs_error_release(&x.err);
  if (layer == NULL) {
    if (err)
      *err = import_err;
    else
      hcs_error_release(&import_err);
  }
  return layer;
}

/* HCS_CAPTURE=reimport: the former capture by copy (export piped into an
 * import), kept to check that both give the same layer (the tests compare
 * their digests) and for benchmarks. */
static bool reimport_wanted(void) {
  const char *v = getenv("HCS_CAPTURE");
  return v && strcmp(v, "reimport") == 0;
}

char *hcs_image_capture(hcs_image_store_t *s, const char *scratch_id, const hcs_image_create_opts_t *opts,
                        hcs_error_t *err) {
  if (opts == NULL || opts->name == NULL) {
    hcs_error_make(err, 0, "capture: a name is required");
    return NULL;
  }
  cleanup_free char *info = hcs_layer_inspect(s->layers, scratch_id, err);
  if (info == NULL) {
    hcs_error_wrap(err, "capture `%s`", scratch_id);
    return NULL;
  }
  cleanup_json json_t *meta = hcs_json_parse(info, "layer info", err);
  if (meta == NULL) return NULL;
  const char *kind = json_string_value(json_object_get(meta, "Kind"));
  if (kind == NULL || strcmp(kind, "scratch") != 0) {
    hcs_error_make(err, 0, "capture `%s`: not a scratch layer", scratch_id);
    return NULL;
  }
  const char *nearest = json_string_value(json_array_get(json_object_get(meta, "Parents"), 0));
  /* The lease protects the new layer from a concurrent prune until the
   * image holds it; after a kill, a copy's layer is collected, a move's
   * changes go back into the scratch (see gc.c). */
  struct hcs_image_lease lease;
  if (hcs_image_lease_begin(s, opts->move_scratch ? "commit" : "capture", true, nearest,
                            opts->move_scratch ? scratch_id : NULL, &lease, err) < 0)
    return NULL;
  char *layer = NULL;
  if (opts->move_scratch) {
    layer = hcs_layer_commit_scratch(s->layers, scratch_id, opts->progress, opts->progress_data, err);
  } else if (opts->pause == NULL || opts->pause(opts->pause_data, true, err) == 0) {
    if (reimport_wanted())
      layer = hcs_image_reimport_layer(s, scratch_id, nearest, opts->progress, opts->progress_data, err);
    else
      layer = hcs_layer_capture_scratch(s->layers, scratch_id, 0, opts->progress, opts->progress_data, err);
    cleanup_error hcs_error_t perr = NULL;
    if (opts->pause && opts->pause(opts->pause_data, false, &perr) < 0 && layer) {
      /* a capture that leaves its system paused has failed: the layer goes */
      hcs_layer_destroy(s->layers, layer, false, NULL);
      free(steal_ptr(layer));
      if (err) {
        *err = steal_ptr(perr);
        hcs_error_wrap(err, "resume the system");
      }
    }
  } else {
    hcs_error_wrap(err, "pause the system");
  }
  if (layer == NULL) {
    hcs_image_lease_end(s, &lease, false);
    hcs_error_wrap(err, "capture `%s`", scratch_id);
    return NULL;
  }
  char *id = NULL;
  if (opts->move_scratch || hcs_image_lease_add(&lease, layer, err) == 0) {
    hcs_image_create_opts_t co = *opts;
    co.layer_id = layer;
    id = hcs_image_create(s, &co, err);
  }
  if (id == NULL && opts->move_scratch) /* never lose the changes: the layer stays, named in the error */
    hcs_error_wrap(err, "capture `%s`: the changes are kept in layer `%s`", scratch_id, layer);
  if (id == NULL && !opts->move_scratch) {
    cleanup_error hcs_error_t e = NULL;
    int lock = hcs_image_lock(s, true, &e);
    if (lock >= 0) { /* collected under the lock */
      hcs_image_lease_end(s, &lease, true);
      close(lock);
    } else { /* left as a dead lease: collected when the store next opens */
      close(lease.lockfd);
      json_decref(lease.doc);
      free(lease.path);
    }
  } else {
    hcs_image_lease_end(s, &lease, false);
  }
  free(layer);
  return id;
}
