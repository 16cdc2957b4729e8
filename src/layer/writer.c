/* The export side of the layer stream: the tar bytes are hashed (diff id),
 * compressed and hashed again (digest) on their way to the output fd.
 *
 * gzip is compressed pigz-style: the stream is cut into fixed 1 MiB chunks,
 * each deflated on a worker thread into gzip members, written in order
 * (RFC 1952 allows concatenated members; every gzip reader including Go's
 * accepts them).  The default deflater is ISA-L's stateless deflate at its
 * level 1 (about three times libdeflate's level 1 speed, a few percent
 * bigger); `level` 1 and 2 are ISA-L's levels 1 and 2, 3 to 12 libdeflate's
 * (ISA-L's level 3 is left out: its AVX2 and AVX-512 code find different
 * matches, see ISAL_MAX_LEVEL).  The exporter tells which bytes are file
 * data that looks random (layer_writer_write_stored): those spans are
 * stored in members of their own, not deflated, which is what deflate
 * would end up doing at a fraction of the time.  The chunking does not
 * depend on the thread count, and the spans depend on the content alone,
 * so the output is the same bytes whatever the thread count, and whatever
 * the x86-64 machine with SSE4.2 for a given ISA-L version (docs/layers.md
 * says where ISA-L's bytes can differ).  zstd uses libzstd's own workers
 * (ZSTD_c_nbWorkers, deterministic for any count).
 *
 * Both hashes run on threads of their own (hasher.c): on the walking
 * thread, the tar stream's sha256 alone was a quarter of a capture's
 * critical path.  A buffer handed to a hasher is reused only once its
 * ticket is done: the chunk buffers go round a ring (or through the gzip
 * jobs), and so do zstd's output buffers. */
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <zstd.h>

#include "layer/internal.h"

#define WCHUNK (1u << 20)
#define MAX_THREADS 16
/* chunk buffers (plain and zstd) and zstd output buffers in flight to the hashers */
#define NRING 4
/* The gzip levels: 1 and 2 are ISA-L's, above are libdeflate's.  ISA-L's
 * levels 1 and 2 give the same bytes with its SSE4.2, AVX, AVX2 and
 * AVX-512 code on x86-64 (an experiment interposing its dispatcher,
 * docs/layers.md); its level 3 does not (the AVX2 and AVX-512 match
 * finders differ), so it is not offered. */
#define ISAL_MAX_LEVEL 2
#define GZIP_MAX_LEVEL 12
#define GZIP_DEFAULT_LEVEL 1
#define ZSTD_MAX_LEVEL 22
/* The level buffer decides how the input is cut into deflate blocks, so
 * its size is part of the output format: fixed, never from the machine. */
static const uint32_t isal_lvl_buf[ISAL_MAX_LEVEL + 1] = {0, ISAL_DEF_LVL1_DEFAULT, ISAL_DEF_LVL2_DEFAULT};
/* The gzip member header of ISA-L members: no name, mtime 0, XFL 4
 * (fastest), OS 255 (unknown) -- what libdeflate writes at level 1. */
static const unsigned char gzip_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff};

enum { JOB_FREE, JOB_QUEUED, JOB_BUSY, JOB_DONE };

/* A span of the stream to store, [start, end): absolute offsets in the
 * writer's pending list, offsets in the chunk in a job's. */
struct span {
  uint64_t start, end;
};

struct job {
  int state;
  unsigned char *in, *out;
  uint64_t in_ticket, out_ticket; /* of the hashers: in and out are free once done */
  size_t in_len, out_len, out_cap;
  struct span *spans;
  size_t nspans, spans_cap;
  bool ok;
};

