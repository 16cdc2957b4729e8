/* Internal interfaces of the compute subsystem: the parsed configuration,
 * the cgroup ops table, the spawn/monitor protocol and on-disk state. */
#ifndef HCS_COMPUTE_INTERNAL_H
#define HCS_COMPUTE_INTERNAL_H

#include <poll.h>
#include <stdint.h>
#include <sys/resource.h>
#include <linux/filter.h>

#include "core/util.h"
#include "hcs/compute.h"
#include "hcs/process.h"
#include "hcs/host.h"

/* --- configuration (config.c) -------------------------------------------- */
typedef struct {
  char **argv; /* NULL-terminated */
  char *cwd;
  char **env; /* NULL-terminated "K=V" */
  char *user;
  int umask;           /* Umask, -1: 022 */
  gid_t *extra_groups; /* AdditionalGroups, after the user's own */
  size_t n_extra_groups;
  bool console;
  unsigned short rows, cols;
  bool pipe_in, pipe_out, pipe_err;
  int preserve_fds; /* PreserveFds: the creator's fds 3..3+N-1 stay open across execve */
  /* Capabilities / CapabilitySets of this process (create_process): they
   * replace the system's sets, within the system's bounding set. */
  bool caps_given, cap_sets;
  uint64_t caps, cap_eff, cap_perm, cap_inh, cap_amb;
} hcs_proc_spec_t;

typedef struct {
  char *host_path, *container_path;
  bool read_only;
} hcs_mapped_dir_t;

/* Linux.Mounts: a mount of any type at a destination resolved inside the
 * root (never through a symlink out of it). */
typedef struct {
  char *destination, *type, *source, *data;
  unsigned long flags, propagation; /* MS_*; propagation 0 = none */
  bool bind_ro;                     /* a read-only bind: bound, then remounted */
  /* Type "cgroup"/"cgroup2": the system's own cgroup, mounted once init
   * is in it (v2: its directory; v1: a tmpfs with each hierarchy's
   * directory of the system bound in, as runc does). */
  bool cgroup;
} hcs_mount_t;

typedef struct {
  int resource;
  struct rlimit lim;
} hcs_rlimit_t;

typedef struct {
  bool allow;
  char type;            /* 'a', 'b', 'c' */
  int64_t major, minor; /* -1 = '*' */
  char access[4];
} hcs_device_rule_t;

typedef struct {
  uint32_t inside, outside, count;
} hcs_id_map_t;

/* Linux.Namespaces: namespaces joined by path instead of made new. */
enum { HCS_NS_USER, HCS_NS_MOUNT, HCS_NS_PID, HCS_NS_IPC, HCS_NS_UTS, HCS_NS_CGROUP, HCS_NS_TIME, HCS_NS_COUNT };
HCS_INTERNAL extern const struct hcs_ns_kind_s {
  const char *field; /* "Pid" */
  int type;          /* CLONE_NEW* */
} hcs_ns_kinds[HCS_NS_COUNT];

typedef struct {
  char *owner;
  char *hostname;
  char *rootfs;
  hcs_mapped_dir_t *mounts;
  size_t n_mounts;
  int64_t cpu_count, cpu_max, cpu_weight; /* 0 = unset */
  int64_t memory_mb;
  int64_t pids_limit;
  char *netns;                  /* resolved absolute path or NULL (new netns) */
  char *ns_paths[HCS_NS_COUNT]; /* Linux.Namespaces: joined by path, NULL: new */
  /* Linux section */
  char *cgroup_parent;
  bool cgroup_parent_default; /* no Linux.CgroupParent: the leaf names the run root too */
  uint64_t caps;              /* bounding/effective set bitmask */
  bool caps_given;            /* Linux.Capabilities was set (else the default) */
  bool cap_sets;              /* Linux.CapabilitySets was set */
  uint64_t cap_eff, cap_perm, cap_inh, cap_amb;
  bool seccomp;
  char **seccomp_deny;   /* extra syscall names */
  char *seccomp_program; /* Linux.Seccomp.ProgramFile: a raw BPF program */
  bool seccomp_listener; /* Linux.Seccomp.Listener: loaded with a user-notification listener */
  bool no_new_privs;
  hcs_rlimit_t *rlimits;
  size_t n_rlimits;
  char **sysctl_keys, **sysctl_values;
  size_t n_sysctl;
  hcs_device_rule_t *devices;
  size_t n_devices;
  hcs_id_map_t *uid_maps, *gid_maps;
  size_t n_uid_maps, n_gid_maps;
  char **masked, **readonly;
  hcs_proc_spec_t *init; /* NULL: built-in idle init */
  /* Linux.CallerReapsInit: init is a child of the creator's nearest
   * subreaper (conmon, a containerd shim), which reaps it; the monitor
   * watches its pidfd and records the exit without a code. */
  bool caller_reaps_init;
  bool readonly_rootfs;      /* Linux.ReadonlyRootfs */
  hcs_mount_t *extra_mounts; /* Linux.Mounts, in order */
  size_t n_extra_mounts;
  char **exit_command;   /* Linux.ExitCommand: the monitor execs it once the exit is recorded */
  int device_filter_fd;  /* v2: the loaded device program (owned by a cache), or -1 */
  int64_t log_max_size;  /* Linux.Log.MaxSize (0: HCS_LOG_DEFAULT_SIZE) */
  int64_t log_max_files; /* Linux.Log.MaxFiles (0: HCS_LOG_DEFAULT_FILES) */
} hcs_config_t;

