/* The image store: images are metadata (an OCI image configuration plus
 * Name, Publisher, Version, IsOSImage) over a chain of layers kept in the
 * layer store and shared by every image and container that uses them.
 *
 * The seed's PowerShell verbs map to: Get-ContainerImage -> hcs_image_list,
 * Install-ContainerOSImage -> hcs_image_install_os, Save-ContainerImage ->
 * hcs_image_save, New-ContainerImage -> hcs_image_create (from a captured
 * layer), Remove-ContainerImage [-Force] -> hcs_image_remove.
 *
 * Layout under `<root>/images`:
 *   <id>/config.json   the OCI image config, byte-exact (id = its sha256 hex)
 *   <id>/image.json    hcs metadata: Name, Publisher, Version, IsOSImage,
 *                      Tags, Layers (layer store ids, base first), Users,
 *                      Created, Size
 * References: "name:tag", "name" (= "name:latest" or the only tag of that
 * name), the full id, "sha256:<id>", or a unique id prefix of 6+ characters.
 * Every change is atomic (temp + rename) under a store lock. */
#ifndef HCS_IMAGE_H
#define HCS_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "hcs/error.h"
#include "hcs/export.h"
#include "hcs/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hcs_image_store_s hcs_image_store_t;

/* Open (creating if needed) the store under `<root>/images` and the layer
 * store beside it; root NULL means $HCS_ROOT or /var/lib/hcs. */
HCS_EXPORT hcs_image_store_t *hcs_image_store_open(const char *root, hcs_error_t *err);
HCS_EXPORT void hcs_image_store_close(hcs_image_store_t *store);
/* The layer store the images live on (owned by the image store). */
HCS_EXPORT hcs_layer_store_t *hcs_image_store_layers(hcs_image_store_t *store);

/* JSON array of image summaries (Id, Name, Publisher, Version, IsOSImage,
 * Tags, Created, Size, Layers), sorted by name then version.  malloc'd. */
HCS_EXPORT char *hcs_image_list(hcs_image_store_t *store, hcs_error_t *err);
/* JSON object: the summary plus Config (the OCI config), ConfigDigest,
 * Users, Children (ids of images built on this one).  malloc'd. */
HCS_EXPORT char *hcs_image_inspect(hcs_image_store_t *store, const char *ref, hcs_error_t *err);
/* Resolve a reference to an image id (malloc'd). */
HCS_EXPORT char *hcs_image_resolve(hcs_image_store_t *store, const char *ref, hcs_error_t *err);

typedef struct {
  const char *name;      /* override the name taken from the archive's tags */
  const char *tag;       /* override the tag */
  const char *publisher; /* default: org.opencontainers.image.vendor or "" */
  hcs_layer_progress_fn progress;
  void *progress_data;
} hcs_image_import_opts_t;

/* Import from an OCI image layout (a directory with `oci-layout`), an OCI
 * archive (a tar of such a directory) or a docker-archive (`docker save`,
 * `skopeo copy docker-archive:`), detected from the content.  Layers and
 * config are verified against their digests.  Returns a JSON array of the
 * imported image summaries.  malloc'd. */
HCS_EXPORT char *hcs_image_import(hcs_image_store_t *store, const char *path, const hcs_image_import_opts_t *opts,
                                  hcs_error_t *err);

typedef struct {
  const char *name;      /* required */
  const char *version;   /* the tag; default "latest" */
  const char *publisher; /* default "" */
  const char *config;    /* optional JSON object merged into the OCI config's "config" (Env, Cmd, ...) */
  hcs_layer_progress_fn progress;
  void *progress_data;
} hcs_image_install_opts_t;

/* Install-ContainerOSImage: a rootfs tarball (plain/gzip/zstd) becomes a
 * one-layer base image with IsOSImage = true.  Returns the image id. */
HCS_EXPORT char *hcs_image_install_os(hcs_image_store_t *store, const char *rootfs_tar,
                                      const hcs_image_install_opts_t *opts, hcs_error_t *err);