struct layer_writer {
  int fd;
  hcs_layer_compression_t comp;
  int level;
  struct layer_hasher *tar_hash, *out_hash;
  uint64_t tar_bytes, out_bytes, synced;
  unsigned char *buf;         /* the chunk being filled */
  unsigned char *ring[NRING]; /* plain and zstd: buf is ring[cur]; gzip: buf is its own */
  uint64_t ring_ticket[NRING];
  unsigned cur;
  size_t len;
  struct span *spans; /* to store, not yet handed to a job */
  size_t nspans, spans_cap;
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
  unsigned char *zout[NRING];
  uint64_t zout_ticket[NRING];
  unsigned zcur;
  size_t zout_cap;
};

static int wfail(struct layer_writer *w, int e, const char *what) {
  if (!w->failed) snprintf(w->errmsg, sizeof w->errmsg, "%s: %s", what, e ? strerror(e) : "failed");
  w->failed = true;
  return -1;
}

/* p stays untouched until *ticket is done (compressed output: hashed aside;
 * plain: its digest is the diff id). */
static int out_write(struct layer_writer *w, const unsigned char *p, size_t n, uint64_t *ticket) {
  if (w->comp != HCS_LAYER_COMPRESSION_NONE) *ticket = layer_hasher_submit(w->out_hash, p, n);
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

/* Does this file data look random (already compressed data, encrypted
 * data)?  A chi-square test of the byte histogram against the uniform one,
 * on about 2,000 bytes sampled at an odd stride (an even one would see
 * only some bytes of 2-, 4- or 8-byte records): random bytes score about
 * 255 (standard deviation 23), anything deflate can shrink scores far
 * higher.  A function of the content alone, so the output stays
 * reproducible. */
bool layer_looks_random(const unsigned char *p, size_t n) {
  if (n < 4096) return false;
  size_t stride = n / 2048 > 3 ? (n / 2048) | 1 : 3;
  uint32_t h[256] = {0};
  size_t k = 0;
  for (size_t i = 0; i < n; i += stride, k++)
    h[p[i]]++;
  double expect = (double)k / 256.0, chi2 = 0;
  for (int i = 0; i < 256; i++) {
    double d = (double)h[i] - expect;
    chi2 += d * d / expect;
  }
  return chi2 < 400.0;
}

/* A worker's deflater: ISA-L at isal_level (its stream state and level
 * buffer are the worker's own), or libdeflate at the writer's level; both
 * keep a libdeflate level-0 compressor for the stored members. */
struct deflater {
  int isal_level; /* 0: libdeflate */
  struct libdeflate_compressor *c, *store;
  struct isal_zstream *zs;
  unsigned char *lvl_buf;
};

static bool deflater_init(struct deflater *d, int level) {
  memset(d, 0, sizeof *d);
  d->store = libdeflate_alloc_compressor(0);
  if (level <= ISAL_MAX_LEVEL) {
    d->isal_level = level;
    d->zs = hcs_xmalloc(sizeof *d->zs);
    d->lvl_buf = hcs_xmalloc(isal_lvl_buf[level]);
    return d->store != NULL;
  }
  d->c = libdeflate_alloc_compressor(level);
  return d->store != NULL && d->c != NULL;
}

static void deflater_free(struct deflater *d) {
  libdeflate_free_compressor(d->c);
  libdeflate_free_compressor(d->store);
  free(d->zs);
  free(d->lvl_buf);
}

/* Room for one member of n bytes: ISA-L falls back to stored blocks (5
 * bytes each per 64 KiB) when that is smaller, and needs room for them. */
static size_t member_bound(struct deflater *d, bool store, size_t n) {
  if (store || d->isal_level == 0) return libdeflate_gzip_compress_bound(store ? d->store : d->c, n);
  return sizeof gzip_header + n + 5 * (n / 65535 + 1) + 8;
}

/* One gzip member of in[0, n) at out; its size, 0 on failure. */
static size_t member(struct deflater *d, bool store, const unsigned char *in, size_t n, unsigned char *out,
                     size_t cap) {
  if (store || d->isal_level == 0) return libdeflate_gzip_compress(store ? d->store : d->c, in, n, out, cap);
  struct isal_zstream *zs = d->zs;
  memcpy(out, gzip_header, sizeof gzip_header);
  isal_deflate_stateless_init(zs);
  zs->level = (uint32_t)d->isal_level;
  zs->level_buf = d->lvl_buf;
  zs->level_buf_size = isal_lvl_buf[d->isal_level];
  zs->gzip_flag = IGZIP_GZIP_NO_HDR; /* our header; ISA-L writes the CRC and size trailer */
  zs->end_of_stream = 1;
  zs->flush = NO_FLUSH;
  zs->next_in = (uint8_t *)in;
  zs->avail_in = (uint32_t)n;
  zs->next_out = out + sizeof gzip_header;
  zs->avail_out = (uint32_t)(cap - sizeof gzip_header);
  if (isal_deflate_stateless(zs) != COMP_OK) return 0;
  return sizeof gzip_header + zs->total_out;
}

/* One chunk -> gzip members: the spans to store each in a stored member,
 * the bytes between them deflated, one member per run.  The exporter
 * marks random file data per file (in 64 KiB pieces for big files): a
 * layer's random bytes come in small files between compressible ones
 * (gen_tree.py: a third of the files, 26 KiB on average), which fixed
 * blocks of the stream cut across (4 KiB blocks caught 23 % of the bytes
 * of that tree, a third of which is random). */
static size_t compress_chunk(struct deflater *d, struct job *j) {
  size_t need = 0, off = 0;
  for (size_t i = 0; i <= j->nspans; i++) {
    size_t s = i < j->nspans ? (size_t)j->spans[i].start : j->in_len;
    size_t e = i < j->nspans ? (size_t)j->spans[i].end : j->in_len;
    if (s > off) need += member_bound(d, false, s - off);
    if (e > s) need += member_bound(d, true, e - s);
    off = e;
  }
  if (need > j->out_cap) {
    free(j->out);
    j->out = hcs_xmalloc(need);
    j->out_cap = need;
  }
  size_t out = 0;
  off = 0;
  for (size_t i = 0; i <= j->nspans; i++) {
    size_t s = i < j->nspans ? (size_t)j->spans[i].start : j->in_len;
    size_t e = i < j->nspans ? (size_t)j->spans[i].end : j->in_len;
    for (int pass = 0; pass < 2; pass++) {
      size_t a = pass ? s : off, b = pass ? e : s;
      if (b <= a) continue;
      size_t n = member(d, pass, j->in + a, b - a, j->out + out, j->out_cap - out);
      if (n == 0) return 0;
      out += n;
    }
    off = e;
  }
  return out;
}

static void *worker_main(void *arg) {
  struct layer_writer *w = arg;
  struct deflater d;
  bool ready = deflater_init(&d, w->level);
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->stop && w->jobs[w->next_work % w->njobs].state != JOB_QUEUED)
      pthread_cond_wait(&w->cv_work, &w->mu);
    if (w->stop) break;
    struct job *j = &w->jobs[w->next_work % w->njobs];
    w->next_work++;
    j->state = JOB_BUSY;
    pthread_mutex_unlock(&w->mu);
    j->out_len = ready ? compress_chunk(&d, j) : 0;
    pthread_mutex_lock(&w->mu);
    j->ok = j->out_len > 0;
    j->state = JOB_DONE;
    pthread_cond_broadcast(&w->cv_done);
  }
  pthread_mutex_unlock(&w->mu);
  deflater_free(&d);
  return NULL;
}

