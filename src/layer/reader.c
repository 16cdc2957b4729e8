/* The import side of the layer stream: a thread that reads the layer blob
 * and detects and undoes gzip (ISA-L) / zstd, handing tar chunks to the
 * extracting thread through a small ring of buffers.  The raw bytes (the
 * OCI digest) and the tar stream (the diff id) are hashed each on a thread
 * of its own (hasher.c), so inflating, hashing and writing files overlap.
 * A plain tar is hashed once: its digest is its diff id. */
#include <pthread.h>
#include <string.h>
#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include "layer/internal.h"

#define CHUNK (1u << 20)
#define NSLOT 8
/* input buffers: the raw hasher may lag the inflate by NIN - 1 of them */
#define NIN 4

struct slot {
  unsigned char *buf;
  size_t len;
  uint64_t ticket; /* of the tar hasher: the slot is free once it is done */
};

struct layer_reader {
  int fd;
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct slot slots[NSLOT];
  unsigned head, count; /* consumer reads slots[head]; count filled */
  bool held;            /* consumer holds slots[head] */
  bool eof, failed, abort;
  char errmsg[256];
  int errnum;
  /* raw_hash: compressed only (a plain tar's digest is its diff id), started
   * once the stream is known */
  struct layer_hasher *raw_hash, *tar_hash;
  uint64_t raw_bytes, tar_bytes;
  const char *compression;
  unsigned char *ins[NIN];
  uint64_t in_ticket[NIN]; /* of the raw hasher */
  unsigned in_next;
  unsigned char *in; /* the input buffer in use: ins[in_next - 1] */
  size_t in_len, in_off;
};

static void fail(struct layer_reader *r, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct layer_reader *r, int errnum, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&r->mu);
  if (!r->failed) {
    vsnprintf(r->errmsg, sizeof r->errmsg, fmt, ap);
    r->errnum = errnum;
    r->failed = true;
  }
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  va_end(ap);
}

static ssize_t read_full(struct layer_reader *r, unsigned char *buf, size_t cap) {
  for (;;) {
    ssize_t n = read(r->fd, buf, cap);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fail(r, errno, "read layer");
      return -1;
    }
    if (n > 0) __atomic_add_fetch(&r->raw_bytes, (uint64_t)n, __ATOMIC_RELAXED);
    return n;
  }
}

static void hash_input(struct layer_reader *r) {
  unsigned i = (r->in_next - 1) % NIN;
  if (r->raw_hash && r->in_len > 0) r->in_ticket[i] = layer_hasher_submit(r->raw_hash, r->in, r->in_len);
}

/* Refill the input from the next buffer of the ring (the one before may
 * still be hashed); returns bytes read, 0 at EOF, -1 on error. */
static ssize_t refill(struct layer_reader *r) {
  unsigned i = r->in_next++ % NIN;
  layer_hasher_wait(r->raw_hash, r->in_ticket[i]);
  r->in = r->ins[i];
  ssize_t n = read_full(r, r->in, CHUNK);
  r->in_len = n > 0 ? (size_t)n : 0;
  r->in_off = 0;
  if (n > 0) hash_input(r);
  return n;
}

/* Wait for a free slot; NULL if the consumer gave up. */
static struct slot *slot_get(struct layer_reader *r) {
  pthread_mutex_lock(&r->mu);
  while (r->count == NSLOT && !r->abort)
    pthread_cond_wait(&r->cv, &r->mu);
  struct slot *s = r->abort ? NULL : &r->slots[(r->head + r->count) % NSLOT];
  pthread_mutex_unlock(&r->mu);
  if (s) layer_hasher_wait(r->tar_hash, s->ticket);
  return s;
}

