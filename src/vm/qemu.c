/* The QEMU command line of a VM (one argv, no shell), and the accelerator:
 * KVM where a guest really boots under it, else TCG (a short timed probe,
 * cached in the run root, decides once; $HCS_VM_ACCEL overrides). */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "vm/vm.h"

const char *hcs_qemu_binary(void) {
  const char *q = getenv("HCS_QEMU");
  return q && *q ? q : "qemu-system-x86_64";
}

/* Debian's ovmf package; $HCS_OVMF_DIR names another directory holding
 * OVMF_CODE.fd and OVMF_VARS.fd (a firmware built elsewhere, or none: the
 * tests check the refusal). */
char *hcs_vm_ovmf_path(const char *file) {
  const char *d = getenv("HCS_OVMF_DIR");
  return hcs_xasprintf("%s/%s", d && *d ? d : "/usr/share/OVMF", file);
}

typedef struct {
  char **v;
  size_t n, cap;
} argv_t;

static void add(argv_t *a, char *s) {
  if (a->n + 2 > a->cap) {
    a->cap = a->cap ? a->cap * 2 : 64;
    a->v = hcs_xrealloc(a->v, a->cap * sizeof *a->v);
  }
  a->v[a->n++] = s;
  a->v[a->n] = NULL;
}

#define ADD(a, ...) add(a, hcs_xasprintf(__VA_ARGS__))

/* QEMU's option syntax takes a comma as ",,": a path with one must not
 * start a new option. */
static char *opt_escape(const char *s) {
  size_t n = 0;
  for (const char *p = s; *p; p++)
    n += *p == ',' ? 2 : 1;
  char *o = hcs_xmalloc(n + 1), *q = o;
  for (const char *p = s; *p; p++) {
    *q++ = *p;
    if (*p == ',') *q++ = ',';
  }
  *q = '\0';
  return o;
}

/* ",addr=N" for a device of a restored VM: the slot it had in the saved
 * one (hot-added devices took free slots there, which the restored QEMU
 * would give to others); "" otherwise (QEMU picks, in command-line order). */
static char *slot(const hcs_vm_config_t *c, const char *prefix, const char *name) {
  cleanup_free char *id = hcs_xasprintf("%s%s", prefix, name);
  json_t *s = json_object_get(c->pci_slots, id);
  if (!json_is_integer(s) || json_integer_value(s) < 1 || json_integer_value(s) > 31) return hcs_xstrdup("");
  return hcs_xasprintf(",addr=%#llx", (long long)json_integer_value(s));
}