/* Write out the oldest submitted job once it is compressed. */
static int drain_one(struct layer_writer *w) {
  struct job *j = &w->jobs[w->next_write % w->njobs];
  pthread_mutex_lock(&w->mu);
  while (j->state != JOB_DONE)
    pthread_cond_wait(&w->cv_done, &w->mu);
  pthread_mutex_unlock(&w->mu);
  int r = j->ok ? out_write(w, j->out, j->out_len, &j->out_ticket) : wfail(w, 0, "deflate");
  pthread_mutex_lock(&w->mu);
  j->state = JOB_FREE;
  pthread_mutex_unlock(&w->mu);
  w->next_write++;
  return r;
}

/* Give job j the pending spans that fall in the chunk [c0, c0 + len), as
 * offsets in the chunk; keep what goes on past it. */
static void take_spans(struct layer_writer *w, struct job *j, uint64_t c0, size_t len) {
  uint64_t c1 = c0 + len;
  j->nspans = 0;
  size_t keep = 0;
  for (size_t i = 0; i < w->nspans; i++) {
    struct span sp = w->spans[i];
    uint64_t s = sp.start > c0 ? sp.start : c0, e = sp.end < c1 ? sp.end : c1;
    if (s < e) {
      if (j->nspans == j->spans_cap)
        j->spans = hcs_xrealloc(j->spans, (j->spans_cap = j->spans_cap ? 2 * j->spans_cap : 16) * sizeof *j->spans);
      j->spans[j->nspans++] = (struct span){s - c0, e - c0};
    }
    if (sp.end > c1) w->spans[keep++] = sp;
  }
  w->nspans = keep;
}

