/* Push: each layer goes as the compressed blob the store kept for it
 * (image/blobs.c: the blob it was pulled or imported as, or the export of
 * an earlier push), unchanged; a layer without one is exported (gzip or
 * zstd) by a thread into a pipe and streamed to the registry as a chunked
 * upload (POST, PATCH, PUT ?digest=), the bytes kept as its blob on the
 * way.  Layers transfer in parallel.  A blob the registry already has
 * (HEAD) is skipped, or mounted from another repository of the same
 * registry when the image came from there.  Then the config (monolithic
 * upload) and the OCI manifest (PUT). */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "image/internal.h"
#include "registry/internal.h"

struct pjob {
  struct push *p;
  size_t index;
  const char *layer_id;
  json_t *desc;           /* the manifest's descriptor, once known */
  char diff_id[72];       /* of what was pushed */
  char layer_diff_id[72]; /* the layer's, as the store records it (keys its kept blobs) */
  uint64_t sent, total;
  hcs_error_t err;
};

struct push {
  hcs_image_store_t *s;
  struct reg_client *c;
  hcs_layer_store_t *layers;
  const char *repo, *scope, *mount_from;
  hcs_layer_compression_t compression;
  struct pjob *jobs;
  size_t n, next, finished;
  bool failed, cancelled;
  int *state;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

static const char *media_type(hcs_layer_compression_t c) {
  switch (c) {
  case HCS_LAYER_COMPRESSION_ZSTD: return "application/vnd.oci.image.layer.v1.tar+zstd";
  case HCS_LAYER_COMPRESSION_NONE: return "application/vnd.oci.image.layer.v1.tar";
  default: return "application/vnd.oci.image.layer.v1.tar+gzip";
  }
}

/* An upload URL plus the digest parameter. */
static char *with_digest(const char *location, const char *digest) {
  return hcs_xasprintf("%s%sdigest=%s", location, strchr(location, '?') ? "&" : "?", digest);
}

/* 1 if the registry has the blob (size in *size), 0 if not. */
static int has_blob(struct push *p, const char *digest, uint64_t *size, hcs_error_t *err) {
  cleanup_free char *path = hcs_xasprintf("/v2/%s/blobs/%s", p->repo, digest);
  struct reg_request rq = {.method = "HEAD", .path = path, .scope = p->scope, .body_fd = -1};
  struct reg_response resp = {0};
  if (reg_request(p->c, &rq, &resp, err) < 0) return -1;
  int r = resp.status == 200 ? 1 : 0;
  if (r && size) *size = resp.content_length >= 0 ? (uint64_t)resp.content_length : 0;
  if (resp.status != 200 && resp.status != 404) r = reg_status_error(p->c, path, &resp, err);
  reg_response_free(&resp);
  return r;
}

/* POST an upload session (or a cross-repository mount): 1 mounted, 0 with
 * *location to upload to. */
static int start_upload(struct push *p, const char *mount_digest, char **location, hcs_error_t *err) {
  cleanup_free char *path = NULL;
  if (mount_digest && p->mount_from)
    path = hcs_xasprintf("/v2/%s/blobs/uploads/?mount=%s&from=%s", p->repo, mount_digest, p->mount_from);
  else
    path = hcs_xasprintf("/v2/%s/blobs/uploads/", p->repo);
  struct reg_request rq = {.method = "POST", .path = path, .scope = p->scope, .body_fd = -1};
  struct reg_response resp = {0};
  if (reg_request(p->c, &rq, &resp, err) < 0) return -1;
  int r = -1;
  if (resp.status == 201 && mount_digest)
    r = 1;
  else if (resp.status == 202 && resp.location) {
    *location = steal_ptr(resp.location);
    r = 0;
  } else
    reg_status_error(p->c, "start a blob upload", &resp, err);
  reg_response_free(&resp);
  return r;
}

/* Monolithic upload of a small blob held in memory. */
static int upload_bytes(struct push *p, const char *data, size_t len, const char *digest, hcs_error_t *err) {
  int have = has_blob(p, digest, NULL, err);
  if (have != 0) return have < 0 ? -1 : 0;
  cleanup_free char *loc = NULL;
  if (start_upload(p, NULL, &loc, err) < 0) return -1;
  cleanup_free char *url = with_digest(loc, digest);
  struct reg_request rq = {.method = "PUT",
                           .path = url,
                           .scope = p->scope,
                           .content_type = "application/octet-stream",
                           .body = data,
                           .body_len = len,
                           .body_fd = -1};
  struct reg_response resp = {0};
  if (reg_request(p->c, &rq, &resp, err) < 0) return -1;
  int r = resp.status == 201 ? 0 : reg_status_error(p->c, "upload blob", &resp, err);
  reg_response_free(&resp);
  return r;
}

struct export_arg {
  struct push *p;
  const char *layer_id;
  int fd;
  hcs_layer_export_result_t result;
  hcs_error_t err;
  int rc;
};

static void *export_thread(void *ud) {
  struct export_arg *a = ud;
  /* An upload that ends early closes the read end: EPIPE, not SIGPIPE. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  hcs_layer_export_opts_t eo = {.compression = a->p->compression};
  a->rc = hcs_layer_export(a->p->layers, a->layer_id, a->fd, &eo, &a->result, &a->err);
  close(a->fd);
  return NULL;
}

/* Upload a blob from a file of known size: POST, then one monolithic PUT
 * ?digest= with the body (one request fewer than PATCH + PUT, and no
 * chunked encoding for the registry to undo). */
static int upload_fd(struct pjob *j, int fd, const char *digest, uint64_t size, hcs_error_t *err) {
  struct push *p = j->p;
  cleanup_free char *loc = NULL;
  if (start_upload(p, NULL, &loc, err) < 0) return -1;
  cleanup_free char *url = with_digest(loc, digest);
  struct reg_request rq = {.method = "PUT",
                           .path = url,
                           .scope = p->scope,
                           .content_type = "application/octet-stream",
                           .body_fd = fd,
                           .body_size = size,
                           .sent = &j->sent,
                           .cancel = &p->failed};
  struct reg_response resp = {0};
  if (reg_request(p->c, &rq, &resp, err) < 0) return -1;
  int rc = resp.status == 201 ? 0 : reg_status_error(p->c, "upload layer", &resp, err);
  reg_response_free(&resp);
  return rc;
}

/* The registry has the blob (HEAD), or it mounts from the repository the
 * image came from: 1, else 0. */
static int have_or_mount(struct push *p, const char *digest, uint64_t *size, hcs_error_t *err) {
  int have = has_blob(p, digest, size, err);
  if (have != 0 || p->mount_from == NULL) return have;
  cleanup_free char *loc = NULL;
  return start_upload(p, digest, &loc, err); /* 0: the registry offered an upload instead; abandoned */
}

static void set_desc(struct pjob *j, const char *digest, uint64_t size) {
  j->desc = json_pack("{s:s,s:s,s:I}", "mediaType", media_type(j->p->compression), "digest", digest, "size",
                      (json_int_t)size);
  j->total = size;
}

/* Push the layer's kept compressed blob (image/blobs.c) unchanged, or
 * skip it when the registry has the blob the layer was imported from.
 * 1 done, 0 not. */
static int reuse_blob(struct pjob *j, hcs_error_t *err) {
  struct push *p = j->p;
  cleanup_free char *info = hcs_layer_inspect(p->layers, j->layer_id, err);
  if (info == NULL) return -1;
  cleanup_json json_t *m = hcs_json_parse(info, "layer info", err);
  if (m == NULL) return -1;
  const char *digest = json_string_value(json_object_get(m, "Digest"));
  const char *comp = json_string_value(json_object_get(m, "Compression"));
  const char *diff = json_string_value(json_object_get(m, "DiffID"));
  if (!reg_valid_digest(diff)) return 0;
  snprintf(j->layer_diff_id, sizeof j->layer_diff_id, "%s", diff);
  struct hcs_image_blob_info kept;
  cleanup_close int fd = -1;
  int r = hcs_image_blob_lookup(p->s, diff, p->compression, &kept, &fd, err);
  if (r < 0) return -1;
  if (r == 1) {
    snprintf(j->diff_id, sizeof j->diff_id, "%s", kept.diff_id);
    uint64_t size = kept.size;
    int have = have_or_mount(p, kept.digest, &size, err);
    if (have < 0) return -1;
    if (have == 0) {
      j->total = kept.size;
      if (upload_fd(j, fd, kept.digest, kept.size, err) < 0) return -1;
    }
    set_desc(j, kept.digest, kept.size);
    j->sent = kept.size;
    return 1;
  }
  /* no kept blob (a layer pulled before blobs were kept): the registry may
   * still have the one it came from */
  if (!reg_valid_digest(digest) || comp == NULL || hcs_layer_compression_from_string(comp) != (int)p->compression)
    return 0;
  uint64_t size = (uint64_t)json_integer_value(json_object_get(m, "CompressedSize"));
  int have = have_or_mount(p, digest, &size, err);
  if (have <= 0) return have;
  snprintf(j->diff_id, sizeof j->diff_id, "%s", diff);
  set_desc(j, digest, size);
  j->sent = size;
  return 1;
}

static void tap_blob(void *ud, const void *data, size_t len) { hcs_image_blob_write(ud, data, len); }

static int push_layer(struct pjob *j, hcs_error_t *err) {
  struct push *p = j->p;
  int r = reuse_blob(j, err);
  if (r != 0) return r < 0 ? -1 : 0;
  cleanup_free char *loc = NULL;
  if (start_upload(p, NULL, &loc, err) < 0) return -1;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return hcs_error_make(err, errno, "pipe");
  fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  /* the export is kept as the layer's blob for the next push */
  struct hcs_image_blob blob = {.fd = -1};
  if (p->compression != HCS_LAYER_COMPRESSION_NONE && reg_valid_digest(j->layer_diff_id)) {
    hcs_error_t e = NULL;
    if (hcs_image_blob_begin(p->s, &blob, &e) < 0) {
      hcs_debug("layer `%s`: %s", j->layer_id, hcs_error_message(e));
      hcs_error_release(&e);
    }
  }
  struct export_arg a = {.p = p, .layer_id = j->layer_id, .fd = fds[1]};
  pthread_t t;
  if (pthread_create(&t, NULL, export_thread, &a) != 0) {
    close(fds[0]);
    close(fds[1]);
    hcs_image_blob_abort(&blob);
    return hcs_error_make(err, EAGAIN, "start a thread");
  }
  struct reg_request rq = {.method = "PATCH",
                           .path = loc,
                           .scope = p->scope,
                           .content_type = "application/octet-stream",
                           .body_fd = fds[0],
                           .sent = &j->sent,
                           .cancel = &p->failed,
                           .tap = blob.fd >= 0 ? tap_blob : NULL,
                           .tap_data = &blob};
  struct reg_response resp = {0};
  int rc = reg_request(p->c, &rq, &resp, err);
  close(fds[0]); /* stops the exporter if the upload ended early */
  pthread_join(t, NULL);
  if (a.rc < 0 || rc < 0) hcs_image_blob_abort(&blob);
  if (a.rc < 0) {
    hcs_error_release(err);
    *err = steal_ptr(a.err);
    reg_response_free(&resp);
    return hcs_error_wrap(err, "export layer `%s`", j->layer_id);
  }
  hcs_error_release(&a.err);
  if (rc < 0) return -1;
  if (resp.status != 202 || resp.location == NULL) {
    hcs_image_blob_abort(&blob);
    rc = reg_status_error(p->c, "upload layer", &resp, err);
    reg_response_free(&resp);
    return rc;
  }
  cleanup_free char *url = with_digest(resp.location, a.result.digest);
  reg_response_free(&resp);
  struct reg_request put = {.method = "PUT", .path = url, .scope = p->scope, .body_fd = -1};
  if (reg_request(p->c, &put, &resp, err) < 0) return -1;
  rc = resp.status == 201 ? 0 : reg_status_error(p->c, "finish the layer upload", &resp, err);
  reg_response_free(&resp);
  if (rc < 0) {
    hcs_image_blob_abort(&blob);
    return -1;
  }
  if (blob.fd >= 0) { /* the registry accepted its digest: what was kept is that blob */
    struct hcs_image_blob_info info = {.size = a.result.size};
    snprintf(info.digest, sizeof info.digest, "%s", a.result.digest);
    snprintf(info.diff_id, sizeof info.diff_id, "%s", a.result.diff_id);
    snprintf(info.media_type, sizeof info.media_type, "%s", media_type(p->compression));
    hcs_error_t e = NULL;
    if (hcs_image_blob_commit(p->s, &blob, j->layer_diff_id, &info, &e) < 0) {
      hcs_warning("layer `%s`: keep its blob: %s", j->layer_id, hcs_error_message(e));
      hcs_error_release(&e);
    }
  }
  snprintf(j->diff_id, sizeof j->diff_id, "%s", a.result.diff_id);
  j->desc = json_pack("{s:s,s:s,s:I}", "mediaType", media_type(p->compression), "digest", a.result.digest, "size",
                      (json_int_t)a.result.size);
  j->total = a.result.size;
  return 0;
}

static void *push_worker(void *ud) {
  struct push *p = ud;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    if (p->next >= p->n || p->failed) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    struct pjob *j = &p->jobs[p->next++];
    p->state[j->index] = HCS_REGISTRY_DOWNLOADING;
    pthread_mutex_unlock(&p->mu);
    hcs_error_t e = NULL;
    int rc = push_layer(j, &e);
    pthread_mutex_lock(&p->mu);
    if (rc < 0) {
      hcs_error_wrap(&e, "push layer %zu (`%s`)", j->index + 1, j->layer_id);
      j->err = e;
      p->failed = true;
    }
    p->state[j->index] = HCS_REGISTRY_DONE;
    p->finished++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
}

/* Calls the progress callback; true when it asks to cancel. */
static bool report(struct push *p, const hcs_registry_opts_t *o, const char **names, uint64_t *done, uint64_t *total) {
  if (o == NULL || o->progress == NULL) return false;
  for (size_t i = 0; i < p->n; i++) {
    done[i] = __atomic_load_n(&p->jobs[i].sent, __ATOMIC_RELAXED);
    total[i] = p->jobs[i].total;
  }
  hcs_registry_progress_t pr = {.nlayers = p->n, .digests = names, .done = done, .total = total, .state = p->state};
  return o->progress(&pr, o->progress_data) != 0;
}

/* Push every layer; fills the descriptors and diff ids. */
static int push_layers(struct push *p, const hcs_registry_opts_t *o, hcs_error_t *err) {
  cleanup_free const char **names = hcs_xcalloc(p->n, sizeof *names);
  cleanup_free uint64_t *done = hcs_xcalloc(p->n, sizeof *done), *total = hcs_xcalloc(p->n, sizeof *total);
  for (size_t i = 0; i < p->n; i++)
    names[i] = p->jobs[i].layer_id;
  size_t nthreads = o && o->parallel > 0 ? (size_t)o->parallel : 4;
  if (nthreads > p->n) nthreads = p->n;
  pthread_t threads[64];
  if (nthreads > 64) nthreads = 64;
  size_t started = 0;
  for (; started < nthreads; started++)
    if (pthread_create(&threads[started], NULL, push_worker, p) != 0) break;
  if (started == 0) return hcs_error_make(err, EAGAIN, "start upload threads");
  pthread_mutex_lock(&p->mu);
  while (p->finished < p->n && !p->failed) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 200 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    pthread_mutex_unlock(&p->mu);
    bool cancel = report(p, o, names, done, total);
    pthread_mutex_lock(&p->mu);
    if (cancel && !p->failed) p->failed = p->cancelled = true; /* uploads stop at their next block */
  }
  pthread_mutex_unlock(&p->mu);
  for (size_t i = 0; i < started; i++)
    pthread_join(threads[i], NULL);
  if (p->cancelled) return hcs_error_make(err, ECANCELED, "cancelled");
  if (!p->failed && report(p, o, names, done, total)) return hcs_error_make(err, ECANCELED, "cancelled");
  for (size_t i = 0; i < p->n; i++)
    if (p->jobs[i].err) {
      hcs_error_release(err);
      if (err) *err = steal_ptr(p->jobs[i].err);
      return -1;
    }
  for (size_t i = 0; i < p->n; i++)
    if (p->jobs[i].desc == NULL) return hcs_error_make(err, 0, "layer %zu was not pushed", i + 1);
  return 0;
}

/* The repository of the image's RepoDigests on this registry, if another. */
static char *mount_source(json_t *meta, const struct reg_ref *ref) {
  size_t i;
  json_t *v;
  size_t rl = strlen(ref->registry);
  json_array_foreach(json_object_get(meta, "RepoDigests"), i, v) {
    const char *s = json_string_value(v);
    const char *at = s ? strchr(s, '@') : NULL;
    if (!at || strncmp(s, ref->registry, rl) != 0 || s[rl] != '/') continue;
    char *repo = strndup(s + rl + 1, (size_t)(at - s - rl - 1));
    if (strcmp(repo, ref->repo) != 0) return repo;
    free(repo);
  }
  return NULL;
}

static char *push_image(struct reg_client *c, hcs_image_store_t *s, const char *image, const struct reg_ref *ref,
                        const hcs_registry_opts_t *o, hcs_error_t *err) {
  cleanup_close int lock = hcs_image_lock(s, false, err); /* the layers stay while they are read */
  if (lock < 0) return NULL;
  cleanup_free char *id = hcs_image_resolve_locked(s, image, err);
  if (id == NULL) return NULL;
  cleanup_json json_t *meta = hcs_image_load(s, id, err);
  cleanup_free char *config = NULL;
  size_t clen = 0;
  if (meta == NULL || hcs_image_read_config(s, id, &config, &clen, err) < 0) return NULL;
  json_t *layer_ids = json_object_get(meta, "Layers");
  cleanup_free char *scope = hcs_xasprintf("repository:%s:pull,push", ref->repo);
  cleanup_free char *from = mount_source(meta, ref);
  struct push p = {.s = s,
                   .c = c,
                   .layers = s->layers,
                   .repo = ref->repo,
                   .scope = scope,
                   .mount_from = from,
                   .compression = o && o->compression ? o->compression : HCS_LAYER_COMPRESSION_GZIP,
                   .n = json_array_size(layer_ids)};
  p.jobs = hcs_xcalloc(p.n, sizeof *p.jobs);
  p.state = hcs_xcalloc(p.n, sizeof *p.state);
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.cv, NULL);
  for (size_t i = 0; i < p.n; i++) {
    p.jobs[i].p = &p;
    p.jobs[i].index = i;
    p.jobs[i].layer_id = json_string_value(json_array_get(layer_ids, i));
  }
  char *digest = NULL;
  if (push_layers(&p, o, err) == 0) {
    /* The config names the diff ids of what was pushed (a layer imported
     * from another tool's tar re-exports to other bytes). */
    cleanup_json json_t *cfg = hcs_json_parse(config, "image config", err);
    cleanup_json json_t *diff_ids = json_array(), *descs = json_array();
    for (size_t i = 0; i < p.n; i++) {
      json_array_append_new(diff_ids, json_string(p.jobs[i].diff_id));
      json_array_append(descs, p.jobs[i].desc);
    }
    json_t *rootfs = json_object_get(cfg, "rootfs");
    if (cfg && !json_equal(json_object_get(rootfs, "diff_ids"), diff_ids)) {
      json_object_set(rootfs, "diff_ids", diff_ids);
      free(config);
      config = hcs_json_dumps(cfg);
      clen = strlen(config);
    }
    char cdigest[72], mdigest[72];
    reg_sha256(config, clen, cdigest);
    cleanup_json json_t *manifest = json_pack(
        "{s:i,s:s,s:{s:s,s:s,s:I},s:O}", "schemaVersion", 2, "mediaType", REG_MEDIA_OCI_MANIFEST, "config", "mediaType",
        "application/vnd.oci.image.config.v1+json", "digest", cdigest, "size", (json_int_t)clen, "layers", descs);
    cleanup_free char *mbytes = hcs_json_dumps(manifest);
    reg_sha256(mbytes, strlen(mbytes), mdigest);
    cleanup_free char *mpath = hcs_xasprintf("/v2/%s/manifests/%s", ref->repo, ref->tag ? ref->tag : mdigest);
    struct reg_request rq = {.method = "PUT",
                             .path = mpath,
                             .scope = scope,
                             .content_type = REG_MEDIA_OCI_MANIFEST,
                             .body = mbytes,
                             .body_len = strlen(mbytes),
                             .body_fd = -1};
    struct reg_response resp = {0};
    if (cfg && upload_bytes(&p, config, clen, cdigest, err) == 0 && reg_request(c, &rq, &resp, err) == 0) {
      if (resp.status == 201)
        digest = hcs_xstrdup(mdigest);
      else
        reg_status_error(c, "put the manifest", &resp, err);
    }
    reg_response_free(&resp);
  }
  for (size_t i = 0; i < p.n; i++) {
    json_decref(p.jobs[i].desc);
    hcs_error_release(&p.jobs[i].err);
  }
  free(p.jobs);
  free(p.state);
  pthread_mutex_destroy(&p.mu);
  pthread_cond_destroy(&p.cv);
  return digest;
}

char *hcs_registry_push(hcs_image_store_t *s, const char *image, const char *text, const hcs_registry_opts_t *o,
                        hcs_error_t *err) {
  struct reg_ref ref;
  if (reg_ref_parse(text, &ref, err) < 0) return NULL;
  char *digest = NULL;
  if (ref.digest && ref.tag == NULL)
    hcs_error_make(err, 0, "a push names a tag, not a digest");
  else {
    struct reg_client *c = reg_open(ref.registry, ref.repo, o, err);
    if (c) digest = push_image(c, s, image, &ref, o, err);
    reg_client_free(c);
  }
  if (digest == NULL) hcs_error_wrap(err, "push `%s` to `%s`", image, text);
  reg_ref_free(&ref);
  return digest;
}
