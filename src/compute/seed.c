/* The seed mount namespace: the small template a system's init namespace
 * is copied from, instead of the creator's.  clone(CLONE_NEWNS) copies
 * every mount of the namespace it starts from (copy_mnt_ns), and the
 * host's grows by an overlay per system and a netns bind per endpoint, so
 * each create used to pay for every other system.  The seed is a tmpfs
 * root (read-only) holding recursive slave binds of the creator's /proc,
 * /sys and /dev and an empty `rootfs` directory where init attaches its
 * root: its size never depends on what the host mounts.  Everything else
 * init needs from the host (its rootfs, mapped directories, bind sources)
 * comes as detached mount trees the monitor opens in the host namespace
 * (spawn.c).
 *
 * The seed is pinned by a bind mount of its nsfs file at
 * `<run root>/mntns/seed-<inode of the creator's mount namespace>` (a
 * process in another mount namespace, e.g. under `ip netns exec` whose
 * /sys differs, gets its own), inside a private self-bind of
 * `<run root>/mntns` (an mnt namespace file cannot be bound into a shared
 * mount).  It is made under a flock of that directory; a pin is only used
 * once `NS_GET_NSTYPE` says it is a mount namespace, so the empty file a
 * killed create left is made again.  The delete that leaves no system in
 * the run root takes the pins and the directory's mount down. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "compute/compute.h"
#include "core/crash.h"

/* An fd of the mount namespace pinned at `path`, or -1 (errno ENOTTY: an
 * empty pin, e.g. left by a killed create). */
static int open_pin(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0) return -1;
  if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNS) {
    close(fd);
    errno = ENOTTY;
    return -1;
  }
  return fd;
}

