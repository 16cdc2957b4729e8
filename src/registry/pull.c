/* Pull (Install-ContainerImage): the layers of an image download in
 * parallel, each streamed through a pipe into the layer importer, which
 * decompresses, hashes (digest and diff id) and unpacks in one pass.  A
 * layer commits only after both digests matched and its parent committed,
 * so layers extract in parallel and appear in chain order.  A transfer cut
 * short resumes with a Range request.  The layers are made durable by one
 * syncfs for the whole pull (sync_point), not one each.  The layers a pull
 * makes are named in an image store lease (images/.leases, see gc.c)
 * before any is made: a live lease protects them from a concurrent prune,
 * a failed pull collects them, and the next store open collects those of
 * a killed one. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "image/internal.h"
#include "registry/internal.h"

#define RETRIES 3

struct job {
  struct pull *p;
  size_t index;
  const char *digest, *diff_id, *media_type;
  uint64_t size;
  char *id, *parent_id; /* chain id hex of the layer and its parent */
  int pipe_w;
  uint64_t got;               /* bytes received (atomic) */
  bool slot;                  /* holds one of the `parallel` transfer slots (p->mu) */
  struct hcs_image_blob blob; /* the compressed bytes, kept for push and save */
  hcs_error_t err;
};

struct pull {
  hcs_image_store_t *s;
  struct reg_client *c;
  hcs_layer_store_t *layers;
  const char *repo, *scope;
  struct job *jobs;
  size_t n;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  size_t next;    /* next job to start */
  size_t running; /* jobs holding a transfer slot: downloading or extracting */
  size_t slots;   /* transfers at once (--parallel) */
  bool synced;    /* the pull's one syncfs is done (sync_rc its result) */
  bool syncing;
  int sync_rc;
  hcs_error_t sync_err;
  bool *committed; /* per layer: present in the store */
  bool failed;     /* a job failed or the caller cancelled: the others stop */
  bool cancelled;
  size_t finished; /* jobs finished (either way) */
  int *state;
};

static void job_fail(struct job *j, hcs_error_t *e) {
  if (j->err == NULL) {
    j->err = *e;
    *e = NULL;
  }
  hcs_error_release(e);
  pthread_mutex_lock(&j->p->mu);
  j->p->failed = true;
  pthread_cond_broadcast(&j->p->cv);
  pthread_mutex_unlock(&j->p->mu);
}

/* Bytes from curl into the pipe; a closed pipe (importer failed) or a
 * failed sibling stops the transfer. */
static size_t sink(const void *data, size_t len, void *ud) {
  struct job *j = ud;
  if (__atomic_load_n(&j->p->failed, __ATOMIC_RELAXED)) return 0;
  uint64_t got = __atomic_load_n(&j->got, __ATOMIC_RELAXED);
  if (got + len > j->size) return 0; /* longer than the descriptor says */
  const char *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(j->pipe_w, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return 0;
    p += w;
    left -= (size_t)w;
  }
  hcs_image_blob_write(&j->blob, data, len); /* the same bytes, in order (a resume continues at `got`) */
  __atomic_add_fetch(&j->got, len, __ATOMIC_RELAXED);
  return len;
}

/* The importer waits here until the parent layer has been committed. */
static int before_commit(void *ud, hcs_error_t *err) {
  struct job *j = ud;
  struct pull *p = j->p;
  pthread_mutex_lock(&p->mu);
  while (j->index > 0 && !p->committed[j->index - 1] && !p->failed)
    pthread_cond_wait(&p->cv, &p->mu);
  bool failed = p->failed;
  pthread_mutex_unlock(&p->mu);
  if (failed) return hcs_error_make(err, ECANCELED, "layer %zu: another layer failed", j->index + 1);
  return 0;
}

/* Called by each importer once its files are extracted and verified (the
 * layer's sync hook).  The job gives its transfer slot up, so the next
 * layer starts downloading, and waits until every layer of the pull got
 * here: the last one to arrive runs one syncfs for them all, which makes
 * every layer's files (and the kept blobs' bytes) durable before any
 * layer commits.  Extracted layers thus wait for the slowest instead of
 * each flushing the whole file system (everybody's dirty data) itself. */
