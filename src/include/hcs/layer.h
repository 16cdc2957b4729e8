/* Layers: the windowsfilter primitives (ImportLayer, ExportLayer,
 * CreateScratchLayer, ActivateLayer, PrepareLayer, GetLayerMountPath,
 * UnprepareLayer, DeactivateLayer, DestroyLayer, LayerExists) on overlayfs.
 *
 * A store lives under `<root>/layers`.  Each layer is a directory `<id>/`
 * holding `diff/` (the content in overlay format: whiteouts are 0/0 character
 * devices, opaque directories carry `trusted.overlay.opaque=y`),
 * `layerchain.json` (the parent layer paths, nearest first, as windowsfilter
 * writes it) and `layer.json` (metadata, see hcs_layer_inspect).  A scratch
 * layer also has `work/` (its `diff/` is the overlay upper directory).
 *
 * Ids: given by the caller (validated as file names), or, for an import
 * with id == NULL, the hex of the OCI ChainID of the new layer (sha256 of
 * "<parent chain id> <diff id>", or the diff id for a base layer), so the
 * same content on the same parents always gets the same id (importing it
 * again returns the existing layer).
 *
 * Parents are given as ids, nearest first: either the nearest parent alone
 * (its own chain is appended) or the full chain (checked against the
 * parent's layerchain).
 *
 * Every call is safe against concurrent hcs processes (flock on the store).
 * See docs/layers.md. */
#ifndef HCS_LAYER_H
#define HCS_LAYER_H

#include <stdbool.h>
#include <stdint.h>

#include "hcs/error.h"
#include "hcs/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hcs_layer_store_s hcs_layer_store_t;

/* Called with the bytes processed so far and the expected total (0 when
 * unknown).  Import counts input (compressed) bytes; export counts file
 * bytes.  Called at most every few MiB, always from the calling thread. */
typedef void (*hcs_layer_progress_fn)(uint64_t done, uint64_t total, void *userdata);

typedef enum {
  HCS_LAYER_COMPRESSION_NONE = 0,
  HCS_LAYER_COMPRESSION_GZIP = 1,
  HCS_LAYER_COMPRESSION_ZSTD = 2,
} hcs_layer_compression_t;

/* Open (creating if needed) the store under `<root>/layers`; root NULL means
 * $HCS_ROOT or /var/lib/hcs.  Leftovers of killed imports are removed. */
HCS_EXPORT hcs_layer_store_t *hcs_layer_store_open(const char *root, hcs_error_t *err);
HCS_EXPORT void hcs_layer_store_close(hcs_layer_store_t *store);
/* `<root>/layers` */
HCS_EXPORT const char *hcs_layer_store_path(hcs_layer_store_t *store);

typedef struct {
  const char *id;             /* NULL: derived (chain id hex) */
  const char *const *parents; /* NULL-terminated parent ids, nearest first; NULL for a base layer */
  const char *expect_diff_id; /* "sha256:..." to verify, or NULL */
  int threads;                /* file-writing threads; 0: one per CPU, 1: all in the calling thread */
  hcs_layer_progress_fn progress;
  void *progress_data;
  /* Caps on the apparent size (file sizes, holes included) the archive
   * expands to: all regular files together, and any one file.  0: the
   * store's limits (hcs_layer_store_set_limits); UINT64_MAX: no cap. */
  uint64_t max_size;
  uint64_t max_file_size;
  const char *expect_digest; /* "sha256:..." of the raw (compressed) stream, verified before commit, or NULL */
  /* Called after the content is extracted and verified, before the parents
   * are resolved and the layer committed: a caller can extract the layers
   * of a chain in parallel and commit them in order (the parents need not
   * exist before then).  Returns < 0 with err set to abandon the import. */
  int (*before_commit)(void *data, hcs_error_t *err);
  void *before_commit_data;
  /* Makes the extracted files durable, called with the layer's directory
   * once they are verified and before before_commit; NULL: syncfs() on it.
   * A caller importing several layers at once can make them all durable
   * with one syncfs instead of one each.  Returns < 0 with err set to
   * abandon the import; must not return before the files are durable. */
  int (*sync)(void *data, int dirfd, hcs_error_t *err);
  void *sync_data;
} hcs_layer_import_opts_t;

/* The default import caps: a few KiB of tar can declare a sparse file of
 * exabytes, which every tool that copies or re-exports it without hole
 * support writes out in full. */
