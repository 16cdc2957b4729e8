/* Internal interfaces of virtual machine compute systems (docs/vm.md): the
 * parsed VirtualMachine section, the QMP client, the QEMU command line and
 * the VM monitor.  A VM is a compute system whose "init" is QEMU: the
 * generic code in src/compute (state, exit record, wait, events, delete)
 * serves both kinds; the verbs that differ dispatch here. */
#ifndef HCS_VM_INTERNAL_H
#define HCS_VM_INTERNAL_H

#include "compute/compute.h"

/* --- the VirtualMachine section (config.c) --------------------------------- */
typedef struct {
  char *name; /* "<controller>:<lun>" as in the document */
  char *path;
  char *format; /* "raw" or "qcow2" */
  bool read_only;
} hcs_vm_disk_t;

typedef struct {
  char *name;
  char *host_path;
  bool read_only;
  bool hot; /* HotAdded: a bind under the `hcs-shares` export, not a device of its own */
} hcs_vm_share_t;

typedef struct {
  char *name;
  char *endpoint;
  char *mac;
  char tap[16];   /* made at create (src/net/tap.c) */
  char *ip_param; /* "ip=ADDR::GW:MASK::eth0:off" for the kernel command line */
} hcs_vm_nic_t;

typedef struct {
  char *owner;
  int64_t memory_mb, cpus, cpu_max, cpu_weight;
  char *kernel, *initrd, *cmdline; /* Chipset.LinuxKernelDirect */
  bool uefi;                       /* Chipset.Uefi: boot the first disk with OVMF */
  hcs_vm_disk_t *disks;
  size_t n_disks;
  hcs_vm_share_t *shares;
  size_t n_shares;
  hcs_vm_nic_t *nics;
  size_t n_nics;
  char *com_file, *com_socket; /* ComPorts "0": Path (a file) or NamedPipe (a unix socket) */
  char *restore;               /* RestoreState.SaveStateFilePath */
  json_t *pci_slots;           /* a restore: device id -> PCI slot in the saved VM (the saved state's header) */
  bool stop_on_reset;
  char *cgroup_parent;
  bool cgroup_parent_default;
} hcs_vm_config_t;

HCS_INTERNAL bool hcs_vm_document(json_t *doc); /* has a VirtualMachine section */
HCS_INTERNAL hcs_vm_config_t *hcs_vm_config_parse(json_t *doc, hcs_error_t *err);
HCS_INTERNAL void hcs_vm_config_free(hcs_vm_config_t *c);
/* The modify requests' device sections (hot-add), parsed alone. */
HCS_INTERNAL int hcs_vm_disk_parse(json_t *v, const char *path, const char *name, hcs_vm_disk_t *d, hcs_error_t *err);
HCS_INTERNAL int hcs_vm_share_parse(json_t *v, const char *path, hcs_vm_share_t *s, hcs_error_t *err);
HCS_INTERNAL void hcs_vm_disk_clear(hcs_vm_disk_t *d);
HCS_INTERNAL void hcs_vm_share_clear(hcs_vm_share_t *s);

/* --- network adapters (src/net/tap.c) ------------------------------------- */
/* The tap for endpoint `ref` (id or name) of the state root's network
 * store, on its network's bridge: fills nic->tap, ip_param and (unless
 * set) mac.  Refuses an endpoint attached to a namespace or used by a VM. */
HCS_INTERNAL int hcs_net_vm_adapter(const char *root, const char *ref, const char *vm_id, hcs_vm_nic_t *nic,
                                    hcs_error_t *err);
HCS_INTERNAL void hcs_net_tap_name(const char *endpoint_id, char out[16]);
HCS_INTERNAL int hcs_net_tap_remove(const char *name, hcs_error_t *err);
/* Remove the taps a VM's state.json lists (its monitor's clean-up, or
 * delete's when the monitor was killed). */
HCS_INTERNAL void hcs_vm_remove_taps(json_t *state);
/* Kill and remove what a create killed before state.json left (the
 * directory's qemu.json): QEMU, its cgroup, its taps. */