static bool is_mount_root(const char *dir) {
  struct statx stx;
  return statx(AT_FDCWD, dir, AT_SYMLINK_NOFOLLOW, STATX_TYPE, &stx) == 0 &&
         (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* Does the compute directory hold a system (any name not starting with a
 * dot: `.new-*` are creates in progress, `.seccomp-*` caches)?  A small
 * getdents64 buffer: with a thousand systems the first read answers. */
static bool any_system(const char *compute) {
  cleanup_close int fd = open(compute, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno != ENOENT;
  _Alignas(struct dirent64) char buf[1024];
  ssize_t n;
  while ((n = getdents64(fd, buf, sizeof buf)) > 0)
    for (ssize_t off = 0; off < n;) {
      struct dirent64 *de = (struct dirent64 *)(buf + off);
      if (de->d_name[0] != '.') return true;
      off += de->d_reclen;
    }
  return n < 0;
}

struct seed_status {
  int err;
  char step[48];
};

/* In a child, on `cpu` (>= 0) when asked: a new mount namespace, the seed,
 * report on `ready`, then hold the namespace until `hold` reaches EOF (the
 * parent bound it, or died).  Only system calls: the creator may have
 * threads. */
static __attribute__((noreturn)) void seed_child(const char *dir, int cpu, int ready, int hold) {
  static const char *const binds[] = {"/proc", "/sys", "/dev"};
  struct seed_status st = {0, ""};
#define STEP(call, what)                                                                                               \
  if ((call) < 0) {                                                                                                    \
    st.err = errno;                                                                                                    \
    snprintf(st.step, sizeof st.step, "%s", what);                                                                     \
    goto out;                                                                                                          \
  }
  if (cpu >= 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) < 0) {
      st.err = -1; /* a CPU outside our cpuset: the next one */
      goto out;
    }
  }
  STEP(unshare(CLONE_NEWNS), "unshare the mount namespace");
  /* Nothing made here may reach the host; host unmounts still reach us. */
  STEP(mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL), "make / a slave mount");
  STEP(mount("hcs-seed", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=16k"), "mount a tmpfs");
  STEP(chdir(dir), "enter the tmpfs");
  STEP(mkdir("rootfs", 0755), "make rootfs");
  for (size_t i = 0; i < HCS_ARRAY_SIZE(binds); i++) {
    STEP(mkdir(binds[i] + 1, 0755), "make a mount point");
    STEP(mount(binds[i], binds[i] + 1, NULL, MS_BIND | MS_REC, NULL), binds[i]);
  }
  STEP(mount(NULL, ".", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL),
       "remount the tmpfs read-only");
  /* pivot_root(".", ".") stacks the old root on the new one; detach it. */
  STEP(syscall(SYS_pivot_root, ".", "."), "pivot_root");
  STEP(umount2(".", MNT_DETACH), "detach the old root");
  STEP(chdir("/"), "enter the root");
#undef STEP
out:
  if (write(ready, &st, sizeof st) != sizeof st || st.err) _exit(1);
  char b;
  while (read(hold, &b, 1) < 0 && errno == EINTR) {
  }
  _exit(0);
}

/* Make the seed and bind its namespace file on `pin` (an existing file).
 * 1 when the kernel refused the bind as a possible loop: it only binds a
 * mount namespace file into an older namespace (mnt_ns_loop compares ids),
 * and ids come from per-CPU batches, so a namespace made on another CPU
 * than the caller's (a private one, `ip netns exec`'s) may look newer. */
static int make_seed(const char *dir, const char *pin, int cpu, hcs_error_t *err) {
  int ready[2], hold[2];
  if (pipe2(ready, O_CLOEXEC) < 0) return hcs_error_make(err, errno, "pipe");
  if (pipe2(hold, O_CLOEXEC) < 0) {
    close(ready[0]), close(ready[1]);
    return hcs_error_make(err, errno, "pipe");
  }
  pid_t pid = hcs_clone3(0, NULL, -1);
  if (pid == 0) {
    close(ready[0]), close(hold[1]);
    seed_child(dir, cpu, ready[1], hold[0]);
  }
  int e = errno;
  close(ready[1]), close(hold[0]);
  cleanup_close int rfd = ready[0];
  cleanup_close int hfd = hold[1];
  if (pid < 0) return hcs_error_make(err, e, "clone the seed mount namespace of `%s`", dir);
  struct seed_status st = {0, ""};
  ssize_t n;
  while ((n = read(rfd, &st, sizeof st)) < 0 && errno == EINTR) {
  }
  int ret = 0;
  if (n != (ssize_t)sizeof st) {
    ret = hcs_error_make(err, n < 0 ? errno : 0, "make the seed mount namespace in `%s`: the helper died", dir);
  } else if (st.err == -1) {
    ret = 1;
  } else if (st.err) {
    st.step[sizeof st.step - 1] = '\0';
    ret = hcs_error_make(err, st.err, "make the seed mount namespace in `%s`: %s", dir, st.step);
  } else {
    char ns[64];
    snprintf(ns, sizeof ns, "/proc/%d/ns/mnt", (int)pid);
    if (mount(ns, pin, NULL, MS_BIND, NULL) < 0)
      ret = errno == EINVAL ? 1 : hcs_error_make(err, errno, "bind-mount the seed mount namespace on `%s`", pin);
  }
  close(hfd), hfd = -1;
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
  return ret;
}

static char *seed_dir(const char *run_root) { return hcs_xasprintf("%s/mntns", run_root); }

int hcs_seed_open(const char *run_root, hcs_error_t *err) {
  struct stat self;
  if (stat("/proc/self/ns/mnt", &self) < 0) return hcs_error_make(err, errno, "stat `/proc/self/ns/mnt`");
  cleanup_free char *dir = seed_dir(run_root);
  cleanup_free char *pin = hcs_xasprintf("%s/seed-%llu", dir, (unsigned long long)self.st_ino);
  int fd = open_pin(pin);
  if (fd >= 0) return fd;
  if (hcs_mkdir_p(dir, 0700, err) < 0) return -1;
  cleanup_close int lock = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock < 0) return hcs_error_make(err, errno, "open `%s`", dir);
  while (flock(lock, LOCK_EX) < 0)
    if (errno != EINTR) return hcs_error_make(err, errno, "lock `%s`", dir);
  if ((fd = open_pin(pin)) >= 0) return fd;
  /* A private mount: a namespace file cannot be bound into a shared one.
   * A bind made by a create killed before the change of propagation is a
   * mount root already: changed again. */
  if (!is_mount_root(dir) && mount(dir, dir, NULL, MS_BIND, NULL) < 0)
    return hcs_error_make(err, errno, "bind-mount `%s` onto itself", dir);
  hcs_crash_point("seed: directory bound");
  /* Unbindable (so private too): a recursive tree of a directory above it
   * (a mapped `/` or state root) leaves the pins out, where one would make
   * init's move_mount fail (ELOOP: a mount namespace file in the tree). */
  if (mount(NULL, dir, NULL, MS_UNBINDABLE, NULL) < 0)
    return hcs_error_make(err, errno, "make `%s` an unbindable mount", dir);
  /* The pin file; an empty one (a killed create) is reused. */
  cleanup_close int pf = open(pin, O_RDONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0400);
  if (pf < 0) return hcs_error_make(err, errno, "create `%s`", pin);
  struct stat st;
  if (fstat(pf, &st) < 0) return hcs_error_make(err, errno, "stat `%s`", pin);
  if (!S_ISREG(st.st_mode)) return hcs_error_make(err, EINVAL, "open the seed pin `%s`: not a regular file", pin);
  hcs_crash_point("seed: pin file made");
  /* Refused as a loop: made again on each CPU in turn; the CPU that made
   * our namespace hands out newer ids. */
  int r = make_seed(dir, pin, -1, err);
  for (int cpu = 0; r == 1 && cpu < get_nprocs_conf() && cpu < CPU_SETSIZE; cpu++)
    r = make_seed(dir, pin, cpu, err);
  if (r == 1)
    return hcs_error_make(err, EINVAL, "bind-mount the seed mount namespace on `%s`: refused on every CPU", pin);
  if (r < 0) return -1;
  if ((fd = open_pin(pin)) < 0) return hcs_error_make(err, errno, "open the seed mount namespace `%s`", pin);
  return fd;
}

void hcs_seed_release(const char *run_root) {
  cleanup_free char *dir = seed_dir(run_root);
  cleanup_free char *compute = hcs_xasprintf("%s/compute", run_root);
  if (!is_mount_root(dir) || any_system(compute)) return;
  cleanup_close int lock = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock < 0 || flock(lock, LOCK_EX) < 0) return;
  /* Under the lock: a create making a seed now waits, and one that opened
   * a pin already holds the namespace by its fd. */
  if (!is_mount_root(dir) || any_system(compute)) return;
  cleanup_dir DIR *d = fdopendir(dup(lock));
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL) {
    if (strncmp(de->d_name, "seed-", 5) != 0) continue;
    cleanup_free char *pin = hcs_xasprintf("%s/%s", dir, de->d_name);
    umount2(pin, MNT_DETACH | UMOUNT_NOFOLLOW);
    unlinkat(lock, de->d_name, 0);
  }
  umount2(dir, MNT_DETACH);
}

