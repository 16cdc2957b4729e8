/* Internals shared by the image store files (store.c, oci.c, docker.c). */
#ifndef HCS_IMAGE_INTERNAL_H
#define HCS_IMAGE_INTERNAL_H

#include "core/crash.h"
#include "core/util.h"
#include "hcs/image.h"

struct hcs_image_lease;

struct hcs_image_store_s {
  char *root; /* the hcs state root */
  char *dir;  /* <root>/images */
  char *run;  /* <run root>/images: runtime references (users that a reboot ends) */
  hcs_layer_store_t *layers;
  struct hcs_image_lease *lease; /* of the import in progress: the layers it makes are added */
};

/* sha256 of a buffer / of a file, as "sha256:<hex>" into out[72]. */
HCS_INTERNAL void hcs_image_sha256_buf(const void *data, size_t len, char out[72]);
HCS_INTERNAL int hcs_image_sha256_file(const char *path, char out[72], uint64_t *size, hcs_error_t *err);
/* From the current offset to the end; `path` names it in errors. */
HCS_INTERNAL int hcs_image_sha256_fd(int fd, const char *path, char out[72], uint64_t *size, hcs_error_t *err);
/* Open a regular file beneath dirfd (openat2 RESOLVE_BENEATH, no magic
 * links, O_NONBLOCK, the type checked on the fd): a path or symlink that
 * leads outside fails, a FIFO or device is refused without blocking.
 * follow=false also refuses a symlink as the last component (OCI layouts
 * hold none; docker-archives link layer.tar files to blobs). */
HCS_INTERNAL int hcs_image_open_in(int dirfd, const char *dirname, const char *path, bool follow, hcs_error_t *err);
/* Read a whole file beneath dirfd (same resolution), at most max bytes. */
HCS_INTERNAL char *hcs_image_read_in(int dirfd, const char *dirname, const char *path, bool follow, size_t max,
                                     size_t *len, hcs_error_t *err);

/* Store lock: exclusive for changes, shared for reads.  Returns the fd. */
HCS_INTERNAL int hcs_image_lock(hcs_image_store_t *s, bool exclusive, hcs_error_t *err);

/* A private temporary directory inside the store (same file system as the
 * layers), removed by the caller; stale ones of dead processes are swept
 * when the store opens. */
HCS_INTERNAL char *hcs_image_tmpdir(hcs_image_store_t *s, const char *what, hcs_error_t *err);

/* Split "name:tag" (tag defaults to "latest"); validates both.  *name and
 * *tag are malloc'd. */
HCS_INTERNAL int hcs_image_parse_ref(const char *ref, char **name, char **tag, hcs_error_t *err);

struct hcs_image_meta {
  const char *name, *tag, *publisher;
  bool is_os;
  const char *parent; /* parent image id or NULL */
};

/* Record an image whose config bytes and layer ids (base first) are given;
 * the layers must exist.  The image's id is sha256(config).  An existing
 * image with the same id gains the tag.  Takes a layer reference per layer
 * for a new image.  Caller holds the exclusive lock.  Returns the id. */
HCS_INTERNAL char *hcs_image_record(hcs_image_store_t *s, const char *config, size_t config_len, json_t *layer_ids,
                                    const struct hcs_image_meta *meta, hcs_error_t *err);

/* Import the layers of one image, given by diff id, from blobs below dirfd
 * (blob_paths[i]; blob_digests[i] is the digest to verify or null).
 * Layers already in the store are not read again.  Returns the layer ids,
 * base first. */
HCS_INTERNAL json_t *hcs_image_import_layers(hcs_image_store_t *s, int dirfd, const char *dirname, bool follow,
                                             json_t *diff_ids, json_t *blob_paths, json_t *blob_digests,
                                             const hcs_image_import_opts_t *o, hcs_error_t *err);

/* Import helpers for the two archive formats (caller holds the lock). */
HCS_INTERNAL json_t *hcs_image_import_oci_layout(hcs_image_store_t *s, const char *dir,
                                                 const hcs_image_import_opts_t *opts, hcs_error_t *err);
HCS_INTERNAL json_t *hcs_image_import_docker_archive(hcs_image_store_t *s, const char *dir,
                                                     const hcs_image_import_opts_t *opts, hcs_error_t *err);
/* The summary of one image as list() shows it (new reference). */
HCS_INTERNAL json_t *hcs_image_summary_of(hcs_image_store_t *s, const char *id, hcs_error_t *err);
/* Extract an image archive (tar, any compression) into dir: every entry
 * created beneath dir through openat2, hard links copied (extract.c). */
HCS_INTERNAL int hcs_image_extract_tar(const char *tar_path, const char *dir, hcs_error_t *err);

/* The summary object of an image (image.json fields), new reference. */
HCS_INTERNAL json_t *hcs_image_load(hcs_image_store_t *s, const char *id, hcs_error_t *err);
HCS_INTERNAL int hcs_image_store_meta(hcs_image_store_t *s, json_t *meta, hcs_error_t *err);
HCS_INTERNAL char *hcs_image_resolve_locked(hcs_image_store_t *s, const char *ref, hcs_error_t *err);
/* Read an image's config.json bytes. */
HCS_INTERNAL int hcs_image_read_config(hcs_image_store_t *s, const char *id, char **out, size_t *len, hcs_error_t *err);