#define HCS_LAYER_DEFAULT_MAX_SIZE (4ull << 40)      /* 4 TiB per layer */
#define HCS_LAYER_DEFAULT_MAX_FILE_SIZE (1ull << 40) /* 1 TiB per file */

/* The store's import caps (see hcs_layer_import_opts_t): 0 restores the
 * default, UINT64_MAX removes the cap. */
HCS_EXPORT void hcs_layer_store_set_limits(hcs_layer_store_t *store, uint64_t max_size, uint64_t max_file_size);

/* Import an OCI layer tar (plain, gzip or zstd, detected from the content)
 * read from fd / path.  OCI whiteouts become overlay whiteouts; sparse
 * entries become sparse files.  Atomic: the layer appears complete or not
 * at all (also when a size cap is hit).  Returns the layer id (malloc'd). */
HCS_EXPORT char *hcs_layer_import(hcs_layer_store_t *store, int fd, const hcs_layer_import_opts_t *opts,
                                  hcs_error_t *err);
HCS_EXPORT char *hcs_layer_import_file(hcs_layer_store_t *store, const char *path, const hcs_layer_import_opts_t *opts,
                                       hcs_error_t *err);

typedef struct {
  hcs_layer_compression_t compression;
  int level;        /* 0: default (gzip 1, zstd 3); gzip 1-2 ISA-L, 3-12 libdeflate; zstd 1-22; else refused */
  bool fixed_mtime; /* every entry gets `mtime` (reproducible across trees) */
  int64_t mtime;
  int threads; /* compression threads; 0: one per CPU */
  hcs_layer_progress_fn progress;
  void *progress_data;
} hcs_layer_export_opts_t;

typedef struct {
  char diff_id[72];           /* "sha256:<hex>" of the uncompressed tar */
  char digest[72];            /* "sha256:<hex>" of the bytes written */
  uint64_t size;              /* bytes written */
  uint64_t uncompressed_size; /* bytes of the tar stream */
} hcs_layer_export_result_t;

/* Export a read-only or scratch layer as an OCI layer tar (entries sorted,
 * whiteouts in OCI form; files with at least 1 MiB of holes as PAX sparse
 * entries, GNU format 1.0).  The same tree gives the same bytes. */
HCS_EXPORT int hcs_layer_export(hcs_layer_store_t *store, const char *id, int fd, const hcs_layer_export_opts_t *opts,
                                hcs_layer_export_result_t *result, hcs_error_t *err);
/* Same, to a file written atomically (temp + fsync + rename). */
HCS_EXPORT int hcs_layer_export_file(hcs_layer_store_t *store, const char *id, const char *path,
                                     const hcs_layer_export_opts_t *opts, hcs_layer_export_result_t *result,
                                     hcs_error_t *err);

/* A scratch layer (writable upper + work dirs) over the given parents. */
HCS_EXPORT int hcs_layer_create_scratch(hcs_layer_store_t *store, const char *id, const char *const *parents,
                                        hcs_error_t *err);
/* The same for a container that does not outlive the boot (`hcs run --rm`):
 * made and destroyed without fsync, its layer.json marked with the boot id
 * (`Volatile`).  Whatever a host crash leaves of it is collected by the
 * first store open of a later boot. */
HCS_EXPORT int hcs_layer_create_scratch_volatile(hcs_layer_store_t *store, const char *id, const char *const *parents,
                                                 hcs_error_t *err);

/* Mount the overlay of the layer and its chain at mount_path (NULL:
 * `<store>/<id>/mount`).  Scratch layers mount read-write, read-only layers
 * read-only.  Chains of hundreds of layers work (fsconfig lowerdir+). */
HCS_EXPORT int hcs_layer_activate(hcs_layer_store_t *store, const char *id, const char *mount_path, hcs_error_t *err);
/* The same, returning where it is mounted (malloc'd) or NULL on error: one
 * store lock and one state read instead of activate + get_mount_path. */
HCS_EXPORT char *hcs_layer_activate_path(hcs_layer_store_t *store, const char *id, const char *mount_path,
                                         hcs_error_t *err);
/* Unmount; deactivating an inactive layer is not an error. */
HCS_EXPORT int hcs_layer_deactivate(hcs_layer_store_t *store, const char *id, hcs_error_t *err);
/* Where the layer is mounted (malloc'd); an error when not activated. */
HCS_EXPORT char *hcs_layer_get_mount_path(hcs_layer_store_t *store, const char *id, hcs_error_t *err);

