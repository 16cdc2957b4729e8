/* The default seccomp profile of container processes: an allowlist, every
 * other system call failing with EPERM, as Docker's default profile (moby
 * profiles/seccomp/default.json) and containerd's (contrib/seccomp) do, so
 * a system call the kernel adds later is denied until reviewed.  The
 * comparison with both, and where hcs is stricter, is in docs/compute.md.
 * The lists are names; libseccomp resolves them for the native ABI and
 * skips those this kernel or libseccomp does not know. */
#include <linux/capability.h>
#include <sched.h>
#include <string.h>

#include <seccomp.h>

#include "compute/compute.h"

/* Allowed whatever the capabilities.  Docker's unconditional list but
 * name_to_handle_at, clock_adjtime and clock_adjtime64, which hcs keeps
 * denied as it always has (file handles and clock changes are host-wide). */
// clang-format off
static const char *const allow_always[] = {
    "_llseek", "_newselect", "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat",
    "capget", "capset", "chdir", "chmod", "chown", "chown32", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range",
    "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve",
    "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl",
    "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
    "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_requeue",
    "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futimesat", "get_robust_list", "get_thread_area",
    "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid",
    "getgid32", "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
    "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "getrusage",
    "getsid", "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "getxattrat",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy",
    "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit", "ioctl", "ioprio_get",
    "ioprio_set", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
    "lchown32", "lgetxattr", "link", "linkat", "listen", "listmount", "listxattr", "listxattrat", "llistxattr",
    "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
    "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl",
    "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "nanosleep", "newfstatat", "open",
    "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
    "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
    "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "removexattrat", "rename", "renameat", "renameat2", "restart_syscall",
    "riscv_hwprobe", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget",
    "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto",
    "set_robust_list", "set_thread_area", "set_tid_address", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32",
    "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid",
    "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
    "setsid", "setsockopt", "setuid", "setuid32", "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget",
    "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
    "splice", "stat", "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
    "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate",
    "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat",
    "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
};
// clang-format on

/* Allowed when the capability is in the configured set (Docker's rules;
 * ptrace and process_vm_* need CAP_SYS_PTRACE here, where Docker allows
 * them on kernels >= 4.8). */
static const char *const with_dac_read_search[] = {"open_by_handle_at", NULL};
static const char *const with_sys_admin[] = {"bpf",
                                             "clone",
                                             "clone3",
                                             "fanotify_init",
                                             "fsconfig",
                                             "fsmount",
                                             "fsopen",
                                             "fspick",
                                             "lookup_dcookie",
                                             "mount",
                                             "mount_setattr",
                                             "move_mount",
                                             "name_to_handle_at",
                                             "open_tree",
                                             "perf_event_open",
                                             "quotactl",
                                             "quotactl_fd",
                                             "setdomainname",
                                             "sethostname",
                                             "setns",
                                             "syslog",
                                             "umount",
                                             "umount2",
                                             "unshare",
                                             NULL};
static const char *const with_sys_boot[] = {"reboot", NULL};
static const char *const with_sys_chroot[] = {"chroot", NULL};
static const char *const with_sys_module[] = {"delete_module", "init_module", "finit_module", NULL};
static const char *const with_sys_pacct[] = {"acct", NULL};
static const char *const with_sys_ptrace[] = {
    "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace", NULL};
static const char *const with_sys_rawio[] = {"iopl", "ioperm", NULL};
static const char *const with_sys_time[] = {
    "settimeofday", "stime", "clock_settime", "clock_settime64", "clock_adjtime", "clock_adjtime64", NULL};
