/* Internal interfaces of the layer subsystem: the store object, metadata,
 * digests, the decompressing reader and the compressing writer. */
#ifndef HCS_LAYER_INTERNAL_H
#define HCS_LAYER_INTERNAL_H

#include <openssl/evp.h>
#include <stdint.h>
#include <sys/stat.h>

#include "core/util.h"
#include "hcs/layer.h"

struct hcs_layer_store_s {
  char *root;                       /* the hcs state root */
  char *path;                       /* <root>/layers */
  int dirfd;                        /* open on path */
  char *run;                        /* <run root>/layers: runtime state (mount paths), not kept across reboots */
  uint64_t max_size, max_file_size; /* import caps; 0: the defaults */
};

/* Names inside the store. */
#define LAYER_LOCK ".lock"
#define LAYER_TMP ".tmp"
#define LAYER_EMPTY ".empty"
#define LAYER_LINKS ".l" /* short names for mount(2) */
#define LAYER_META "layer.json"
#define LAYER_CHAIN "layerchain.json"

/* The store-wide lock: shared for readers, exclusive for changes. */
HCS_INTERNAL int layer_store_lock(hcs_layer_store_t *s, bool shared, hcs_error_t *err);

/* Load `<id>/layer.json`; ENOENT gives "layer `id` not found". */
HCS_INTERNAL json_t *layer_meta_load(hcs_layer_store_t *s, const char *id, hcs_error_t *err);
HCS_INTERNAL int layer_meta_save(hcs_layer_store_t *s, const char *id, json_t *meta, hcs_error_t *err);
HCS_INTERNAL char *layer_dir(hcs_layer_store_t *s, const char *id);

/* Runtime state of a layer, `<run>/<id>.json`: {MountPath, Prepared}.
 * Written without fsync (it describes mounts, which a reboot undoes);
 * an empty object removes the file. */
HCS_INTERNAL json_t *layer_state_load(hcs_layer_store_t *s, const char *id);
/* `<store>/<id>/mount` (malloc'd) */
HCS_INTERNAL char *layer_default_mount(hcs_layer_store_t *s, const char *id);
HCS_INTERNAL int layer_state_save(hcs_layer_store_t *s, const char *id, json_t *st, hcs_error_t *err);

/* Resolve the parent list (see layer.h) to the full chain of ids, nearest
 * first: a JSON array of strings (new reference). */
HCS_INTERNAL json_t *layer_resolve_parents(hcs_layer_store_t *s, const char *const *parents, hcs_error_t *err);
/* Write layerchain.json and layer.json into dir (a layer directory not yet
 * renamed into place) */
HCS_INTERNAL int layer_write_chain(hcs_layer_store_t *s, const char *dir, json_t *chain, bool durable,
                                   hcs_error_t *err);
/* Rename a prepared temp directory to `<id>`; fails if the id exists.
 * durable: fsync the store directory after. */
HCS_INTERNAL int layer_commit_dir(hcs_layer_store_t *s, const char *tmpdir, const char *id, bool durable,
                                  hcs_error_t *err);

/* This boot's id (/proc/sys/kernel/random/boot_id; $HCS_BOOT_ID in tests):
 * the mark of volatile scratch layers. */
HCS_INTERNAL const char *layer_boot_id(void);

/* A temp dir under .tmp/ held by a lock so sweepers leave it alone. */
struct layer_tmp {
  char *path;
  int lockfd;
};
HCS_INTERNAL int layer_tmp_make(hcs_layer_store_t *s, const char *what, struct layer_tmp *t, hcs_error_t *err);
HCS_INTERNAL void layer_tmp_done(struct layer_tmp *t); /* removes what is left */

/* Finish or roll back commits of scratch layers (commit.c) killed
 * half-way; the caller holds the exclusive store lock. */
HCS_INTERNAL int layer_recover_commits(hcs_layer_store_t *s, hcs_error_t *err);

/* Is path the root of a mount? */
HCS_INTERNAL int layer_is_mountpoint(const char *path);

/* --- digests ------------------------------------------------------------- */
HCS_INTERNAL EVP_MD_CTX *layer_sha256_new(void);
/* "sha256:<hex>" into out[72]; frees nothing. */
HCS_INTERNAL void layer_sha256_final(EVP_MD_CTX *ctx, char out[72]);

/* writeback.c: syncs `fd`'s file system in a thread until stopped, so an
 * import's disk writes overlap with its parsing (NULL: no thread). */
struct layer_writeback;
HCS_INTERNAL struct layer_writeback *layer_writeback_start(int fd);
HCS_INTERNAL void layer_writeback_stop(struct layer_writeback *w);

/* hasher.c: a sha256 on a thread of its own.  submit queues a buffer and
 * returns its ticket (from 1); the buffer must stay untouched until
 * layer_hasher_wait(ticket) returns (at once for ticket 0, on any h).
 * final waits for everything. */
