/* Virtual machine compute systems (docs/vm.md): a document with a
 * `VirtualMachine` section given to hcs_compute_create makes a VM run by
 * QEMU, operated with the hcs_compute_* verbs.  What only VMs have is here:
 * save (HcsSaveComputeSystem) and restore from a saved state. */
#ifndef HCS_VM_H
#define HCS_VM_H

#include "hcs/compute.h"
#include "hcs/error.h"
#include "hcs/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Save the VM's memory and device state to `path` (replaced atomically:
 * a header with the system's document, then QEMU's migration stream).  A
 * running VM is paused first and stays Paused; its disks are left as they
 * are (they must not change before a restore). */
HCS_EXPORT int hcs_vm_save(hcs_system_t *cs, const char *path, hcs_error_t *err);
/* Create a new system `id` from a saved state: the saved document with
 * RestoreState.SaveStateFilePath = path (hcs_compute_create does the same
 * with any document holding RestoreState).  It is Created; start
 * continues the guest where it was saved. */
HCS_EXPORT hcs_system_t *hcs_vm_restore(const char *root, const char *id, const char *path, hcs_error_t *err);
/* The accelerator VMs use ("kvm" or "tcg") and why, as a malloc'd JSON
 * object {"Accelerator": .., "Reason": ..}; no probe is run. */
HCS_EXPORT char *hcs_vm_accelerator(const char *root, hcs_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