static const char *const with_sys_tty_config[] = {"vhangup", NULL};
static const char *const with_sys_nice[] = {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node", NULL};
static const char *const with_syslog[] = {"syslog", NULL};
static const char *const with_bpf[] = {"bpf", NULL};
static const char *const with_perfmon[] = {"perf_event_open", NULL};

static const struct {
  int cap;
  const char *const *names;
} cap_rules[] = {
    {CAP_DAC_READ_SEARCH, with_dac_read_search},
    {CAP_SYS_ADMIN, with_sys_admin},
    {CAP_SYS_BOOT, with_sys_boot},
    {CAP_SYS_CHROOT, with_sys_chroot},
    {CAP_SYS_MODULE, with_sys_module},
    {CAP_SYS_PACCT, with_sys_pacct},
    {CAP_SYS_PTRACE, with_sys_ptrace},
    {CAP_SYS_RAWIO, with_sys_rawio},
    {CAP_SYS_TIME, with_sys_time},
    {CAP_SYS_TTY_CONFIG, with_sys_tty_config},
    {CAP_SYS_NICE, with_sys_nice},
    {CAP_SYSLOG, with_syslog},
    {CAP_BPF, with_bpf},
    {CAP_PERFMON, with_perfmon},
};

/* personality(2): the query and the personas Docker allows (PER_LINUX,
 * PER_LINUX32, UNAME26 and both); READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE and
 * the others would weaken the process's own protections. */
static const uint64_t personas[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

/* socket(2): every family but AF_ALG (38) and AF_VSOCK (40), as Docker. */
#define HCS_AF_ALG 38
#define HCS_AF_VSOCK 40

uint64_t hcs_seccomp_profile_hash(uint64_t h) {
  for (size_t i = 0; i < HCS_ARRAY_SIZE(allow_always); i++)
    h = hcs_fnv1a(hcs_fnv1a(h, allow_always[i], strlen(allow_always[i])), "\xff", 1);
  for (size_t r = 0; r < HCS_ARRAY_SIZE(cap_rules); r++) {
    h = hcs_fnv1a(h, &cap_rules[r].cap, sizeof cap_rules[r].cap);
    for (const char *const *n = cap_rules[r].names; *n; n++)
      h = hcs_fnv1a(hcs_fnv1a(h, *n, strlen(*n)), "\xff", 1);
  }
  return hcs_fnv1a(h, personas, sizeof personas);
}

static bool denied(int nr, const int *deny, size_t n_deny) {
  for (size_t i = 0; i < n_deny; i++)
    if (deny[i] == nr) return true;
  return false;
}

static int allow(scmp_filter_ctx ctx, const char *name, unsigned n_args, const struct scmp_arg_cmp *args,
                 const int *deny, size_t n_deny, hcs_error_t *err) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR || denied(nr, deny, n_deny)) return 0;
  int r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n_args, args);
  if (r < 0 && r != -EEXIST) return hcs_error_make(err, -r, "seccomp rule for `%s`", name);
  return 0;
}

int hcs_seccomp_add_default(scmp_filter_ctx ctx, uint64_t caps, const int *deny, size_t n_deny, hcs_error_t *err) {
  for (size_t i = 0; i < HCS_ARRAY_SIZE(allow_always); i++)
    if (allow(ctx, allow_always[i], 0, NULL, deny, n_deny, err) < 0) return -1;
  for (size_t r = 0; r < HCS_ARRAY_SIZE(cap_rules); r++) {
    if (!(caps & (1ULL << cap_rules[r].cap))) continue;
    for (const char *const *n = cap_rules[r].names; *n; n++)
      if (allow(ctx, *n, 0, NULL, deny, n_deny, err) < 0) return -1;
  }
  for (size_t i = 0; i < HCS_ARRAY_SIZE(personas); i++) {
    struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_EQ, personas[i]);
    if (allow(ctx, "personality", 1, &a, deny, n_deny, err) < 0) return -1;
  }
  struct scmp_arg_cmp below = SCMP_A0(SCMP_CMP_LT, HCS_AF_ALG), between = SCMP_A0(SCMP_CMP_EQ, HCS_AF_ALG + 1),
                      above = SCMP_A0(SCMP_CMP_GT, HCS_AF_VSOCK);
  if (allow(ctx, "socket", 1, &below, deny, n_deny, err) < 0 ||
      allow(ctx, "socket", 1, &between, deny, n_deny, err) < 0 ||
      allow(ctx, "socket", 1, &above, deny, n_deny, err) < 0)
    return -1;
#if defined(__x86_64__) || defined(__i386__)
  if (allow(ctx, "modify_ldt", 0, NULL, deny, n_deny, err) < 0) return -1;
#endif
#if defined(__x86_64__)
  if (allow(ctx, "arch_prctl", 0, NULL, deny, n_deny, err) < 0) return -1;
#endif
  if (!(caps & (1ULL << CAP_SYS_ADMIN))) {
    /* clone without a namespace flag; clone3 hides its flags in memory, so
     * it gets ENOSYS and libc falls back to clone (as Docker). */
    struct scmp_arg_cmp no_ns = SCMP_A0(SCMP_CMP_MASKED_EQ,
                                        (uint64_t)(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                                   CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP),
                                        0);
    if (allow(ctx, "clone", 1, &no_ns, deny, n_deny, err) < 0) return -1;
    int nr = seccomp_syscall_resolve_name("clone3");
    if (nr != __NR_SCMP_ERROR && !denied(nr, deny, n_deny)) {
      int r = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0, NULL);
      if (r < 0 && r != -EEXIST) return hcs_error_make(err, -r, "seccomp rule for `clone3`");
    }
  }
  return 0;
}
