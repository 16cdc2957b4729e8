/* Plan9 shares added to a running VM.  QEMU (7.2) makes a 9p export only
 * from its command line, so every VM has one more export, `hcs-shares`,
 * over <system dir>/shares, and a hot-added share is a bind mount of its
 * host directory onto <system dir>/shares/NAME (a subdirectory: QEMU's
 * local backend holds the export root open, so only mounts below it are
 * seen).  QEMU runs in a mount namespace of its own (monitor.c) where
 * <system dir>/shares is a small tmpfs: the binds exist only there, so the
 * host namespace never has a user's directory under a state directory (a
 * delete's rm -rf cannot reach user data), the guest cannot fill the host's
 * disk through the export root, and everything goes with QEMU. */
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "vm/vm.h"

static int open_beneath(int dirfd, const char *name, hcs_error_t *err) {
  struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                         .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
  int fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof how);
  if (fd < 0) return hcs_error_make(err, errno, "open share mount point `%s`", name);
  return fd;
}

int hcs_vm_share_tree(const char *host_path, bool read_only, hcs_error_t *err) {
  if (host_path == NULL || host_path[0] != '/')
    return hcs_error_make(err, EINVAL, "share path `%s`: expected an absolute path", host_path ? host_path : "");
  cleanup_close int dfd = open(host_path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return hcs_error_make(err, errno, "open share path `%s` (a directory, not a symbolic link)", host_path);
  /* A copy of that one mount (not its submounts), detached until moved. */
  int t = (int)syscall(SYS_open_tree, dfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
  if (t < 0) return hcs_error_make(err, errno, "clone the mount of `%s`", host_path);
  if (read_only) {
    struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
    if (syscall(SYS_mount_setattr, t, "", AT_EMPTY_PATH, &a, sizeof a) < 0) {
      int e = errno;
      close(t);
      return hcs_error_make(err, e, "make the mount of `%s` read-only", host_path);
    }
  }
  return t;
}

int hcs_vm_share_attach(const char *dir, const char *name, int tree, hcs_error_t *err) {
  cleanup_free char *sdir = hcs_xasprintf("%s/shares", dir);
  cleanup_close int sfd = open(sdir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (sfd < 0) return hcs_error_make(err, errno, "open `%s`", sdir);
  /* A bind left by a killed add goes first (its name was never recorded). */
  cleanup_free char *target = hcs_xasprintf("%s/%s", sdir, name);
  umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW);
  if (mkdirat(sfd, name, 0700) < 0 && errno != EEXIST) return hcs_error_make(err, errno, "create `%s`", target);
  cleanup_close int tfd = open_beneath(sfd, name, err);
  if (tfd < 0) return -1;
  if (syscall(SYS_move_mount, tree, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return hcs_error_make(err, errno, "mount the share on `%s`", target);
  return 0;
}

int hcs_vm_share_detach(const char *dir, const char *name, hcs_error_t *err) {
  cleanup_free char *target = hcs_xasprintf("%s/shares/%s", dir, name);
  if (umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
    return hcs_error_make(err, errno, "unmount `%s`", target);
  rmdir(target);
  return 0;
}

/* Run attach (tree >= 0) or detach in QEMU's mount namespace: a child
 * setns()es into it, found through a pidfd of the pid state.json records
 * (checked against its start time, and alive after the namespace was
 * opened: a recycled pid cannot hand us another process's namespace). */
static int in_qemu_ns(hcs_system_t *cs, const char *name, int tree, hcs_error_t *err) {
  pid_t pid = (pid_t)json_integer_value(json_object_get(cs->state, "Pid"));
  uint64_t start = (uint64_t)json_integer_value(json_object_get(cs->state, "PidStartTime"));
  if (pid <= 0) return hcs_error_make(err, ESRCH, "the VM has no QEMU process");
  cleanup_close int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0 || hcs_pid_start_time(pid) != start) return hcs_error_make(err, ESRCH, "QEMU (pid %d) is gone", pid);
  cleanup_free char *nsp = hcs_xasprintf("/proc/%d/ns/mnt", pid);
  cleanup_close int ns = open(nsp, O_RDONLY | O_CLOEXEC);
  if (ns < 0) return hcs_error_make(err, errno, "open `%s`", nsp);
  if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
    return hcs_error_make(err, ESRCH, "QEMU (pid %d) is gone", pid);
  struct stat a, b;
  if (fstat(ns, &a) < 0 || stat("/proc/self/ns/mnt", &b) < 0 || a.st_ino == b.st_ino)
    return hcs_error_make(err, ENOTSUP,
                          "QEMU (pid %d) runs in the host's mount namespace (started by an older hcs): restart the VM "
                          "to add or remove shares",
                          pid);
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0) return hcs_error_make(err, errno, "pipe");
  pid_t c = fork();
  if (c < 0) {
    close(pfd[0]), close(pfd[1]);
    return hcs_error_make(err, errno, "fork");
  }
  if (c == 0) {
    close(pfd[0]);
    hcs_error_t e = NULL;
    if (setns(ns, CLONE_NEWNS) < 0)
      hcs_error_make(&e, errno, "enter QEMU's mount namespace");
    else if (tree >= 0)
      hcs_vm_share_attach(cs->dir, name, tree, &e);
    else
      hcs_vm_share_detach(cs->dir, name, &e);
    if (e) dprintf(pfd[1], "%s", hcs_error_message(e));
    _exit(e ? 1 : 0);
  }
  close(pfd[1]);
  char msg[1024];
  ssize_t n = read(pfd[0], msg, sizeof msg - 1);
  close(pfd[0]);
  int st;
  while (waitpid(c, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  msg[n > 0 ? n : 0] = '\0';
  return hcs_error_make(err, 0, "%s", msg[0] ? msg : "the share's mount failed");
}

int hcs_vm_share_hot_add(hcs_system_t *cs, const char *name, const char *host_path, bool read_only, hcs_error_t *err) {
  int tree = hcs_vm_share_tree(host_path, read_only, err);
  if (tree < 0) return -1;
  int r = in_qemu_ns(cs, name, tree, err);
  close(tree);
  return r;
}

int hcs_vm_share_hot_remove(hcs_system_t *cs, const char *name, hcs_error_t *err) {
  return in_qemu_ns(cs, name, -1, err);
}

/* In QEMU's process before exec, in its new namespace: the export root
 * and the binds of the document's hot-added shares (a restore's). */
int hcs_vm_share_setup(const hcs_vm_config_t *c, const char *dir, hcs_error_t *err) {
  if (unshare(CLONE_NEWNS) < 0) return hcs_error_make(err, errno, "unshare QEMU's mount namespace");
  /* Slave: the host's later mounts (a disk hot-added from them) still
   * reach QEMU; nothing of QEMU's reaches the host. */
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
    return hcs_error_make(err, errno, "make QEMU's mounts slaves of the host's");
  cleanup_free char *sdir = hcs_xasprintf("%s/shares", dir);
  if (mkdir(sdir, 0700) < 0 && errno != EEXIST) return hcs_error_make(err, errno, "create `%s`", sdir);
  if (mount("hcs-shares", sdir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=256k,nr_inodes=1024,mode=0700") < 0)
    return hcs_error_make(err, errno, "mount a tmpfs on `%s`", sdir);
  for (size_t i = 0; i < c->n_shares; i++) {
    const hcs_vm_share_t *s = &c->shares[i];
    if (!s->hot) continue;
    int tree = hcs_vm_share_tree(s->host_path, s->read_only, err);
    if (tree < 0) return hcs_error_wrap(err, "Plan9 share `%s`", s->name);
    int r = hcs_vm_share_attach(dir, s->name, tree, err);
    close(tree);
    if (r < 0) return hcs_error_wrap(err, "Plan9 share `%s`", s->name);
  }
  return 0;
}
