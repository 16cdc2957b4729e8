/* The mount namespace of a system's init, made in init before it execs:
 * the rootfs (bound, or attached from the seed's trees), /proc, /dev, /sys,
 * mapped directories and Linux.Mounts resolved inside the root, the
 * system's cgroup, pivot_root; then the masked and read-only paths and a
 * read-only rootfs.  Split from spawn.c (the clone and the rest of init's
 * set-up), which calls hcs_rootfs_setup and hcs_rootfs_seal. */
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "compute/compute.h"

static const char *const default_masked[] = {"/proc/acpi",
                                             "/proc/asound",
                                             "/proc/kcore",
                                             "/proc/keys",
                                             "/proc/latency_stats",
                                             "/proc/timer_list",
                                             "/proc/timer_stats",
                                             "/proc/sched_debug",
                                             "/proc/scsi",
                                             "/sys/firmware",
                                             "/sys/devices/virtual/powercap",
                                             NULL};
static const char *const default_readonly[] = {"/proc/bus",           "/proc/fs", "/proc/irq", "/proc/sys",
                                               "/proc/sysrq-trigger", NULL};

/* Resolve `rel` inside the rootfs without escaping it through symlinks or
 * "..", creating missing directories (or a final file when !dir). */
int hcs_open_in_root(int rootfd, const char *rel, bool dir, bool create) {
  struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  int fd = (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof how);
  if (fd >= 0 || errno != ENOENT || !create) return fd;
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", rel);
  char *slash = strrchr(buf, '/');
  int parent;
  const char *name = buf;
  if (slash) {
    *slash = '\0';
    name = slash + 1;
    parent = *buf ? hcs_open_in_root(rootfd, buf, true, true) : dup(rootfd);
  } else {
    parent = dup(rootfd);
  }
  if (parent < 0) return -1;
  /* mkdirat needs a real directory fd, not O_PATH. */
  char self[64];
  snprintf(self, sizeof self, "/proc/self/fd/%d", parent);
  int pdir = open(self, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  close(parent);
  if (pdir < 0) return -1;
  int r = dir ? mkdirat(pdir, name, 0755) : mknodat(pdir, name, S_IFREG | 0644, 0);
  if (r < 0 && errno != EEXIST) {
    close(pdir);
    return -1;
  }
  fd = openat(pdir, name, O_PATH | O_CLOEXEC | O_NOFOLLOW);
  close(pdir);
  return fd;
}

static int mount_at(int rootfd, const char *rel, const char *src, const char *type, unsigned long flags,
                    const char *data, bool dir, int report) {
  int fd = hcs_open_in_root(rootfd, rel, dir, true);
  if (fd < 0) {
    hcs_child_report(report, errno, "open mount point `%s` in the rootfs", rel);
    return -1;
  }
  char target[64];
  snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
  int r = mount(src, target, type, flags, data);
  int saved = errno;
  close(fd);
  if (r == 0 && (flags & MS_BIND) && (flags & MS_RDONLY)) {
    /* Our fd is the dentry under the new mount: reopen to reach its root. */
    fd = hcs_open_in_root(rootfd, rel, dir, false);
    snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
    struct statvfs sv;
    unsigned long keep = 0;
    if (fd >= 0 && statvfs(target, &sv) == 0)
      keep = (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) | (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
             (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0);
    r = fd < 0 ? -1 : mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL);
    saved = errno;
    if (fd >= 0) close(fd);
  }
  if (r < 0) {
    hcs_child_report(report, saved, "mount `%s` on `%s`", src ? src : type, rel);
    return -1;
  }
  return 0;
}

/* One entry of Linux.Mounts: the destination is resolved inside the root
 * (a symlink in the rootfs can never send it outside, CVE-2021-30465). */
static int extra_mount(int rootfd, const hcs_mount_t *m, int tree, int report) {
  bool dir = true;
  if (tree >= 0) {
    if (hcs_seed_attach(rootfd, m->destination + 1, tree, m->source, report) < 0) return -1;
    struct stat st;
    dir = fstat(tree, &st) == 0 && S_ISDIR(st.st_mode);
  } else {
    if (m->flags & MS_BIND) {
      struct stat st;
      if (stat(m->source, &st) < 0) {
        hcs_child_report(report, errno, "mount source `%s`", m->source);
        return -1;
      }
      dir = S_ISDIR(st.st_mode);
    }
    if (mount_at(rootfd, m->destination + 1, m->source ? m->source : m->type, m->type, m->flags, m->data, dir, report) <
        0)
      return -1;
  }
  if (!m->bind_ro && !m->propagation) return 0;
  cleanup_close int fd = hcs_open_in_root(rootfd, m->destination + 1, dir, false);
  char target[64];
  snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
  struct statvfs sv;
  if (fd < 0 || statvfs(target, &sv) < 0) {
    hcs_child_report(report, errno, "reopen mount `%s`", m->destination);
    return -1;
  }
  unsigned long keep = (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) | (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
                       (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0);
  if (m->bind_ro &&
      mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep | (m->flags & ~MS_REC), NULL) < 0) {
    hcs_child_report(report, errno, "remount `%s` read-only", m->destination);
    return -1;
  }
  if (m->propagation && mount(NULL, target, NULL, m->propagation, NULL) < 0) {
    hcs_child_report(report, errno, "set the propagation of `%s`", m->destination);
    return -1;
  }
  return 0;
}

/* Bind the host's `hostdir` at `rel` in the root, read-only unless the
 * mount asked for rw, never suid, dev or exec. */
static int bind_cgroup_dir(int rootfd, const char *rel, const char *hostdir, const hcs_mount_t *m, int report) {
  unsigned long ro = (m->flags & MS_RDONLY) ? MS_RDONLY : 0;
  if (mount_at(rootfd, rel, hostdir, NULL, MS_BIND | ro, NULL, true, report) < 0) return -1;
  cleanup_close int fd = hcs_open_in_root(rootfd, rel, true, false);
  char target[64];
  snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
  if (fd < 0 || mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | ro | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
    hcs_child_report(report, errno, "remount the cgroup `%s`", rel);
    return -1;
  }
  return 0;
}

/* A `cgroup` mount: the system's own cgroup.  v2: its directory bound at
 * the destination.  v1 and hybrid: a tmpfs there, and for each hierarchy
 * init is in the system's cgroup of (from /proc/self/cgroup, init having
 * joined them), that directory bound at <dest>/<hierarchy>; hierarchies
 * the system has no cgroup in (cpu without a limit) are left out, so no
 * host cgroup is ever visible. */
static int mount_cgroup(int rootfd, const hcs_mount_t *m, const char *cgroup, int report) {
  const char *rel = m->destination + 1;
  char hostdir[PATH_MAX], sub[PATH_MAX];
  if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
    snprintf(hostdir, sizeof hostdir, "/sys/fs/cgroup/%s", cgroup);
    return bind_cgroup_dir(rootfd, rel, hostdir, m, report);
  }
  if (mount_at(rootfd, rel, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755", true, report) < 0)
    return -1;
  FILE *f = fopen("/proc/self/cgroup", "re");
  if (f == NULL) {
    hcs_child_report(report, errno, "read /proc/self/cgroup");
    return -1;
  }
  char line[1024];
  int ret = 0;
  while (ret == 0 && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    char *ctrls = strchr(line, ':'), *path = ctrls ? strchr(ctrls + 1, ':') : NULL;
    if (path == NULL) continue;
    *ctrls++ = '\0', *path++ = '\0';
    if (path[0] != '/' || strcmp(path + 1, cgroup)) continue;
    /* "cpu,cpuacct" is mounted under that name; "name=systemd" as systemd;
     * the hybrid host's cgroup2 as unified. */
    const char *name = !*ctrls ? "unified" : strncmp(ctrls, "name=", 5) == 0 ? ctrls + 5 : ctrls;
    snprintf(hostdir, sizeof hostdir, "/sys/fs/cgroup/%s/%s", name, cgroup);
    snprintf(sub, sizeof sub, "%s/%s", rel, name);
    if (access(hostdir, F_OK) == 0) ret = bind_cgroup_dir(rootfd, sub, hostdir, m, report);
  }
  fclose(f);
  if (ret < 0) return -1;
  cleanup_close int fd = hcs_open_in_root(rootfd, rel, true, false);
  snprintf(sub, sizeof sub, "/proc/self/fd/%d", fd);
  if ((m->flags & MS_RDONLY) &&
      (fd < 0 || mount(NULL, sub, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") < 0)) {
    hcs_child_report(report, errno, "remount `%s` read-only", m->destination);
    return -1;
  }
  return 0;
}

static int setup_dev(int rootfd, bool userns, int report) {
  static const struct {
    const char *name;
    unsigned maj, min;
  } nodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  if (mount_at(rootfd, "dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k", true, report) < 0)
    return -1;
  int dev = hcs_open_in_root(rootfd, "dev", true, false);
  char self[64];
  snprintf(self, sizeof self, "/proc/self/fd/%d", dev);
  cleanup_close int devfd = open(self, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  close(dev);
  if (devfd < 0) {
    hcs_child_report(report, errno, "open /dev in the rootfs");
    return -1;
  }
  for (size_t i = 0; i < HCS_ARRAY_SIZE(nodes); i++) {
    if (!userns) {
      if (mknodat(devfd, nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0) {
        hcs_child_report(report, errno, "mknod /dev/%s", nodes[i].name);
        return -1;
      }
      continue;
    }
    /* A user namespace cannot mknod: bind the host's nodes instead. */
    char host[64], rel[64];
    snprintf(host, sizeof host, "/dev/%s", nodes[i].name);
    snprintf(rel, sizeof rel, "dev/%s", nodes[i].name);
    if (mount_at(rootfd, rel, host, NULL, MS_BIND, NULL, false, report) < 0) return -1;
  }
  static const char *const links[][2] = {{"/proc/self/fd", "fd"},
                                         {"/proc/self/fd/0", "stdin"},
                                         {"/proc/self/fd/1", "stdout"},
                                         {"/proc/self/fd/2", "stderr"},
                                         {"pts/ptmx", "ptmx"}};
  for (size_t i = 0; i < HCS_ARRAY_SIZE(links); i++)
    if (symlinkat(links[i][0], devfd, links[i][1]) < 0) {
      hcs_child_report(report, errno, "symlink /dev/%s", links[i][1]);
      return -1;
    }
  if (mount_at(rootfd, "dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
               userns ? "newinstance,ptmxmode=0666,mode=0620" : "newinstance,ptmxmode=0666,mode=0620,gid=5", true,
               report) < 0 ||
      mount_at(rootfd, "dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k", true,
               report) < 0 ||
      mount_at(rootfd, "dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, true, report) < 0)
    return -1;
  return 0;
}

int hcs_rootfs_setup(hcs_spawn_t *s, bool userns, int go, int report) {
  hcs_config_t *c = s->cfg;
  /* Slave, so host unmounts still reach us and nothing we mount leaks out. */
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
    hcs_child_report(report, errno, "make / a slave mount");
    return -1;
  }
  cleanup_close int rootfd = -1;
  if (s->root_tree >= 0) {
    /* A copy of the seed: the rootfs tree (already a slave) goes on its
     * empty /rootfs; the tree's fd is then the root's. */
    cleanup_close int at = open("/rootfs", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (at < 0 ||
        syscall(SYS_move_mount, s->root_tree, "", at, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
      hcs_child_report(report, errno, "attach rootfs `%s`", c->rootfs);
      return -1;
    }
    rootfd = s->root_tree;
    s->root_tree = -1;
  } else if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) {
    hcs_child_report(report, errno, "bind rootfs `%s`", c->rootfs);
    return -1;
  } else if ((rootfd = open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
    hcs_child_report(report, errno, "open rootfs `%s`", c->rootfs);
    return -1;
  }
  if (mount_at(rootfd, "proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, true, report) < 0) return -1;
  if (setup_dev(rootfd, userns, report) < 0) return -1;
  if (s->netns_late && hcs_spawn_join_late_netns(report) < 0) return -1;
  /* sysfs needs a network namespace we own; otherwise bind the host's. */
  if (mount_at(rootfd, "sys", "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, true, -1) < 0 &&
      mount_at(rootfd, "sys", "/sys", NULL, MS_BIND | MS_REC | MS_RDONLY, NULL, true, report) < 0)
    return -1;
  for (size_t i = 0; i < c->n_mounts; i++) {
    struct stat st;
    hcs_mapped_dir_t *m = &c->mounts[i];
    if (s->map_trees) {
      if (hcs_seed_attach(rootfd, m->container_path + 1, s->map_trees[i], m->host_path, report) < 0) return -1;
      continue;
    }
    if (stat(m->host_path, &st) < 0) {
      hcs_child_report(report, errno, "mapped directory `%s`", m->host_path);
      return -1;
    }
    if (mount_at(rootfd, m->container_path + 1, m->host_path, NULL, MS_BIND | MS_REC | (m->read_only ? MS_RDONLY : 0),
                 NULL, S_ISDIR(st.st_mode), report) < 0)
      return -1;
  }
  for (size_t i = 0; i < c->n_extra_mounts; i++)
    if (!c->extra_mounts[i].cgroup &&
        extra_mount(rootfd, &c->extra_mounts[i], s->mount_trees ? s->mount_trees[i] : -1, report) < 0)
      return -1;
  /* Attached: an idle init that never execs must not keep them. */
  for (size_t i = 0; s->map_trees && i < c->n_mounts + c->n_extra_mounts; i++) {
    int t = i < c->n_mounts ? s->map_trees[i] : s->mount_trees[i - c->n_mounts];
    if (t >= 0) close(t);
  }
  /* Join the cgroup ourselves while the host's /sys is still reachable, once
   * the monitor created it (the mounts above overlapped with that). */
  if (!userns) {
    char b;
    if (read(go, &b, 1) != 1) _exit(1);
    hcs_error_t cerr = NULL;
    if (s->cg && s->cg->enter_self(s->cs->cgroup, &cerr) < 0) {
      hcs_child_report(report, 0, "%s", hcs_error_message(cerr));
      return -1;
    }
  }
  /* cgroup mounts show the system's own cgroup: made once it exists and
   * init is in it. */
  for (size_t i = 0; i < c->n_extra_mounts; i++)
    if (c->extra_mounts[i].cgroup && mount_cgroup(rootfd, &c->extra_mounts[i], s->cs->cgroup, report) < 0) return -1;
  /* pivot_root(".", ".") stacks the old root on the new one; detach it. */
  if (fchdir(rootfd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0) {
    hcs_child_report(report, errno, "pivot_root into `%s`", c->rootfs);
    return -1;
  }
  if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0) {
    hcs_child_report(report, errno, "detach the old root");
    return -1;
  }
  return 0;
}

/* The masked and read-only paths (the defaults unless the configuration
 * lists its own). */
static int mask_paths(hcs_config_t *c, int report) {
  const char *const *masked = c->masked ? (const char *const *)c->masked : default_masked;
  const char *const *ro = c->readonly ? (const char *const *)c->readonly : default_readonly;
  for (size_t i = 0; masked[i]; i++) {
    struct stat st;
    if (stat(masked[i], &st) < 0) continue;
    int r = S_ISDIR(st.st_mode) ? mount("tmpfs", masked[i], "tmpfs", MS_RDONLY, "size=0")
                                : mount("/dev/null", masked[i], NULL, MS_BIND, NULL);
    if (r < 0) {
      hcs_child_report(report, errno, "mask `%s`", masked[i]);
      return -1;
    }
  }
  for (size_t i = 0; ro[i]; i++) {
    struct statvfs sv;
    if (access(ro[i], F_OK) < 0) continue;
    if (mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL) < 0 || statvfs(ro[i], &sv) < 0) {
      hcs_child_report(report, errno, "bind `%s` read-only", ro[i]);
      return -1;
    }
    /* Keep the locked flags (nosuid, nodev, noexec) or the remount fails. */
    unsigned long keep = (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) | (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
                         (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0);
    if (mount(NULL, ro[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL) < 0) {
      hcs_child_report(report, errno, "remount `%s` read-only", ro[i]);
      return -1;
    }
  }
  return 0;
}

int hcs_rootfs_seal(hcs_config_t *c, int report) {
  if (mask_paths(c, report) < 0) return -1;
  if (!c->readonly_rootfs) return 0;
  struct statvfs sv;
  unsigned long locked = 0;
  if (statvfs("/", &sv) == 0)
    locked = (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) | (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
             (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0);
  if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked, NULL) < 0) {
    hcs_child_report(report, errno, "remount the rootfs read-only");
    return -1;
  }
  return 0;
}
