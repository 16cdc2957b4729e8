/* Entry path normalization and openat2-based resolution beneath a root. */
#ifndef HCS_LAYER_PATH_H
#define HCS_LAYER_PATH_H

#include <linux/openat2.h>
#include <stdint.h>

#include "core/util.h"

/* Every lookup below a layer root: a path that would leave the root (`..`
 * above it, an absolute symlink, a symlink pointing out) fails with EXDEV
 * instead of being silently confined, so a hostile archive is refused and
 * named; magic links (/proc/self/fd/N) are never followed. */
#define LAYER_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)

HCS_INTERNAL int layer_openat2(int dirfd, const char *path, int flags, uint64_t resolve);
/* Normalize an archive entry name: drop `.`/empty components and trailing
 * slashes; -1 for absolute names and any `..` component.  *out is malloc'd
 * ("" for the root itself). */
HCS_INTERNAL int layer_clean_path(const char *in, char **out);
/* Split a cleaned path in place into parent ("" at top) and base name. */
HCS_INTERNAL void layer_split_path(char *path, const char **parent, const char **base);
/* Open directory rel beneath rootfd (creating missing components with mode
 * 0755 when create is set); flags e.g. O_PATH or O_RDONLY. */
HCS_INTERNAL int layer_resolve_dir(int rootfd, const char *rel, bool create, int flags);

/* A set of paths kept as 64-bit hashes: "maybe present" or "surely absent".
 * A collision only ever answers "maybe", so a caller that takes "maybe" as
 * the slow, safe way stays correct.  Zeroed memory is an empty set. */
struct layer_pathset {
  uint64_t *slots; /* 0: empty */
  size_t n, cap;
};
HCS_INTERNAL void layer_pathset_add(struct layer_pathset *s, const char *path);
HCS_INTERNAL bool layer_pathset_maybe(const struct layer_pathset *s, const char *path);
HCS_INTERNAL void layer_pathset_clear(struct layer_pathset *s);
HCS_INTERNAL void layer_pathset_free(struct layer_pathset *s);

#endif