HCS_INTERNAL void hcs_vm_sweep_qemu(const char *dir);

/* --- QMP, JSON over the unix socket (qmp.c) -------------------------------- */
typedef struct hcs_qmp_s hcs_qmp_t;
/* Connect, read the greeting and negotiate capabilities; retries for up to
 * timeout_ms while the socket is not there yet. */
HCS_INTERNAL hcs_qmp_t *hcs_qmp_connect(const char *path, int timeout_ms, hcs_error_t *err);
HCS_INTERNAL void hcs_qmp_close(hcs_qmp_t *q);
/* Execute `cmd` with `args` (stolen, may be NULL); the "return" value
 * (new reference) or NULL with the QMP error in err.  `fd` >= 0 is passed
 * with the command (SCM_RIGHTS, for getfd). */
HCS_INTERNAL json_t *hcs_qmp_execute(hcs_qmp_t *q, const char *cmd, json_t *args, int fd, hcs_error_t *err);
/* One connection, one command. */
HCS_INTERNAL json_t *hcs_qmp_call(const char *path, const char *cmd, json_t *args, hcs_error_t *err);

/* --- the QEMU command line (qemu.c) ---------------------------------------- */
/* argv (NULL-terminated, malloc'd strings) for the VM in `dir`; incoming_fd
 * >= 0 restores from it.  `accel` is "kvm" or "tcg". */
HCS_INTERNAL char **hcs_qemu_argv(const hcs_vm_config_t *c, const char *id, const char *dir, const char *accel,
                                  int incoming_fd);
HCS_INTERNAL const char *hcs_qemu_binary(void);
/* <$HCS_OVMF_DIR or /usr/share/OVMF>/file: the UEFI firmware (malloc'd). */
HCS_INTERNAL char *hcs_vm_ovmf_path(const char *file);
/* The accelerator: $HCS_VM_ACCEL, else the probe cached in the run root;
 * `why` (static or malloc'd into *why_out) says why. */
HCS_INTERNAL const char *hcs_vm_accel(const char *run_root, char **why);
/* The same, probing KVM with `kernel` when nothing is cached (once per run
 * root; a few seconds when KVM hangs). */
HCS_INTERNAL const char *hcs_vm_accel_probe(const char *run_root, const char *kernel);

/* --- the saved-state file (vm.c) ------------------------------------------- */
/* "HCSVM1\n<length>\n<config document>\n" then QEMU's migration stream.  The
 * header's document has one more top-level member, "PciSlots" (device id ->
 * PCI slot): a hot-added device sits where QEMU put it, and the restored
 * QEMU must put every device where the saved one had it, or the migration
 * stream is refused. */
#define HCS_VM_SAVE_MAGIC "HCSVM1\n"
/* Open a saved state, check its header, return the fd positioned at the
 * migration stream, and its document in *doc (may be NULL). */
HCS_INTERNAL int hcs_vm_save_open(const char *path, json_t **doc, hcs_error_t *err);

/* --- create and the monitor (monitor.c) ------------------------------------ */
HCS_INTERNAL int hcs_vm_launch(hcs_system_t *cs, hcs_vm_config_t *c, int create_lock, hcs_error_t *err);

/* --- the monitor once QEMU runs (watch.c) ------------------------------------ */
/* What the VM's monitor watches once state.json is written; the strings
 * are borrowed.  hcs-monitor (src/monitor/main.c) gets it as arguments
 * after `--vm`. */
typedef struct {
  hcs_watch_base_t base; /* pid: QEMU; pidfd -1: QEMU is polled each second */
  int exec_fd, agent_fd; /* the relay's exec.sock and agent.sock connection, or both -1 */
  const char *nonce;     /* the hello sent on agent_fd */
  void (*on_idle)(void); /* called once the monitor is idle (1 s without activity), or NULL */
} hcs_vm_watch_t;

/* Relay the callers' agent sessions, wait for QEMU, record the exit
 * (exit.json, events; the cgroup, taps and sockets removed). */
