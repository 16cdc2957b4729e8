/* A UEFI boot of a VM compute system under TCG (label `vm`), and Plan9
 * shares hot-added to it: OVMF boots a FAT disk holding Debian's kernel
 * and the hcs initramfs (its guest agent). */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "hcs/vm_initrd.h"
#include "vm/agent_client.h"
#include "vm/vm.h"
#include "hcs/hcs.h"
#include "tap.h"
#include "vm_test.h"

/* Plan9 shares added to the running VM and mounted by its agent: the guest
 * reads a host file through a read-only one (and cannot write it) and
 * writes one the host sees through a writable one; removing them unmounts
 * them in the guest and leaves no mount in the host's namespace or QEMU's. */
static void hot_shares(hcs_system_t *cs) {
  hcs_error_t e = NULL;
  cleanup_free char *ro = hcs_xasprintf("%s/p9ro", root), *rw = hcs_xasprintf("%s/p9rw", root);
  cleanup_free char *hello = hcs_xasprintf("%s/hello", ro), *out = hcs_xasprintf("%s/out", rw);
  cleanup_free char *x = hcs_xasprintf("%s/x", ro);
  mkdir(ro, 0755);
  mkdir(rw, 0777);
  FILE *f = fopen(hello, "w");
  ok(f && fputs("from-host\n", f) >= 0 && fclose(f) == 0, "a host file to share");
  cleanup_free char *add_ro = share_req("Add", "p9ro", ro, true), *add_rw = share_req("Add", "p9rw", rw, false);
  ok(hcs_compute_modify(cs, add_ro, &e) == 0, "hot-add a read-only share: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  ok(hcs_compute_modify(cs, add_rw, &e) == 0, "hot-add a writable share: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  cleanup_free char *sock = hcs_vm_exec_socket(cs);
  hcs_vm_agent_t *a = hcs_vm_agent_connect(sock, 60000, &e);
  ok(a != NULL, "an agent session: %s", a ? "" : hcs_error_message(e));
  hcs_error_release(&e);
  if (a) {
    ok(hcs_vm_agent_mount_9p(a, "p9ro", "/mnt/ro", true, &e) == 0, "the agent mounts the read-only share: %s",
       e ? hcs_error_message(e) : "");
    hcs_error_release(&e);
    ok(hcs_vm_agent_mount_9p(a, "p9rw", "/mnt/rw", false, &e) == 0, "the agent mounts the writable share: %s",
       e ? hcs_error_message(e) : "");
    hcs_error_release(&e);
    ok(hcs_vm_agent_mount_9p(a, "p9none", "/mnt/none", false, &e) < 0, "an unknown share name is refused");
    has_substr(hcs_error_message(e), "mount 9p share `p9none` on `/mnt/none`: No such file or directory",
               "... naming it");
    hcs_error_release(&e);
    hcs_vm_agent_close(a);
  }
  char buf[256];
  is_int(guest_run(cs, "cat /mnt/ro/hello", buf, sizeof buf), 0, "the guest reads the read-only share");
  is_str(buf, "from-host\n", "... the host's file");
  is_int(guest_run(cs, "touch /mnt/ro/x 2>&1", buf, sizeof buf), 1, "writing to the read-only share fails");
  has_substr(buf, "Read-only file system", "... read-only: %s", buf);
  ok(access(x, F_OK) < 0, "... nothing was written on the host");
  is_int(guest_run(cs, "echo guest-wrote > /mnt/rw/out", buf, sizeof buf), 0, "the guest writes the writable share");
  cleanup_free char *got = slurp(out);
  is_str(got, "guest-wrote\n", "... the host sees the file");
  cleanup_free char *rm_ro = share_req("Remove", "p9ro", NULL, false),
                    *rm_rw = share_req("Remove", "p9rw", NULL, false);
  ok(hcs_compute_pause(cs, &e) == 0, "pause");
  hcs_error_release(&e);
  ok(hcs_compute_modify(cs, rm_ro, &e) < 0, "removing a share from a paused VM with an agent is refused");
  has_substr(hcs_error_message(e), "the VM is paused and its agent unmounts the share (resume it first)",
             "... saying so");
  hcs_error_release(&e);
  ok(hcs_compute_resume(cs, &e) == 0, "resume");
  hcs_error_release(&e);
  ok(hcs_compute_modify(cs, rm_ro, &e) == 0, "remove the read-only share: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  ok(hcs_compute_modify(cs, rm_rw, &e) == 0, "remove the writable share: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  guest_run(cs, "grep -c hcs-shares /proc/self/mountinfo", buf, sizeof buf);
  is_str(buf, "0\n", "the guest has no mount of the shares left");
  pid_t q = qemu_pid(cs);
  ok(q > 0 && !mountinfo_has(q, "/shares/p9r"), "QEMU's namespace has no bind left");
  ok(!mountinfo_has(0, "/shares/p9r") && !mountinfo_has(0, "p9ro") && !mountinfo_has(0, "p9rw"),
     "the host's namespace has none");
  is_int(guest_run(cs, "cat /mnt/ro/hello 2>/dev/null", buf, sizeof buf), 1, "the guest no longer reads the share");
}

/* A UEFI boot: OVMF boots a FAT disk (built here with mkfs.fat and mcopy)
 * that holds Debian's kernel (an EFI stub), the hcs initramfs (the guest
 * agent) and a startup.nsh the UEFI shell runs (the kernel has no built-in
 * command line; the shell passes ours); a process runs through the agent
 * and the ACPI power button ends it.  The firmware missing, a disk not
 * found and no disk are refused first. */
static char *uefi_doc(const char *disk, const char *con) {
  return hcs_xasprintf(
      "{\"Owner\":\"vmtest\",\"SchemaVersion\":{\"Major\":2,\"Minor\":1},\"VirtualMachine\":{"
      "\"StopOnReset\":true,\"ComputeTopology\":{\"Memory\":{\"SizeInMB\":192}},\"Chipset\":{\"Uefi\":{}},"
      "\"Devices\":{\"ComPorts\":{\"0\":{\"Path\":\"%s\"}}%s%s%s}},\"Linux\":{\"CgroupParent\":\"%s\"}}",
      con, disk ? ",\"Scsi\":{\"0\":{\"Attachments\":{\"0\":{\"Path\":\"" : "", disk ? disk : "", disk ? "\"}}}}" : "",
      cgparent);
}

static void uefi(void) {
  hcs_error_t e = NULL;
  if (system("command -v mkfs.fat >/dev/null && command -v mcopy >/dev/null") != 0 ||
      access("/usr/share/OVMF/OVMF_CODE.fd", R_OK) != 0) {
    ok(0, "mkfs.fat, mcopy and OVMF (scripts/bootstrap installs dosfstools, mtools, ovmf)");
    return;
  }
  cleanup_free char *con = hcs_xasprintf("%s/uefi.log", root), *disk = hcs_xasprintf("%s/uefi.img", root);
  cleanup_free char *nsh = hcs_xasprintf("%s/startup.nsh", root);
  FILE *f = fopen(nsh, "w");
  ok(f && fputs("fs0:\r\n\\vmlinuz initrd=\\initrd.gz console=ttyS0 loglevel=6 panic=-1\r\n", f) >= 0 && fclose(f) == 0,
     "a startup.nsh");
  const char *build = getenv("HCS_BUILD_DIR");
  cleanup_free char *agent = hcs_xasprintf("%s/hcs-agent", build ? build : "build");
  cleanup_free char *ainitrd = hcs_xasprintf("%s/agent-initrd.gz", root);
  hcs_vm_initrd_options_t io = {
      .modules_dir = "/lib/modules", .kernel_version = strchr(kernel, '-') + 1, .agent = agent};
  cleanup_free char *sum = hcs_vm_initrd_build(&io, ainitrd, &e);
  ok(sum != NULL, "the hcs initramfs: %s", sum ? "" : hcs_error_message(e));
  hcs_error_release(&e);
  cleanup_free char *mk = hcs_xasprintf("mkfs.fat -C -n HCSUEFI '%s' 32768 >/dev/null && mcopy -i '%s' '%s' ::/vmlinuz "
                                        "&& mcopy -i '%s' '%s' ::/initrd.gz && mcopy -i '%s' '%s' ::/startup.nsh",
                                        disk, disk, kernel, disk, ainitrd, disk, nsh);
  ok(system(mk) == 0, "a FAT disk with the kernel, the hcs initramfs and startup.nsh");

  cleanup_free char *doc = uefi_doc(disk, con);
  setenv("HCS_OVMF_DIR", "/nonexistent/OVMF", 1);
  hcs_system_t *cs = hcs_compute_create(root, "uefi", doc, NULL, &e);
  unsetenv("HCS_OVMF_DIR");
  ok(cs == NULL, "Uefi without the firmware installed is refused");
  has_substr(hcs_error_message(e),
             "`VirtualMachine.Chipset.Uefi`: the UEFI firmware `/nonexistent/OVMF/OVMF_CODE.fd` is not installed",
             "... naming it: %s", hcs_error_message(e));
  hcs_error_release(&e);
  hcs_compute_close(cs);
  cleanup_free char *nodisk = uefi_doc("/nonexistent/uefi.img", con);
  cs = hcs_compute_create(root, "uefi", nodisk, NULL, &e);
  ok(cs == NULL, "Uefi with a disk not found is refused");
  has_substr(hcs_error_message(e),
             "`VirtualMachine.Devices.Scsi.0.Attachments.0.Path`: `/nonexistent/uefi.img` not found", "... naming it");
  hcs_error_release(&e);
  hcs_compute_close(cs);
  cleanup_free char *none = uefi_doc(NULL, con);
  cs = hcs_compute_create(root, "uefi", none, NULL, &e);
  ok(cs == NULL, "Uefi without a disk is refused");
  has_substr(hcs_error_message(e), "`VirtualMachine.Devices.Scsi`: expected a disk to boot from with Chipset.Uefi",
             "... saying so");
  hcs_error_release(&e);
  hcs_compute_close(cs);

  cs = hcs_compute_create(root, "uefi", doc, NULL, &e);
  ok(cs != NULL, "create a UEFI VM: %s", cs ? "" : hcs_error_message(e));
  hcs_error_release(&e);
  if (cs == NULL) return;
  char vars[PATH_MAX];
  snprintf(vars, sizeof vars, "%s/run/compute/uefi/OVMF_VARS.fd", root);
  ok(access(vars, F_OK) == 0, "its own copy of the UEFI variables");
  ok(hcs_compute_start(cs, &e) == 0, "start");
  ok(wait_console(con, "UEFI Interactive Shell", 0), "OVMF runs the UEFI shell");
  ok(wait_console(con, "Linux version", 0), "the shell's startup.nsh boots the kernel");
  hcs_process_t *pr = hcs_process_create(
      cs, "{\"CommandArgs\":[\"sh\",\"-c\",\"echo uefi-$((6*7)); exit 3\"],\"CreateStdOutPipe\":true}", &e);
  ok(pr != NULL, "a process in the guest through the agent: %s", pr ? "" : hcs_error_message(e));
  hcs_error_release(&e);
  if (pr) {
    int out = -1;
    hcs_process_take_stdio(pr, NULL, &out, NULL);
    char buf[64] = "";
    size_t n = 0;
    ssize_t r;
    while (out >= 0 && n < sizeof buf - 1 && (r = read(out, buf + n, sizeof buf - 1 - n)) > 0)
      n += (size_t)r;
    buf[n] = '\0';
    if (out >= 0) close(out);
    is_str(buf, "uefi-42\n", "... its output");
    is_int(hcs_process_wait(pr, 60000, &e), 1, "... it exits");
    is_int(hcs_process_exit_code(pr, &e), 3, "... with its code");
    hcs_error_release(&e);
    hcs_process_close(pr);
  }
  hot_shares(cs);
  ok(hcs_compute_shutdown(cs, 60000, &e) == 0, "shutdown: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  json_t *p = props(cs);
  is_str(prop_str(p, "ExitType"), "Shutdown", "the guest powered off through ACPI (ExitType Shutdown)");
  json_decref(p);
  ok(hcs_compute_delete(cs, false, &e) == 0, "delete: %s", e ? hcs_error_message(e) : "");
  hcs_error_release(&e);
  hcs_compute_close(cs);
  ok(access(vars, F_OK) < 0, "the variables went with it");
}

int main(void) {
  if (!vm_test_setup("vmuefi")) return 0;
  uefi();
  return vm_test_done();
}
