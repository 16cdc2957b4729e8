/* Named network namespaces: a netns made by unshare(CLONE_NEWNET) on the
 * calling thread (no fork, no shell), pinned by a bind mount at
 * `<run root>/netns/<id>`, after which the thread returns to its own netns.
 * The directory is made a shared mount point as iproute2 does for
 * /run/netns, so an unmount propagates into mount namespaces cloned later;
 * it stays mounted while a store has it open (hcs_net_close takes it down
 * once no compartment is left), not one mount and unmount per compartment. */
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "net/internal.h"

static int make_shared_dir(const char *dir, hcs_error_t *err) {
  if (hcs_mkdir_p(dir, 0755, err) < 0) return -1;
  bool bound = false;
  while (mount("", dir, "none", MS_SHARED | MS_REC, NULL) < 0) {
    if (errno != EINVAL || bound) return hcs_error_make(err, errno, "make `%s` a shared mount", dir);
    if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) < 0)
      return hcs_error_make(err, errno, "bind-mount `%s` onto itself", dir);
    bound = true;
  }
  return 0;
}

int hcs_net_mkdir(const char *path, hcs_error_t *err) {
  if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
  return hcs_mkdir_p(path, 0755, err);
}

/* Is `dir` the root of a mount (then it is the shared bind mount made by
 * make_shared_dir, in this process or another)? */
static bool is_mount_root(const char *dir) {
  struct statx stx;
  return statx(AT_FDCWD, dir, 0, STATX_TYPE, &stx) == 0 && (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
         (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

int hcs_netns_create(const char *dir, const char *path, hcs_error_t *err) {
  if (!is_mount_root(dir) && make_shared_dir(dir, err) < 0) return -1;
  cleanup_close int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) return hcs_error_make(err, errno, "create `%s`", path);
  cleanup_close int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig < 0) {
    hcs_error_make(err, errno, "open `/proc/thread-self/ns/net`");
    goto fail;
  }
  if (unshare(CLONE_NEWNET) < 0) {
    hcs_error_make(err, errno, "create network namespace `%s`", path);
    goto fail;
  }
  int rc = mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL);
  int saved = errno;
  if (setns(orig, CLONE_NEWNET) < 0) abort(); /* cannot leave the thread in the wrong netns */
  if (rc < 0) {
    hcs_error_make(err, saved, "bind-mount network namespace on `%s`", path);
    goto fail;
  }
  return 0;
fail:
  unlink(path);
  return -1;
}

bool hcs_netns_dir_release(const char *dir) {
  /* Every store close asks whether the directory is empty: getdents64 with
   * a small buffer reads a few entries, where readdir(3)'s 32 kB one made
   * the kernel list all of them (a thousand compartments: 24 kB of names). */
  cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  _Alignas(struct dirent64) char buf[1024];
  ssize_t n;
  while ((n = getdents64(fd, buf, sizeof buf)) > 0)
    for (ssize_t off = 0; off < n;) {
      struct dirent64 *de = (struct dirent64 *)(buf + off);
      if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) return false;
      off += de->d_reclen;
    }
  if (n < 0) return false;
  return umount2(dir, MNT_DETACH) == 0;
}

int hcs_netns_remove(const char *path, hcs_error_t *err) {
  if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
    return hcs_error_make(err, errno, "unmount network namespace `%s`", path);
  if (unlink(path) < 0 && errno != ENOENT) return hcs_error_make(err, errno, "remove `%s`", path);
  return 0;
}

int hcs_netns_open(const char *path, hcs_error_t *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return hcs_error_make(err, errno, "open network namespace `%s`", path);
  return fd;
}

int hcs_net_sysctl(const char *key, const char *value, hcs_error_t *err) {
  cleanup_free char *path = hcs_xasprintf("/proc/sys/net/%s", key);
  cleanup_free char *cur = NULL;
  /* Skip the write when already set: writes to ip_forward reset every
   * interface's forwarding flag. */
  if (hcs_read_file(path, &cur, NULL, NULL) == 0 && strncmp(cur, value, strlen(value)) == 0 &&
      (cur[strlen(value)] == '\n' || cur[strlen(value)] == '\0'))
    return 0;
  return hcs_write_file(path, value, strlen(value), err);
}

char *hcs_net_ns_resolve(hcs_net_t *net, const char *ns, hcs_error_t *err) {
  if (ns == NULL || *ns == '\0') {
    hcs_error_make(err, 0, "namespace: empty id or path");
    return NULL;
  }
  if (ns[0] == '/') return hcs_xstrdup(ns);
  if (hcs_validate_id("namespace", ns, err) < 0) return NULL;
  return hcs_xasprintf("%s/%s", net->netns, ns);
}