/* The system log (log.c): a file is at least big enough for one record. */
#define HCS_LOG_MIN_SIZE (128 * 1024)
#define HCS_LOG_DEFAULT_SIZE (10 * 1024 * 1024)
#define HCS_LOG_DEFAULT_FILES 5

HCS_INTERNAL hcs_config_t *hcs_config_parse(json_t *doc, const char *run_root, hcs_error_t *err);
HCS_INTERNAL void hcs_config_free(hcs_config_t *c);
/* ProcessParameters; `where` prefixes error paths. */
HCS_INTERNAL hcs_proc_spec_t *hcs_proc_spec_parse(json_t *doc, const char *where, hcs_error_t *err);
HCS_INTERNAL void hcs_proc_spec_free(hcs_proc_spec_t *p);
HCS_INTERNAL char **hcs_split_command_line(const char *line, hcs_error_t *err);
HCS_INTERNAL void hcs_strv_free(char **v);

/* --- security (security.c) ------------------------------------------------ */
typedef struct {
  struct sock_fprog prog; /* prog.filter NULL: no seccomp */
  uint64_t caps;
  /* Linux.CapabilitySets: the sets given one by one (OCI), else the
   * bounding set is also the permitted and effective one. */
  bool cap_sets;
  uint64_t cap_eff, cap_perm, cap_inh, cap_amb;
  bool no_new_privs;
  /* The program has SECCOMP_RET_USER_NOTIF returns: loaded with
   * SECCOMP_FILTER_FLAG_NEW_LISTENER; the listener stays open (close-on-
   * exec) in the process until its execve, for hcs_compute_seccomp_listener. */
  bool listener;
  hcs_rlimit_t *rlimits;
  size_t n_rlimits;
} hcs_security_t;

/* The default seccomp allowlist (seccomp_profile.c) into a libseccomp
 * context (a scmp_filter_ctx) for a capability set, leaving out the
 * syscall numbers in `deny`; and a hash of its lists (for cache names). */
HCS_INTERNAL int hcs_seccomp_add_default(void *ctx, uint64_t caps, const int *deny, size_t n_deny, hcs_error_t *err);
HCS_INTERNAL uint64_t hcs_seccomp_profile_hash(uint64_t h);
HCS_INTERNAL int hcs_security_prepare(const hcs_config_t *c, hcs_security_t *sec, hcs_error_t *err);
/* The same, taking the seccomp program from `saved` (written by
 * hcs_security_save_filter for the same configuration) when it is there:
 * a process exec'd into a system reuses the program its init got instead
 * of loading libseccomp and compiling it again (crun keeps it in its state
 * directory too).  Programs compiled are also kept in `cache_dir` (when not
 * NULL) for later processes. */
HCS_INTERNAL int hcs_security_prepare_saved(const hcs_config_t *c, hcs_security_t *sec, const char *saved,
                                            const char *cache_dir, hcs_error_t *err);
HCS_INTERNAL int hcs_security_save_filter(const struct sock_fprog *prog, const char *path, hcs_error_t *err);
HCS_INTERNAL void hcs_security_release(hcs_security_t *sec);
/* In the child, just before execve: bounding set, no_new_privs, seccomp,
 * the user switch, then caps.  Returns -1 with errno set. */
