/* Library version and what the host kernel offers to hcs. */
#ifndef HCS_HOST_H
#define HCS_HOST_H

#include "hcs/error.h"
#include "hcs/export.h"

#ifdef __cplusplus
extern "C" {
#endif

HCS_EXPORT const char *hcs_version(void);

typedef enum {
  HCS_CGROUP_NONE = 0,
  HCS_CGROUP_V1 = 1,
  HCS_CGROUP_V2 = 2,     /* unified hierarchy only */
  HCS_CGROUP_HYBRID = 3, /* v1 controllers plus a cgroup2 mount (systemd "hybrid") */
} hcs_cgroup_mode_t;

HCS_EXPORT hcs_cgroup_mode_t hcs_host_cgroup_mode(void);
HCS_EXPORT const char *hcs_cgroup_mode_name(hcs_cgroup_mode_t mode);

/* JSON object describing the host: Kernel {Release, Version, Machine},
 * Cgroup {Mode, V2Path, Controllers}, Overlayfs, Namespaces {mnt, pid, ...},
 * Seccomp, Root.  Returned as a malloc'd JSON string (free with free()). */
HCS_EXPORT char *hcs_host_capabilities(hcs_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
