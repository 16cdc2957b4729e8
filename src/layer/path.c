/* Path handling for archive entries: normalization (refusing `..` and
 * absolute names), resolution of directories strictly beneath the layer
 * root with openat2(2), and sets of paths. */
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

static uint64_t path_hash(const char *p) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ull;
  return h ? h : 1;
}

void layer_pathset_add(struct layer_pathset *s, const char *path) {
  if (s->n * 2 >= s->cap) {
    uint64_t *old = s->slots;
    size_t oc = s->cap;
    s->cap = oc ? oc * 2 : 1024;
    s->slots = hcs_xcalloc(s->cap, sizeof *s->slots);
    for (size_t i = 0; i < oc; i++)
      if (old[i]) {
        size_t k = old[i] & (s->cap - 1);
        while (s->slots[k])
          k = (k + 1) & (s->cap - 1);
        s->slots[k] = old[i];
      }
    free(old);
  }
  uint64_t h = path_hash(path);
  size_t k = h & (s->cap - 1);
  for (; s->slots[k]; k = (k + 1) & (s->cap - 1))
    if (s->slots[k] == h) return;
  s->slots[k] = h;
  s->n++;
}

bool layer_pathset_maybe(const struct layer_pathset *s, const char *path) {
  if (s->n == 0) return false;
  uint64_t h = path_hash(path);
  for (size_t k = h & (s->cap - 1); s->slots[k]; k = (k + 1) & (s->cap - 1))
    if (s->slots[k] == h) return true;
  return false;
}

void layer_pathset_clear(struct layer_pathset *s) {
  if (s->n) memset(s->slots, 0, s->cap * sizeof *s->slots);
  s->n = 0;
}

void layer_pathset_free(struct layer_pathset *s) {
  free(s->slots);
  memset(s, 0, sizeof *s);
}