static int sync_point(void *ud, int dirfd, hcs_error_t *err) {
  struct job *j = ud;
  struct pull *p = j->p;
  pthread_mutex_lock(&p->mu);
  if (j->slot) {
    j->slot = false;
    p->running--;
  }
  pthread_cond_broadcast(&p->cv);
  while (!p->synced && !p->failed) {
    if (!p->syncing && p->running == 0 && p->next >= p->n) {
      p->syncing = true;
      pthread_mutex_unlock(&p->mu);
      hcs_error_t e = NULL;
      int rc = syncfs(dirfd) < 0 ? hcs_error_make(&e, errno, "sync the layers of the pull") : 0;
      pthread_mutex_lock(&p->mu);
      p->syncing = false;
      p->synced = true;
      p->sync_rc = rc;
      p->sync_err = e;
      pthread_cond_broadcast(&p->cv);
      break;
    }
    pthread_cond_wait(&p->cv, &p->mu);
  }
  int rc = 0;
  if (p->synced && p->sync_rc < 0) {
    rc = hcs_error_make(err, hcs_error_status(p->sync_err), "%s", hcs_error_message(p->sync_err));
  } else if (!p->synced) {
    rc = hcs_error_make(err, ECANCELED, "layer %zu: another layer failed", j->index + 1);
  }
  pthread_mutex_unlock(&p->mu);
  return rc;
}

struct import_arg {
  struct job *j;
  int fd;
  char *result;
  hcs_error_t err;
};

static void *import_thread(void *ud) {
  struct import_arg *a = ud;
  struct job *j = a->j;
  const char *parents[2] = {j->parent_id, NULL};
  hcs_layer_import_opts_t io = {.id = j->id,
                                .parents = j->parent_id ? parents : NULL,
                                .expect_diff_id = j->diff_id,
                                .expect_digest = j->digest,
                                .before_commit = before_commit,
                                .before_commit_data = j,
                                .sync = sync_point,
                                .sync_data = j};
  a->result = hcs_layer_import(j->p->layers, a->fd, &io, &a->err);
  close(a->fd);
  return NULL;
}

/* Download one blob into the pipe, resuming with Range after a cut. */
static int download(struct job *j, hcs_error_t *err) {
  struct pull *p = j->p;
  cleanup_free char *path = hcs_xasprintf("/v2/%s/blobs/%s", p->repo, j->digest);
  for (int attempt = 0;; attempt++) {
    uint64_t from = __atomic_load_n(&j->got, __ATOMIC_RELAXED);
    struct reg_request rq = {.method = "GET",
                             .path = path,
                             .scope = p->scope,
                             .body_fd = -1,
                             .sink = sink,
                             .sink_data = j,
                             .resume_from = from};
    struct reg_response resp = {0};
    hcs_error_t e = NULL;
    int rc = reg_request(p->c, &rq, &resp, &e);
    uint64_t got = __atomic_load_n(&j->got, __ATOMIC_RELAXED);
    if (rc == 0 && resp.status >= 300) {
      reg_status_error(p->c, path, &resp, &e);
      rc = -1;
      attempt = RETRIES; /* an HTTP error is an answer, not a cut */
    }
    reg_response_free(&resp);
    if (__atomic_load_n(&p->failed, __ATOMIC_RELAXED)) {
      hcs_error_release(&e);
      return hcs_error_make(err, ECANCELED, "layer %zu: another layer failed", j->index + 1);
    }
    if (rc == 0 && got == j->size) return 0;
    if (rc == 0 && got > j->size)
      return hcs_error_make(err, 0, "blob `%s` is longer than the %llu bytes its descriptor says", j->digest,
                            (unsigned long long)j->size);
    if (rc == 0)
      hcs_error_make(&e, 0, "GET `%s`: the registry sent %llu of %llu bytes", path, (unsigned long long)got,
                     (unsigned long long)j->size);
    /* A timeout is final (the registry stalled); a cut connection resumes
     * from where it stopped, while it makes progress. */
    if (attempt >= RETRIES || hcs_error_status(e) == ETIMEDOUT || (attempt > 0 && got == from)) {
      *err = e;
      return -1;
    }
    hcs_debug("blob `%s`: %s; resume at byte %llu", j->digest, hcs_error_message(e), (unsigned long long)got);
    hcs_error_release(&e);
  }
}

