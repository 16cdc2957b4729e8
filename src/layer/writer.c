/* The export side of the layer stream: the tar bytes are hashed (diff id),
 * compressed and hashed again (digest) on their way to the output fd.
 *
 * gzip is compressed pigz-style: the stream is cut into fixed 1 MiB chunks,
 * each deflated on a worker thread with libdeflate (several times faster
 * than zlib) into gzip members (runs of random-looking 4 KiB blocks are
 * stored, not deflated: see looks_random); members are
 * written in order (RFC 1952 allows concatenated members; every gzip reader
 * including Go's accepts them).  The chunking does not depend on the thread
 * count, so the output is the same bytes whatever the machine.  zstd uses
 * libzstd's own workers (ZSTD_c_nbWorkers, deterministic for any count). */
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <libdeflate.h>
#include <zstd.h>

#include "layer/internal.h"

#define WCHUNK (1u << 20)
#define MAX_THREADS 16

enum { JOB_FREE, JOB_QUEUED, JOB_BUSY, JOB_DONE };

struct job {
  int state;
  unsigned char *in, *out;
  size_t in_len, out_len, out_cap;
  bool ok;
};

struct layer_writer {
  int fd;
  hcs_layer_compression_t comp;
  int level;
  EVP_MD_CTX *tar_md, *out_md;
  uint64_t tar_bytes, out_bytes, synced;
  unsigned char *buf; /* the chunk being filled */
  size_t len;
  bool failed;
  char errmsg[256];
  /* gzip */
  int nthreads, njobs;
  pthread_t threads[MAX_THREADS];
  struct job *jobs;
  unsigned next_submit, next_write, next_work;
  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_done;
  bool stop;
  /* zstd */
  ZSTD_CCtx *zc;
  unsigned char *zout;
  size_t zout_cap;
};

static int wfail(struct layer_writer *w, int e, const char *what) {
  if (!w->failed) snprintf(w->errmsg, sizeof w->errmsg, "%s: %s", what, e ? strerror(e) : "failed");
  w->failed = true;
  return -1;
}

