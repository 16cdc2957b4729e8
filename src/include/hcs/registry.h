/* Registries: images from and to OCI distribution registries (the OCI
 * Distribution Spec v1.1 over HTTP, with Docker's token protocol).
 *
 * The seed's verbs map to: Install-ContainerImage -> hcs_registry_pull,
 * Save-ContainerImage -Name -> hcs_registry_download (an OCI archive, not
 * installed), Find-ContainerImage -> hcs_registry_find, and a push.
 *
 * References: [HOST[:PORT]/]PATH[:TAG][@sha256:DIGEST].  A first component
 * without '.' or ':' (and not "localhost") is a Docker Hub path
 * (docker.io, "library/" added to one-component names).
 *
 * Credentials: opts->username/password, else the containers auth file
 * ($REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json), else
 * ~/.docker/config.json.  TLS is verified against the system CAs plus
 * `<certs_dir>/HOST:PORT/ *.crt` (default /etc/containers/certs.d).  Plain
 * HTTP is used only for a registry marked insecure (tls_verify = -1 or
 * listed in the registries file) or on loopback, and only after HTTPS
 * failed to connect.  See docs/registry.md. */
#ifndef HCS_REGISTRY_H
#define HCS_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "hcs/error.h"
#include "hcs/export.h"
#include "hcs/image.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { HCS_REGISTRY_WAITING = 0, HCS_REGISTRY_DOWNLOADING, HCS_REGISTRY_DONE, HCS_REGISTRY_PRESENT };

/* Progress of a pull or push: one entry per layer.  Called from the
 * calling thread, a few times a second and once at the end; returning
 * non-zero cancels the transfer (ECANCELED; a pull rolls back). */
typedef struct {
  size_t nlayers;
  const char *const *digests; /* blob digests */
  const uint64_t *done, *total;
  const int *state; /* HCS_REGISTRY_* */
} hcs_registry_progress_t;
typedef int (*hcs_registry_progress_fn)(const hcs_registry_progress_t *p, void *userdata);

typedef struct {
  const char *username, *password; /* explicit credentials (else the auth files) */
  const char *auth_file;           /* NULL: $REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json */
  int tls_verify;        /* 0: verify (loopback may fall back to plain HTTP), 1: verify, never HTTP, -1: insecure */
  const char *certs_dir; /* NULL: /etc/containers/certs.d */
  const char *registries_conf;         /* NULL: $HCS_REGISTRIES_CONF or /etc/hcs/registries.json */
  const char *platform;                /* "os/arch[/variant]"; NULL: this host */
  int parallel;                        /* layer transfers at once; 0: 4 */
  long timeout;                        /* seconds without a byte before a transfer fails; 0: 30 */
  uint64_t max_rate;                   /* bytes/s per transfer, 0: unlimited */
  hcs_layer_compression_t compression; /* push: layer compression (default gzip) */
  const char *name, *tag;              /* pull: local name and tag (default: the reference's) */
  hcs_registry_progress_fn progress;
  void *progress_data;
} hcs_registry_opts_t;

/* The defaults: all zero (a zeroed struct is the same). */
HCS_EXPORT void hcs_registry_opts_init(hcs_registry_opts_t *opts);

/* Install-ContainerImage: download the image (the host's platform from an
 * index) into the store.  Layers download in parallel, each streamed into
 * the layer importer (decompressed, digest-verified, unpacked in one pass);
 * layers already present are skipped; nothing is visible until every digest
 * matched.  The image records RepoDigests.  Returns its summary (JSON). */
HCS_EXPORT char *hcs_registry_pull(hcs_image_store_t *store, const char *ref, const hcs_registry_opts_t *opts,
                                   hcs_error_t *err);

/* Save-ContainerImage -Name: download the image into an OCI archive at
 * path (written atomically) without installing it. */
HCS_EXPORT int hcs_registry_download(const char *ref, const char *path, const hcs_registry_opts_t *opts,
                                     hcs_error_t *err);

/* Push a local image to ref.  Returns the manifest digest (malloc'd). */
HCS_EXPORT char *hcs_registry_push(hcs_image_store_t *store, const char *image, const char *ref,
                                   const hcs_registry_opts_t *opts, hcs_error_t *err);

/* Find-ContainerImage: JSON array of {Name, Tags} for the repositories of
 * the registry whose path matches pattern (a glob with * ? [..], else a
 * substring).  pattern is "[REGISTRY/]PATTERN". */
HCS_EXPORT char *hcs_registry_find(const char *pattern, const hcs_registry_opts_t *opts, hcs_error_t *err);

/* The manifest (JSON object: Digest, MediaType, Manifest, and Platforms
 * for an index) a reference names, without downloading layers. */
HCS_EXPORT char *hcs_registry_inspect(const char *ref, const hcs_registry_opts_t *opts, hcs_error_t *err);

/* Check credentials against the registry and store them in the auth file
 * (mode 0600); logout removes them (ENOENT when there were none). */
HCS_EXPORT int hcs_registry_login(const char *registry, const char *username, const char *password,
                                  const hcs_registry_opts_t *opts, hcs_error_t *err);
HCS_EXPORT int hcs_registry_logout(const char *registry, const hcs_registry_opts_t *opts, hcs_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
