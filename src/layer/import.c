/* ImportLayer: an OCI layer tar (plain/gzip/zstd) -> a layer directory in
 * overlay format.  libarchive parses the tar; every file is created by hand
 * relative to directory fds resolved with openat2 beneath the layer root (no
 * archive_write_disk: its per-file overhead and path handling are not what we
 * want), so nothing in the archive can reach outside the layer.  Extraction
 * goes to a locked temp dir inside the store and is renamed into place only
 * when complete. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "layer/internal.h"
#include "layer/fpool.h"
#include "layer/path.h"

/* Regular files up to this size go to the worker threads with their data. */
#define POOL_MAX_FILE (1u << 20)

struct dirtime {
  char *path;
  struct timespec ts[2];
};

/* Directories resolved last, by path inside the layer.  A tar lists a
 * directory, then its contents, then its next sibling: a few slots save the
 * openat2 of the parent for nearly every entry. */
#define DIR_CACHE 4

struct dircache {
  char *path;
  int fd;
  bool gid_ok; /* its gid is ours: what we create in it needs no chown to ours */
};

struct extract {
  int rootfd;
  struct dircache cache[DIR_CACHE];
  unsigned cache_next; /* the slot replaced next */
  struct dirtime *dirs;
  size_t ndirs, capdirs;
  struct layer_reader *reader;
  hcs_layer_progress_fn progress;
  void *progress_data;
  uint64_t total, last_progress;
  struct archive *ar;
  const char *entry; /* the entry being imported (entry_copy), for errors */
  char *entry_copy;
  struct layer_fpool *pool;
  char *marked_parent;                        /* last parent whose ancestors were marked in flight */
  uint64_t max_size, max_file_size, apparent; /* caps, and the apparent size so far */
  uid_t euid;
  gid_t egid;
  /* Paths this import made (directories made on the way included).  The
   * layer starts empty, so a path not in the set is surely absent and its
   * entry needs no stat first.  That holds while every parent was reached
   * by its literal path: once one was reached through a symlink (aliased),
   * every entry stats as before. */
  struct layer_pathset made;
  bool aliased;
  bool replaced; /* make_room removed something: a recorded directory may be gone */
};

/* Forget the cached directories, except the one whose fd is keep (-1: all). */
static void cache_drop(struct extract *x, int keep) {
  for (int i = 0; i < DIR_CACHE; i++) {
    struct dircache *c = &x->cache[i];
    if (c->path == NULL || c->fd == keep) continue;
    close(c->fd);
    c->fd = -1;
    free(c->path);
    c->path = NULL;
  }
}

/* Cache fd (owned by the cache from now on) as the directory at path. */
static void cache_put(struct extract *x, char *path, int fd, bool gid_ok) {
  for (int i = 0; i < DIR_CACHE; i++) /* a directory listed twice: the new fd wins */
    if (x->cache[i].path && strcmp(x->cache[i].path, path) == 0) {
      close(x->cache[i].fd);
      free(x->cache[i].path);
      x->cache[i].path = NULL;
      x->cache[i].fd = -1;
    }
  struct dircache *c = &x->cache[x->cache_next];
  x->cache_next = (x->cache_next + 1) % DIR_CACHE;
  if (c->path) {
    close(c->fd);
    free(c->path);
  }
  c->path = path;
  c->fd = fd;
  c->gid_ok = gid_ok;
}

