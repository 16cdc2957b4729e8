/* File-system helpers: whole-file reads, crash-safe writes, recursive mkdir
 * and removal, advisory locks, id validation and root resolution. */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "core/crash.h"
#include "core/util.h"

void *hcs_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) abort();
  return p;
}

void *hcs_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL) abort();
  return p;
}

void *hcs_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (q == NULL) abort();
  return q;
}

char *hcs_xstrdup(const char *s) {
  char *p = strdup(s ? s : "");
  if (p == NULL) abort();
  return p;
}

char *hcs_xasprintf(const char *fmt, ...) {
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  int r = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (r < 0) abort();
  return s;
}

int hcs_read_file_at(int dirfd, const char *path, char **out, size_t *len, hcs_error_t *err) {
  cleanup_close int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return hcs_error_make(err, errno, "open `%s`", path);
  size_t cap = 4096, n = 0;
  cleanup_free char *buf = hcs_xmalloc(cap);
  for (;;) {
    if (n + 1 >= cap) buf = hcs_xrealloc(buf, cap *= 2);
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return hcs_error_make(err, errno, "read `%s`", path);
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  buf[n] = '\0';
  if (len) *len = n;
  *out = steal_ptr(buf);
  return 0;
}

int hcs_read_file(const char *path, char **out, size_t *len, hcs_error_t *err) {
  return hcs_read_file_at(AT_FDCWD, path, out, len, err);
}

static int write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

int hcs_fsync_dir(const char *path, hcs_error_t *err) {
  cleanup_close int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return hcs_error_make(err, errno, "open directory `%s`", path);
  if (fsync(fd) < 0) return hcs_error_make(err, errno, "fsync directory `%s`", path);
  hcs_crash_point("fsync directory");
  return 0;
}

/* temp + rename, and with `durable` the fsyncs that make it survive a
 * power loss too. */
static int replace_file(const char *path, const void *data, size_t len, mode_t mode, bool durable, hcs_error_t *err) {
  cleanup_free char *tmp = hcs_xasprintf("%s.tmp.%d", path, (int)getpid());
  cleanup_close int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return hcs_error_make(err, errno, "create `%s`", tmp);
  if (write_all(fd, data, len) < 0 || (durable && fsync(fd) < 0)) {
    int saved = errno;
    unlink(tmp);
    return hcs_error_make(err, saved, "write `%s`", tmp);
  }
  hcs_crash_point(durable ? "atomic write: before rename" : "replace file: before rename");
  if (rename(tmp, path) < 0) {
    int saved = errno;
    unlink(tmp);
    return hcs_error_make(err, saved, "rename `%s` to `%s`", tmp, path);
  }
  if (!durable) return 0;
  cleanup_free char *dir = hcs_dir_of(path);
  return hcs_fsync_dir(dir, err);
}

char *hcs_dir_of(const char *path) {
  char *dir = hcs_xstrdup(path);
  char *slash = strrchr(dir, '/');
  if (slash == dir)
    dir[1] = '\0';
  else if (slash)
    *slash = '\0';
  else
    strcpy(dir, ".");
  return dir;
}

int hcs_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, hcs_error_t *err) {
  return replace_file(path, data, len, mode, true, err);
}

int hcs_write_file_replace(const char *path, const void *data, size_t len, mode_t mode, hcs_error_t *err) {
  return replace_file(path, data, len, mode, false, err);
}

int hcs_write_file(const char *path, const char *data, size_t len, hcs_error_t *err) {
  cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return hcs_error_make(err, errno, "open `%s`", path);
  if (write_all(fd, data, len) < 0) return hcs_error_make(err, errno, "write `%s`", path);
  return 0;
}

int hcs_mkdir_p(const char *path, mode_t mode, hcs_error_t *err) {
  cleanup_free char *p = hcs_xstrdup(path);
  size_t n = strlen(p);
  while (n > 1 && p[n - 1] == '/')
    p[--n] = '\0';
  struct stat st;
  /* Most calls find it made (every store open checks its directories):
   * one stat instead of a mkdir per component. */
  if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    if (mkdir(p, mode) < 0 && errno != EEXIST) return hcs_error_make(err, errno, "mkdir `%s`", p);
    *s = '/';
  }
  if (mkdir(p, mode) < 0 && errno != EEXIST) return hcs_error_make(err, errno, "mkdir `%s`", p);
  if (stat(p, &st) < 0) return hcs_error_make(err, errno, "stat `%s`", p);
  if (!S_ISDIR(st.st_mode)) return hcs_error_make(err, ENOTDIR, "mkdir `%s`", p);
  return 0;
}

