/* The copying side of a capture: while the exporter walks a scratch layer
 * and hashes the canonical tar stream it would write, every entry is also
 * created, in the store's own format, in the new layer's directory.  The
 * files land exactly as an import of that stream would make them (same
 * modes, owners, xattrs, times, whiteouts, opaque markers, holes), so the
 * new layer re-exports to the same bytes, without an archive being written
 * or parsed.  Small files go to the import's worker threads (fpool.c) with
 * their content; the walking thread creates directories, links and nodes. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "layer/fpool.h"
#include "layer/internal.h"
#include "layer/mirror.h"
#include "layer/path.h"

struct mdir {
  char *rel;
  struct timespec mtime;
};

/* Directories the walk is in, outermost first: it visits a directory
 * before its contents, so an entry's parent is on this stack and needs no
 * lookup.  Bounded: deeper ones go through the cache below. */
#define STACK_MAX 64

struct layer_mirror {
  int rootfd;
  struct layer_fpool *pool;
  struct {
    char *rel;
    size_t len;
    int fd;
  } stack[STACK_MAX];
  size_t depth;
  char *cache_rel; /* the parent directory resolved last, and its O_PATH fd */
  int cache_fd;
  struct mdir *dirs;
  size_t ndirs, capdirs;
};

struct layer_mirror *layer_mirror_start(int rootfd, int threads) {
  struct layer_mirror *m = hcs_xcalloc(1, sizeof *m);
  m->rootfd = rootfd;
  m->cache_fd = -1;
  int n = threads > 0 ? threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
  m->pool = n > 1 ? layer_fpool_start(n) : NULL;
  return m;
}

void layer_mirror_free(struct layer_mirror *m) {
  if (m == NULL) return;
  layer_fpool_free(m->pool); /* joins the workers */
  if (m->cache_fd >= 0) close(m->cache_fd);
  free(m->cache_rel);
  while (m->depth > 0) {
    m->depth--;
    close(m->stack[m->depth].fd);
    free(m->stack[m->depth].rel);
  }
  for (size_t i = 0; i < m->ndirs; i++)
    free(m->dirs[i].rel);
  free(m->dirs);
  free(m);
}

static int merr(hcs_error_t *err, int e, const char *rel, const char *what) {
  return hcs_error_make(err, e, "capture `%s`: %s", rel, what);
}

/* O_PATH fd of rel's parent in the new tree (owned by the cache) and rel's
 * base name.  The tree is ours and holds no symlink a lookup could follow
 * (they are never traversed: RESOLVE_BENEATH refuses), but resolve the same
 * way as everywhere else. */
static int parent_of(struct layer_mirror *m, const char *rel, const char **base, hcs_error_t *err) {
  const char *slash = strrchr(rel, '/');
  *base = slash ? slash + 1 : rel;
  size_t plen = slash ? (size_t)(slash - rel) : 0;
  if (plen == 0) return m->rootfd;
  /* leave the directories the walk is done with; is the parent the top? */
  while (m->depth > 0) {
    size_t tl = m->stack[m->depth - 1].len;
    if (tl <= plen && strncmp(m->stack[m->depth - 1].rel, rel, tl) == 0 && (tl == plen || rel[tl] == '/')) break;
    m->depth--;
    close(m->stack[m->depth].fd);
    free(m->stack[m->depth].rel);
  }
  if (m->depth > 0 && m->stack[m->depth - 1].len == plen) return m->stack[m->depth - 1].fd;
  if (m->cache_rel && strlen(m->cache_rel) == plen && strncmp(m->cache_rel, rel, plen) == 0) return m->cache_fd;
  if (m->cache_fd >= 0) close(m->cache_fd);
  free(m->cache_rel);
  m->cache_rel = strndup(rel, plen);
  if (m->cache_rel == NULL) abort();
  m->cache_fd = layer_resolve_dir(m->rootfd, m->cache_rel, false, O_PATH);
  if (m->cache_fd < 0) {
    int e = errno;
    free(m->cache_rel);
    m->cache_rel = NULL;
    return merr(err, e, rel, "resolve its directory");
  }
  return m->cache_fd;
}

static int set_xattrs(struct archive_entry *ae, int fd, const char *rel, hcs_error_t *err) {
  const char *name;
  const void *value;
  size_t size;
  if (archive_entry_xattr_reset(ae) == 0) return 0;
  while (archive_entry_xattr_next(ae, &name, &value, &size) == ARCHIVE_OK) {
    if (layer_is_overlay_xattr(name)) continue; /* never exported either */
    if (fsetxattr(fd, name, value, size, 0) < 0)
      return hcs_error_make(err, errno, "capture `%s`: set xattr `%s`", rel, name);
  }
  return 0;
}

