/* Spawning a system's init: one clone3 with every namespace at once, then
 * in the child the joined namespaces, the mount namespace (rootfs.c:
 * rootfs, /proc, /dev, /sys, mapped directories, pivot_root), hostname,
 * sysctls, masked and read-only paths (rootfs.c), the console or stdio,
 * and a wait on the exec fifo until the system is started. */
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "compute/compute.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* HOST_NAME_MAX, the most sethostname takes. */
#define HCS_HOST_NAME_MAX 64

struct clone_args_v2 {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

pid_t hcs_clone3(uint64_t flags, int *pidfd, int cgroup_fd) {
  struct clone_args_v2 a;
  memset(&a, 0, sizeof a);
  a.flags = flags | (pidfd ? CLONE_PIDFD : 0) | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0);
  a.pidfd = (uint64_t)(uintptr_t)pidfd;
  /* With CLONE_PARENT the kernel insists on 0 and uses the caller's own. */
  a.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
  a.cgroup = cgroup_fd >= 0 ? (uint64_t)cgroup_fd : 0;
  return (pid_t)syscall(SYS_clone3, &a, sizeof a);
}

static void loopback_up(void) {
  int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  if (sk < 0) return;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(sk, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    ioctl(sk, SIOCSIFFLAGS, &ifr);
  }
  close(sk);
}

/* The new network namespace the monitor's parent made arrives on
 * `report`: joined after /dev (hcs_rootfs_setup, or before entering a
 * joined mount namespace), so it is consumed in every case. */
int hcs_spawn_join_late_netns(int report) {
  char b;
  int type = 0, nsfd = -1;
  if (hcs_recv_msg(report, &type, &b, 1, &nsfd) < 0 || nsfd < 0) _exit(1);
  if (setns(nsfd, CLONE_NEWNET) < 0) {
    hcs_child_report(report, errno, "join the new network namespace");
    return -1;
  }
  close(nsfd);
  loopback_up();
  return 0;
}

static int write_sysctls(hcs_config_t *c, int report) {
  for (size_t i = 0; i < c->n_sysctl; i++) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "/proc/sys/%s", c->sysctl_keys[i]);
    for (char *p = path + 10; *p; p++)
      if (*p == '.') *p = '/';
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, c->sysctl_values[i], strlen(c->sysctl_values[i])) < 0) {
      hcs_child_report(report, errno, "set sysctl `%s`", c->sysctl_keys[i]);
      if (fd >= 0) close(fd);
      return -1;
    }
    close(fd);
  }
  return 0;
}

/* The built-in init when the configuration names no command: a reaper
 * that exits 0 on SIGTERM/SIGINT.  It never execs and is non-dumpable. */
static void idle_handler(int sig) { (void)sig; }

/* The idle init is a copy of the creator: blank its command line (from
 * arg_start/arg_end in /proc/self/stat) so the container never sees the
 * creator's arguments in /proc/1/cmdline. */
static void blank_cmdline(void) {
  char buf[2048];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  if (p == NULL) return;
  p += 2; /* field 3 */
  unsigned long start = 0, end = 0;
  for (int field = 3; p && field <= 49; field++) {
    if (field == 48) start = strtoul(p, NULL, 10);
    if (field == 49) end = strtoul(p, NULL, 10);
    p = strchr(p, ' ');
    if (p) p++;
  }
  if (start == 0 || end <= start) return;
  memset((void *)start, 0, end - start);
  memcpy((void *)start, "hcs-init", end - start > 9 ? 9 : end - start - 1);
}

static __attribute__((noreturn)) void idle_init(int fifo) {
  sigset_t set;
  /* A pid-namespace init only receives signals it has a handler for. */
  struct sigaction sa = {.sa_handler = idle_handler};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGCHLD, &sa, NULL);
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, NULL);
  prctl(PR_SET_NAME, "hcs-init", 0, 0, 0);
  /* Only now may start return: a SIGTERM sent earlier would be dropped. */
  close(fifo);
  for (;;) {
    int sig = sigwaitinfo(&set, NULL);
    if (sig == SIGTERM || sig == SIGINT) _exit(0);
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
  }
}

/* Join the namespace of kind `k` (Linux.Namespaces) through the fd the
 * monitor opened and checked. */
