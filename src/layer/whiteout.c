/* Whiteouts: the OCI form (`.wh.NAME` entries, `.wh..wh..opq` markers) and
 * the overlay form (0/0 character devices, `trusted.overlay.opaque=y`), and
 * the overlay attributes that never cross between the two. */
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "layer/internal.h"

enum layer_wh layer_whiteout_parse(const char *base, const char **target) {
  *target = NULL;
  if (strncmp(base, WH_PREFIX, strlen(WH_PREFIX)) != 0) return LAYER_WH_NONE;
  if (strcmp(base, WH_OPAQUE) == 0) return LAYER_WH_OPAQUE;
  if (strncmp(base, WH_PREFIX WH_PREFIX, 2 * strlen(WH_PREFIX)) == 0) return LAYER_WH_META; /* aufs .wh..wh.plnk */
  const char *name = base + strlen(WH_PREFIX);
  if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return LAYER_WH_INVALID;
  *target = name;
  return LAYER_WH_FILE;
}

int layer_whiteout_make(int pfd, const char *name) { return mknodat(pfd, name, S_IFCHR, makedev(0, 0)); }

int layer_opaque_mark(int dirfd) { return fsetxattr(dirfd, OVL_OPAQUE_XATTR, "y", 1, 0); }

bool layer_is_whiteout(const struct stat *st) { return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0); }

bool layer_is_opaque(int dirfd) {
  char v[4];
  return fgetxattr(dirfd, OVL_OPAQUE_XATTR, v, sizeof v) == 1 && v[0] == 'y';
}

bool layer_is_overlay_xattr(const char *name) { return strncmp(name, OVL_XATTR_PREFIX, strlen(OVL_XATTR_PREFIX)) == 0; }

char *layer_whiteout_entry(const char *rel) {
  const char *slash = strrchr(rel, '/');
  if (slash == NULL) return hcs_xasprintf(WH_PREFIX "%s", rel);
  return hcs_xasprintf("%.*s/" WH_PREFIX "%s", (int)(slash - rel), rel, slash + 1);
}