/* An import sets atime = mtime when the entry has no atime (exports have none). */
static void times_of(const struct stat *st, struct timespec ts[2]) {
  ts[0] = st->st_mtim;
  ts[1] = st->st_mtim;
}

int layer_mirror_dir(struct layer_mirror *m, const char *rel, const struct stat *st, struct archive_entry *ae,
                     bool opaque, hcs_error_t *err) {
  const char *base;
  int pfd = parent_of(m, rel, &base, err);
  if (pfd < 0) return -1;
  if (mkdirat(pfd, base, 0700) < 0) return merr(err, errno, rel, "mkdir");
  cleanup_close int fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return merr(err, errno, rel, "open directory");
  if (fchown(fd, st->st_uid, st->st_gid) < 0) return merr(err, errno, rel, "chown");
  if (fchmod(fd, st->st_mode & 07777) < 0) return merr(err, errno, rel, "chmod"); /* after chown: set-id bits */
  if (set_xattrs(ae, fd, rel, err) < 0) return -1;
  if (opaque && layer_opaque_mark(fd) < 0) return merr(err, errno, rel, "set opaque xattr");
  if (m->depth < STACK_MAX) { /* its contents come next */
    m->stack[m->depth].rel = hcs_xstrdup(rel);
    m->stack[m->depth].len = strlen(rel);
    m->stack[m->depth].fd = steal_fd(fd);
    m->depth++;
  }
  /* times at the end: creating children changes them */
  if (m->ndirs == m->capdirs)
    m->dirs = hcs_xrealloc(m->dirs, (m->capdirs = m->capdirs ? 2 * m->capdirs : 256) * sizeof *m->dirs);
  m->dirs[m->ndirs++] = (struct mdir){hcs_xstrdup(rel), st->st_mtim};
  return 0;
}

int layer_mirror_whiteout(struct layer_mirror *m, const char *rel, const struct stat *st, hcs_error_t *err) {
  const char *base;
  int pfd = parent_of(m, rel, &base, err);
  if (pfd < 0) return -1;
  if (layer_whiteout_make(pfd, base) < 0) return merr(err, errno, rel, "create whiteout");
  struct timespec ts[2];
  times_of(st, ts);
  if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0) return merr(err, errno, rel, "set times");
  return 0;
}

int layer_mirror_symlink(struct layer_mirror *m, const char *rel, const char *target, const struct stat *st,
                         hcs_error_t *err) {
  const char *base;
  int pfd = parent_of(m, rel, &base, err);
  if (pfd < 0) return -1;
  if (symlinkat(target, pfd, base) < 0) return merr(err, errno, rel, "symlink");
  if (fchownat(pfd, base, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0) return merr(err, errno, rel, "chown");
  struct timespec ts[2];
  times_of(st, ts);
  if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0) return merr(err, errno, rel, "set times");
  return 0;
}

int layer_mirror_node(struct layer_mirror *m, const char *rel, const struct stat *st, hcs_error_t *err) {
  const char *base;
  int pfd = parent_of(m, rel, &base, err);
  if (pfd < 0) return -1;
  mode_t type = st->st_mode & S_IFMT;
  if (mknodat(pfd, base, type | 0600, S_ISFIFO(st->st_mode) ? 0 : st->st_rdev) < 0)
    return merr(err, errno, rel, "mknod");
  if (fchownat(pfd, base, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0) return merr(err, errno, rel, "chown");
  if (fchmodat(pfd, base, st->st_mode & 07777, 0) < 0) return merr(err, errno, rel, "chmod");
  struct timespec ts[2];
  times_of(st, ts);
  if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0) return merr(err, errno, rel, "set times");
  return 0;
}

int layer_mirror_link(struct layer_mirror *m, const char *rel, const char *first, hcs_error_t *err) {
  /* the first path may still be in a worker's hands */
  if (layer_fpool_in_flight(m->pool, first) && layer_fpool_barrier(m->pool, err) < 0) return -1;
  /* resolved aside: the stack follows the walk, not the links */
  const char *slash = strrchr(first, '/');
  const char *tbase = slash ? slash + 1 : first;
  cleanup_free char *tparent = slash ? strndup(first, (size_t)(slash - first)) : hcs_xstrdup("");
  if (tparent == NULL) abort();
  cleanup_close int tfd = layer_resolve_dir(m->rootfd, tparent, false, O_PATH);
  if (tfd < 0) return hcs_error_make(err, errno, "capture `%s`: resolve the directory of `%s`", rel, first);
  const char *base;
  int pfd = parent_of(m, rel, &base, err);
  if (pfd < 0) return -1;
  if (linkat(tfd, tbase, pfd, base, 0) < 0) return hcs_error_make(err, errno, "capture `%s`: link to `%s`", rel, first);
  return 0;
}

