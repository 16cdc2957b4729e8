/* hcs_fs_copy_in: host -> container-root copies that cannot escape the
 * root (see hcs/fs.h).  Every lookup inside the root goes through openat2
 * with RESOLVE_IN_ROOT; what sits at the destination (the image's choice:
 * a device node, a FIFO, a symlink) is never opened, only replaced by a new
 * entry renamed over it. */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "hcs/fs.h"

static int open_in_root(int rootfd, const char *path, int flags, hcs_error_t *err) {
  struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  int fd = (int)syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof how);
  if (fd < 0) return hcs_error_make(err, errno, "open `/%s` in the container", path);
  return fd;
}

/* Create every directory of `path` (relative to the root), resolving each
 * prefix inside the root.  Returns an fd on the last directory. */
static int mkdirs_in_root(int rootfd, const char *path, hcs_error_t *err) {
  cleanup_free char *p = hcs_xstrdup(path);
  size_t n = strlen(p);
  for (size_t i = 0; i <= n; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    if (i == 0) continue;
    char saved = p[i];
    p[i] = '\0';
    char *slash = strrchr(p, '/');
    const char *name = slash ? slash + 1 : p;
    if (*name) {
      cleanup_close int parent = slash ? (*slash = '\0', open_in_root(rootfd, p, O_PATH | O_DIRECTORY, err))
                                       : open_in_root(rootfd, "", O_PATH | O_DIRECTORY, err);
      if (slash) *slash = '/';
      if (parent < 0) return -1;
      if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST)
        return hcs_error_make(err, errno, "mkdir `/%s` in the container", p);
    }
    p[i] = saved;
  }
  return open_in_root(rootfd, path, O_PATH | O_DIRECTORY, err);
}

static int copy_tree(int srcfd, const char *srcname, const struct stat *st, int dstdir, const char *name,
                     const char *where, hcs_error_t *err);

/* A new name for a temporary entry in a container directory. */
static void temp_name(char *buf, size_t size) {
  static unsigned counter;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  snprintf(buf, size, ".hcs-copy-%d-%u-%lx", (int)getpid(), __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED),
           (unsigned long)ts.tv_nsec);
}

/* A new regular file in `dstdir`, to be filled and then given its name.
 * O_TMPFILE has no name at all until linked (a killed copy leaves
 * nothing); where the file system lacks it, an O_EXCL temporary name. */