static int eerr(struct extract *x, hcs_error_t *err, int e, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int eerr(struct extract *x, hcs_error_t *err, int e, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return hcs_error_make(err, e, "entry `%s`: %s", x->entry, buf);
}

static int resolve_err(struct extract *x, const char *what, hcs_error_t *err) {
  if (errno == EXDEV) return eerr(x, err, 0, "%s `%s` escapes the layer (through `..` or a symlink)", "path", what);
  if (errno == ELOOP) return eerr(x, err, 0, "too many symlinks resolving `%s`", what);
  if (errno == ENOTDIR) return eerr(x, err, 0, "`%s` is not a directory", what);
  return eerr(x, err, errno, "resolve `%s`", what);
}

/* fd of the parent directory (owned by the cache: do not close).  Every
 * cached fd was resolved beneath the root (openat2) or opened with
 * O_NOFOLLOW in such a directory; only make_room removes directories, and it
 * empties the cache when it does. */
static int parent_fd(struct extract *x, const char *parent, bool *gid_ok, hcs_error_t *err) {
  for (int i = 0; i < DIR_CACHE; i++)
    if (x->cache[i].path && strcmp(x->cache[i].path, parent) == 0) {
      *gid_ok = x->cache[i].gid_ok;
      return x->cache[i].fd;
    }
  int fd = -1;
  if (!x->aliased) { /* the literal path: no symlink on the way */
    fd = layer_openat2(x->rootfd, parent[0] ? parent : ".", O_PATH | O_DIRECTORY, LAYER_RESOLVE | RESOLVE_NO_SYMLINKS);
    if (fd < 0 && errno == ELOOP) x->aliased = true;
  }
  if (fd < 0) {
    fd = layer_resolve_dir(x->rootfd, parent, true, O_PATH);
    if (fd < 0) return resolve_err(x, parent[0] ? parent : ".", err);
    /* it and its ancestors exist now, some made here */
    cleanup_free char *p = hcs_xstrdup(parent);
    for (;;) {
      layer_pathset_add(&x->made, p);
      char *slash = strrchr(p, '/');
      if (slash == NULL) break;
      *slash = '\0';
    }
  }
  struct stat st;
  *gid_ok = fstat(fd, &st) == 0 && st.st_gid == x->egid;
  cache_put(x, hcs_xstrdup(parent), fd, *gid_ok);
  return fd;
}

/* Whether an entry made new in a directory (gid_ok) comes out uid:gid by
 * itself: the kernel gives it our fsuid, and our fsgid or the directory's
 * gid (set-gid directory, `grpid` mount), which gid_ok says is ours. */
static bool owner_is_ours(struct extract *x, struct archive_entry *e, bool gid_ok) {
  return gid_ok && archive_entry_uid(e) == x->euid && archive_entry_gid(e) == x->egid;
}

/* Make room for a new entry `name`: remove what is there unless both are
 * directories.  Returns 1 if an existing directory is kept. */
static int make_room(struct extract *x, int pfd, const char *name, bool want_dir, hcs_error_t *err) {
  struct stat st;
  if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return 0;
    return eerr(x, err, errno, "stat");
  }
  if (S_ISDIR(st.st_mode)) {
    if (want_dir) return 1;
    /* Cached directories other than pfd (the parent of the entry, which
     * outlives its child) may be inside the tree about to go: drop them,
     * but never close pfd, which the removal and the caller still use. */
    cache_drop(x, pfd);
    x->replaced = true;
    if (hcs_rm_rf_at(pfd, name, err) < 0) return hcs_error_wrap(err, "entry `%s`: replace directory", x->entry);
    return 0;
  }
  /* a cached path may have led through what goes (a symlink) */
  cache_drop(x, pfd);
  x->replaced = true;
  if (unlinkat(pfd, name, 0) < 0) return eerr(x, err, errno, "replace existing entry");
  return 0;
}

/* Room for a new non-directory entry at path (pfd/name): make_room, but
 * only where something may be, i.e. at a path this import made (or any
 * path once a parent was reached through a symlink); the path is recorded
 * as made. */
static int make_room_for(struct extract *x, int pfd, const char *name, const char *path, hcs_error_t *err) {
  if ((x->aliased || layer_pathset_maybe(&x->made, path)) && make_room(x, pfd, name, false, err) < 0) return -1;
  layer_pathset_add(&x->made, path);
  return 0;
}

static int set_xattrs(struct extract *x, struct archive_entry *e, int fd, hcs_error_t *err) {
  const char *name;
  const void *value;
  size_t size;
  if (archive_entry_xattr_reset(e) == 0) return 0;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    /* overlay's own attributes come only from whiteout entries */
    if (layer_is_overlay_xattr(name)) continue;
    if (fsetxattr(fd, name, value, size, 0) < 0) return eerr(x, err, errno, "set xattr `%s`", name);
  }
  return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2]) {
  ts[1].tv_sec = archive_entry_mtime(e);
  ts[1].tv_nsec = archive_entry_mtime_nsec(e);
  if (archive_entry_atime_is_set(e)) {
    ts[0].tv_sec = archive_entry_atime(e);
    ts[0].tv_nsec = archive_entry_atime_nsec(e);
  } else {
    ts[0] = ts[1];
  }
}

static void report_progress(struct extract *x, bool force) {
  if (x->progress == NULL) return;
  uint64_t done = layer_reader_raw_bytes(x->reader);
  if (!force && done - x->last_progress < (4u << 20)) return;
  x->last_progress = done;
  x->progress(done, x->total, x->progress_data);
}