static void join_ns(hcs_spawn_t *s, const int *nsfd, int k, int report) {
  if (nsfd[k] < 0) return;
  if (setns(nsfd[k], hcs_ns_kinds[k].type) < 0) {
    hcs_child_report(report, errno, "join the %s namespace `%s`", hcs_ns_kinds[k].field, s->cfg->ns_paths[k]);
    _exit(1);
  }
  close(nsfd[k]);
}

/* The child side: runs in the new namespaces, reports failures on `report`
 * (a pipe to the monitor) as an error message. */
static __attribute__((noreturn)) void init_child(hcs_spawn_t *s, const int *nsfd, int go, int report) {
  hcs_config_t *c = s->cfg;
  bool userns = c->n_uid_maps > 0;
  char b;
  /* The mount trees from the host (a seeded namespace) stay too. */
  size_t ntrees = s->map_trees ? 1 + c->n_mounts + c->n_extra_mounts : 0, nkeep = 8 + HCS_NS_COUNT;
  int *keep = hcs_xcalloc(nkeep + ntrees, sizeof(int));
  int fixed[8] = {report, s->sock, s->netns_fd, s->stdio[0], s->stdio[1], s->stdio[2], go, s->fifo_fd};
  memcpy(keep, fixed, sizeof fixed);
  for (int k = 0; k < HCS_NS_COUNT; k++)
    keep[8 + k] = nsfd[k];
  if (ntrees) {
    keep[nkeep++] = s->root_tree;
    for (size_t i = 0; i < c->n_mounts; i++)
      keep[nkeep++] = s->map_trees[i];
    for (size_t i = 0; i < c->n_extra_mounts; i++)
      keep[nkeep++] = s->mount_trees[i];
  }
  /* Every inherited fd goes but `keep` (the creator's files, its store
   * locks, pipes it reads to EOF: init may wait a long time for start) and
   * the creator's fds 3..3+n-1 (Init.PreserveFds). */
  hcs_close_fds_but(3 + (unsigned)(c->init ? c->init->preserve_fds : 0), keep, nkeep);
  free(keep);
  /* Everything made below (device nodes, mount points) gets its exact mode
   * whatever the caller's umask; container processes get 022 later. */
  umask(0);
  /* In a user namespace nothing works before the id maps are written; else
   * the mount work below overlaps with the monitor's cgroup setup (a v1
   * cgroup migration waits for an RCU grace period). */
  if (userns) {
    if (read(go, &b, 1) != 1) _exit(1);
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
      hcs_child_report(report, errno, "become root in the user namespace");
      _exit(1);
    }
  }
  if (s->netns_late) {
    /* A new netns made by the monitor's parent: joined in hcs_rootfs_setup. */
  } else if (s->netns_fd >= 0) {
    if (setns(s->netns_fd, CLONE_NEWNET) < 0) {
      hcs_child_report(report, errno, "join network namespace `%s`", c->netns);
      _exit(1);
    }
    close(s->netns_fd);
  } else {
    loopback_up();
  }
  /* Joined namespaces (the pid one was joined by the monitor, for its
   * children): before the mounts, so mqueue belongs to the joined ipc. */
  join_ns(s, nsfd, HCS_NS_IPC, report);
  join_ns(s, nsfd, HCS_NS_UTS, report);
  join_ns(s, nsfd, HCS_NS_TIME, report);
  int fifo_path_fd = s->fifo_fd;
  bool own_mounts = nsfd[HCS_NS_MOUNT] < 0;
  if (!own_mounts) {
    /* The joined namespace's /proc is not ours (another pid namespace):
     * the fifo is reopened through its directory instead of
     * /proc/self/fd, an fd closed as soon as the fifo is open. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", s->fifo);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || dup3(dfd, fifo_path_fd, O_CLOEXEC) < 0) {
      hcs_child_report(report, errno, "open `%s`", dir);
      _exit(1);
    }
    close(dfd);
  }
  if (own_mounts) {
    if (hcs_rootfs_setup(s, userns, go, report) < 0) _exit(1);
  } else {
    /* A joined mount namespace is another container's, root and all:
     * join the cgroup while the host's /sys is reachable, then enter it
     * (nothing of ours is mounted there). */
    if (s->netns_late && hcs_spawn_join_late_netns(report) < 0) _exit(1);
    if (read(go, &b, 1) != 1) _exit(1);
    hcs_error_t cerr = NULL;
    if (s->cg && s->cg->enter_self(s->cs->cgroup, &cerr) < 0) {
      hcs_child_report(report, 0, "%s", hcs_error_message(cerr));
      _exit(1);
    }
    join_ns(s, nsfd, HCS_NS_MOUNT, report);
    if (chdir("/") < 0) {
      hcs_child_report(report, errno, "enter the joined mount namespace");
      _exit(1);
    }
  }
  /* The default host name is the id, cut to the kernel's 64 characters
   * (ids may have up to 128); an explicit HostName is checked at parse.
   * A joined uts namespace keeps its name unless one is given (as runc). */
  const char *hostname = c->hostname ? c->hostname : nsfd[HCS_NS_UTS] < 0 ? s->cs->id : NULL;
  if (hostname && sethostname(hostname, strnlen(hostname, HCS_HOST_NAME_MAX)) < 0) {
    hcs_child_report(report, errno, "set hostname `%s`", hostname);
    _exit(1);
  }
  if (write_sysctls(c, report) < 0 || (own_mounts && hcs_rootfs_seal(c, report) < 0)) _exit(1);
  umask(022);
  hcs_proc_spec_t *init = c->init;
  if (init && init->console) {
    int master, slave;
    if (hcs_pty_open_in_container(&master, &slave, init->rows, init->cols) < 0) {
      hcs_child_report(report, errno, "allocate a console");
      _exit(1);
    }
    /* To the creator, and to the monitor when it keeps the console (it
     * logs it and serves attach clients). */
    if (hcs_send_msg(s->sock, HCS_MSG_PTY, "", 0, master) < 0 ||
        (s->monitor_console && hcs_send_msg(report, HCS_MSG_PTY, "", 0, master) < 0) ||
        hcs_pty_make_controlling(slave) < 0) {
      hcs_child_report(report, errno, "set up the console");
      _exit(1);
    }
    close(master);
  } else {
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 3; fd++)
      if (dup2(s->stdio[fd] >= 0 ? s->stdio[fd] : null, fd) < 0) {
        hcs_child_report(report, errno, "set up stdio");
        _exit(1);
      }
    if (null >= 0) close(null);
  }
  /* The cgroup namespace is rooted where we are now (or joined). */
  close(go);
  if (nsfd[HCS_NS_CGROUP] >= 0) {
    join_ns(s, nsfd, HCS_NS_CGROUP, report);
  } else if (unshare(CLONE_NEWCGROUP) < 0) {
    hcs_child_report(report, errno, "unshare the cgroup namespace");
    _exit(1);
  }
  /* Created: ready (to the creator directly, and to the monitor), wait for
   * start.  The fifo is reopened through our fd: its path is outside the
   * new root.  With a seccomp listener, ready waits until the filter is
   * loaded, so the creator finds the listener in our fd table. */
  bool listener = s->sec.listener && init;
  if (!listener) {
    hcs_send_msg(s->sock, HCS_MSG_READY, "", 0, -1);
    close(s->sock);
  }
  hcs_send_msg(report, HCS_MSG_OK, "", 0, -1);
  close(report);
  /* Everything of the exec that does not need start happens now (a
   * failure is reported to start, as before). */
  hcs_child_user_t user;
  char prep_err[1024] = "";
  bool prep_failed = init && hcs_child_prepare(init, &s->sec, &user, fifo_path_fd, listener ? s->sock : -1, prep_err,
                                               sizeof prep_err) < 0;
  if (listener) {
    hcs_send_msg(s->sock, HCS_MSG_READY, "", 0, -1);
    close(s->sock);
  }
  char self[64];
  snprintf(self, sizeof self, "/proc/self/fd/%d", fifo_path_fd);
  int fifo = own_mounts ? open(self, O_WRONLY | O_CLOEXEC) : openat(fifo_path_fd, "exec.fifo", O_WRONLY | O_CLOEXEC);
  if (fifo < 0) _exit(1);
  close(fifo_path_fd);
  if (init == NULL) {
    /* It never execs: give it the same walls as any container process. */
    blank_cmdline();
    if (hcs_security_apply(&s->sec, 0, 0, NULL, 0) < 0) _exit(1);
    idle_init(fifo);
  }
  if (prep_failed) {
    hcs_child_report(fifo, 0, "%s", prep_err);
    _exit(127);
  }
  hcs_child_finish(init, &s->sec, &user, fifo);
}