HCS_INTERNAL __attribute__((noreturn)) void hcs_vm_watch_run(const hcs_vm_watch_t *w);
/* hcs-monitor's command line for w: `program --vm ...` (heap strings). */
HCS_INTERNAL char **hcs_vm_watch_argv(const hcs_vm_watch_t *w, const char *program);
/* In hcs-monitor: that command line back into w (pointing into argv). */
HCS_INTERNAL int hcs_vm_watch_parse(int argc, char **argv, hcs_vm_watch_t *w, hcs_error_t *err);
/* In hcs-monitor, before it acts: w is this process's VM (QEMU is our
 * child, state.json names us as its monitor and QEMU as its Pid, each fd
 * is what it claims): a command line made by hand or for another process
 * is refused. */
HCS_INTERNAL int hcs_vm_watch_check(const hcs_vm_watch_t *w, hcs_error_t *err);
/* The VM's sockets and run files (its monitor's clean-up). */
HCS_INTERNAL void hcs_vm_remove_files(hcs_system_t *cs);

/* --- the verbs that differ from containers (vm.c) --------------------------- */
HCS_INTERNAL bool hcs_system_is_vm(hcs_system_t *cs);
/* A restore document whose VirtualMachine holds only RestoreState takes the
 * saved system's document (kept in the saved state's header). */
HCS_INTERNAL int hcs_vm_prepare_document(json_t *doc, hcs_error_t *err);
HCS_INTERNAL int hcs_vm_create(hcs_system_t *cs, json_t *doc, hcs_vm_config_t *c, int create_lock, hcs_error_t *err);
HCS_INTERNAL int hcs_vm_start(hcs_system_t *cs, hcs_error_t *err);
HCS_INTERNAL int hcs_vm_shutdown(hcs_system_t *cs, int timeout_ms, hcs_error_t *err);
HCS_INTERNAL int hcs_vm_pause(hcs_system_t *cs, hcs_error_t *err);
HCS_INTERNAL int hcs_vm_resume(hcs_system_t *cs, hcs_error_t *err);
HCS_INTERNAL int hcs_vm_properties(hcs_system_t *cs, json_t *o, hcs_state_t st, json_t *query, hcs_error_t *err);
HCS_INTERNAL int hcs_vm_modify(hcs_system_t *cs, json_t *req, hcs_error_t *err);

/* --- the monitor's agent relay (relay.c) ------------------------------------ */
struct pollfd;
typedef struct hcs_vm_relay_s hcs_vm_relay_t;
/* <dir>/exec.sock listening (0600, non-blocking): the callers' door. */
HCS_INTERNAL int hcs_vm_relay_listen(const char *dir, hcs_error_t *err);
/* Connected to QEMU's chardev <dir>/agent.sock, the monitor's hello sent
 * with a new nonce (written to `nonce`; the agent's answer carries it). */
#define HCS_VM_NONCE_SIZE 64
HCS_INTERNAL int hcs_vm_relay_agent(const char *dir, char nonce[HCS_VM_NONCE_SIZE], hcs_error_t *err);
/* The relay over those two fds (owned from here); run_root, id and owner
 * name the system in the events it writes (a detached process's exit). */
HCS_INTERNAL hcs_vm_relay_t *hcs_vm_relay_new(const char *dir, const char *run_root, const char *id, const char *owner,
                                              int listen_fd, int agent_fd, const char *nonce);
/* The agent answered: callers' hellos are answered, <dir>/agent.ready made. */
HCS_INTERNAL void hcs_vm_relay_ready(hcs_vm_relay_t *r);
/* Fill pfd (at least 2 + 64 entries) for poll; the count. */
HCS_INTERNAL int hcs_vm_relay_pollfds(hcs_vm_relay_t *r, struct pollfd *pfd, int cap);
HCS_INTERNAL void hcs_vm_relay_handle(hcs_vm_relay_t *r, const struct pollfd *pfd, int n);
/* Free the buffers that are empty (an idle monitor keeps no burst's pages). */
HCS_INTERNAL void hcs_vm_relay_trim(hcs_vm_relay_t *r);
/* Disconnects every caller, removes exec.sock and agent.ready. */
HCS_INTERNAL void hcs_vm_relay_free(hcs_vm_relay_t *r);

