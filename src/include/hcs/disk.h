/* Virtual disks, the VHD analogue (docs/vm.md): raw and qcow2 images made,
 * grown and inspected with qemu-img, including a writable qcow2 disk on
 * top of a read-only base (a backing file). */
#ifndef HCS_DISK_H
#define HCS_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "hcs/error.h"
#include "hcs/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Create `path` (it must not exist; made under a temporary name and renamed
 * into place) of `format` "raw" or "qcow2" and `size` bytes; with
 * `backing` (qcow2 only) the new disk starts as that image (size 0: the
 * backing file's), which is only read. */
HCS_EXPORT int hcs_disk_create(const char *path, const char *format, uint64_t size, const char *backing,
                               hcs_error_t *err);
/* Grow (or, with `shrink`, shrink) a disk to `size` bytes. */
HCS_EXPORT int hcs_disk_resize(const char *path, uint64_t size, bool shrink, hcs_error_t *err);
/* qemu-img's view as a malloc'd JSON object: {Path, Format, VirtualSize,
 * ActualSize, BackingFile?, BackingFormat?, Dirty?}. */
HCS_EXPORT char *hcs_disk_inspect(const char *path, hcs_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