/* Is a mount namespace file (another tool's pin: `unshare --mount=FILE`,
 * snapd's /run/snapd/ns) mounted at or below one of these host paths?  A
 * recursive tree holding one is refused by move_mount (ELOOP) when that
 * namespace is older than init's, else attached with it: a way into
 * another mount namespace, where a bind in a copy of the host's namespace
 * left it out (copy_mnt_ns skips them). */
static bool mntns_file_below(const char *const *paths, size_t n) {
  if (n == 0) return false;
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (f == NULL) return true;
  char *line = NULL;
  size_t cap = 0;
  bool found = false;
  while (!found && getline(&line, &cap, f) > 0) {
    char root[64], point[PATH_MAX];
    if (sscanf(line, "%*s %*s %*s %63s %4095s", root, point) != 2 || strncmp(root, "mnt:[", 5) != 0) continue;
    for (size_t i = 0; i < n && !found; i++) {
      size_t len = strlen(paths[i]);
      found = len == 1 || (strncmp(point, paths[i], len) == 0 && (point[len] == '\0' || point[len] == '/'));
    }
  }
  free(line);
  fclose(f);
  return found;
}

bool hcs_seed_fits(const hcs_config_t *c) {
  /* A user namespace keeps the copy of the creator's namespace: the kernel
   * locks the mounts of a namespace copied into a less privileged user
   * namespace (MNT_LOCKED: a mapped root cannot unmount a host mount to
   * uncover what it hides, nor clear nosuid/nodev/ro), and trees attached
   * from the initial one would carry no such locks.  A joined mount
   * namespace is another container's. */
  if (c->n_uid_maps > 0 || c->ns_paths[HCS_NS_MOUNT] != NULL) return false;
  /* A mount whose source or data names host paths (a block device, an
   * overlay's lowerdir) resolves them in init's namespace: only binds
   * (attached from trees), the system's cgroup and pseudo file systems. */
  static const char *const pseudo[] = {"tmpfs", "ramfs", "proc", "sysfs", "devpts", "mqueue", "hugetlbfs"};
  for (size_t i = 0; i < c->n_extra_mounts; i++) {
    const hcs_mount_t *m = &c->extra_mounts[i];
    if ((m->flags & MS_BIND) || m->cgroup) continue;
    bool ok = false;
    for (size_t j = 0; j < HCS_ARRAY_SIZE(pseudo) && !ok; j++)
      ok = m->type && strcmp(m->type, pseudo[j]) == 0;
    if (!ok) return false;
  }
  /* The recursive trees' sources, resolved as open_tree will. */
  char **paths = hcs_xcalloc(c->n_mounts + c->n_extra_mounts + 1, sizeof(char *));
  size_t n = 0;
  for (size_t i = 0; i < c->n_mounts; i++)
    if ((paths[n] = realpath(c->mounts[i].host_path, NULL)) != NULL) n++;
  for (size_t i = 0; i < c->n_extra_mounts; i++)
    if ((c->extra_mounts[i].flags & (MS_BIND | MS_REC)) == (MS_BIND | MS_REC) && !c->extra_mounts[i].cgroup &&
        (paths[n] = realpath(c->extra_mounts[i].source, NULL)) != NULL)
      n++;
  bool below = mntns_file_below((const char *const *)paths, n);
  for (size_t i = 0; i < n; i++)
    free(paths[i]);
  free(paths);
  return !below;
}