static int out_write(struct layer_writer *w, const unsigned char *p, size_t n) {
  if (w->comp != HCS_LAYER_COMPRESSION_NONE) EVP_DigestUpdate(w->out_md, p, n); /* else digest == diff id */
  w->out_bytes += n;
  if (w->fd < 0) return 0; /* digests only (capture: no archive is written) */
  /* start writeback early so the caller's final fsync finds little to do
   * (fails harmlessly on pipes) */
  if (w->out_bytes - w->synced >= (8u << 20)) {
    sync_file_range(w->fd, (off64_t)w->synced, (off64_t)(w->out_bytes - n - w->synced), SYNC_FILE_RANGE_WRITE);
    w->synced = w->out_bytes - n;
  }
  while (n > 0) {
    ssize_t r = write(w->fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return wfail(w, errno, "write layer");
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* Does the chunk look random (already compressed data, encrypted data)?
 * A chi-square test of the byte histogram against the uniform one: random
 * bytes score about 255, anything deflate can shrink scores far higher.
 * Such chunks are stored rather than deflated, which is what deflate would
 * end up doing anyway, at a fraction of the time.  A function of the
 * content alone, so the output stays reproducible. */
static bool looks_random(const unsigned char *p, size_t n) {
  if (n < 4096) return false;
  uint32_t h[256] = {0};
  size_t k = 0;
  for (size_t i = 0; i < n; i += 4, k++)
    h[p[i]]++;
  double expect = (double)k / 256.0, chi2 = 0;
  for (int i = 0; i < 256; i++) {
    double d = (double)h[i] - expect;
    chi2 += d * d / expect;
  }
  return chi2 < 400.0;
}

/* One chunk -> gzip members: runs of 4 KiB blocks that look random are
 * stored, the rest deflated (one member per run).  Small blocks because a
 * layer's random data comes in files of a few KiB between compressible
 * ones: 64 KiB blocks mixed them and caught 3 % of the bytes of
 * gen_tree.py's tree (a third of it random), 4 KiB blocks catch 23 %, and
 * deflating random bytes costs as much CPU as text while gaining nothing
 * (libdeflate then emits stored blocks anyway).  On that tree: 30 % less
 * deflate CPU and a 1.7 % smaller output than with 64 KiB. */
static size_t compress_chunk(struct libdeflate_compressor *c, struct libdeflate_compressor *store, struct job *j) {
  const size_t sub = 4 * 1024;
  size_t off = 0, out = 0;
  while (off < j->in_len) {
    size_t end = off + (j->in_len - off < sub ? j->in_len - off : sub);
    bool r = looks_random(j->in + off, end - off);
    while (end < j->in_len) {
      size_t b = j->in_len - end < sub ? j->in_len - end : sub;
      if (looks_random(j->in + end, b) != r) break;
      end += b;
    }
    size_t n = libdeflate_gzip_compress(r ? store : c, j->in + off, end - off, j->out + out, j->out_cap - out);
    if (n == 0) return 0;
    out += n;
    off = end;
  }
  return out;
}

static void *worker_main(void *arg) {
  struct layer_writer *w = arg;
  struct libdeflate_compressor *c = libdeflate_alloc_compressor(w->level);
  struct libdeflate_compressor *store = libdeflate_alloc_compressor(0);
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->stop && w->jobs[w->next_work % w->njobs].state != JOB_QUEUED)
      pthread_cond_wait(&w->cv_work, &w->mu);
    if (w->stop) break;
    struct job *j = &w->jobs[w->next_work % w->njobs];
    w->next_work++;
    j->state = JOB_BUSY;
    pthread_mutex_unlock(&w->mu);
    j->out_len = c && store ? compress_chunk(c, store, j) : 0;
    pthread_mutex_lock(&w->mu);
    j->ok = j->out_len > 0;
    j->state = JOB_DONE;
    pthread_cond_broadcast(&w->cv_done);
  }
  pthread_mutex_unlock(&w->mu);
  libdeflate_free_compressor(c);
  libdeflate_free_compressor(store);
  return NULL;
}

/* Write out the oldest submitted job once it is compressed. */
static int drain_one(struct layer_writer *w) {
  struct job *j = &w->jobs[w->next_write % w->njobs];
  pthread_mutex_lock(&w->mu);
  while (j->state != JOB_DONE)
    pthread_cond_wait(&w->cv_done, &w->mu);
  pthread_mutex_unlock(&w->mu);
  int r = j->ok ? out_write(w, j->out, j->out_len) : wfail(w, 0, "deflate");
  pthread_mutex_lock(&w->mu);
  j->state = JOB_FREE;
  pthread_mutex_unlock(&w->mu);
  w->next_write++;
  return r;
}

static int submit_gzip(struct layer_writer *w) {
  if (w->next_submit - w->next_write == (unsigned)w->njobs && drain_one(w) < 0) return -1;
  struct job *j = &w->jobs[w->next_submit % w->njobs];
  /* swap buffers: the job takes the filled chunk */
  unsigned char *t = j->in;
  j->in = w->buf;
  w->buf = t;
  j->in_len = w->len;
  w->len = 0;
  pthread_mutex_lock(&w->mu);
  j->state = JOB_QUEUED;
  w->next_submit++;
  pthread_cond_broadcast(&w->cv_work);
  pthread_mutex_unlock(&w->mu);
  return 0;
}

static int zstd_push(struct layer_writer *w, const unsigned char *p, size_t n, ZSTD_EndDirective mode) {
  ZSTD_inBuffer in = {p, n, 0};
  for (;;) {
    ZSTD_outBuffer o = {w->zout, w->zout_cap, 0};
    size_t rem = ZSTD_compressStream2(w->zc, &o, &in, mode);
    if (ZSTD_isError(rem)) {
      snprintf(w->errmsg, sizeof w->errmsg, "zstd: %s", ZSTD_getErrorName(rem));
      w->failed = true;
      return -1;
    }
    if (o.pos && out_write(w, w->zout, o.pos) < 0) return -1;
    if (mode == ZSTD_e_end ? rem == 0 : in.pos == in.size) return 0;
  }
}

/* Hand the filled chunk to the compressor. */
static int flush_chunk(struct layer_writer *w) {
  if (w->len == 0) return 0;
  EVP_DigestUpdate(w->tar_md, w->buf, w->len);
  w->tar_bytes += w->len;
  int r = 0;
  switch (w->comp) {
  case HCS_LAYER_COMPRESSION_NONE:
    r = out_write(w, w->buf, w->len);
    w->len = 0;
    break;
  case HCS_LAYER_COMPRESSION_GZIP: r = submit_gzip(w); break;
  case HCS_LAYER_COMPRESSION_ZSTD:
    r = zstd_push(w, w->buf, w->len, ZSTD_e_continue);
    w->len = 0;
    break;
  }
  return r;
}

struct layer_writer *layer_writer_start(int fd, hcs_layer_compression_t c, int level, int threads, hcs_error_t *err) {
  struct layer_writer *w = hcs_xcalloc(1, sizeof *w);
  w->fd = fd;
  w->comp = c;
  w->tar_md = layer_sha256_new();
  w->out_md = layer_sha256_new();
  w->buf = hcs_xmalloc(WCHUNK);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv_work, NULL);
  pthread_cond_init(&w->cv_done, NULL);
  if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (threads <= 0) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  if (c == HCS_LAYER_COMPRESSION_GZIP) {
    w->level = level > 0 ? (level > 12 ? 12 : level) : 1;
    w->njobs = 2 * threads + 2;
    w->jobs = hcs_xcalloc((size_t)w->njobs, sizeof *w->jobs);
    for (int i = 0; i < w->njobs; i++) {
      w->jobs[i].in = hcs_xmalloc(WCHUNK);
      /* > the sum of libdeflate_gzip_compress_bound over the members of a
       * chunk (at most 256 of 4 KiB: about 1 MiB + 8 KiB) */
      w->jobs[i].out_cap = WCHUNK + WCHUNK / 8 + 4096;
      w->jobs[i].out = hcs_xmalloc(w->jobs[i].out_cap);
    }
    for (int i = 0; i < threads; i++) {
      int e = pthread_create(&w->threads[i], NULL, worker_main, w);
      if (e != 0) {
        layer_writer_free(w);
        hcs_error_make(err, e, "start compression thread");
        return NULL;
      }
      w->nthreads++;
    }
  } else if (c == HCS_LAYER_COMPRESSION_ZSTD) {
    w->level = level > 0 ? level : 3;
    w->zc = ZSTD_createCCtx();
    if (w->zc == NULL) abort();
    ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel, w->level);
    /* a library built without threads refuses: then compress in this thread */
    ZSTD_CCtx_setParameter(w->zc, ZSTD_c_nbWorkers, threads);
    w->zout_cap = ZSTD_CStreamOutSize();
    w->zout = hcs_xmalloc(w->zout_cap);
  }
  return w;
}