static void run_job(struct job *j) {
  struct pull *p = j->p;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    hcs_error_t e = NULL;
    hcs_error_make(&e, errno, "pipe");
    job_fail(j, &e);
    return;
  }
  fcntl(fds[1], F_SETPIPE_SZ, 1 << 20); /* fewer wake-ups between curl and the importer */
  j->blob.fd = -1;
  if (hcs_image_blob_compression(j->media_type) != HCS_LAYER_COMPRESSION_NONE) {
    hcs_error_t e = NULL;
    if (hcs_image_blob_begin(p->s, &j->blob, &e) < 0) { /* the pull goes on without it */
      hcs_debug("layer %zu: %s", j->index + 1, hcs_error_message(e));
      hcs_error_release(&e);
    }
  }
  struct import_arg a = {.j = j, .fd = fds[0]};
  j->pipe_w = fds[1];
  pthread_t t;
  if (pthread_create(&t, NULL, import_thread, &a) != 0) {
    close(fds[0]);
    close(fds[1]);
    hcs_image_blob_abort(&j->blob);
    hcs_error_t e = NULL;
    hcs_error_make(&e, EAGAIN, "start a thread");
    job_fail(j, &e);
    return;
  }
  hcs_error_t derr = NULL;
  int rc = download(j, &derr);
  close(fds[1]); /* EOF for the importer, or a short stream after a failure */
  pthread_join(t, NULL);
  if (rc == 0 && a.result && j->blob.fd >= 0) {
    /* verified by the importer (expect_digest) and its layer committed:
     * mapping, then name (see image/blobs.c) */
    struct hcs_image_blob_info info = {.size = j->size};
    snprintf(info.digest, sizeof info.digest, "%s", j->digest);
    snprintf(info.diff_id, sizeof info.diff_id, "%s", j->diff_id);
    snprintf(info.media_type, sizeof info.media_type, "%s", j->media_type);
    hcs_error_t e = NULL;
    if (hcs_image_blob_commit(p->s, &j->blob, j->diff_id, &info, &e) < 0) {
      hcs_warning("layer %zu: keep its blob: %s", j->index + 1, hcs_error_message(e));
      hcs_error_release(&e);
    }
  } else {
    hcs_image_blob_abort(&j->blob);
  }
  if (a.result) hcs_pause_point("pull: layer committed"); /* tests: a kill between two layers' commits */
  pthread_mutex_lock(&p->mu);
  if (j->slot) { /* failed before its sync point */
    j->slot = false;
    p->running--;
  }
  p->state[j->index] = a.result ? HCS_REGISTRY_DONE : p->state[j->index];
  if (a.result) p->committed[j->index] = true;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  /* The download error explains a failed import (a short stream). */
  if (rc < 0) {
    hcs_error_release(&a.err);
    hcs_error_wrap(&derr, "layer %zu (`%s`)", j->index + 1, j->digest);
    job_fail(j, &derr);
  } else if (a.result == NULL) {
    hcs_error_wrap(&a.err, "layer %zu (`%s`)", j->index + 1, j->digest);
    job_fail(j, &a.err);
  }
  free(a.result);
}

/* One thread per missing layer: it waits for a transfer slot in chain
 * order (at most `slots` download and extract at once), then runs its
 * layer, which hands the slot on at its sync point and commits after. */