/* Attach a detached tree the monitor cloned in the host's namespace (seed.c)
 * at `rel`, resolved inside the root; a file or a directory as the tree's
 * root is (fstat on the fd, never the host path again). */
int hcs_seed_attach(int rootfd, const char *rel, int tree, const char *src, int report) {
  struct stat st;
  if (fstat(tree, &st) < 0) {
    hcs_child_report(report, errno, "mount source `%s`", src);
    return -1;
  }
  cleanup_close int fd = hcs_open_in_root(rootfd, rel, S_ISDIR(st.st_mode), true);
  if (fd < 0) {
    hcs_child_report(report, errno, "open mount point `%s` in the rootfs", rel);
    return -1;
  }
  if (syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
    hcs_child_report(report, errno, "mount `%s` on `%s`", src, rel);
    return -1;
  }
  return 0;
}

/* A detached copy of the mount tree at `path` (its submounts too when
 * `recursive`), a slave of the host's mounts: host unmounts still reach
 * it, nothing mounted in it leaks out (as the MS_REC|MS_SLAVE copy did). */
static int clone_tree(const char *path, bool recursive, bool read_only, const char *what, hcs_error_t *err) {
  int t =
      (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
  if (t < 0) return hcs_error_make(err, errno, "%s `%s`", what, path);
  struct mount_attr slave = {.propagation = MS_SLAVE};
  struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
  /* Read-only as a bind remounted read-only was: its top mount only. */
  if (syscall(SYS_mount_setattr, t, "", AT_EMPTY_PATH | AT_RECURSIVE, &slave, sizeof slave) < 0 ||
      (read_only && syscall(SYS_mount_setattr, t, "", AT_EMPTY_PATH, &ro, sizeof ro) < 0)) {
    int e = errno;
    close(t);
    return hcs_error_make(err, e, "set up the mount of %s `%s`", what, path);
  }
  return t;
}

int hcs_seed_open_trees(hcs_spawn_t *s, hcs_error_t *err) {
  hcs_config_t *c = s->cfg;
  s->map_trees = hcs_xcalloc(c->n_mounts + 1, sizeof(int));
  s->mount_trees = hcs_xcalloc(c->n_extra_mounts + 1, sizeof(int));
  for (size_t i = 0; i < c->n_mounts; i++)
    s->map_trees[i] = -1;
  for (size_t i = 0; i < c->n_extra_mounts; i++)
    s->mount_trees[i] = -1;
  if ((s->root_tree = clone_tree(c->rootfs, true, false, "rootfs", err)) < 0) return -1;
  for (size_t i = 0; i < c->n_mounts; i++)
    if ((s->map_trees[i] = clone_tree(c->mounts[i].host_path, true, c->mounts[i].read_only, "mapped directory", err)) <
        0)
      return -1;
  for (size_t i = 0; i < c->n_extra_mounts; i++) {
    const hcs_mount_t *m = &c->extra_mounts[i];
    if ((m->flags & MS_BIND) && !m->cgroup &&
        (s->mount_trees[i] = clone_tree(m->source, m->flags & MS_REC, false, "mount source", err)) < 0)
      return -1;
  }
  return 0;
}

void hcs_seed_close_trees(hcs_spawn_t *s) {
  if (s->root_tree >= 0) close(s->root_tree), s->root_tree = -1;
  for (size_t i = 0; s->map_trees && i < s->cfg->n_mounts; i++)
    if (s->map_trees[i] >= 0) close(s->map_trees[i]);
  for (size_t i = 0; s->mount_trees && i < s->cfg->n_extra_mounts; i++)
    if (s->mount_trees[i] >= 0) close(s->mount_trees[i]);
  free(s->map_trees), s->map_trees = NULL;
  free(s->mount_trees), s->mount_trees = NULL;
}

pid_t hcs_seed_clone(hcs_spawn_t *s, uint64_t flags, int *pidfd, hcs_error_t *err) {
  /* setns(CLONE_NEWNS) needs a task that shares its fs_struct with no
   * other: the monitor, a single-threaded fork. */
  cleanup_close int self = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (self < 0) return hcs_error_make(err, errno, "open `/proc/self/ns/mnt`");
  if (setns(s->seed_fd, CLONE_NEWNS) < 0) return hcs_error_make(err, errno, "enter the seed mount namespace");
  pid_t pid = hcs_clone3(flags, pidfd, -1);
  if (pid == 0) return 0;
  int e = errno;
  /* Back at once: the monitor and what it starts later (the exit command
   * unmounts in the host) live in the host's namespace. */
  if (setns(self, CLONE_NEWNS) < 0) {
    e = errno;
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      close(*pidfd);
      *pidfd = -1;
    }
    return hcs_error_make(err, e, "return from the seed mount namespace");
  }
  if (pid < 0) return hcs_error_make(err, e, "clone the init of `%s`", s->cs->id);
  return pid;
}