char **hcs_qemu_argv(const hcs_vm_config_t *c, const char *id, const char *dir, const char *accel, int incoming_fd) {
  argv_t a = {0};
  cleanup_free char *edir = opt_escape(dir);
  add(&a, hcs_xstrdup(hcs_qemu_binary()));
  ADD(&a, "-name");
  ADD(&a, "guest=hcs-%s", id);
  /* i440fx: its PCI bus takes hot-plugged devices (q35's root bus does not). */
  ADD(&a, "-machine");
  ADD(&a, "pc");
  ADD(&a, "-accel");
  /* TCG's translation cache defaults to 1 GiB of address space; 64 MiB is
   * plenty for a small guest and keeps QEMU well inside its cgroup. */
  ADD(&a, strcmp(accel, "kvm") == 0 ? "kvm" : "tcg,tb-size=64");
  if (strcmp(accel, "kvm") == 0) ADD(&a, "-cpu"), ADD(&a, "host");
  ADD(&a, "-m");
  ADD(&a, "%lld", (long long)c->memory_mb);
  ADD(&a, "-smp");
  ADD(&a, "%lld", (long long)c->cpus);
  ADD(&a, "-nodefaults");
  ADD(&a, "-no-user-config");
  ADD(&a, "-display");
  ADD(&a, "none");
  ADD(&a, "-msg");
  ADD(&a, "timestamp=on");
  ADD(&a, "-qmp");
  ADD(&a, "unix:%s/qmp.sock,server=on,wait=off", edir);
  /* The guest channel (the agent's, docs/vm.md): virtio-serial, as this
   * host has no vhost-vsock. */
  ADD(&a, "-chardev");
  ADD(&a, "socket,id=hcsagent,path=%s/agent.sock,server=on,wait=off", edir);
  cleanup_free char *vser = slot(c, "", "vser0");
  ADD(&a, "-device");
  ADD(&a, "virtio-serial-pci,id=vser0%s", vser);
  ADD(&a, "-device");
  ADD(&a, "virtserialport,chardev=hcsagent,name=org.hcs.agent");
  if (c->com_file || c->com_socket) {
    cleanup_free char *p = opt_escape(c->com_file ? c->com_file : c->com_socket);
    ADD(&a, "-chardev");
    if (c->com_file)
      ADD(&a, "file,id=com0,path=%s,append=on", p);
    else
      ADD(&a, "socket,id=com0,path=%s,server=on,wait=off", p);
    ADD(&a, "-serial");
    ADD(&a, "chardev:com0");
  }
  if (c->kernel) {
    ADD(&a, "-kernel");
    add(&a, hcs_xstrdup(c->kernel));
    if (c->initrd) ADD(&a, "-initrd"), add(&a, hcs_xstrdup(c->initrd));
    ADD(&a, "-append");
    /* The first adapter's address for the guest (`ip=`). */
    const char *ip = c->n_nics ? c->nics[0].ip_param : NULL;
    ADD(&a, "%s%s%s", c->cmdline ? c->cmdline : "", ip && c->cmdline ? " " : "", ip ? ip : "");
  }
  for (size_t i = 0; i < c->n_nics; i++) {
    const hcs_vm_nic_t *n = &c->nics[i];
    ADD(&a, "-netdev");
    ADD(&a, "tap,id=net-%s,ifname=%s,script=no,downscript=no", n->name, n->tap);
    ADD(&a, "-device");
    /* HNS writes MACs with dashes; QEMU takes colons. */
    cleanup_free char *mac = n->mac ? hcs_xstrdup(n->mac) : NULL;
    for (char *p = mac; p && *p; p++)
      if (*p == '-') *p = ':';
    cleanup_free char *at = slot(c, "dev-net-", n->name);
    ADD(&a, "virtio-net-pci,netdev=net-%s,id=dev-net-%s%s%s%s", n->name, n->name, mac ? ",mac=" : "", mac ? mac : "",
        at);
  }
  if (c->uefi) {
    cleanup_free char *code = hcs_vm_ovmf_path("OVMF_CODE.fd");
    cleanup_free char *ecode = opt_escape(code);
    ADD(&a, "-drive");
    ADD(&a, "if=pflash,format=raw,readonly=on,file=%s", ecode);
    ADD(&a, "-drive");
    ADD(&a, "if=pflash,format=raw,file=%s/OVMF_VARS.fd", edir);
  }
  for (size_t i = 0; i < c->n_disks; i++) {
    const hcs_vm_disk_t *d = &c->disks[i];
    cleanup_free char *p = opt_escape(d->path);
    ADD(&a, "-drive");
    ADD(&a, "file=%s,format=%s,if=none,id=disk-%s%s", p, d->format, d->name, d->read_only ? ",readonly=on" : "");
    ADD(&a, "-device");
    cleanup_free char *at = slot(c, "dev-disk-", d->name);
    ADD(&a, "virtio-blk-pci,drive=disk-%s,id=dev-disk-%s%s%s", d->name, d->name,
        c->uefi && i == 0 ? ",bootindex=0" : "", at);
  }
  for (size_t i = 0; i < c->n_shares; i++) {
    const hcs_vm_share_t *s = &c->shares[i];
    cleanup_free char *p = opt_escape(s->host_path);
    ADD(&a, "-fsdev");
    ADD(&a, "local,id=fs-%s,path=%s,security_model=none%s", s->name, p, s->read_only ? ",readonly=on" : "");
    ADD(&a, "-device");
    cleanup_free char *at = slot(c, "dev-fs-", s->name);
    ADD(&a, "virtio-9p-pci,fsdev=fs-%s,mount_tag=%s,id=dev-fs-%s%s", s->name, s->name, s->name, at);
  }
  cleanup_free char *bal = slot(c, "", "balloon0");
  ADD(&a, "-device");
  ADD(&a, "virtio-balloon-pci,id=balloon0%s", bal);
  if (c->stop_on_reset) ADD(&a, "-no-reboot");
  /* Created is QEMU with its vCPUs stopped: start is QMP `cont`. */
  ADD(&a, "-S");
  if (incoming_fd >= 0) {
    ADD(&a, "-incoming");
    ADD(&a, "fd:%d", incoming_fd);
  }
  return a.v;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Does a Linux guest boot under KVM here?  /dev/kvm may exist while a
 * nested guest hangs at boot, so a kernel is booted for real: with no root
 * it panics, `panic=-1` reboots, `-no-reboot` ends QEMU; an exit within
 * the timeout means KVM runs guests. */
static bool probe_kvm(const char *kernel, int timeout_ms, char *why, size_t size) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) {
    snprintf(why, size, "/dev/kvm: %s", strerror(errno));
    return false;
  }
  close(kvm);
  if (kernel == NULL) {
    snprintf(why, size, "no kernel to probe KVM with");
    return false;
  }
  const char *argv[] = {hcs_qemu_binary(), "-accel",          "kvm",      "-cpu", "host",       "-m",      "128",
                        "-nodefaults",     "-no-user-config", "-display", "none", "-no-reboot", "-kernel", kernel,
                        "-append",         "panic=-1 quiet",  NULL};
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(why, size, "fork: %s", strerror(errno));
    return false;
  }
  if (pid == 0) {
    /* A creator killed mid-probe must not leave a hung guest behind. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0), dup2(null, 1), dup2(null, 2);
    execvp(argv[0], (char **)argv);
    _exit(127);
  }
  int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
  int64_t start = now_ms();
  struct pollfd p = {pfd, POLLIN, 0};
  int r;
  do
    r = poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r <= 0) kill(pid, SIGKILL);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (pfd >= 0) close(pfd);
  if (r <= 0) {
    snprintf(why, size, "a Linux guest did not boot under KVM within %d ms (nested virtualization?)", timeout_ms);
    return false;
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    snprintf(why, size, "QEMU with KVM failed (status %d)", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return false;
  }
  snprintf(why, size, "a Linux guest booted under KVM in %lld ms", (long long)(now_ms() - start));
  return true;
}

const char *hcs_vm_accel(const char *run_root, char **why) {
  const char *env = getenv("HCS_VM_ACCEL");
  if (env && (strcmp(env, "kvm") == 0 || strcmp(env, "tcg") == 0)) {
    if (why) *why = hcs_xstrdup("HCS_VM_ACCEL");
    return strcmp(env, "kvm") == 0 ? "kvm" : "tcg";
  }
  cleanup_free char *path = hcs_xasprintf("%s/vm-accel", run_root), *text = NULL;
  if (hcs_read_file(path, &text, NULL, NULL) == 0 && strncmp(text, "kvm\n", 4) == 0) {
    if (why) *why = hcs_xstrdup(text + 4);
    return "kvm";
  }
  if (text && strncmp(text, "tcg\n", 4) == 0) {
    if (why) *why = hcs_xstrdup(text + 4);
    return "tcg";
  }
  if (why) *why = hcs_xstrdup("not probed yet (the first VM probes KVM)");
  return NULL;
}

/* The probe result, cached in the run root (KVM's usability does not
 * change while the host runs). */
const char *hcs_vm_accel_probe(const char *run_root, const char *kernel) {
  const char *a = hcs_vm_accel(run_root, NULL);
  if (a) return a;
  char why[256];
  bool kvm = probe_kvm(kernel, 5000, why, sizeof why);
  cleanup_free char *path = hcs_xasprintf("%s/vm-accel", run_root);
  cleanup_free char *text = hcs_xasprintf("%s\n%s", kvm ? "kvm" : "tcg", why);
  hcs_mkdir_p(run_root, 0700, NULL);
  hcs_write_file_replace(path, text, strlen(text), 0600, NULL);
  hcs_info("virtual machines use %s: %s", kvm ? "KVM" : "TCG", why);
  return kvm ? "kvm" : "tcg";
}