static int open_temp(int dstdir, char *tmp, size_t size, bool *anonymous) {
  int fd = openat(dstdir, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (fd >= 0) {
    *anonymous = true;
    return fd;
  }
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return -1;
  *anonymous = false;
  for (int tries = 0; tries < 16; tries++) {
    temp_name(tmp, size);
    fd = openat(dstdir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return -1;
}

/* Give the filled temporary file `name`.  renameat replaces whatever is
 * there (a file, a symlink, a device node, a FIFO) without ever opening
 * it: the image chooses what sits at the destination, so it is never
 * written through. */
static int publish_temp(int fd, int dstdir, char *tmp, size_t size, bool anonymous, const char *name) {
  if (anonymous) {
    bool linked = false;
    for (int tries = 0; tries < 16 && !linked; tries++) {
      temp_name(tmp, size);
      if (linkat(fd, "", dstdir, tmp, AT_EMPTY_PATH) == 0) {
        linked = true;
      } else if (errno == ENOENT || errno == EPERM) { /* no CAP_DAC_READ_SEARCH */
        char self[64];
        snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, self, dstdir, tmp, AT_SYMLINK_FOLLOW) == 0)
          linked = true;
        else if (errno != EEXIST)
          return -1;
      } else if (errno != EEXIST) {
        return -1;
      }
    }
    if (!linked) return -1;
  }
  if (renameat(dstdir, tmp, dstdir, name) < 0) {
    int saved = errno;
    unlinkat(dstdir, tmp, 0);
    errno = saved;
    return -1;
  }
  return 0;
}

static int copy_file(int srcfd, const char *srcname, const struct stat *st, int dstdir, const char *name,
                     const char *where, hcs_error_t *err) {
  cleanup_close int in = openat(srcfd, srcname, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (in < 0) return hcs_error_make(err, errno, "open `%s`", srcname);
  struct stat ist;
  if (fstat(in, &ist) < 0) return hcs_error_make(err, errno, "stat `%s`", srcname);
  if (!S_ISREG(ist.st_mode)) return hcs_error_make(err, 0, "copy `%s`: not a regular file any more", srcname);
  char tmp[96] = "";
  bool anonymous = false;
  cleanup_close int out = open_temp(dstdir, tmp, sizeof tmp, &anonymous);
  if (out < 0) return hcs_error_make(err, errno, "create a temporary file beside `%s`", where);
  int ret = 0;
  off_t left = ist.st_size;
  while (ret == 0 && left > 0) {
    ssize_t r = sendfile(out, in, NULL, left > (1 << 30) ? (1 << 30) : (size_t)left);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) ret = hcs_error_make(err, errno, "write `%s`", where);
    if (r <= 0) break;
    left -= r;
  }
  if (ret == 0 && fchown(out, 0, 0) < 0 && errno != EPERM) ret = hcs_error_make(err, errno, "chown `%s`", where);
  if (ret == 0 && fchmod(out, st->st_mode & 07777) < 0) ret = hcs_error_make(err, errno, "chmod `%s`", where);
  if (ret == 0 && publish_temp(out, dstdir, tmp, sizeof tmp, anonymous, name) < 0)
    ret = hcs_error_make(err, errno, "replace `%s`", where);
  else if (ret < 0 && !anonymous)
    unlinkat(dstdir, tmp, 0);
  return ret;
}

static int copy_dir(int srcfd, const char *srcname, const struct stat *st, int dstdir, const char *name,
                    const char *where, hcs_error_t *err) {
  if (mkdirat(dstdir, name, 0700) < 0 && errno != EEXIST) return hcs_error_make(err, errno, "mkdir `%s`", where);
  cleanup_close int out = openat(dstdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (out < 0) return hcs_error_make(err, errno, "open `%s`", where);
  int in = openat(srcfd, srcname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0) return hcs_error_make(err, errno, "open `%s`", srcname);
  cleanup_dir DIR *d = fdopendir(in);
  if (d == NULL) {
    close(in);
    return hcs_error_make(err, errno, "read `%s`", srcname);
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    struct stat cst;
    if (fstatat(dirfd(d), de->d_name, &cst, AT_SYMLINK_NOFOLLOW) < 0)
      return hcs_error_make(err, errno, "stat `%s/%s`", srcname, de->d_name);
    cleanup_free char *sub = hcs_xasprintf("%s/%s", where, de->d_name);
    if (copy_tree(dirfd(d), de->d_name, &cst, out, de->d_name, sub, err) < 0) return -1;
  }
  if (fchmod(out, st->st_mode & 07777) < 0) return hcs_error_make(err, errno, "chmod `%s`", where);
  return 0;
}

static int copy_tree(int srcfd, const char *srcname, const struct stat *st, int dstdir, const char *name,
                     const char *where, hcs_error_t *err) {
  if (S_ISREG(st->st_mode)) return copy_file(srcfd, srcname, st, dstdir, name, where, err);
  if (S_ISDIR(st->st_mode)) return copy_dir(srcfd, srcname, st, dstdir, name, where, err);
  if (S_ISLNK(st->st_mode)) {
    char target[PATH_MAX];
    ssize_t n = readlinkat(srcfd, srcname, target, sizeof target - 1);
    if (n < 0) return hcs_error_make(err, errno, "readlink `%s`", srcname);
    target[n] = '\0';
    char tmp[96];
    temp_name(tmp, sizeof tmp);
    if (symlinkat(target, dstdir, tmp) < 0) return hcs_error_make(err, errno, "symlink `%s`", where);
    if (publish_temp(-1, dstdir, tmp, sizeof tmp, false, name) < 0)
      return hcs_error_make(err, errno, "replace `%s`", where);
    return 0;
  }
  return hcs_error_make(err, 0, "copy `%s`: only files, directories and symlinks can be copied", srcname);
}

int hcs_fs_copy_in(const char *root, const char *src, const char *dst, hcs_error_t *err) {
  if (src == NULL || dst == NULL || *dst == '\0') return hcs_error_make(err, 0, "copy: source and destination needed");
  struct stat st;
  if (lstat(src, &st) < 0) return hcs_error_make(err, errno, "copy `%s`", src);
  cleanup_close int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return hcs_error_make(err, errno, "open container root `%s`", root);
  /* Normalise dst: relative to the root, no leading or duplicate slashes. */
  cleanup_free char *rel = hcs_xstrdup(dst);
  char *w = rel;
  for (const char *r = dst; *r; r++)
    if (!(*r == '/' && (w == rel || w[-1] == '/'))) *w++ = *r;
  *w = '\0';
  for (char *c = rel; (c = strstr(c, "..")) != NULL; c += 2)
    if ((c == rel || c[-1] == '/') && (c[2] == '/' || c[2] == '\0'))
      return hcs_error_make(err, 0, "copy to `%s`: `..` is not allowed in a container path", dst);
  bool into = w > rel && w[-1] == '/';
  if (into) *--w = '\0';
  if (!into && *rel) { /* an existing directory: copy into it */
    cleanup_close int probe = open_in_root(rootfd, rel, O_PATH | O_DIRECTORY, NULL);
    into = probe >= 0;
  }
  cleanup_free char *srccopy = hcs_xstrdup(src);
  char *base = strrchr(srccopy, '/');
  const char *srcbase = base && base[1] ? base + 1 : srccopy;
  cleanup_free char *parent = NULL, *name = NULL;
  if (into || *rel == '\0') {
    parent = hcs_xstrdup(rel);
    name = hcs_xstrdup(srcbase);
  } else {
    char *slash = strrchr(rel, '/');
    parent = slash ? strndup(rel, (size_t)(slash - rel)) : hcs_xstrdup("");
    name = hcs_xstrdup(slash ? slash + 1 : rel);
  }
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return hcs_error_make(err, 0, "copy to `%s`: not a valid destination name", dst);
  cleanup_close int dstdir =
      *parent ? mkdirs_in_root(rootfd, parent, err) : open_in_root(rootfd, "", O_PATH | O_DIRECTORY, err);
  if (dstdir < 0) return hcs_error_wrap(err, "copy `%s` to `%s`", src, dst);
  /* mkdirat/openat need a real directory fd, not O_PATH */
  cleanup_close int dfd = openat(dstdir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return hcs_error_make(err, errno, "open `/%s` in the container", parent);
  cleanup_free char *where = hcs_xasprintf("/%s%s%s", parent, *parent ? "/" : "", name);
  /* The source is opened relative to its own directory. */
  cleanup_free char *srcdir =
      base ? (base == srccopy ? hcs_xstrdup("/") : strndup(srccopy, (size_t)(base - srccopy))) : hcs_xstrdup(".");
  cleanup_close int sfd = open(srcdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sfd < 0) return hcs_error_make(err, errno, "open `%s`", srcdir);
  if (copy_tree(sfd, srcbase, &st, dfd, name, where, err) < 0)
    return hcs_error_wrap(err, "copy `%s` to `%s`", src, dst);
  return 0;
}

int hcs_fs_write_atomic(const char *path, const void *data, size_t len, unsigned mode, hcs_error_t *err) {
  return hcs_write_file_atomic(path, data, len, (mode_t)mode, err);
}

int hcs_fs_write_replace(const char *path, const void *data, size_t len, unsigned mode, hcs_error_t *err) {
  return hcs_write_file_replace(path, data, len, (mode_t)mode, err);
}

char *hcs_fs_run_root(const char *root) { return hcs_run_root_resolve(root); }

int hcs_fs_mkdir_p(const char *path, unsigned mode, hcs_error_t *err) { return hcs_mkdir_p(path, (mode_t)mode, err); }