typedef struct {
  const char *parent;             /* parent image reference, or NULL for a base image */
  const char *layer_id;           /* the new top layer (already in the layer store), or NULL for none */
  const char *name;               /* required */
  const char *version;            /* default "latest" */
  const char *publisher;          /* default "" */
  const char *config;             /* JSON object: OCI "config" fields to set (Env, Cmd, Entrypoint, WorkingDir, User,
                                     Labels, ExposedPorts); merged over the parent's */
  const char *created_by;         /* history entry text */
  const char *comment;            /* history comment */
  hcs_layer_progress_fn progress; /* capture only: bytes of the scratch layer processed */
  void *progress_data;
  bool move_scratch; /* capture only: move the scratch's files into the new layer instead of copying them (the
                        scratch must be deactivated, its system stopped; it is left empty) */
  /* capture by copy only: called with true right before the pass over the changes and with false right after
     it, even when it failed, to hold the container still while its files are read (docker commit's pause):
     e.g. hcs_compute_pause/hcs_compute_resume of its system (the Lua binding's `pause = system`). NULL: none */
  int (*pause)(void *data, bool pause, hcs_error_t *err);
  void *pause_data;
} hcs_image_create_opts_t;

/* New-ContainerImage: an image whose layers are the parent's plus layer_id.
 * Returns the image id (malloc'd). */
HCS_EXPORT char *hcs_image_create(hcs_image_store_t *store, const hcs_image_create_opts_t *opts, hcs_error_t *err);

/* Capture a container: its scratch layer's changes become a new read-only
 * layer on the scratch's parents, and a new image (opts->layer_id is
 * ignored; opts->parent names the image the container was created from).
 * By default the changes are copied and the container may keep running;
 * with opts->move_scratch they are moved (no copy: see
 * hcs_layer_commit_scratch).  Returns the image id (malloc'd). */
HCS_EXPORT char *hcs_image_capture(hcs_image_store_t *store, const char *scratch_id,
                                   const hcs_image_create_opts_t *opts, hcs_error_t *err);

typedef struct {
  hcs_layer_compression_t compression; /* default gzip */
  hcs_layer_progress_fn progress;
  void *progress_data;
} hcs_image_save_opts_t;

/* Save-ContainerImage: write the images (NULL-terminated references) as an
 * OCI archive (a tar of an OCI image layout, with a docker-compatible
 * manifest.json) at path, atomically.  Each image is saved under the tag
 * the caller named ("name" alone: the image's own tag of that name), or
 * under all its tags when named by id. */
HCS_EXPORT int hcs_image_save(hcs_image_store_t *store, const char *const *refs, const char *path,
                              const hcs_image_save_opts_t *opts, hcs_error_t *err);
/* The same archive written to an open fd (standard output, a pipe): a
 * stream, so not atomic; a failure leaves a truncated archive there. */
HCS_EXPORT int hcs_image_save_fd(hcs_image_store_t *store, const char *const *refs, int fd,
                                 const hcs_image_save_opts_t *opts, hcs_error_t *err);

/* Add a "name:tag" reference to an image (moved if it named another). */
HCS_EXPORT int hcs_image_tag(hcs_image_store_t *store, const char *ref, const char *new_ref, hcs_error_t *err);
/* Remove one tag; the image stays while it has other tags. */
HCS_EXPORT int hcs_image_untag(hcs_image_store_t *store, const char *ref, hcs_error_t *err);

/* Remove-ContainerImage: refused while a container uses the image or an
 * image is built on it, unless force (users are dropped; layers still needed
 * by other images or containers stay).  Unused layers are destroyed. */
HCS_EXPORT int hcs_image_remove(hcs_image_store_t *store, const char *ref, bool force, hcs_error_t *err);

/* Collect layers no image uses (containerd-style garbage collection):
 * layer reference counts are recounted from the images, then every
 * read-only layer no image lists, with no child layer (a scratch layer's
 * parents stay), not activated and not being made by a live operation is
 * destroyed, from the top of each chain down.  What killed imports and
 * captures left is also collected when the store opens.  A layer imported
 * on its own (hcs_layer_import) into an image root is collected too unless
 * an image uses it.  dry_run: only list.  Returns JSON {Layers: [ids]}
 * (malloc'd). */
HCS_EXPORT char *hcs_image_prune(hcs_image_store_t *store, bool dry_run, hcs_error_t *err);

/* Record that a container (user id) uses the image, or no longer does. */
HCS_EXPORT int hcs_image_acquire(hcs_image_store_t *store, const char *ref, const char *user, hcs_error_t *err);
HCS_EXPORT int hcs_image_release(hcs_image_store_t *store, const char *ref, const char *user, hcs_error_t *err);
/* A reference that ends with the boot: kept in the run root (tmpfs), not in
 * image.json, so taking it costs no disk write (containers removed on exit,
 * `hcs run --rm`).  It shows in Users and blocks removal as any other;
 * hcs_image_release drops either kind. */
HCS_EXPORT int hcs_image_acquire_runtime(hcs_image_store_t *store, const char *ref, const char *user, hcs_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