static int copy_data(struct extract *x, struct archive_entry *e, int fd, hcs_error_t *err) {
  const void *buf;
  size_t size;
  la_int64_t offset, pos = 0;
  la_int64_t limit = archive_entry_size_is_set(e) ? archive_entry_size(e) : INT64_MAX;
  int r;
  while ((r = archive_read_data_block(x->ar, &buf, &size, &offset)) == ARCHIVE_OK) {
    /* a sparse map may place data anywhere: keep it within the size that
     * was checked against the caps */
    if (offset < 0 || offset > limit || (la_int64_t)size > limit - offset)
      return eerr(x, err, 0, "data at offset %lld beyond the entry's size", (long long)offset);
    if (offset != pos && lseek(fd, offset, SEEK_SET) < 0) return eerr(x, err, errno, "seek");
    const char *p = buf;
    size_t left = size;
    while (left > 0) {
      ssize_t w = write(fd, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return eerr(x, err, errno, "write");
      p += w;
      left -= (size_t)w;
    }
    pos = offset + (la_int64_t)size;
    report_progress(x, false);
  }
  if (r != ARCHIVE_EOF)
    return eerr(x, err, archive_errno(x->ar) > 0 ? archive_errno(x->ar) : 0, "read data: %s",
                archive_error_string(x->ar));
  return 0;
}

static int meta_fd(struct extract *x, struct archive_entry *e, int fd, bool chown, hcs_error_t *err) {
  if (chown && fchown(fd, archive_entry_uid(e), archive_entry_gid(e)) < 0) return eerr(x, err, errno, "chown");
  /* after chown, which clears set-id bits */
  if (fchmod(fd, archive_entry_perm(e)) < 0) return eerr(x, err, errno, "chmod");
  return set_xattrs(x, e, fd, err);
}

static int do_whiteout(struct extract *x, int pfd, const char *parent, const char *base, const struct timespec ts[2],
                       hcs_error_t *err) {
  const char *name;
  switch (layer_whiteout_parse(base, &name)) {
  case LAYER_WH_OPAQUE: {
    cleanup_close int dfd = layer_resolve_dir(x->rootfd, parent, true, O_RDONLY);
    if (dfd < 0) return resolve_err(x, parent[0] ? parent : ".", err);
    if (layer_opaque_mark(dfd) < 0) return eerr(x, err, errno, "set opaque xattr");
    return 0;
  }
  case LAYER_WH_FILE: {
    cleanup_free char *path = parent[0] ? hcs_xasprintf("%s/%s", parent, name) : hcs_xstrdup(name);
    if (make_room_for(x, pfd, name, path, err) < 0) return -1;
    if (layer_whiteout_make(pfd, name) < 0) return eerr(x, err, errno, "create whiteout for `%s`", name);
    /* the entry's time, which an export gives `.wh.NAME` back: without it a
     * re-export differs from the imported stream (and its DiffID) */
    if (utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0) return eerr(x, err, errno, "set times of `%s`", name);
    return 0;
  }
  case LAYER_WH_META: return 0;
  default: return eerr(x, err, 0, "invalid whiteout name");
  }
}

/* Hand a small regular file to the workers: data read now, written there. */
static int dispatch_file(struct extract *x, struct archive_entry *e, int pfd, const char *parent, const char *base,
                         const char *path, bool owner_ok, hcs_error_t *err) {
  struct layer_fjob *j = hcs_xcalloc(1, sizeof *j);
  j->pfd = fcntl(pfd, F_DUPFD_CLOEXEC, 3);
  if (j->pfd < 0) {
    layer_fjob_free(j);
    return eerr(x, err, errno, "dup");
  }
  j->name = hcs_xstrdup(base);
  j->entry = hcs_xstrdup(x->entry);
  j->size = archive_entry_size(e);
  j->data = hcs_xmalloc((size_t)j->size);
  while (j->len < (size_t)j->size) {
    la_ssize_t n = archive_read_data(x->ar, j->data + j->len, (size_t)j->size - j->len);
    if (n < 0) {
      layer_fjob_free(j);
      return eerr(x, err, 0, "read data: %s", archive_error_string(x->ar));
    }
    if (n == 0) break;
    j->len += (size_t)n;
  }
  j->uid = archive_entry_uid(e);
  j->gid = archive_entry_gid(e);
  j->owner_ok = owner_ok;
  j->perm = archive_entry_perm(e);
  entry_times(e, j->ts);
  const char *name;
  const void *value;
  size_t size;
  if (archive_entry_xattr_reset(e) > 0) {
    j->xattrs = hcs_xcalloc((size_t)archive_entry_xattr_count(e), sizeof *j->xattrs);
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      if (layer_is_overlay_xattr(name)) continue;
      j->xattrs[j->nx].name = hcs_xstrdup(name);
      j->xattrs[j->nx].value = hcs_xmalloc(size);
      memcpy(j->xattrs[j->nx].value, value, size);
      j->xattrs[j->nx].size = size;
      j->nx++;
    }
  }
  /* the file and its ancestors are in flight: entries touching them wait */
  layer_fpool_mark(x->pool, path);
  if (x->marked_parent == NULL || strcmp(x->marked_parent, parent) != 0) {
    cleanup_free char *anc = hcs_xstrdup(parent);
    for (char *s2 = anc + strlen(anc); anc[0];) {
      layer_fpool_mark(x->pool, anc);
      while (s2 > anc && *s2 != '/')
        s2--;
      *s2 = '\0';
    }
    free(x->marked_parent);
    x->marked_parent = hcs_xstrdup(parent);
  }
  return layer_fpool_submit(x->pool, j, err);
}