bool hcs_path_exists(const char *path) { return access(path, F_OK) == 0; }

/* Empty the directory open at dfd (whose device is dev); never crosses into
 * another mount and never follows symlinks. */
static int rm_contents(int dfd, dev_t dev, const char *where, hcs_error_t *err) {
  int dup_fd = dup(dfd);
  if (dup_fd < 0) return hcs_error_make(err, errno, "dup `%s`", where);
  cleanup_dir DIR *d = fdopendir(dup_fd);
  if (d == NULL) {
    close(dup_fd);
    return hcs_error_make(err, errno, "opendir `%s`", where);
  }
  struct dirent *de;
  while ((errno = 0, de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (unlinkat(dfd, de->d_name, 0) == 0) continue;
    if (errno != EISDIR && errno != EPERM) return hcs_error_make(err, errno, "unlink `%s/%s`", where, de->d_name);
    cleanup_close int cfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cfd < 0) return hcs_error_make(err, errno, "open `%s/%s`", where, de->d_name);
    struct stat st;
    if (fstat(cfd, &st) < 0) return hcs_error_make(err, errno, "stat `%s/%s`", where, de->d_name);
    if (st.st_dev != dev) return hcs_error_make(err, EBUSY, "remove `%s/%s` (a mount point)", where, de->d_name);
    cleanup_free char *sub = hcs_xasprintf("%s/%s", where, de->d_name);
    if (rm_contents(cfd, dev, sub, err) < 0) return -1;
    if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0) return hcs_error_make(err, errno, "rmdir `%s`", sub);
  }
  if (errno) return hcs_error_make(err, errno, "readdir `%s`", where);
  return 0;
}

int hcs_rm_rf_at(int dirfd, const char *name, hcs_error_t *err) {
  if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return 0;
  if (errno != EISDIR && errno != EPERM) return hcs_error_make(err, errno, "unlink `%s`", name);
  cleanup_close int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : hcs_error_make(err, errno, "open `%s`", name);
  struct stat st;
  if (fstat(fd, &st) < 0) return hcs_error_make(err, errno, "stat `%s`", name);
  if (rm_contents(fd, st.st_dev, name, err) < 0) return -1;
  if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) return hcs_error_make(err, errno, "rmdir `%s`", name);
  return 0;
}

int hcs_rm_rf(const char *path, hcs_error_t *err) { return hcs_rm_rf_at(AT_FDCWD, path, err); }

int hcs_lock_file(const char *path, bool shared, hcs_error_t *err) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return hcs_error_make(err, errno, "open lock `%s`", path);
  while (flock(fd, shared ? LOCK_SH : LOCK_EX) < 0) {
    if (errno == EINTR) continue;
    int saved = errno;
    close(fd);
    return hcs_error_make(err, saved, "lock `%s`", path);
  }
  return fd;
}

int hcs_validate_id(const char *what, const char *id, hcs_error_t *err) {
  if (id == NULL || *id == '\0') return hcs_error_make(err, 0, "invalid %s: empty", what);
  size_t n = strlen(id);
  if (n > 128) return hcs_error_make(err, 0, "invalid %s `%.32s...`: longer than 128 characters", what, id);
  if (id[0] == '.' || id[0] == '-')
    return hcs_error_make(err, 0, "invalid %s `%s`: must not start with `%c`", what, id, id[0]);
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
          c == '.'))
      return hcs_error_make(err, 0, "invalid %s `%s`: character %zu is not one of [A-Za-z0-9_.-]", what, id, i + 1);
  }
  return 0;
}

char *hcs_root_resolve(const char *root) {
  if (root && *root) return hcs_xstrdup(root);
  const char *env = getenv("HCS_ROOT");
  return hcs_xstrdup(env && *env ? env : "/var/lib/hcs");
}

char *hcs_run_root_resolve(const char *root) {
  const char *env = getenv("HCS_RUN_ROOT");
  if (env && *env) return hcs_xstrdup(env);
  if ((root && *root) || getenv("HCS_ROOT")) {
    cleanup_free char *r = hcs_root_resolve(root);
    return hcs_xasprintf("%s/run", r);
  }
  return hcs_xstrdup("/run/hcs");
}