static int write_id_map(pid_t pid, const char *file, const hcs_id_map_t *maps, size_t n, hcs_error_t *err) {
  char buf[4096], path[64];
  size_t len = 0;
  for (size_t i = 0; i < n && len < sizeof buf - 64; i++)
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%u %u %u\n", maps[i].inside, maps[i].outside, maps[i].count);
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
  return hcs_write_file(path, buf, len, err);
}

pid_t hcs_spawn_init(hcs_spawn_t *s, int *pidfd, hcs_error_t *err) {
  hcs_config_t *c = s->cfg;
  int go[2], rep[2];
  if (pipe2(go, O_CLOEXEC) < 0) return hcs_error_make(err, errno, "pipe");
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rep) < 0) {
    close(go[0]);
    close(go[1]);
    return hcs_error_make(err, errno, "socketpair");
  }
  /* Opened here: in a user namespace init could not reach the run dir; the
   * fifo then belongs to the container's root so it can be reopened. */
  s->fifo_fd = open(s->fifo, O_PATH | O_CLOEXEC);
  if (s->fifo_fd < 0) {
    int e = errno;
    close(go[0]), close(go[1]), close(rep[0]), close(rep[1]);
    return hcs_error_make(err, e, "open `%s`", s->fifo);
  }
  for (size_t i = 0; i < c->n_uid_maps; i++)
    if (c->uid_maps[i].inside == 0)
      for (size_t j = 0; j < c->n_gid_maps; j++)
        if (c->gid_maps[j].inside == 0 && chown(s->fifo, c->uid_maps[i].outside, c->gid_maps[j].outside) < 0)
          return hcs_error_make(err, errno, "chown `%s`", s->fifo);
  uint64_t flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
  if (s->netns_fd < 0 && s->netns_sock < 0) flags |= CLONE_NEWNET;
  if (c->n_uid_maps) flags |= CLONE_NEWUSER;
  if (c->caller_reaps_init) flags |= CLONE_PARENT;
  /* Linux.Namespaces: opened and checked again here (the paths were
   * checked at parse; this is the fd init joins).  The pid namespace is
   * joined by the monitor itself: it only applies to children. */
  int nsfd[HCS_NS_COUNT];
  int ret = 0;
  for (int k = 0; k < HCS_NS_COUNT; k++) {
    nsfd[k] = -1;
    if (ret < 0 || c->ns_paths[k] == NULL) continue;
    int got = 0;
    nsfd[k] = open(c->ns_paths[k], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (nsfd[k] < 0 || hcs_ns_check(nsfd[k], hcs_ns_kinds[k].type, &got) < 0)
      ret = hcs_error_make(err, errno == ENOTTY ? 0 : errno, "open the %s namespace `%s`%s", hcs_ns_kinds[k].field,
                           c->ns_paths[k], errno == ENOTTY ? ": not a namespace of that type" : "");
  }
  if (ret == 0 && nsfd[HCS_NS_PID] >= 0) {
    if (setns(nsfd[HCS_NS_PID], CLONE_NEWPID) < 0)
      ret = hcs_error_make(err, errno, "join the pid namespace `%s`", c->ns_paths[HCS_NS_PID]);
    flags &= ~(uint64_t)CLONE_NEWPID;
  }
  if (nsfd[HCS_NS_MOUNT] >= 0) flags &= ~(uint64_t)CLONE_NEWNS;
  if (nsfd[HCS_NS_IPC] >= 0) flags &= ~(uint64_t)CLONE_NEWIPC;
  if (nsfd[HCS_NS_UTS] >= 0) flags &= ~(uint64_t)CLONE_NEWUTS;
  /* A seeded mount namespace: init's is copied from the small seed, not
   * from ours (whose size grows with every system and endpoint); what it
   * would have reached by a host path comes as mount trees opened here. */
  bool seeded = s->seed_fd >= 0 && (flags & CLONE_NEWNS);
  if (ret == 0 && seeded && hcs_seed_open_trees(s, err) < 0) ret = -1;
  pid_t pid = ret < 0 ? -1 : seeded ? hcs_seed_clone(s, flags, pidfd, err) : hcs_clone3(flags, pidfd, -1);
  if (pid < 0) {
    int e = errno;
    close(go[0]), close(go[1]), close(rep[0]), close(rep[1]);
    for (int k = 0; k < HCS_NS_COUNT; k++)
      if (nsfd[k] >= 0) close(nsfd[k]);
    hcs_seed_close_trees(s);
    if (ret < 0 || seeded) return -1;
    return hcs_error_make(err, e, "clone the init of `%s`", s->cs->id);
  }
  if (pid == 0) {
    close(go[1]);
    close(rep[0]);
    s->netns_late = s->netns_sock >= 0;
    init_child(s, nsfd, go[0], rep[1]);
  }
  for (int k = 0; k < HCS_NS_COUNT; k++)
    if (nsfd[k] >= 0) close(nsfd[k]);
  /* Init holds its own copies: a tree it never attached goes with it. */
  hcs_seed_close_trees(s);
  close(go[0]);
  close(rep[1]);
  close(s->fifo_fd);
  s->fifo_fd = -1;
  cleanup_close int rfd = rep[0];
  cleanup_close int gfd = go[1];
  if (s->netns_sock >= 0) { /* forward the new netns; init needs it after /dev */
    char msg[256];
    int type = 0, netfd = -1;
    ssize_t n = hcs_recv_msg(s->netns_sock, &type, msg, sizeof msg, &netfd);
    if (n <= 0 || type != HCS_MSG_OK || netfd < 0)
      ret = hcs_error_make(err, n < 0 ? errno : 0, "%s", n > 0 && type == HCS_MSG_ERROR ? msg : "no network namespace");
    else if (hcs_send_msg(rfd, HCS_MSG_OK, "", 0, netfd) < 0)
      ret = hcs_error_make(err, errno, "pass the network namespace to the init of `%s`", s->cs->id);
    if (netfd >= 0) close(netfd);
    close(s->netns_sock);
    s->netns_sock = -1;
  }
  if (c->n_uid_maps && (write_id_map(pid, "uid_map", c->uid_maps, c->n_uid_maps, err) < 0 ||
                        write_id_map(pid, "gid_map", c->gid_maps, c->n_gid_maps, err) < 0))
    ret = -1;
  if (ret == 0 && s->cg) {
    hcs_resources_t r = {c->memory_mb, c->cpu_count, c->cpu_max, c->cpu_weight, c->pids_limit};
    if (s->cg->create(s->cs->cgroup, &r, err) < 0)
      ret = -1;
    else if (s->cg->set_resources(s->cs->cgroup, &r, err) < 0 || s->cg->set_devices(s->cs->cgroup, c, err) < 0 ||
             (c->n_uid_maps && s->cg->enter(s->cs->cgroup, pid, err) < 0))
      ret = -1, s->cg->destroy(s->cs->cgroup, NULL);
  }
  if (ret == 0 && write(gfd, "g", 1) != 1) ret = hcs_error_make(err, errno, "start the init of `%s`", s->cs->id);
  if (ret == 0 && s->on_go && s->on_go(s, pid, err) < 0) ret = -1;
  if (ret == 0) {
    char msg[1024];
    int type = 0, fd;
    ssize_t n = hcs_recv_msg(rfd, &type, msg, sizeof msg, &fd);
    if (n > 0 && type == HCS_MSG_PTY && fd >= 0 && s->monitor_console && s->console < 0) {
      s->console = fd; /* the console's master, then OK */
      fd = -1;
      n = hcs_recv_msg(rfd, &type, msg, sizeof msg, &fd);
    }
    if (fd >= 0) close(fd);
    if (n <= 0)
      ret = hcs_error_make(err, n < 0 ? errno : 0, "init of `%s` died while being set up", s->cs->id);
    else if (type != HCS_MSG_OK)
      ret = hcs_error_make(err, 0, "%s", msg);
  }
  if (ret < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(*pidfd);
    *pidfd = -1;
    return -1;
  }
  return pid;
}