static int pool_barrier(struct extract *x, hcs_error_t *err) {
  free(x->marked_parent);
  x->marked_parent = NULL;
  return layer_fpool_barrier(x->pool, err);
}

static void human(uint64_t n, char buf[32]) {
  static const char *units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  double v = (double)n;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    u++;
  }
  if (u == 0)
    snprintf(buf, 32, "%llu bytes", (unsigned long long)n);
  else
    snprintf(buf, 32, "%.1f %s", v, units[u]);
}

/* The apparent size a regular file declares (a sparse entry: its real size,
 * holes included) counts against the caps before anything is written. */
static int check_size(struct extract *x, struct archive_entry *e, hcs_error_t *err) {
  if (!archive_entry_size_is_set(e)) return 0;
  la_int64_t n = archive_entry_size(e);
  if (n < 0) return eerr(x, err, 0, "negative size");
  uint64_t size = (uint64_t)n;
  char a[32], b[32];
  if (size > x->max_file_size) {
    human(size, a);
    human(x->max_file_size, b);
    return eerr(x, err, EFBIG, "file of %s exceeds the import limit of %s per file (max_file_size)", a, b);
  }
  if (size > x->max_size - x->apparent) {
    human(x->apparent + size > x->apparent ? x->apparent + size : UINT64_MAX, a);
    human(x->max_size, b);
    return eerr(x, err, EFBIG, "the layer's files reach %s, over the import limit of %s (max_size)", a, b);
  }
  x->apparent += size;
  return 0;
}