int layer_writer_write(struct layer_writer *w, const void *data, size_t n) {
  if (w->failed) return -1;
  const unsigned char *p = data;
  while (n > 0) {
    size_t k = WCHUNK - w->len;
    if (k > n) k = n;
    memcpy(w->buf + w->len, p, k);
    w->len += k;
    p += k;
    n -= k;
    if (w->len == WCHUNK && flush_chunk(w) < 0) return -1;
  }
  return 0;
}

const char *layer_writer_error(struct layer_writer *w) { return w->errmsg; }

int layer_writer_finish(struct layer_writer *w, hcs_layer_export_result_t *res, hcs_error_t *err) {
  if (!w->failed) flush_chunk(w);
  if (w->comp == HCS_LAYER_COMPRESSION_GZIP) {
    while (w->next_write != w->next_submit)
      if (drain_one(w) < 0) break;
  } else if (w->comp == HCS_LAYER_COMPRESSION_ZSTD && !w->failed) {
    zstd_push(w, NULL, 0, ZSTD_e_end);
  }
  if (w->failed) return hcs_error_make(err, 0, "%s", w->errmsg);
  hcs_layer_export_result_t r;
  memset(&r, 0, sizeof r);
  layer_sha256_final(w->tar_md, r.diff_id);
  if (w->comp == HCS_LAYER_COMPRESSION_NONE)
    memcpy(r.digest, r.diff_id, sizeof r.digest);
  else
    layer_sha256_final(w->out_md, r.digest);
  r.size = w->out_bytes;
  r.uncompressed_size = w->tar_bytes;
  if (res) *res = r;
  return 0;
}

void layer_writer_free(struct layer_writer *w) {
  if (w == NULL) return;
  pthread_mutex_lock(&w->mu);
  w->stop = true;
  pthread_cond_broadcast(&w->cv_work);
  pthread_mutex_unlock(&w->mu);
  for (int i = 0; i < w->nthreads; i++)
    pthread_join(w->threads[i], NULL);
  for (int i = 0; w->jobs && i < w->njobs; i++) {
    free(w->jobs[i].in);
    free(w->jobs[i].out);
  }
  free(w->jobs);
  if (w->zc) ZSTD_freeCCtx(w->zc);
  free(w->zout);
  free(w->buf);
  EVP_MD_CTX_free(w->tar_md);
  EVP_MD_CTX_free(w->out_md);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv_work);
  pthread_cond_destroy(&w->cv_done);
  free(w);
}