static void *worker(void *ud) {
  struct job *j = ud;
  struct pull *p = j->p;
  /* An importer that fails closes its end of the pipe: the write gets
   * EPIPE, not a process-wide SIGPIPE. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  pthread_mutex_lock(&p->mu);
  while (!p->failed && (p->next != j->index || p->running >= p->slots))
    pthread_cond_wait(&p->cv, &p->mu);
  bool go = !p->failed;
  if (go) {
    j->slot = true;
    p->running++;
    for (p->next++; p->next < p->n && p->committed[p->next]; p->next++)
      ;
    p->state[j->index] = HCS_REGISTRY_DOWNLOADING;
    pthread_cond_broadcast(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  if (go) run_job(j);
  pthread_mutex_lock(&p->mu);
  p->finished++;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Calls the progress callback; true when it asks to cancel. */
static bool report(struct pull *p, const hcs_registry_opts_t *o, const char **digests, uint64_t *done,
                   uint64_t *total) {
  if (o == NULL || o->progress == NULL) return false;
  for (size_t i = 0; i < p->n; i++)
    if (p->state[i] == HCS_REGISTRY_DOWNLOADING || p->state[i] == HCS_REGISTRY_DONE)
      done[i] = __atomic_load_n(&p->jobs[i].got, __ATOMIC_RELAXED);
  hcs_registry_progress_t pr = {.nlayers = p->n, .digests = digests, .done = done, .total = total, .state = p->state};
  return o->progress(&pr, o->progress_data) != 0;
}

/* Download and import every missing layer; returns the layer ids. */
static json_t *pull_layers(hcs_image_store_t *s, struct reg_client *c, const struct reg_ref *ref, struct reg_image *img,
                           const hcs_registry_opts_t *o, struct hcs_image_lease *lease, hcs_error_t *err) {
  json_t *layers = json_object_get(img->manifest, "layers");
  json_t *diff_ids = json_object_get(json_object_get(img->cfg, "rootfs"), "diff_ids");
  size_t n = json_array_size(layers);
  cleanup_free char *scope = hcs_xasprintf("repository:%s:pull", ref->repo);
  struct pull p = {.s = s, .c = c, .layers = s->layers, .repo = ref->repo, .scope = scope, .n = n};
  p.jobs = hcs_xcalloc(n, sizeof *p.jobs);
  p.committed = hcs_xcalloc(n, sizeof *p.committed);
  p.state = hcs_xcalloc(n, sizeof *p.state);
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.cv, NULL);
  cleanup_free const char **digests = hcs_xcalloc(n, sizeof *digests);
  cleanup_free uint64_t *done = hcs_xcalloc(n, sizeof *done), *total = hcs_xcalloc(n, sizeof *total);
  json_t *ids = json_array();
  char *chain = NULL;
  size_t missing = 0;
  for (size_t i = 0; i < n; i++) {
    json_t *l = json_array_get(layers, i);
    struct job *j = &p.jobs[i];
    j->p = &p;
    j->index = i;
    j->digest = json_string_value(json_object_get(l, "digest"));
    j->media_type = json_string_value(json_object_get(l, "mediaType"));
    j->size = (uint64_t)json_integer_value(json_object_get(l, "size"));
    j->diff_id = json_string_value(json_array_get(diff_ids, i));
    j->pipe_w = -1;
    j->parent_id = chain ? hcs_xstrdup(chain + 7) : NULL;
    char *next = hcs_layer_chain_id(chain, j->diff_id);
    free(chain);
    chain = next;
    j->id = hcs_xstrdup(chain + 7);
    json_array_append_new(ids, json_string(j->id));
    digests[i] = j->digest;
    total[i] = j->size;
    int exists = hcs_layer_exists(s->layers, j->id, err);
    if (exists < 0) goto fail;
    p.committed[i] = exists == 1;
    p.state[i] = exists ? HCS_REGISTRY_PRESENT : HCS_REGISTRY_WAITING;
    if (exists) done[i] = j->size;
    missing += !exists;
  }
  if (missing > 0) {
    /* Named in the lease before they exist: a kill at any point leaves
     * them to the next store open. */
    if (hcs_image_lease_begin(s, "pull", false, NULL, NULL, lease, err) < 0) goto fail;
    for (size_t i = 0; i < n; i++)
      if (!p.committed[i] && hcs_image_lease_add(lease, p.jobs[i].id, err) < 0) goto fail;
    p.slots = o && o->parallel > 0 ? (size_t)o->parallel : 4;
    while (p.next < n && p.committed[p.next])
      p.next++;
    pthread_t *threads = hcs_xcalloc(missing, sizeof *threads);
    size_t started = 0;
    for (size_t i = 0; i < n; i++) {
      if (p.committed[i]) continue;
      if (pthread_create(&threads[started], NULL, worker, &p.jobs[i]) != 0) break;
      started++;
    }
    if (started < missing) { /* the threads that started give up */
      pthread_mutex_lock(&p.mu);
      p.failed = true;
      pthread_cond_broadcast(&p.cv);
      pthread_mutex_unlock(&p.mu);
      for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
      free(threads);
      hcs_error_make(err, EAGAIN, "start download threads");
      goto fail;
    }
    /* The calling thread reports progress (callbacks may run Lua). */
    pthread_mutex_lock(&p.mu);
    for (;;) {
      if (p.finished == missing || p.failed) break;
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 200 * 1000 * 1000;
      if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
      pthread_cond_timedwait(&p.cv, &p.mu, &ts);
      pthread_mutex_unlock(&p.mu);
      bool cancel = report(&p, o, digests, done, total);
      pthread_mutex_lock(&p.mu);
      if (cancel && !p.failed) { /* the transfers stop at their next block */
        p.failed = p.cancelled = true;
        pthread_cond_broadcast(&p.cv);
      }
    }
    pthread_mutex_unlock(&p.mu);
    for (size_t i = 0; i < started; i++)
      pthread_join(threads[i], NULL);
    free(threads);
    if (!p.failed && report(&p, o, digests, done, total)) p.failed = p.cancelled = true;
    for (size_t i = 0; i < n && !p.failed; i++)
      if (!p.committed[i]) p.failed = true; /* a worker could not start */
    if (p.cancelled) {
      hcs_error_make(err, ECANCELED, "pull `%s`: cancelled", ref->repo);
      goto fail;
    }
    if (p.failed) {
      /* The first layer's error in chain order that is not a knock-on. */
      hcs_error_t *first = NULL;
      for (size_t i = 0; i < n; i++)
        if (p.jobs[i].err && (first == NULL || hcs_error_status(*first) == ECANCELED)) first = &p.jobs[i].err;
      if (first && err) {
        hcs_error_release(err);
        *err = steal_ptr(*first);
      } else if (first == NULL) {
        hcs_error_make(err, 0, "pull `%s`: a layer was not downloaded", ref->repo);
      }
      goto fail;
    }
  }
  goto out;
fail: /* the caller collects the layers of the lease */
  json_decref(ids);
  ids = NULL;
out:
  for (size_t i = 0; i < n; i++) {
    free(p.jobs[i].id);
    free(p.jobs[i].parent_id);
    hcs_error_release(&p.jobs[i].err);
  }
  hcs_error_release(&p.sync_err);
  free(chain);
  free(p.jobs);
  free(p.committed);
  free(p.state);
  pthread_mutex_destroy(&p.mu);
  pthread_cond_destroy(&p.cv);
  return ids;
}