static int submit_gzip(struct layer_writer *w, uint64_t c0, uint64_t ticket) {
  if (w->next_submit - w->next_write == (unsigned)w->njobs && drain_one(w) < 0) return -1;
  struct job *j = &w->jobs[w->next_submit % w->njobs];
  take_spans(w, j, c0, w->len);
  /* the job's buffers from its last round, both hashed before reuse */
  layer_hasher_wait(w->tar_hash, j->in_ticket);
  layer_hasher_wait(w->out_hash, j->out_ticket);
  /* swap buffers: the job takes the filled chunk */
  unsigned char *t = j->in;
  j->in = w->buf;
  j->in_ticket = ticket;
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
    unsigned k = w->zcur;
    layer_hasher_wait(w->out_hash, w->zout_ticket[k]);
    ZSTD_outBuffer o = {w->zout[k], w->zout_cap, 0};
    size_t rem = ZSTD_compressStream2(w->zc, &o, &in, mode);
    if (ZSTD_isError(rem)) {
      snprintf(w->errmsg, sizeof w->errmsg, "zstd: %s", ZSTD_getErrorName(rem));
      w->failed = true;
      return -1;
    }
    if (o.pos) {
      if (out_write(w, w->zout[k], o.pos, &w->zout_ticket[k]) < 0) return -1;
      w->zcur = (k + 1) % NRING;
    }
    if (mode == ZSTD_e_end ? rem == 0 : in.pos == in.size) return 0;
  }
}

/* Hand the filled chunk to the compressor. */
static int flush_chunk(struct layer_writer *w) {
  if (w->len == 0) return 0;
  uint64_t ticket = layer_hasher_submit(w->tar_hash, w->buf, w->len);
  uint64_t c0 = w->tar_bytes;
  w->tar_bytes += w->len;
  if (w->comp == HCS_LAYER_COMPRESSION_GZIP) return submit_gzip(w, c0, ticket);
  /* zstd copies its input before it returns (or compresses it then) */
  int r = w->comp == HCS_LAYER_COMPRESSION_NONE ? out_write(w, w->buf, w->len, NULL)
                                                : zstd_push(w, w->buf, w->len, ZSTD_e_continue);
  w->len = 0;
  w->ring_ticket[w->cur] = ticket;
  w->cur = (w->cur + 1) % NRING;
  layer_hasher_wait(w->tar_hash, w->ring_ticket[w->cur]);
  w->buf = w->ring[w->cur];
  return r;
}