static void slot_put(struct layer_reader *r, struct slot *s) {
  if (s->len == 0) return;
  s->ticket = layer_hasher_submit(r->tar_hash, s->buf, s->len);
  r->tar_bytes += s->len;
  pthread_mutex_lock(&r->mu);
  r->count++;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static bool all_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

/* A plain tar: read straight into the slots (the first buffer was read by
 * the detection). */
static int run_plain(struct layer_reader *r) {
  struct slot *s = slot_get(r);
  if (s == NULL) return -1;
  memcpy(s->buf, r->in, r->in_len);
  s->len = r->in_len;
  for (;;) {
    while (s->len < CHUNK) {
      ssize_t n = read_full(r, s->buf + s->len, CHUNK - s->len);
      if (n < 0) return -1;
      if (n == 0) {
        slot_put(r, s);
        return 0;
      }
      s->len += (size_t)n;
    }
    slot_put(r, s);
    if ((s = slot_get(r)) == NULL) return -1;
    s->len = 0;
  }
}

/* gzip with ISA-L's inflate (about twice zlib's speed); concatenated
 * members (pigz, our own writer) and trailing zero padding are accepted. */
static int run_gzip(struct layer_reader *r) {
  struct inflate_state *z = hcs_xcalloc(1, sizeof *z);
  isal_inflate_init(z);
  z->crc_flag = ISAL_GZIP;
  int ret = -1;
  struct slot *s = NULL;
  bool member_done = false;
  for (;;) {
    if (r->in_off == r->in_len) {
      ssize_t n = refill(r);
      if (n < 0) goto out;
      if (n == 0) {
        if (!member_done) {
          fail(r, 0, "gzip stream truncated");
          goto out;
        }
        ret = 0;
        goto out;
      }
    }
    if (member_done) {
      if (r->in[r->in_off] == 0 && all_zero(r->in + r->in_off, r->in_len - r->in_off)) {
        r->in_off = r->in_len;
        continue;
      }
      if (r->in[r->in_off] != 0x1f) {
        fail(r, 0, "trailing garbage after gzip stream");
        goto out;
      }
      isal_inflate_reset(z);
      z->crc_flag = ISAL_GZIP;
      member_done = false;
    }
    if (s == NULL) {
      s = slot_get(r);
      if (s == NULL) goto out;
      s->len = 0;
    }
    z->next_in = r->in + r->in_off;
    z->avail_in = (uint32_t)(r->in_len - r->in_off);
    z->next_out = s->buf + s->len;
    z->avail_out = (uint32_t)(CHUNK - s->len);
    int zr = isal_inflate(z);
    r->in_off = r->in_len - z->avail_in;
    s->len = CHUNK - z->avail_out;
    if (zr < 0) {
      fail(r, 0, "gzip: %s", zr == ISAL_INCORRECT_CHECKSUM ? "incorrect checksum" : "corrupt data");
      goto out;
    }
    if (z->block_state == ISAL_BLOCK_FINISH) member_done = true;
    if (s->len == CHUNK) {
      slot_put(r, s);
      s = NULL;
    }
  }
out:
  if (s) slot_put(r, s);
  free(z);
  return ret;
}

static int run_zstd(struct layer_reader *r) {
  ZSTD_DCtx *dctx = ZSTD_createDCtx();
  if (dctx == NULL) {
    fail(r, ENOMEM, "ZSTD_createDCtx");
    return -1;
  }
  int ret = -1;
  struct slot *s = NULL;
  size_t last = 1; /* 0 once a frame ended exactly */
  for (;;) {
    if (r->in_off == r->in_len) {
      ssize_t n = refill(r);
      if (n < 0) goto out;
      if (n == 0) {
        if (last != 0) {
          fail(r, 0, "zstd stream truncated");
          goto out;
        }
        ret = 0;
        goto out;
      }
    }
    if (s == NULL) {
      s = slot_get(r);
      if (s == NULL) goto out;
      s->len = 0;
    }
    ZSTD_inBuffer in = {r->in, r->in_len, r->in_off};
    ZSTD_outBuffer o = {s->buf, CHUNK, s->len};
    last = ZSTD_decompressStream(dctx, &o, &in);
    if (ZSTD_isError(last)) {
      fail(r, 0, "zstd: %s", ZSTD_getErrorName(last));
      goto out;
    }
    r->in_off = in.pos;
    s->len = o.pos;
    if (s->len == CHUNK) {
      slot_put(r, s);
      s = NULL;
    }
  }
out:
  if (s) slot_put(r, s);
  ZSTD_freeDCtx(dctx);
  return ret;
}

/* A compressed stream: its own digest, from the buffer read for detection on. */
static int start_raw_hash(struct layer_reader *r) {
  hcs_error_t e = NULL;
  r->raw_hash = layer_hasher_start(&e);
  if (r->raw_hash == NULL) fail(r, hcs_error_status(e), "%s", hcs_error_message(e));
  hcs_error_release(&e);
  if (r->raw_hash == NULL) return -1;
  hash_input(r);
  return 0;
}

static void *reader_main(void *arg) {
  struct layer_reader *r = arg;
  int ret = -1;
  if (refill(r) >= 0) {
    /* fill at least a few bytes for detection */
    const unsigned char *p = r->in;
    if (r->in_len >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
      r->compression = "gzip";
      if (start_raw_hash(r) == 0) ret = run_gzip(r);
    } else if (r->in_len >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) {
      r->compression = "zstd";
      if (start_raw_hash(r) == 0) ret = run_zstd(r);
    } else {
      r->compression = "none";
      ret = run_plain(r);
    }
  }
  pthread_mutex_lock(&r->mu);
  r->eof = true;
  if (ret < 0 && !r->failed && !r->abort) {
    r->failed = true;
    snprintf(r->errmsg, sizeof r->errmsg, "read layer stream");
  }
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

struct layer_reader *layer_reader_start(int fd, hcs_error_t *err) {
  struct layer_reader *r = hcs_xcalloc(1, sizeof *r);
  r->fd = fd;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  for (int i = 0; i < NSLOT; i++)
    r->slots[i].buf = hcs_xmalloc(CHUNK);
  for (int i = 0; i < NIN; i++)
    r->ins[i] = hcs_xmalloc(CHUNK);
  if ((r->tar_hash = layer_hasher_start(err)) == NULL) {
    layer_reader_free(r);
    return NULL;
  }
  int e = pthread_create(&r->thread, NULL, reader_main, r);
  if (e != 0) {
    layer_reader_free(r);
    hcs_error_make(err, e, "start reader thread");
    return NULL;
  }
  r->started = true;
  return r;
}

ssize_t layer_reader_next(struct layer_reader *r, const void **buf) {
  pthread_mutex_lock(&r->mu);
  if (r->held) {
    r->held = false;
    r->head = (r->head + 1) % NSLOT;
    r->count--;
    pthread_cond_broadcast(&r->cv);
  }
  while (r->count == 0 && !r->eof && !r->failed)
    pthread_cond_wait(&r->cv, &r->mu);
  ssize_t n;
  if (r->failed) {
    n = -1;
  } else if (r->count == 0) {
    n = 0;
  } else {
    r->held = true;
    *buf = r->slots[r->head].buf;
    n = (ssize_t)r->slots[r->head].len;
  }
  pthread_mutex_unlock(&r->mu);
  return n;
}

int layer_reader_error(struct layer_reader *r, hcs_error_t *err) {
  pthread_mutex_lock(&r->mu);
  bool failed = r->failed;
  pthread_mutex_unlock(&r->mu);
  return failed ? hcs_error_make(err, r->errnum, "%s", r->errmsg) : 0;
}

uint64_t layer_reader_raw_bytes(struct layer_reader *r) { return __atomic_load_n(&r->raw_bytes, __ATOMIC_RELAXED); }

static void join(struct layer_reader *r) {
  if (!r->started) return;
  pthread_join(r->thread, NULL);
  r->started = false;
}

int layer_reader_finish(struct layer_reader *r, char diff_id[72], char digest[72], uint64_t *raw_bytes, uint64_t *bytes,
                        const char **compression, hcs_error_t *err) {
  const void *buf;
  ssize_t n;
  /* the tar reader stops at the end-of-archive blocks: hash what follows */
  while ((n = layer_reader_next(r, &buf)) > 0)
    ;
  join(r);
  if (r->failed) return hcs_error_make(err, r->errnum, "%s", r->errmsg);
  layer_hasher_final(r->tar_hash, diff_id);
  if (r->raw_hash)
    layer_hasher_final(r->raw_hash, digest);
  else
    memcpy(digest, diff_id, 72);
  *raw_bytes = r->raw_bytes;
  *bytes = r->tar_bytes;
  *compression = r->compression;
  return 0;
}

void layer_reader_free(struct layer_reader *r) {
  if (r == NULL) return;
  pthread_mutex_lock(&r->mu);
  r->abort = true;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  join(r);
  /* before the buffers they may still be reading */
  layer_hasher_free(r->raw_hash);
  layer_hasher_free(r->tar_hash);
  for (int i = 0; i < NSLOT; i++)
    free(r->slots[i].buf);
  for (int i = 0; i < NIN; i++)
    free(r->ins[i]);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r);
}