HCS_INTERNAL int hcs_security_apply(const hcs_security_t *sec, uid_t uid, gid_t gid, const gid_t *groups,
                                    size_t ngroups);
/* The same in two stages: the walls (bounding set, ambient, no_new_privs,
 * seccomp; needs the privileges still held), then the user switch and caps. */
HCS_INTERNAL int hcs_security_apply_walls(const hcs_security_t *sec);
HCS_INTERNAL int hcs_security_apply_user(const hcs_security_t *sec, uid_t uid, gid_t gid, const gid_t *groups,
                                         size_t ngroups);
HCS_INTERNAL uint64_t hcs_default_caps(void);
/* A system with no cgroup (so no device allowlist): the default set loses
 * CAP_MKNOD.  Applied at create, and by later processes of a system whose
 * state says CgroupDriver "none". */
HCS_INTERNAL void hcs_config_without_device_cgroup(hcs_config_t *c);
HCS_INTERNAL int hcs_cap_from_name(const char *name);
/* A process's own capability sets (ProcessParameters) over the system's:
 * refused when one reaches beyond the system's bounding set. */
HCS_INTERNAL int hcs_security_for_process(const hcs_security_t *sys, const hcs_proc_spec_t *p, hcs_security_t *out,
                                          hcs_error_t *err);
/* Is `fd` an nsfs file of namespace type `type` (CLONE_NEW*)? 0, or -1 with
 * errno (EINVAL: another file; ENOTTY: another namespace type, in *got). */
HCS_INTERNAL int hcs_ns_check(int fd, int type, int *got);

/* --- cgroups (cgroup.c, cgroup_v1.c, cgroup_v2.c) ------------------------- */
typedef struct {
  int64_t memory_mb, cpu_count, cpu_max, cpu_weight, pids_limit;
} hcs_resources_t;

typedef struct hcs_cgroup_ops_s {
  const char *name;
  int (*create)(const char *path, const hcs_resources_t *r, hcs_error_t *err);
  int (*set_resources)(const char *path, const hcs_resources_t *r, hcs_error_t *err);
  int (*set_devices)(const char *path, const hcs_config_t *c, hcs_error_t *err);
  int (*enter)(const char *path, pid_t pid, hcs_error_t *err);
  /* Move the calling single-threaded task (cheaper than enter on v1). */
  int (*enter_self)(const char *path, hcs_error_t *err);
  int (*freeze)(const char *path, bool frozen, hcs_error_t *err);
  int (*is_frozen)(const char *path);
  int (*kill_all)(const char *path, hcs_error_t *err);
  json_t *(*stats)(const char *path, hcs_error_t *err);
  json_t *(*pids)(const char *path, hcs_error_t *err);
  int64_t (*oom_kills)(const char *path);
  int (*destroy)(const char *path, hcs_error_t *err);
} hcs_cgroup_ops_t;