struct layer_writer *layer_writer_start(int fd, hcs_layer_compression_t c, int level, int threads, hcs_error_t *err) {
  int max = c == HCS_LAYER_COMPRESSION_GZIP ? GZIP_MAX_LEVEL : c == HCS_LAYER_COMPRESSION_ZSTD ? ZSTD_MAX_LEVEL : 0;
  if (level < 0 || level > max) {
    if (max == 0)
      hcs_error_make(err, 0, "compression level %d given for an uncompressed layer", level);
    else
      hcs_error_make(err, 0, "compression level %d is out of range for %s (1 to %d)", level,
                     c == HCS_LAYER_COMPRESSION_GZIP ? "gzip" : "zstd", max);
    return NULL;
  }
  struct layer_writer *w = hcs_xcalloc(1, sizeof *w);
  w->fd = fd;
  w->comp = c;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv_work, NULL);
  pthread_cond_init(&w->cv_done, NULL);
  if (c == HCS_LAYER_COMPRESSION_GZIP) {
    w->buf = hcs_xmalloc(WCHUNK); /* traded with the jobs' buffers */
  } else {
    for (int i = 0; i < NRING; i++)
      w->ring[i] = hcs_xmalloc(WCHUNK);
    w->buf = w->ring[0];
  }
  if ((w->tar_hash = layer_hasher_start(err)) == NULL ||
      (c != HCS_LAYER_COMPRESSION_NONE && (w->out_hash = layer_hasher_start(err)) == NULL)) {
    layer_writer_free(w);
    return NULL;
  }
  if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (threads <= 0) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  if (c == HCS_LAYER_COMPRESSION_GZIP) {
    w->level = level > 0 ? level : GZIP_DEFAULT_LEVEL;
    w->njobs = 2 * threads + 2;
    w->jobs = hcs_xcalloc((size_t)w->njobs, sizeof *w->jobs);
    for (int i = 0; i < w->njobs; i++) {
      w->jobs[i].in = hcs_xmalloc(WCHUNK);
      /* room for most chunks; compress_chunk grows it to the sum of
       * libdeflate_gzip_compress_bound over the members when needed */
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
    for (int i = 0; i < NRING; i++)
      w->zout[i] = hcs_xmalloc(w->zout_cap);
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

bool layer_writer_stores(const struct layer_writer *w) { return w->comp == HCS_LAYER_COMPRESSION_GZIP; }

int layer_writer_write_stored(struct layer_writer *w, const void *data, size_t n) {
  if (w->comp == HCS_LAYER_COMPRESSION_GZIP && n > 0) {
    uint64_t pos = w->tar_bytes + w->len;
    if (w->nspans > 0 && w->spans[w->nspans - 1].end == pos) {
      w->spans[w->nspans - 1].end += n; /* the same file's next piece */
    } else {
      if (w->nspans == w->spans_cap)
        w->spans = hcs_xrealloc(w->spans, (w->spans_cap = w->spans_cap ? 2 * w->spans_cap : 16) * sizeof *w->spans);
      w->spans[w->nspans++] = (struct span){pos, pos + n};
    }
  }
  return layer_writer_write(w, data, n);
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
  layer_hasher_final(w->tar_hash, r.diff_id);
  if (w->comp == HCS_LAYER_COMPRESSION_NONE)
    memcpy(r.digest, r.diff_id, sizeof r.digest);
  else
    layer_hasher_final(w->out_hash, r.digest);
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
  /* before the buffers they may still be reading */
  layer_hasher_free(w->tar_hash);
  layer_hasher_free(w->out_hash);
  for (int i = 0; w->jobs && i < w->njobs; i++) {
    free(w->jobs[i].in);
    free(w->jobs[i].out);
    free(w->jobs[i].spans);
  }
  free(w->spans);
  free(w->jobs);
  if (w->zc) ZSTD_freeCCtx(w->zc);
  for (int i = 0; i < NRING; i++) {
    free(w->zout[i]);
    free(w->ring[i]);
  }
  if (w->comp == HCS_LAYER_COMPRESSION_GZIP) free(w->buf);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv_work);
  pthread_cond_destroy(&w->cv_done);
  free(w);
}