struct layer_hasher;
HCS_INTERNAL struct layer_hasher *layer_hasher_start(hcs_error_t *err);
HCS_INTERNAL uint64_t layer_hasher_submit(struct layer_hasher *h, const void *p, size_t n);
HCS_INTERNAL void layer_hasher_wait(struct layer_hasher *h, uint64_t ticket);
HCS_INTERNAL void layer_hasher_final(struct layer_hasher *h, char out[72]);
HCS_INTERNAL void layer_hasher_free(struct layer_hasher *h);

/* --- the decompressing reader (import) ----------------------------------- */
struct layer_reader;
/* Start a reader thread on fd: detects gzip/zstd/plain, hashes the raw and
 * the decompressed bytes. */
HCS_INTERNAL struct layer_reader *layer_reader_start(int fd, hcs_error_t *err);
/* Next decompressed chunk (0 length at end); -1 on error. */
HCS_INTERNAL ssize_t layer_reader_next(struct layer_reader *r, const void **buf);
/* Drain to the end, join, fill digests; returns -1 and the error if the
 * stream was bad. */
HCS_INTERNAL int layer_reader_finish(struct layer_reader *r, char diff_id[72], char digest[72], uint64_t *raw_bytes,
                                     uint64_t *bytes, const char **compression, hcs_error_t *err);
/* -1 and the error if the stream already failed (no draining). */
HCS_INTERNAL int layer_reader_error(struct layer_reader *r, hcs_error_t *err);
HCS_INTERNAL uint64_t layer_reader_raw_bytes(struct layer_reader *r);
HCS_INTERNAL void layer_reader_free(struct layer_reader *r);

/* --- the compressing writer (export) ------------------------------------- */
struct layer_writer;
HCS_INTERNAL struct layer_writer *layer_writer_start(int fd, hcs_layer_compression_t c, int level, int threads,
                                                     hcs_error_t *err);
HCS_INTERNAL int layer_writer_write(struct layer_writer *w, const void *buf, size_t len);
/* Whether the writer stores bytes it is told are incompressible (gzip). */
HCS_INTERNAL bool layer_writer_stores(const struct layer_writer *w);
/* Write bytes that look random (layer_looks_random): gzip stores them in a
 * member of their own instead of deflating them. */
HCS_INTERNAL int layer_writer_write_stored(struct layer_writer *w, const void *buf, size_t len);
/* Does this file data look random (compressed or encrypted bytes)? */
HCS_INTERNAL bool layer_looks_random(const unsigned char *p, size_t n);
HCS_INTERNAL int layer_writer_finish(struct layer_writer *w, hcs_layer_export_result_t *res, hcs_error_t *err);
HCS_INTERNAL void layer_writer_free(struct layer_writer *w);
HCS_INTERNAL const char *layer_writer_error(struct layer_writer *w);

/* --- capture ------------------------------------------------------------- */
struct layer_mirror;
/* Walk layer `id` as an export would (digests of the canonical tar stream in
 * *result, no archive written) and create every entry through m (mirror.c). */
HCS_INTERNAL int layer_export_mirrored(hcs_layer_store_t *s, const char *id, const hcs_layer_export_opts_t *opts,
                                       struct layer_mirror *m, hcs_layer_export_result_t *result, hcs_error_t *err);

/* --- whiteouts ----------------------------------------------------------- */
#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define OVL_OPAQUE_XATTR "trusted.overlay.opaque"
#define OVL_XATTR_PREFIX "trusted.overlay."

enum layer_wh {
  LAYER_WH_NONE,    /* not a whiteout name */
  LAYER_WH_FILE,    /* `.wh.NAME`: *target = NAME */
  LAYER_WH_OPAQUE,  /* `.wh..wh..opq` */
  LAYER_WH_META,    /* other `.wh..wh.*` (aufs bookkeeping): ignored */
  LAYER_WH_INVALID, /* `.wh.`, `.wh..`, `.wh...` */
};
HCS_INTERNAL enum layer_wh layer_whiteout_parse(const char *base, const char **target);
/* The overlay forms: a 0/0 character device; the opaque attribute. */
HCS_INTERNAL int layer_whiteout_make(int pfd, const char *name);
HCS_INTERNAL int layer_opaque_mark(int dirfd);
HCS_INTERNAL bool layer_is_whiteout(const struct stat *st);
HCS_INTERNAL bool layer_is_opaque(int dirfd);
/* trusted.overlay.*: only whiteout entries produce them, never exported */
HCS_INTERNAL bool layer_is_overlay_xattr(const char *name);
/* "dir/NAME" -> "dir/.wh.NAME" (malloc'd) */
HCS_INTERNAL char *layer_whiteout_entry(const char *rel);

#endif