/* Record the image over its layers, with its RepoDigests (lock held). */
static char *record(hcs_image_store_t *s, const struct reg_ref *ref, struct reg_image *img, json_t *ids,
                    const hcs_registry_opts_t *o, hcs_error_t *err) {
  cleanup_free char *name = o && o->name ? hcs_xstrdup(o->name) : reg_ref_name(ref);
  const char *tag = o && o->tag ? o->tag : ref->tag;
  cleanup_free char *local_name = NULL, *local_tag = NULL;
  if (tag) {
    cleanup_free char *full = hcs_xasprintf("%s:%s", name, tag);
    if (hcs_image_parse_ref(full, &local_name, &local_tag, err) < 0) return NULL;
  }
  json_t *ann = json_object_get(img->manifest, "annotations");
  struct hcs_image_meta meta = {.name = local_name,
                                .tag = local_tag,
                                .publisher = json_string_value(json_object_get(ann, "org.opencontainers.image.vendor")),
                                .is_os = json_array_size(ids) == 1};
  cleanup_free char *id = hcs_image_record(s, img->config, img->config_len, ids, &meta, err);
  if (id == NULL) return NULL;
  /* RepoDigests: what the reference named (the index of a multi-platform tag). */
  cleanup_json json_t *m = hcs_image_load(s, id, err);
  if (m == NULL) return NULL;
  cleanup_free char *rd = hcs_xasprintf("%s/%s@%s", ref->registry, ref->repo, img->top_digest);
  json_t *rds = json_object_get(m, "RepoDigests");
  if (!json_is_array(rds)) {
    rds = json_array();
    json_object_set_new(m, "RepoDigests", rds);
  }
  bool have = false;
  size_t i;
  json_t *v;
  json_array_foreach(rds, i, v) have |= strcmp(json_string_value(v), rd) == 0;
  if (!have) json_array_append_new(rds, json_string(rd));
  if (hcs_image_store_meta(s, m, err) < 0) return NULL;
  cleanup_json json_t *sum = hcs_image_summary_of(s, id, err);
  return sum ? hcs_json_dumps(sum) : NULL;
}

char *hcs_registry_pull(hcs_image_store_t *s, const char *text, const hcs_registry_opts_t *o, hcs_error_t *err) {
  struct reg_ref ref;
  if (reg_ref_parse(text, &ref, err) < 0) return NULL;
  char *out = NULL;
  struct reg_image img = {0};
  cleanup_json json_t *ids = NULL;
  struct hcs_image_lease lease = {.path = NULL, .lockfd = -1};
  struct reg_ref src = {0}; /* where it comes from: a mirror's repository, or ref */
  struct reg_client *c = reg_open_pull(&ref, o, &src, &img, err);
  if (c == NULL) goto done;
  ids = pull_layers(s, c, &src, &img, o, &lease, err);
  {
    cleanup_close int lock = ids || lease.path ? hcs_image_lock(s, true, err) : -1;
    if (ids && lock >= 0) out = record(s, &ref, &img, ids, o, err);
    /* a failed pull leaves no layer it made that no image uses */
    if (lock >= 0) {
      hcs_image_lease_end(s, &lease, out == NULL);
    } else if (lease.path) { /* left as a dead lease: the next store open collects its layers */
      close(lease.lockfd);
      json_decref(lease.doc);
      free(lease.path);
    }
  }
done:
  reg_image_free(&img);
  reg_client_free(c);
  reg_ref_free(&src);
  if (out == NULL) hcs_error_wrap(err, "pull `%s`", text);
  reg_ref_free(&ref);
  return out;
}
