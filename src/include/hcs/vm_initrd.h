/* The guest initramfs of hcs virtual machines: hcs-agent as /init, busybox
 * for the guest's shell tools, and the kernel modules a VM needs (virtio,
 * virtio-serial, 9p, network, overlay, ext4), with their dependencies from
 * modules.dep.  `hcs vm initrd` (docs/vm-agent.md). */
#ifndef HCS_VM_INITRD_H
#define HCS_VM_INITRD_H

#include "hcs/error.h"
#include "hcs/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  /* A kernel's modules: /lib/modules/VERSION, or a directory holding such
   * version directories (then kernel_version chooses; it may be omitted
   * when there is only one). */
  const char *modules_dir;
  const char *kernel_version; /* NULL: from modules_dir */
  const char *agent;          /* NULL: $HCS_AGENT, next to the running program, or the installed one */
  const char *busybox;        /* NULL: /bin/busybox (Debian's busybox-static) */
} hcs_vm_initrd_options_t;

/* Write a gzip'd cpio (newc) initramfs to `output`, atomically (a killed
 * build leaves the old file or none).  Returns a malloc'd JSON summary
 * {Path, KernelVersion, Size, Modules: [names], Builtin: [names]}, or NULL
 * with err. */
HCS_EXPORT char *hcs_vm_initrd_build(const hcs_vm_initrd_options_t *opts, const char *output, hcs_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