/* Make the activated rootfs ready for a container: create the mount-point
 * skeleton (proc, sys, dev, dev/pts, dev/shm, dev/mqueue, tmp, run, etc) and
 * one directory per mapped directory.  mapped_json is NULL or a JSON array of
 * schema2 MappedDirectory objects {HostPath, ContainerPath, ReadOnly}; each is
 * validated (absolute paths, host path exists, no `..`).  The mounts
 * themselves are done by the compute subsystem inside the container's mount
 * namespace, so nothing leaks into the host. */
HCS_EXPORT int hcs_layer_prepare(hcs_layer_store_t *store, const char *id, const char *mapped_json, hcs_error_t *err);
HCS_EXPORT int hcs_layer_unprepare(hcs_layer_store_t *store, const char *id, hcs_error_t *err);

/* Turn a scratch layer's changes into a new read-only layer on the same
 * parents by moving its files (no copy): the scratch must not be activated
 * (stop its system and deactivate it first) and is left empty.  The new
 * layer's id is its chain id; its DiffID is that of its canonical export.
 * Returns the new layer id (malloc'd). */
HCS_EXPORT char *hcs_layer_commit_scratch(hcs_layer_store_t *store, const char *id, hcs_layer_progress_fn progress,
                                          void *progress_data, hcs_error_t *err);

/* Capture a scratch layer's changes into a new read-only layer on the same
 * parents by copying them in one pass: the walk of its upper directory
 * creates each file in the new layer and hashes the canonical tar stream an
 * export would write (no archive is written, nothing is compressed), so the
 * new layer's DiffID is that of its export, byte for byte.  The scratch may
 * be activated and its system running (pause it for a consistent copy).
 * The new layer's id is its chain id; when that layer exists already, its
 * id is returned and the copy dropped.  threads: file-creating threads, 0
 * for one per CPU.  Returns the new layer id (malloc'd). */
HCS_EXPORT char *hcs_layer_capture_scratch(hcs_layer_store_t *store, const char *id, int threads,
                                           hcs_layer_progress_fn progress, void *progress_data, hcs_error_t *err);

/* Remove a layer.  Refused while it has references, is activated, or is a
 * parent of another layer.  force: deactivate first and ignore references
 * (never removes a layer other layers depend on). */
HCS_EXPORT int hcs_layer_destroy(hcs_layer_store_t *store, const char *id, bool force, hcs_error_t *err);

/* 1 if the layer exists, 0 if not, -1 on error (e.g. an invalid id). */
HCS_EXPORT int hcs_layer_exists(hcs_layer_store_t *store, const char *id, hcs_error_t *err);

/* JSON object: Id, Kind ("layer"|"scratch"), Parents (ids, nearest first),
 * LayerChain (paths), Path, DiffID, Digest, Size, CompressedSize,
 * Compression, Created, RefCount, Active, MountPath, Prepared. malloc'd. */
HCS_EXPORT char *hcs_layer_inspect(hcs_layer_store_t *store, const char *id, hcs_error_t *err);
/* JSON array of the inspect objects, sorted by id.  malloc'd. */
HCS_EXPORT char *hcs_layer_list(hcs_layer_store_t *store, hcs_error_t *err);

/* Reference counting for images and containers; returns the new count. */
HCS_EXPORT int hcs_layer_acquire(hcs_layer_store_t *store, const char *id, hcs_error_t *err);
HCS_EXPORT int hcs_layer_release(hcs_layer_store_t *store, const char *id, hcs_error_t *err);

/* The OCI ChainID of a layer ("sha256:..."): diff_id for a base layer
 * (parent_chain_id NULL), else sha256(parent_chain_id + " " + diff_id).  A
 * layer imported without an id is named by its hex, so an image store can
 * check `exists(chain_id + 7)` before importing.  malloc'd. */
HCS_EXPORT char *hcs_layer_chain_id(const char *parent_chain_id, const char *diff_id);

HCS_EXPORT const char *hcs_layer_compression_name(hcs_layer_compression_t c);
/* "none"/"gzip"/"zstd" -> value; -1 if unknown. */
HCS_EXPORT int hcs_layer_compression_from_string(const char *name);

#ifdef __cplusplus
}
#endif
#endif