/* Export layer src as a canonical tar piped into a new layer on nearest. */
HCS_INTERNAL char *hcs_image_reimport_layer(hcs_image_store_t *s, const char *src, const char *nearest,
                                            hcs_layer_progress_fn progress, void *pdata, hcs_error_t *err);

/* Build a fresh OCI config document: created now, this host's platform,
 * rootfs diff ids, the given "config" object and one history entry. */
HCS_INTERNAL json_t *hcs_image_new_config(json_t *base_config, json_t *diff_ids, json_t *history,
                                          const char *created_by, const char *comment);

/* --- garbage collection (gc.c) ------------------------------------------ */
/* Every image record (image.json objects), new reference. */
HCS_INTERNAL json_t *hcs_image_all(hcs_image_store_t *s, hcs_error_t *err);

/* A lease: the layers an operation in progress makes, protected from
 * collection while its process lives and collected after it died. */
struct hcs_image_lease {
  char *path; /* <images>/.leases/<op>-<pid>-XXXXXX.json */
  int lockfd; /* flock held on the .lock beside it */
  json_t *doc;
};
/* by_parent: the operation makes a layer on `parent` (NULL: a base layer)
 * whose id is known only once made; any layer on it made since the lease
 * began is then taken as the operation's.  op "commit" (a capture by move
 * of `scratch`): after a kill, the layer's changes go back to the scratch
 * instead of being collected. */
HCS_INTERNAL int hcs_image_lease_begin(hcs_image_store_t *s, const char *op, bool by_parent, const char *parent,
                                       const char *scratch, struct hcs_image_lease *l, hcs_error_t *err);
HCS_INTERNAL int hcs_image_lease_add(struct hcs_image_lease *l, const char *layer_id, hcs_error_t *err);
/* collect: destroy what the operation made that no image references (a
 * failed import or capture).  Caller holds the exclusive store lock then. */
HCS_INTERNAL void hcs_image_lease_end(hcs_image_store_t *s, struct hcs_image_lease *l, bool collect);
/* Recount layer references from the images, then destroy unreferenced
 * layers: all of them (scope NULL), or those the leases in scope made plus
 * the ids in extra.  Caller holds the exclusive store lock. */
HCS_INTERNAL int hcs_image_collect(hcs_image_store_t *s, json_t *scope, json_t *extra, bool dry_run, json_t **removed,
                                   hcs_error_t *err);
/* At store open: collect what dead leases and the removed images
 * (image.json objects of removals killed half-way) left. */
HCS_INTERNAL int hcs_image_recover(hcs_image_store_t *s, json_t *removed_images, hcs_error_t *err);

/* --- compressed layer blobs (blobs.c) ------------------------------------ */
struct hcs_image_blob_info {
  char digest[72];  /* of the compressed blob */
  char diff_id[72]; /* of the tar it holds */
  char media_type[96];
  uint64_t size;
};
/* A blob being written: an unnamed file in the blob directory. */
struct hcs_image_blob {
  int fd;
  char *tmpname;         /* without O_TMPFILE: a named temporary, swept after a kill */
  uint64_t size, synced; /* synced: bytes whose writeback was started */
  bool failed;           /* a write failed: the blob is not kept */
};
/* gzip or zstd from a layer media type, else NONE. */
HCS_INTERNAL hcs_layer_compression_t hcs_image_blob_compression(const char *media_type);
HCS_INTERNAL int hcs_image_blob_begin(hcs_image_store_t *s, struct hcs_image_blob *b, hcs_error_t *err);
/* Appends; a failure only marks the blob failed (the transfer goes on). */
HCS_INTERNAL void hcs_image_blob_write(struct hcs_image_blob *b, const void *data, size_t len);
/* Keep the blob (its digest verified by the caller) as the layer_diff_id
 * layer's blob in its compression: synced, mapping written, then linked.
 * A failed or short blob is dropped (0).  Always ends b. */
HCS_INTERNAL int hcs_image_blob_commit(hcs_image_store_t *s, struct hcs_image_blob *b, const char *layer_diff_id,
                                       const struct hcs_image_blob_info *info, hcs_error_t *err);
HCS_INTERNAL void hcs_image_blob_abort(struct hcs_image_blob *b);
/* The kept blob of a layer in a compression: 1 with *fd open on it and
 * info filled, 0 when there is none. */
HCS_INTERNAL int hcs_image_blob_lookup(hcs_image_store_t *s, const char *layer_diff_id, hcs_layer_compression_t c,
                                       struct hcs_image_blob_info *info, int *fd, hcs_error_t *err);
/* Keep a copy of the blob in file src (checked against info->digest). */
HCS_INTERNAL int hcs_image_blob_keep_fd(hcs_image_store_t *s, int src, const char *layer_diff_id,
                                        const struct hcs_image_blob_info *info, hcs_error_t *err);
/* Drop mappings of layers gone and blobs no mapping names (exclusive lock). */
HCS_INTERNAL int hcs_image_blob_collect(hcs_image_store_t *s, hcs_error_t *err);

#endif