/* --- Plan9 shares of a running VM (share.c) ------------------------------- */
/* The export every VM has: -fsdev over <dir>/shares with this mount tag. */
#define HCS_VM_SHARES_TAG "hcs-shares"
/* A detached clone of the directory host_path (O_NOFOLLOW, a directory),
 * read-only when asked: an fd for hcs_vm_share_attach. */
HCS_INTERNAL int hcs_vm_share_tree(const char *host_path, bool read_only, hcs_error_t *err);
/* Move tree onto <dir>/shares/NAME / unmount it (in the caller's namespace). */
HCS_INTERNAL int hcs_vm_share_attach(const char *dir, const char *name, int tree, hcs_error_t *err);
HCS_INTERNAL int hcs_vm_share_detach(const char *dir, const char *name, hcs_error_t *err);
/* The same in the mount namespace of the VM's QEMU. */
HCS_INTERNAL int hcs_vm_share_hot_add(hcs_system_t *cs, const char *name, const char *host_path, bool read_only,
                                      hcs_error_t *err);
HCS_INTERNAL int hcs_vm_share_hot_remove(hcs_system_t *cs, const char *name, hcs_error_t *err);
/* QEMU's own process before exec: a mount namespace, the export's tmpfs,
 * the binds of the document's HotAdded shares. */
HCS_INTERNAL int hcs_vm_share_setup(const hcs_vm_config_t *c, const char *dir, hcs_error_t *err);

/* --- processes through the guest agent (exec.c) ---------------------------- */
typedef struct hcs_vm_exec_s hcs_vm_exec_t;
/* The socket a process's agent session connects to. */
HCS_INTERNAL char *hcs_vm_exec_socket(hcs_system_t *cs);
/* Create a process in the guest: its guest pid in *pid, the caller's pipe
 * ends in fds (-1 where none; with a console fds[0] and fds[1] carry it).
 * detach: the VM's monitor owns it (it outlives the handle; no stdio). */
HCS_INTERNAL hcs_vm_exec_t *hcs_vm_exec_create(hcs_system_t *cs, const char *params, const hcs_compute_stdio_t *stdio,
                                               bool detach, int *pid, int fds[3], hcs_error_t *err);
/* A handle on guest process `pid` that the monitor's relay started. */
HCS_INTERNAL hcs_vm_exec_t *hcs_vm_exec_open(hcs_system_t *cs, int pid, hcs_error_t *err);
/* The guest agent answered the monitor (<dir>/agent.ready). */
HCS_INTERNAL bool hcs_vm_exec_agent_ready(hcs_system_t *cs);
/* Give a hot-added adapter its endpoint's address in the guest through the
 * agent (nothing when the guest runs no agent). */
HCS_INTERNAL int hcs_vm_exec_configure_nic(hcs_system_t *cs, const hcs_vm_nic_t *nic, hcs_error_t *err);
/* Unmount the guest's mounts of hot-added share `name` (nothing when the
 * guest runs no agent). */
HCS_INTERNAL int hcs_vm_exec_unmount_share(hcs_system_t *cs, const char *name, hcs_error_t *err);
/* Readable once the process exited or the agent is gone (owned by x). */
HCS_INTERNAL int hcs_vm_exec_event_fd(hcs_vm_exec_t *x);
HCS_INTERNAL int hcs_vm_exec_signal(hcs_vm_exec_t *x, int sig, hcs_error_t *err);
HCS_INTERNAL int hcs_vm_exec_resize(hcs_vm_exec_t *x, unsigned short rows, unsigned short cols, hcs_error_t *err);
/* 1 exited (*code: the exit code, 128+N for signal N; *signal N or 0), 0
 * timed out, -1 the agent is gone. */
HCS_INTERNAL int hcs_vm_exec_wait(hcs_vm_exec_t *x, int timeout_ms, int *code, int *signal, hcs_error_t *err);
/* Ends the session: the guest kills the process if it still runs. */
HCS_INTERNAL void hcs_vm_exec_close(hcs_vm_exec_t *x);

#endif