static int do_entry(struct extract *x, struct archive_entry *e, hcs_error_t *err) {
  cleanup_free char *path = NULL;
  if (layer_clean_path(archive_entry_pathname(e), &path) < 0)
    return eerr(x, err, 0, "path escapes the layer (absolute or `..`)");
  mode_t type = archive_entry_filetype(e);
  const char *hardlink = archive_entry_hardlink(e);
  if (type == AE_IFREG && hardlink == NULL && check_size(x, e, err) < 0) return -1;
  struct timespec ts[2];
  entry_times(e, ts);
  bool pooled = false;
  if (x->pool) {
    /* Plain files and directories only wait for the workers when they touch
     * a path in flight; anything that links, removes or replaces waits. */
    const char *slash = strrchr(path, '/');
    const char *unused;
    bool wh = layer_whiteout_parse(slash ? slash + 1 : path, &unused) != LAYER_WH_NONE;
    bool plain = path[0] && !hardlink && !wh && (type == AE_IFREG || type == AE_IFDIR);
    if (!plain || layer_fpool_in_flight(x->pool, path)) {
      if (pool_barrier(x, err) < 0) return -1;
    }
    pooled = plain && type == AE_IFREG && archive_entry_size_is_set(e) && archive_entry_size(e) <= POOL_MAX_FILE;
  }

  if (path[0] == '\0') { /* the layer root itself */
    if (type != AE_IFDIR) return eerr(x, err, 0, "the root of the layer must be a directory");
    cleanup_close int fd = layer_openat2(x->rootfd, ".", O_RDONLY | O_DIRECTORY, LAYER_RESOLVE);
    if (fd < 0 || meta_fd(x, e, fd, true, err) < 0) return fd < 0 ? eerr(x, err, errno, "open root") : -1;
    /* its owner may have changed under a cached fd */
    for (int i = 0; i < DIR_CACHE; i++)
      if (x->cache[i].path && x->cache[i].path[0] == '\0') x->cache[i].gid_ok = x->egid == archive_entry_gid(e);
    goto record_dir;
  }
  {
    cleanup_free char *split = hcs_xstrdup(path);
    const char *parent, *base;
    layer_split_path(split, &parent, &base);
    bool gid_ok = false;
    int pfd = parent_fd(x, parent, &gid_ok, err);
    if (pfd < 0) return -1;
    /* Once a parent was reached through a symlink, one file has two names
     * and the paths in flight no longer tell which entries touch them:
     * the workers finish, and the rest of the import goes on in this thread. */
    if (x->aliased && x->pool) {
      if (pool_barrier(x, err) < 0) return -1;
      pooled = false;
    }
    const char *unused;
    if (layer_whiteout_parse(base, &unused) != LAYER_WH_NONE) return do_whiteout(x, pfd, parent, base, ts, err);

    if (hardlink) {
      cleanup_free char *target = NULL;
      if (layer_clean_path(hardlink, &target) < 0 || target[0] == '\0')
        return eerr(x, err, 0, "hardlink target `%s` escapes the layer", hardlink);
      const char *tparent, *tbase;
      layer_split_path(target, &tparent, &tbase);
      cleanup_close int tpfd = layer_resolve_dir(x->rootfd, tparent, false, O_PATH);
      if (tpfd < 0) {
        if (errno == EXDEV) return eerr(x, err, 0, "hardlink target `%s` escapes the layer", hardlink);
        return eerr(x, err, errno, "hardlink target `%s`", hardlink);
      }
      struct stat st;
      if (fstatat(tpfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return eerr(x, err, errno, "hardlink target `%s`", hardlink);
      if (S_ISDIR(st.st_mode)) return eerr(x, err, 0, "hardlink target `%s` is a directory", hardlink);
      if (make_room_for(x, pfd, base, path, err) < 0) return -1;
      if (linkat(tpfd, tbase, pfd, base, 0) < 0) return eerr(x, err, errno, "link to `%s`", hardlink);
      return 0;
    }

    switch (type) {
    case AE_IFDIR: {
      /* mkdir first: make_room's stat only when something is there */
      int kept = 0;
      if (mkdirat(pfd, base, 0700) < 0) {
        if (errno != EEXIST) return eerr(x, err, errno, "mkdir");
        kept = make_room(x, pfd, base, true, err);
        if (kept < 0) return -1;
        if (!kept && mkdirat(pfd, base, 0700) < 0) return eerr(x, err, errno, "mkdir");
      }
      layer_pathset_add(&x->made, path);
      int fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return eerr(x, err, errno, "open directory");
      if (meta_fd(x, e, fd, kept || !owner_is_ours(x, e, gid_ok), err) < 0) {
        close(fd);
        return -1;
      }
      /* the parent of the entries that follow: cached (pfd is not used
       * after this, the cache may close it) */
      cache_put(x, hcs_xstrdup(path), fd, archive_entry_gid(e) == x->egid);
      break;
    }
    case AE_IFREG: {
      /* replacing (which may remove a directory tree) stays in this
       * thread; a path this import never made needs no look */
      if (make_room_for(x, pfd, base, path, err) < 0) return -1;
      if (pooled) return dispatch_file(x, e, pfd, parent, base, path, owner_is_ours(x, e, gid_ok), err);
      cleanup_close int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0) return eerr(x, err, errno, "create");
      if (copy_data(x, e, fd, err) < 0) return -1;
      if (archive_entry_size_is_set(e) && ftruncate(fd, archive_entry_size(e)) < 0)
        return eerr(x, err, errno, "truncate");
      if (meta_fd(x, e, fd, !owner_is_ours(x, e, gid_ok), err) < 0) return -1;
      if (futimens(fd, ts) < 0) return eerr(x, err, errno, "set times");
      return 0;
    }
    case AE_IFLNK: {
      const char *target = archive_entry_symlink(e);
      if (target == NULL) return eerr(x, err, 0, "symlink without target");
      if (make_room_for(x, pfd, base, path, err) < 0) return -1;
      if (symlinkat(target, pfd, base) < 0) return eerr(x, err, errno, "symlink");
      if (!owner_is_ours(x, e, gid_ok) &&
          fchownat(pfd, base, archive_entry_uid(e), archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
        return eerr(x, err, errno, "chown");
      if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0) return eerr(x, err, errno, "set times");
      return 0;
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
      if (make_room_for(x, pfd, base, path, err) < 0) return -1;
      dev_t dev = type == AE_IFIFO ? 0 : archive_entry_rdev(e);
      if (mknodat(pfd, base, type | 0600, dev) < 0) return eerr(x, err, errno, "mknod");
      if (fchownat(pfd, base, archive_entry_uid(e), archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
        return eerr(x, err, errno, "chown");
      if (fchmodat(pfd, base, archive_entry_perm(e), 0) < 0) return eerr(x, err, errno, "chmod");
      if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0) return eerr(x, err, errno, "set times");
      return 0;
    }
    case AE_IFSOCK: return 0; /* sockets are not content */
    default: return eerr(x, err, 0, "unsupported entry type %o", (unsigned)type);
    }
  }
record_dir:
  /* directory times are set at the end: creating children changes them */
  if (x->ndirs == x->capdirs) {
    x->capdirs = x->capdirs ? 2 * x->capdirs : 256;
    x->dirs = hcs_xrealloc(x->dirs, x->capdirs * sizeof *x->dirs);
  }
  x->dirs[x->ndirs].path = hcs_xstrdup(path);
  memcpy(x->dirs[x->ndirs].ts, ts, sizeof ts);
  x->ndirs++;
  return 0;
}

/* In archive order, so of two entries for one directory the later wins.  The
 * last component is not followed: a directory a later entry replaced with
 * a symlink is skipped, its times never land on the target. */
static int apply_dir_times(struct extract *x, hcs_error_t *err) {
  /* siblings follow each other: their parent is resolved once (nothing
   * changes the tree any more) */
  cleanup_free char *ppath = NULL;
  cleanup_close int pfd = -1;
  for (size_t i = 0; i < x->ndirs; i++) {
    cleanup_free char *path = hcs_xstrdup(x->dirs[i].path);
    if (path[0] == '\0') {
      cleanup_close int fd = layer_openat2(x->rootfd, ".", O_RDONLY | O_DIRECTORY, LAYER_RESOLVE);
      if (fd >= 0 && futimens(fd, x->dirs[i].ts) < 0)
        return hcs_error_make(err, errno, "set times of `%s`", x->dirs[i].path);
      continue;
    }
    const char *parent, *base;
    layer_split_path(path, &parent, &base);
    if (ppath == NULL || strcmp(ppath, parent) != 0) {
      if (pfd >= 0) close(pfd);
      free(ppath);
      ppath = hcs_xstrdup(parent);
      pfd = layer_resolve_dir(x->rootfd, parent, false, O_PATH);
    }
    struct stat st;
    /* removed or replaced by a later entry (a symlink: its times are its
     * own); nothing was, if nothing was ever removed */
    if (pfd < 0) continue;
    if (x->replaced && (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))) continue;
    if (utimensat(pfd, base, x->dirs[i].ts, AT_SYMLINK_NOFOLLOW) < 0)
      return hcs_error_make(err, errno, "set times of `%s`", x->dirs[i].path);
  }
  return 0;
}

static la_ssize_t read_cb(struct archive *a, void *data, const void **buf) {
  struct extract *x = data;
  ssize_t n = layer_reader_next(x->reader, buf);
  if (n < 0) {
    archive_set_error(a, EIO, "layer stream failed");
    return -1;
  }
  return n;
}

/* Extract the stream into rootfd. */
static int extract(struct extract *x, hcs_error_t *err) {
  struct archive *a = archive_read_new();
  if (a == NULL) abort();
  x->ar = a;
  archive_read_support_format_tar(a);
  int ret = -1;
  if (archive_read_open(a, x, NULL, read_cb, NULL) != ARCHIVE_OK) {
    hcs_error_make(err, 0, "read archive: %s", archive_error_string(a));
    goto out;
  }
  for (;;) {
    struct archive_entry *e;
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) break;
    if (r == ARCHIVE_WARN) hcs_debug("import: %s", archive_error_string(a));
    if (r < ARCHIVE_WARN) {
      if (x->entry)
        hcs_error_make(err, 0, "read archive after entry `%s`: %s", x->entry, archive_error_string(a));
      else
        hcs_error_make(err, 0, "read archive: %s", archive_error_string(a));
      goto out;
    }
    /* An operation cancelled (hcs_operation_cancel): stop here; the caller
     * rolls the partial layer back as for any error. */
    if (hcs_operation_cancelled()) {
      hcs_error_make(err, ECANCELED, "import cancelled");
      goto out;
    }
    const char *name = archive_entry_pathname(e);
    if (name == NULL) {
      hcs_error_make(err, 0, "read archive: entry without a name");
      goto out;
    }
    /* a copy: libarchive frees the entry's strings when the next header
     * fails, and the error names the last good entry */
    free(x->entry_copy);
    x->entry = x->entry_copy = hcs_xstrdup(name);
    if (do_entry(x, e, err) < 0) goto out;
    report_progress(x, false);
  }
  x->entry = NULL;
  if (pool_barrier(x, err) < 0) goto out;
  ret = apply_dir_times(x, err);
out:
  x->entry = NULL;
  free(x->entry_copy);
  x->entry_copy = NULL;
  archive_read_free(a);
  x->ar = NULL;
  return ret;
}

char *hcs_layer_chain_id(const char *parent_chain_id, const char *diff_id) {
  const char *pc = parent_chain_id;
  if (pc == NULL) return hcs_xstrdup(diff_id);
  EVP_MD_CTX *md = layer_sha256_new();
  EVP_DigestUpdate(md, pc, strlen(pc));
  EVP_DigestUpdate(md, " ", 1);
  EVP_DigestUpdate(md, diff_id, strlen(diff_id));
  char out[72];
  layer_sha256_final(md, out);
  EVP_MD_CTX_free(md);
  return hcs_xstrdup(out);
}

/* The parents' chain and the nearest parent's metadata. */
static int resolve_chain(hcs_layer_store_t *s, const hcs_layer_import_opts_t *opts, json_t **chain, json_t **pmeta,
                         hcs_error_t *err) {
  cleanup_close int lk = layer_store_lock(s, true, err);
  if (lk < 0) return -1;
  *chain = layer_resolve_parents(s, opts->parents, err);
  if (*chain == NULL) return -1;
  if (json_array_size(*chain) > 0) {
    *pmeta = layer_meta_load(s, json_string_value(json_array_get(*chain, 0)), err);
    if (*pmeta == NULL) return -1;
  }
  return 0;
}

static char *import_impl(hcs_layer_store_t *s, int fd, const hcs_layer_import_opts_t *opts, hcs_error_t *err) {
  hcs_layer_import_opts_t none;
  memset(&none, 0, sizeof none);
  if (opts == NULL) opts = &none;
  if (opts->id && hcs_validate_id("layer id", opts->id, err) < 0) return NULL;
  if (opts->id && hcs_layer_exists(s, opts->id, err) > 0) {
    hcs_error_make(err, EEXIST, "layer `%s` already exists", opts->id);
    return NULL;
  }
  cleanup_json json_t *chain = NULL;
  cleanup_json json_t *pmeta = NULL;
  /* Fail fast on missing parents, unless the caller commits in order later. */
  if (opts->before_commit == NULL && resolve_chain(s, opts, &chain, &pmeta, err) < 0) return NULL;
  struct stat st;
  uint64_t total = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;

  struct layer_tmp t;
  if (layer_tmp_make(s, "import", &t, err) < 0) return NULL;
  char *result = NULL;
  struct layer_writeback *wb = NULL;
  struct extract x;
  memset(&x, 0, sizeof x);
  for (int i = 0; i < DIR_CACHE; i++)
    x.cache[i].fd = -1;
  x.rootfd = -1;
  x.euid = geteuid();
  x.egid = getegid();
  x.progress = opts->progress;
  x.progress_data = opts->progress_data;
  x.total = total;
  x.max_size = opts->max_size ? opts->max_size : s->max_size ? s->max_size : HCS_LAYER_DEFAULT_MAX_SIZE;
  x.max_file_size = opts->max_file_size ? opts->max_file_size
                    : s->max_file_size  ? s->max_file_size
                                        : HCS_LAYER_DEFAULT_MAX_FILE_SIZE;
  {
    int n = opts->threads > 0 ? opts->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    x.pool = n > 1 ? layer_fpool_start(n) : NULL;
  }
  cleanup_free char *diff = hcs_xasprintf("%s/diff", t.path);
  char diff_id[72], digest[72];
  uint64_t raw_bytes = 0, bytes = 0;
  const char *compression = NULL;
  if (mkdir(diff, 0755) < 0) {
    hcs_error_make(err, errno, "mkdir `%s`", diff);
    goto out;
  }
  x.rootfd = open(diff, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (x.rootfd < 0) {
    hcs_error_make(err, errno, "open `%s`", diff);
    goto out;
  }
  x.reader = layer_reader_start(fd, err);
  if (x.reader == NULL) goto out;
  wb = layer_writeback_start(x.rootfd);
  if (extract(&x, err) < 0) {
    /* a broken stream explains a tar error: report it instead */
    hcs_error_t rerr = NULL;
    if (layer_reader_error(x.reader, &rerr) < 0 && err) {
      hcs_error_release(err);
      *err = steal_ptr(rerr);
    }
    hcs_error_release(&rerr);
    goto out;
  }
  if (layer_reader_finish(x.reader, diff_id, digest, &raw_bytes, &bytes, &compression, err) < 0) {
    goto out;
  }
  report_progress(&x, true);
  if (opts->expect_digest && strcmp(opts->expect_digest, digest) != 0) { /* the blob itself, checked first */
    hcs_error_make(err, 0, "digest mismatch: the blob is corrupt: expected `%s`, got `%s`", opts->expect_digest,
                   digest);
    goto out;
  }
  if (opts->expect_diff_id && strcmp(opts->expect_diff_id, diff_id) != 0) {
    hcs_error_make(err, 0, "diff id mismatch: expected `%s`, got `%s`", opts->expect_diff_id, diff_id);
    goto out;
  }
  /* the files durable before anything names them (the metadata, then the
   * rename into the store, each synced) */
  layer_writeback_stop(wb);
  wb = NULL;
  if (opts->sync) {
    if (opts->sync(opts->sync_data, x.rootfd, err) < 0) goto out;
  } else if (syncfs(x.rootfd) < 0) {
    hcs_error_make(err, errno, "sync `%s`", diff);
    goto out;
  }
  if (opts->before_commit &&
      (opts->before_commit(opts->before_commit_data, err) < 0 || resolve_chain(s, opts, &chain, &pmeta, err) < 0))
    goto out;
  {
    cleanup_free char *cid =
        hcs_layer_chain_id(pmeta ? json_string_value(json_object_get(pmeta, "ChainID")) : NULL, diff_id);
    const char *id = opts->id ? opts->id : cid + 7;
    cleanup_json json_t *m = json_object();
    json_object_set_new(m, "Id", json_string(id));
    json_object_set_new(m, "Kind", json_string("layer"));
    json_object_set(m, "Parents", chain);
    json_object_set_new(m, "ChainID", json_string(cid));
    json_object_set_new(m, "DiffID", json_string(diff_id));
    json_object_set_new(m, "Digest", json_string(digest));
    json_object_set_new(m, "Size", json_integer((json_int_t)bytes));
    json_object_set_new(m, "CompressedSize", json_integer((json_int_t)raw_bytes));
    json_object_set_new(m, "Compression", json_string(compression));
    cleanup_free char *now = hcs_now_rfc3339();
    json_object_set_new(m, "Created", json_string(now));
    json_object_set_new(m, "RefCount", json_integer(0));
    cleanup_free char *metap = hcs_xasprintf("%s/" LAYER_META, t.path);
    if (layer_write_chain(s, t.path, chain, true, err) < 0 || hcs_json_write_atomic(metap, m, err) < 0) goto out;
    cleanup_close int lk = layer_store_lock(s, false, err);
    if (lk < 0) goto out;
    cleanup_json json_t *again = layer_resolve_parents(s, opts->parents, err);
    if (again == NULL) goto out;
    if (layer_commit_dir(s, t.path, id, true, err) < 0) {
      /* A derived id names the content (its chain id): a layer already
       * there under it holds the same files on the same parents, so the
       * import is done -- the copy just made is dropped with the temp dir. */
      if (opts->id != NULL || hcs_layer_exists(s, id, NULL) != 1) goto out;
      hcs_error_release(err);
    }
    result = hcs_xstrdup(id);
  }
out:
  layer_writeback_stop(wb);
  layer_fpool_free(x.pool); /* joins the workers before anything they use goes */
  free(x.marked_parent);
  layer_pathset_free(&x.made);
  layer_reader_free(x.reader);
  cache_drop(&x, -1);
  if (x.rootfd >= 0) close(x.rootfd);
  for (size_t i = 0; i < x.ndirs; i++)
    free(x.dirs[i].path);
  free(x.dirs);
  layer_tmp_done(&t);
  return result;
}

void hcs_layer_store_set_limits(hcs_layer_store_t *s, uint64_t max_size, uint64_t max_file_size) {
  s->max_size = max_size;
  s->max_file_size = max_file_size;
}

char *hcs_layer_import(hcs_layer_store_t *s, int fd, const hcs_layer_import_opts_t *opts, hcs_error_t *err) {
  char *id = import_impl(s, fd, opts, err);
  if (id == NULL) hcs_error_wrap(err, "import layer");
  return id;
}

char *hcs_layer_import_file(hcs_layer_store_t *s, const char *path, const hcs_layer_import_opts_t *opts,
                            hcs_error_t *err) {
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    hcs_error_make(err, errno, "import layer: open `%s`", path);
    return NULL;
  }
  char *id = import_impl(s, fd, opts, err);
  if (id == NULL) hcs_error_wrap(err, "import layer `%s`", path);
  return id;
}