bool layer_mirror_pooled(struct layer_mirror *m, off_t size) { return m->pool && size <= (off_t)LAYER_MIRROR_POOL_MAX; }

int layer_mirror_file_data(struct layer_mirror *m, const char *rel, const struct stat *st, struct archive_entry *ae,
                           unsigned char *data, hcs_error_t *err) {
  struct layer_fjob *j = hcs_xcalloc(1, sizeof *j);
  j->data = data; /* owned from here */
  const char *base;
  int pfd = parent_of(m, rel, &base, err);
  if (pfd < 0 || (j->pfd = fcntl(pfd, F_DUPFD_CLOEXEC, 3)) < 0) {
    if (pfd >= 0) merr(err, errno, rel, "dup");
    layer_fjob_free(j);
    return -1;
  }
  j->name = hcs_xstrdup(base);
  j->entry = hcs_xstrdup(rel);
  j->len = (size_t)st->st_size;
  j->size = st->st_size;
  j->uid = st->st_uid;
  j->gid = st->st_gid;
  j->perm = st->st_mode & 07777;
  times_of(st, j->ts);
  const char *name;
  const void *value;
  size_t size;
  if (archive_entry_xattr_reset(ae) > 0) {
    j->xattrs = hcs_xcalloc((size_t)archive_entry_xattr_count(ae), sizeof *j->xattrs);
    while (archive_entry_xattr_next(ae, &name, &value, &size) == ARCHIVE_OK) {
      if (layer_is_overlay_xattr(name)) continue;
      j->xattrs[j->nx].name = hcs_xstrdup(name);
      j->xattrs[j->nx].value = hcs_xmalloc(size ? size : 1);
      memcpy(j->xattrs[j->nx].value, value, size);
      j->xattrs[j->nx].size = size;
      j->nx++;
    }
  }
  /* only hardlinks wait for files in flight: every other path is new */
  if (st->st_nlink > 1) layer_fpool_mark(m->pool, rel);
  return layer_fpool_submit(m->pool, j, err);
}

int layer_mirror_file_open(struct layer_mirror *m, const char *rel, hcs_error_t *err) {
  const char *base;
  int pfd = parent_of(m, rel, &base, err);
  if (pfd < 0) return -1;
  int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return merr(err, errno, rel, "create");
  return fd;
}

int layer_mirror_file_write(int fd, const unsigned char *p, size_t n, off_t off, const char *rel, hcs_error_t *err) {
  while (n > 0) {
    ssize_t w = pwrite(fd, p, n, off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return merr(err, errno, rel, "write");
    p += w;
    n -= (size_t)w;
    off += w;
  }
  return 0;
}

int layer_mirror_file_close(int fd, const char *rel, const struct stat *st, struct archive_entry *ae,
                            hcs_error_t *err) {
  if (ftruncate(fd, st->st_size) < 0) return merr(err, errno, rel, "truncate"); /* trailing holes */
  if (fchown(fd, st->st_uid, st->st_gid) < 0) return merr(err, errno, rel, "chown");
  if (fchmod(fd, st->st_mode & 07777) < 0) return merr(err, errno, rel, "chmod");
  if (set_xattrs(ae, fd, rel, err) < 0) return -1;
  struct timespec ts[2];
  times_of(st, ts);
  if (futimens(fd, ts) < 0) return merr(err, errno, rel, "set times");
  return 0;
}

int layer_mirror_finish(struct layer_mirror *m, hcs_error_t *err) {
  if (layer_fpool_barrier(m->pool, err) < 0) return -1;
  /* in walk order, so the parents stack up as they did for the creation */
  for (size_t i = 0; i < m->ndirs; i++) {
    const char *base;
    int pfd = parent_of(m, m->dirs[i].rel, &base, err);
    if (pfd < 0) return -1;
    struct timespec ts[2] = {m->dirs[i].mtime, m->dirs[i].mtime};
    if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0) return merr(err, errno, m->dirs[i].rel, "set times");
    if (m->depth < STACK_MAX) { /* the next entries are likely inside */
      int fd = openat(pfd, base, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return merr(err, errno, m->dirs[i].rel, "open directory");
      m->stack[m->depth].rel = hcs_xstrdup(m->dirs[i].rel);
      m->stack[m->depth].len = strlen(m->dirs[i].rel);
      m->stack[m->depth].fd = fd;
      m->depth++;
    }
  }
  return 0;
}
