/* Path handling for archive entries: normalization (refusing `..` and
 * absolute names) and resolution of directories strictly beneath the layer
 * root with openat2(2). */
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "layer/path.h"

int layer_openat2(int dirfd, const char *path, int flags, uint64_t resolve) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)flags | O_CLOEXEC;
  how.resolve = resolve;
  int fd;
  do
    fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  return fd;
}

int layer_clean_path(const char *in, char **out) {
  if (in[0] == '/') return -1;
  size_t n = strlen(in);
  char *o = hcs_xmalloc(n + 1);
  size_t k = 0;
  const char *p = in;
  while (*p) {
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == 0 || (len == 1 && p[0] == '.')) {
      /* empty or `.` component */
    } else if (len == 2 && p[0] == '.' && p[1] == '.') {
      free(o);
      return -1;
    } else {
      if (k) o[k++] = '/';
      memcpy(o + k, p, len);
      k += len;
    }
    p += len;
    if (*p == '/') p++;
  }
  o[k] = '\0';
  *out = o;
  return 0;
}

void layer_split_path(char *path, const char **parent, const char **base) {
  char *slash = strrchr(path, '/');
  if (slash == NULL) {
    *parent = "";
    *base = path;
  } else {
    *slash = '\0';
    *parent = path;
    *base = slash + 1;
  }
}

int layer_resolve_dir(int rootfd, const char *rel, bool create, int flags) {
  if (rel[0] == '\0') return layer_openat2(rootfd, ".", flags | O_DIRECTORY, LAYER_RESOLVE);
  int fd = layer_openat2(rootfd, rel, flags | O_DIRECTORY, LAYER_RESOLVE);
  if (fd >= 0 || errno != ENOENT || !create) return fd;
  /* create the missing directories one component at a time */
  cleanup_free char *buf = hcs_xstrdup(rel);
  for (char *s = buf;; s++) {
    if (*s != '/' && *s != '\0') continue;
    char c = *s;
    *s = '\0';
    int d = layer_openat2(rootfd, buf, O_PATH | O_DIRECTORY, LAYER_RESOLVE);
    if (d < 0) {
      if (errno != ENOENT) return -1;
      char *slash = strrchr(buf, '/');
      const char *name = slash ? slash + 1 : buf;
      int pfd = slash ? (*slash = '\0', layer_openat2(rootfd, buf, O_PATH | O_DIRECTORY, LAYER_RESOLVE))
                      : layer_openat2(rootfd, ".", O_PATH | O_DIRECTORY, LAYER_RESOLVE);
      if (slash) *slash = '/';
      if (pfd < 0) return -1;
      int r = mkdirat(pfd, name, 0755);
      int e = errno;
      close(pfd);
      if (r < 0 && e != EEXIST) {
        errno = e;
        return -1;
      }
    } else {
      close(d);
    }
    if (c == '\0') break;
    *s = c;
  }
  return layer_openat2(rootfd, rel, flags | O_DIRECTORY, LAYER_RESOLVE);
}