HCS_INTERNAL extern const hcs_cgroup_ops_t hcs_cgroup_v1_ops;
HCS_INTERNAL extern const hcs_cgroup_ops_t hcs_cgroup_v2_ops;
/* The ops for this host (hybrid hosts use the v1 controllers). */
HCS_INTERNAL const hcs_cgroup_ops_t *hcs_cgroup_ops(void);
/* "<parent>/<id>", relative to each hierarchy's mount. */
HCS_INTERNAL char *hcs_cgroup_path(const char *parent, const char *id);
HCS_INTERNAL int hcs_cgroup_host_cpus(void);
/* Helpers shared by the backends. */
HCS_INTERNAL int hcs_cg_write(const char *dir, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
HCS_INTERNAL int64_t hcs_cg_read_int(const char *dir, const char *file);
HCS_INTERNAL int64_t hcs_cg_read_key(const char *dir, const char *file, const char *key);
HCS_INTERNAL json_t *hcs_cg_read_pids(const char *dir, hcs_error_t *err);

/* --- the device allowlist (cgroup_devices.c) ------------------------------ */
/* The default rules, before the configuration's Linux.Devices (later rules
 * win).  v1 writes them to devices.allow/deny; v2 compiles them to BPF. */
HCS_INTERNAL extern const hcs_device_rule_t hcs_default_devices[];
HCS_INTERNAL extern const size_t hcs_n_default_devices;
/* "c 1:3 rwm" (`type` replaces the rule's when not 0). */
HCS_INTERNAL int hcs_device_rule_format(const hcs_device_rule_t *r, char type, char *buf, size_t size);
struct bpf_insn;
/* A BPF_PROG_TYPE_CGROUP_DEVICE program for the rules (*len instructions);
 * NULL with errno E2BIG when its jumps would not fit (thousands of rules). */
HCS_INTERNAL struct bpf_insn *hcs_device_filter(const hcs_device_rule_t *rules, size_t n, size_t *len);
/* Load it: the program's fd, or -1 (the verifier's complaint in err). */
HCS_INTERNAL int hcs_device_filter_load(const struct bpf_insn *prog, size_t len, hcs_error_t *err);
/* The loaded program for the default rules and c's, from a per-process
 * cache (the fd stays owned by it): a process creating many systems loads
 * and verifies each distinct program once, and the creator hands the fd to
 * the monitor through c->device_filter_fd (inherited by the fork). */
HCS_INTERNAL int hcs_device_filter_get(const hcs_config_t *c, hcs_error_t *err);
/* Attach c->device_filter_fd, or else compile, load and attach, to the
 * cgroup directory `dir` (BPF_CGROUP_DEVICE, multi). */
HCS_INTERNAL int hcs_device_filter_attach(const char *dir, const hcs_config_t *c, hcs_error_t *err);

/* --- state (state.c) ------------------------------------------------------ */
/* `dir` (an entry of <run root>/compute) is the debris of a create killed
 * before state.json was written: removed, and true.  False for a system or
 * a create in progress (it holds the directory's lock). */
HCS_INTERNAL bool hcs_system_sweep_debris(const char *dir);
/* Make <run root>/compute/<id> (with the exec fifo when `fifo`) under its
 * create lock, returned; *made once it exists under its name. */
HCS_INTERNAL int hcs_system_make_dir(hcs_system_t *cs, bool fifo, bool *made, hcs_error_t *err);
typedef enum { HCS_STATE_CREATED, HCS_STATE_RUNNING, HCS_STATE_PAUSED, HCS_STATE_STOPPED } hcs_state_t;

struct hcs_system_s {
  char *id;
  char *root, *run_root;
  char *dir;    /* <root>/compute/<id> */
  char *cgroup; /* relative cgroup path */
  json_t *config;
  json_t *state; /* state.json */
  pid_t pid, monitor_pid;
  int monitor_fd; /* pidfd of the monitor, -1 until needed */
  int stdio[3];
  int console;       /* init's pty master (also in stdio) or -1 */
  hcs_config_t *cfg; /* parsed lazily (processes) */
  hcs_security_t sec;
  bool sec_ready;
};

HCS_INTERNAL const char *hcs_state_name(hcs_state_t s);
HCS_INTERNAL hcs_system_t *hcs_system_new(const char *root, const char *id, hcs_error_t *err);
HCS_INTERNAL int hcs_system_load(hcs_system_t *cs, hcs_error_t *err);
/* state.json only (config.json is left NULL): what a listing needs. */
HCS_INTERNAL int hcs_system_load_state(hcs_system_t *cs, hcs_error_t *err);
/* Current state, derived from exit.json, the Started flag and the freezer. */
HCS_INTERNAL hcs_state_t hcs_system_state(hcs_system_t *cs);
/* The same from the state.json loaded last (a listing that just read it),
 * with the host's cgroup backend (looked up once per listing: 3 statfs). */
HCS_INTERNAL hcs_state_t hcs_system_state_loaded(hcs_system_t *cs, const hcs_cgroup_ops_t *cg);
HCS_INTERNAL json_t *hcs_system_exit(hcs_system_t *cs); /* exit.json or NULL */
/* The exited event is written once: by the monitor, or (killed) by the
 * first process that finds the system stopped.  True for the one that
 * created <dir>/exit-event. */
HCS_INTERNAL bool hcs_system_claim_exit_event(const char *dir);
/* An event of type "system" about cs (attrs stolen, may be NULL). */
HCS_INTERNAL void hcs_system_emit(hcs_system_t *cs, const char *action, json_t *attrs);
/* Is `pid` still the process whose start time (clock ticks) is `start`? */
HCS_INTERNAL bool hcs_pid_matches(pid_t pid, uint64_t start);
HCS_INTERNAL uint64_t hcs_pid_start_time(pid_t pid);
HCS_INTERNAL int hcs_system_monitor_fd(hcs_system_t *cs, hcs_error_t *err);
/* Waits (up to timeout_ms) for a live monitor to exit; not when we are it. */
HCS_INTERNAL void hcs_system_wait_monitor(hcs_system_t *cs, int timeout_ms);
/* temp + rename, no fsync (see state.c for why). */
HCS_INTERNAL int hcs_state_write(const char *path, const char *data, size_t len, hcs_error_t *err);
HCS_INTERNAL int hcs_state_write_json(const char *path, json_t *doc, hcs_error_t *err);
HCS_INTERNAL int hcs_system_remove_dir(const char *dir, hcs_error_t *err);
HCS_INTERNAL void hcs_system_remove_run_files(hcs_system_t *cs);
/* Parse config.json and compile the security profile once per handle. */
HCS_INTERNAL int hcs_system_prepare(hcs_system_t *cs, hcs_error_t *err);
/* pidfd of init, checked against its recorded start time. */
HCS_INTERNAL int hcs_system_init_fd(hcs_system_t *cs, hcs_error_t *err);

/* --- spawn and monitor (spawn.c, monitor.c) ------------------------------- */
typedef struct {
  hcs_system_t *cs;
  hcs_config_t *cfg;
  const hcs_cgroup_ops_t *cg;
  hcs_security_t sec;
  int stdio[3]; /* fds for init's stdio (-1: /dev/null) */
  int sock;     /* SOCK_SEQPACKET to the creator */
  int netns_fd; /* -1: new netns */
  /* A new netns made by the monitor's short-lived parent, in parallel with
   * the monitor's start-up (creating one costs ~0.6 ms): the monitor's end
   * of the socket it arrives on, -1 when init creates its own (userns). */
  int netns_sock;
  bool netns_late; /* init: the netns arrives on `report` after /dev */
  char *fifo;      /* exec fifo path */
  int fifo_fd;     /* O_PATH fd of the fifo, for init */
  /* The creator's flock on the new system directory: held (across the
   * forks) until state.json exists, so a directory without state.json and
   * without the lock is the debris of a killed create. */
  int create_lock;
  /* Called once init may proceed, while it finishes its setup: the monitor
   * writes the system's files here, overlapped with init's mount work. */
  int (*on_go)(void *s, pid_t pid, hcs_error_t *err);
  /* stdout/stderr of init to the system log (HCS_STDIO_LOG): the monitor
   * makes the FIFOs and copies them to ctr.log (log.c). */
  bool log[2];
  /* EmulateConsole and a log: init sends its console's master to the
   * monitor too (`console`, -1 until then), which logs it as stdout and
   * serves it to attach clients. */
  bool monitor_console;
  int console;
  /* HCS_STDIO_ATTACH: init's stdin is a pipe whose write end the monitor
   * keeps (`stdin_w`) for attach clients. */
  bool attach_stdin;
  int stdin_w;
  /* The seed mount namespace init's is copied from (seed.c), or -1: the
   * creator's own (a user namespace, a joined mount namespace, a mount
   * naming host paths: hcs_seed_fits). */
  int seed_fd;
  /* With a seed: detached copies (open_tree, slave of the host's mounts)
   * of the rootfs and of each mapped directory and bind of Linux.Mounts
   * (-1 for other mounts), opened by the monitor in its namespace and
   * attached by init in its copy of the seed. */
  int root_tree;
  int *map_trees, *mount_trees;
} hcs_spawn_t;

/* --- the seed mount namespace (seed.c) ------------------------------------ */
/* An fd of the run root's seed for the caller's mount namespace, made (and
 * pinned) when missing. */
HCS_INTERNAL int hcs_seed_open(const char *run_root, hcs_error_t *err);
/* Takes the run root's seeds down when it has no system left. */
HCS_INTERNAL void hcs_seed_release(const char *run_root);
/* Can init's mount namespace be copied from the seed (no user namespace,
 * no joined mount namespace, every mount a bind, the cgroup or a pseudo
 * file system)? */
HCS_INTERNAL bool hcs_seed_fits(const hcs_config_t *c);
/* In the monitor, before the clone: s->root_tree, map_trees, mount_trees;
 * closed (and freed) by hcs_seed_close_trees. */
HCS_INTERNAL int hcs_seed_open_trees(hcs_spawn_t *s, hcs_error_t *err);
HCS_INTERNAL void hcs_seed_close_trees(hcs_spawn_t *s);
/* In init: attach `tree` at `rel` inside the root (report: the error
 * channel; src names the tree in messages). */
HCS_INTERNAL int hcs_seed_attach(int rootfd, const char *rel, int tree, const char *src, int report);
/* hcs_clone3 from inside s->seed_fd's namespace (so CLONE_NEWNS copies the
 * seed), the caller back in its own before it returns; 0 in the child. */
HCS_INTERNAL pid_t hcs_seed_clone(hcs_spawn_t *s, uint64_t flags, int *pidfd, hcs_error_t *err);

/* --- init's mount namespace (rootfs.c), run in init ----------------------- */
/* Resolve `rel` inside the rootfs (openat2 RESOLVE_IN_ROOT), an O_PATH fd;
 * with `create` missing directories (or a final file when !dir) are made. */
HCS_INTERNAL int hcs_open_in_root(int rootfd, const char *rel, bool dir, bool create);
/* The rootfs and every mount of the configuration, the system's cgroup
 * joined (after `go` unless userns, which read it already), then
 * pivot_root.  Errors go to `report`; -1 then. */
HCS_INTERNAL int hcs_rootfs_setup(hcs_spawn_t *s, bool userns, int go, int report);
/* After pivot_root: the masked and read-only paths, then the read-only
 * rootfs (Linux.ReadonlyRootfs). */
HCS_INTERNAL int hcs_rootfs_seal(hcs_config_t *c, int report);
/* In init (spawn.c): join the network namespace the monitor's parent made
 * (s->netns_late), which arrives on `report`, and bring up its loopback. */
HCS_INTERNAL int hcs_spawn_join_late_netns(int report);

/* --- the system log (log.c) ----------------------------------------------- */
struct hcs_attach_server_s;
/* In the monitor, before init is cloned: <dir>/stdout.fifo and stderr.fifo,
 * read ends (rfd, non-blocking) and write ends for init (wfd). */
HCS_INTERNAL int hcs_log_prepare(const char *dir, int rfd[2], int wfd[2], hcs_error_t *err);
/* In the monitor: copy the FIFOs to ctr.log until pidfd (init) polls
 * readable, then drain them.  No heap, no thread. */
HCS_INTERNAL void hcs_log_run(const char *dir, const hcs_config_t *cfg, const int rfd[2], int pidfd);
/* The relay of a monitor that logs a console or serves attach clients:
 * rfd (FIFOs, -1 entries absent), console (a pty master, logged as stdout,
 * -1 if none), stdin_w (init's stdin for attach clients, -1 if none); until
 * pidfd polls readable, then the FIFOs and the console are drained.
 * attach: a listening server (hcs_attach_listen) or NULL; its clients stay
 * connected for the caller to send the exit and close (hcs_attach_close). */
HCS_INTERNAL void hcs_log_relay(const char *dir, const hcs_config_t *cfg, const int rfd[2], int console, int stdin_w,
                                int pidfd, struct hcs_attach_server_s *attach);

/* --- attach (attach.c): the server in the monitor's relay ---------------- */
enum { HCS_ATTACH_MAX_CLIENTS = 16 };
typedef struct hcs_attach_server_s {
  int listen_fd;                       /* <dir>/attach, SOCK_SEQPACKET, 0600 */
  int clients[HCS_ATTACH_MAX_CLIENTS]; /* -1: free */
  int stdin_fd;                        /* console master or stdin pipe, -1: none */
  int console;                         /* -1: none (resize needs one) */
} hcs_attach_server_t;
/* Listen on <dir>/attach (before create returns, so a client may connect at
 * once; it is answered once the relay runs); errors leave listen_fd -1 (no
 * attach, logging goes on).  stdin_fd and console are set by the relay. */
HCS_INTERNAL void hcs_attach_listen(hcs_attach_server_t *a, const char *dir);
/* Adds the listening socket and the clients to p (room for 1 + MAX_CLIENTS). */
HCS_INTERNAL int hcs_attach_pollfds(const hcs_attach_server_t *a, struct pollfd *p);
/* Accepts, reads clients' packets (stdin, resize, close stdin), drops gone clients. */
HCS_INTERNAL void hcs_attach_handle(hcs_attach_server_t *a, const struct pollfd *p, int n);
/* Output to every client (stream 0 stdout, 1 stderr); a client too slow to take it misses it. */
HCS_INTERNAL void hcs_attach_broadcast(hcs_attach_server_t *a, int stream, const char *data, size_t len);
HCS_INTERNAL bool hcs_attach_has_clients(const hcs_attach_server_t *a);
/* The exit record (JSON text) to every client, just before the close. */
HCS_INTERNAL void hcs_attach_send_exit(hcs_attach_server_t *a, const char *record);
/* Closes the clients (they see the end of the output) and removes the socket. */
HCS_INTERNAL void hcs_attach_close(hcs_attach_server_t *a, const char *dir);
/* A write end of the system's log FIFO for stream 0 (stdout) or 1 (stderr),
 * for a process created with stdio "log". */
HCS_INTERNAL int hcs_log_open_writer(const char *dir, int stream, hcs_error_t *err);
HCS_INTERNAL int64_t hcs_log_parse_time(const char *s, size_t len);

/* Messages on the creator socket. */
/* On the creator socket the monitor sends STATE (state.json's text) once it
 * is written, and init sends READY itself (one hand-off less than through
 * the monitor); create returns with both, or with the first ERROR. */
enum { HCS_MSG_OK = 1, HCS_MSG_ERROR = 2, HCS_MSG_PTY = 3, HCS_MSG_STATE = 4, HCS_MSG_READY = 5 };

/* Fork the monitor (double fork + setsid); it spawns init and reports on
 * s->sock.  Returns in the creator once the monitor is detached. */
HCS_INTERNAL int hcs_monitor_launch(hcs_spawn_t *s, hcs_error_t *err);
/* In a freshly forked monitor (container or VM): its name, non-dumpable,
 * a subreaper, default signal dispositions (SIGPIPE, SIGHUP, SIGINT
 * ignored), nothing blocked, cwd `/`.  Returns chdir's result. */
HCS_INTERNAL int hcs_monitor_become(const char *name);
/* Report err to the creator on the monitor's socket, and release it. */
HCS_INTERNAL void hcs_monitor_send_error(int sock, hcs_error_t *err);
/* Close every fd from `from` up but those in keep (-1 entries ignored;
 * sorted in place); hcs_monitor_close_all_but: from 3. */
HCS_INTERNAL void hcs_close_fds_but(unsigned from, int *keep, size_t n);
HCS_INTERNAL void hcs_monitor_close_all_but(int *keep, size_t n);
/* In the monitor: clone init into its namespaces.  Returns init's pid or -1. */
HCS_INTERNAL pid_t hcs_spawn_init(hcs_spawn_t *s, int *pidfd, hcs_error_t *err);

/* --- the watch (watch.c): the monitor once init runs ---------------------- */
/* What every monitor, a container's or a VM's (src/vm/watch.c), watches
 * and where it records the exit; the strings are borrowed.  Both of
 * hcs-monitor's command lines carry it with the same options
 * (hcs_watch_base_argv). */
typedef struct {
  const char *id, *dir, *run_root, *owner;
  const char *cgroup, *cgroup_driver; /* NULL: no cgroup */
  pid_t pid;                          /* init or QEMU, a child of the monitor (init: unless reaped_elsewhere) */
  int pidfd;                          /* its pidfd or -1 */
} hcs_watch_base_t;

/* Append b's options (`--id` ... `--pidfd`) at argv[n] (heap strings, at
 * most 16); returns the new count. */
HCS_INTERNAL size_t hcs_watch_base_argv(char **argv, size_t n, const hcs_watch_base_t *b);
/* The base of cs's monitor (monitor.c): its id and directories, its cgroup
 * when it has a backend `cg` (else none), `owner`, the watched process. */
HCS_INTERNAL hcs_watch_base_t hcs_watch_base_of(const hcs_system_t *cs, const char *owner, const hcs_cgroup_ops_t *cg,
                                                pid_t pid, int pidfd);

/* What the container's monitor watches and where it records the exit; the
 * strings are borrowed.  hcs-monitor (src/monitor/main.c) gets it as
 * arguments. */
typedef struct {
  hcs_watch_base_t base; /* pidfd: required for logs and reaped_elsewhere */
  int log_fd[2];         /* read ends of the log FIFOs or -1 */
  int console;           /* the console master the monitor keeps, or -1 */
  int stdin_w;           /* the write end of init's attachable stdin pipe, or -1 */
  int attach_fd;         /* the listening attach socket (attach.c), or -1 */
  int ns_fd[3];          /* init's mnt, ipc, uts namespaces, held until the exit is recorded, or -1 */
  int64_t log_max_size, log_max_files;
  bool reaped_elsewhere; /* Linux.CallerReapsInit */
  char **exit_command;   /* Linux.ExitCommand or NULL */
} hcs_watch_t;

/* Relay the log, wait for init, record the exit, exec the exit command. */
HCS_INTERNAL __attribute__((noreturn)) void hcs_watch_run(const hcs_watch_t *w);
/* The hcs-monitor program: $HCS_MONITOR, else the path compiled in. */
HCS_INTERNAL const char *hcs_watch_program(void);
/* Its command line for w (heap strings; the process execs or exits). */
HCS_INTERNAL char **hcs_watch_argv(const hcs_watch_t *w, const char *program);
/* In hcs-monitor: the command line back into w (pointing into argv). */
HCS_INTERNAL int hcs_watch_parse(int argc, char **argv, hcs_watch_t *w, hcs_error_t *err);
/* A command-line integer in [min, max] (hcs-monitor's options), or the error naming the option. */
HCS_INTERNAL int hcs_watch_parse_int(const char *opt, const char *v, long long min, long long max, long long *out,
                                     hcs_error_t *err);
/* "v1"/"v2" -> the cgroup backend, NULL for anything else. */
HCS_INTERNAL const hcs_cgroup_ops_t *hcs_watch_cgroup_ops(const char *driver);

/* Child-side helpers shared by init and exec'd processes (process.c). */
HCS_INTERNAL int hcs_child_exec(const hcs_proc_spec_t *p, const hcs_security_t *sec, int errfd);
/* hcs_child_exec in two halves, so init can do the first before it waits
 * for start: signals, user lookup, every inherited fd but stdio and `keep`
 * closed, umask 022, the cwd resolved inside the root, rlimits, the security walls (on
 * failure `msg` holds the error, reported later by the caller); then the
 * user switch and execve (reports on errfd, never returns). */
typedef struct {
  uid_t uid;
  gid_t gid;
  gid_t *groups;
  size_t ngroups;
} hcs_child_user_t;
HCS_INTERNAL int hcs_child_prepare(const hcs_proc_spec_t *p, const hcs_security_t *sec, hcs_child_user_t *u, int keep,
                                   int keep2, char *msg, size_t size);
HCS_INTERNAL __attribute__((noreturn)) void hcs_child_finish(const hcs_proc_spec_t *p, const hcs_security_t *sec,
                                                             const hcs_child_user_t *u, int errfd);
HCS_INTERNAL int hcs_resolve_user(const char *user, uid_t *uid, gid_t *gid, gid_t **groups, size_t *ngroups);
/* Report an error from a child over fd: "message: strerror". */
HCS_INTERNAL void hcs_child_report(int fd, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Report a failed execve over fd with its errno carried apart from the
 * text, so the caller's error status is that errno (ENOENT: the command was
 * not found; EACCES, ENOEXEC: it cannot be executed) and nothing else a
 * child reports is taken for one. */
HCS_INTERNAL void hcs_child_report_exec(int fd, int status, const char *argv0);
/* Make *err from a message a child reported: an exec failure's status is
 * its errno; any other message has status 0. */
HCS_INTERNAL int hcs_child_error(hcs_error_t *err, const char *msg, const char *fmt_prefix, const char *id);

/* --- pty and fd passing (pty.c) ------------------------------------------ */
HCS_INTERNAL int hcs_pty_open_in_container(int *master, int *slave, unsigned short rows, unsigned short cols);
HCS_INTERNAL int hcs_pty_make_controlling(int slave);
HCS_INTERNAL int hcs_send_msg(int sock, int type, const void *data, size_t len, int fd);
/* Receive one message; *fd gets a passed fd or -1.  Returns payload length,
 * 0 on EOF, -1 on error. */
HCS_INTERNAL ssize_t hcs_recv_msg(int sock, int *type, void *buf, size_t len, int *fd);

/* Raw clone3 wrapper. */
HCS_INTERNAL pid_t hcs_clone3(uint64_t flags, int *pidfd, int cgroup_fd);

#endif
