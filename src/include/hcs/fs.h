/* File helpers for authoring: copy host files into a container's root file
 * system without ever leaving it, whatever symlinks the root contains. */
#ifndef HCS_FS_H
#define HCS_FS_H

#include <stddef.h>

#include "hcs/error.h"
#include "hcs/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Copy host file or directory `src` to `dst` inside the tree at `root`
 * (e.g. an activated layer's mount path).  Every path inside the root is
 * resolved as if `root` were `/` (openat2 RESOLVE_IN_ROOT): a symlink in the
 * container pointing at /etc writes to the container's /etc, never the
 * host's.  Like cp -R: when dst is an existing directory or ends in `/`,
 * src is copied into it; missing parent directories are created.  Modes and
 * symlinks are kept; everything is owned by root. */
HCS_EXPORT int hcs_fs_copy_in(const char *root, const char *src, const char *dst, hcs_error_t *err);

/* Crash-safe replace of a small file: temp + fsync + rename + fsync of the
 * directory.  Readers see the old or the new content, never a mix. */
HCS_EXPORT int hcs_fs_write_atomic(const char *path, const void *data, size_t len, unsigned mode, hcs_error_t *err);

/* The same without the fsyncs (temp + rename): atomic for readers and
 * across a killed process, not across a power loss.  For runtime state. */
HCS_EXPORT int hcs_fs_write_replace(const char *path, const void *data, size_t len, unsigned mode, hcs_error_t *err);

/* The runtime root for a state root (NULL: the default): $HCS_RUN_ROOT, else
 * `<root>/run` when a root is given or $HCS_ROOT is set, else /run/hcs.
 * malloc'd. */
HCS_EXPORT char *hcs_fs_run_root(const char *root);

/* mkdir -p. */
HCS_EXPORT int hcs_fs_mkdir_p(const char *path, unsigned mode, hcs_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
