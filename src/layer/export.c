/* ExportLayer: a layer directory (read-only `diff/` or a scratch upper) ->
 * an OCI layer tar.  The tree is walked in sorted order (byte order of
 * names, a directory before its contents) so the same tree always gives the
 * same bytes; overlay whiteouts (0/0 character devices) become `.wh.NAME`
 * and opaque directories get a `.wh..wh..opq` entry right after them;
 * overlay's own trusted.overlay.* attributes are never exported.  Each
 * entry goes into the stream as the walk reaches it, so compression starts
 * with the first file rather than after a walk of the whole tree. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "layer/internal.h"
#include "layer/mirror.h"
#include "layer/path.h"

struct node {
  const char *rel; /* path inside the layer, no leading ./ */
  struct stat st;
  bool opaque;
};

struct dent {
  char *name;
  unsigned char type; /* d_type: DT_UNKNOWN when the file system does not say */
};

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_dent(const void *a, const void *b) {
  return strcmp(((const struct dent *)a)->name, ((const struct dent *)b)->name);
}

/* The entries of directory fd (read with getdents64 on the fd itself: no
 * dup, fcntl and fstat as fdopendir makes), "." and ".." left out, sorted
 * by name in byte order. */
static int list_dir(int fd, const char *rel, struct dent **out, size_t *count, hcs_error_t *err) {
  size_t cap = 32, n = 0;
  struct dent *v = hcs_xmalloc(cap * sizeof *v);
  char buf[32768] __attribute__((aligned(8)));
  for (;;) {
    ssize_t got = getdents64(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      int e = errno;
      for (size_t i = 0; i < n; i++)
        free(v[i].name);
      free(v);
      return hcs_error_make(err, e, "read directory `%s`", rel[0] ? rel : ".");
    }
    if (got == 0) break;
    for (ssize_t off = 0; off < got;) {
      struct dirent64 *de = (struct dirent64 *)(buf + off);
      off += de->d_reclen;
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      if (n == cap) v = hcs_xrealloc(v, (cap *= 2) * sizeof *v);
      v[n++] = (struct dent){hcs_xstrdup(de->d_name), de->d_type};
    }
  }
  qsort(v, n, sizeof *v, cmp_dent);
  *out = v;
  *count = n;
  return 0;
}

/* The bytes of the regular files under fd, for the progress callback's
 * total: a first pass of stats, made only when progress is asked for. */
static uint64_t count_bytes(int fd) {
  struct dent *v;
  size_t n;
  if (list_dir(fd, "", &v, &n, NULL) < 0) return 0;
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    unsigned char t = v[i].type;
    if (t == DT_REG || t == DT_UNKNOWN) {
      bool ok = fstatat(fd, v[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0;
      if (ok && S_ISREG(st.st_mode)) total += (uint64_t)st.st_size;
      t = ok && S_ISDIR(st.st_mode) ? DT_DIR : DT_UNKNOWN; /* the listing's type may be out of date */
    }
    if (t == DT_DIR) {
      int cfd = openat(fd, v[i].name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (cfd >= 0) {
        total += count_bytes(cfd);
        close(cfd);
      }
    }
    free(v[i].name);
  }
  free(v);
  return total;
}

/* (dev, ino) -> first path, for hardlinks (the paths are copies it owns). */
struct inomap {
  struct {
    dev_t dev;
    ino_t ino;
    char *rel;
  } * slots;
  size_t cap, n;
};

static char **inomap_slot(struct inomap *m, dev_t dev, ino_t ino, bool *found) {
  size_t h = ((size_t)ino * 0x9E3779B97F4A7C15ull ^ (size_t)dev) & (m->cap - 1);
  for (;; h = (h + 1) & (m->cap - 1)) {
    *found = m->slots[h].rel != NULL;
    if (!*found || (m->slots[h].dev == dev && m->slots[h].ino == ino)) {
      m->slots[h].dev = dev;
      m->slots[h].ino = ino;
      return &m->slots[h].rel;
    }
  }
}

/* The first path seen for st's inode, or NULL after recording rel as it. */
static const char *inomap_get_or_put(struct inomap *m, const struct stat *st, const char *rel) {
  if (m->n * 2 >= m->cap) {
    struct inomap old = *m;
    m->cap = m->cap ? m->cap * 2 : 1024;
    m->slots = hcs_xcalloc(m->cap, sizeof *m->slots);
    bool found;
    for (size_t i = 0; i < old.cap; i++)
      if (old.slots[i].rel) *inomap_slot(m, old.slots[i].dev, old.slots[i].ino, &found) = old.slots[i].rel;
    free(old.slots);
  }
  bool found;
  char **slot = inomap_slot(m, st->st_dev, st->st_ino, &found);
  if (found) return *slot;
  *slot = hcs_xstrdup(rel);
  m->n++;
  return NULL;
}

static void inomap_free(struct inomap *m) {
  for (size_t i = 0; i < m->cap; i++)
    free(m->slots[i].rel);
  free(m->slots);
}

struct exporter {
  struct archive *a;
  struct layer_writer *w;
  const hcs_layer_export_opts_t *opts;
  int rootfd;
  unsigned char *buf;
  void *zeros; /* HOLE_CHUNK bytes of the zero page, mapped on first use */
  uint64_t done, total, last_progress;
  struct layer_mirror *m; /* a capture: each entry is also created in the new layer */
  int mfd;                /* the new layer's copy of the file being read (-1: none) */
  bool classify;          /* the writer stores random file data (gzip) */
  bool stored;            /* what libarchive writes now is random file data */
};

static la_ssize_t write_cb(struct archive *a, void *data, const void *buf, size_t n) {
  struct exporter *e = data;
  if ((e->stored ? layer_writer_write_stored(e->w, buf, n) : layer_writer_write(e->w, buf, n)) < 0) {
    archive_set_error(a, EIO, "%s", layer_writer_error(e->w));
    return -1;
  }
  return (la_ssize_t)n;
}

static void set_common(struct exporter *x, struct archive_entry *ae, const char *name, const struct stat *st) {
  archive_entry_set_pathname(ae, name);
  archive_entry_set_uid(ae, st->st_uid);
  archive_entry_set_gid(ae, st->st_gid);
  if (x->opts->fixed_mtime)
    archive_entry_set_mtime(ae, x->opts->mtime, 0);
  else
    archive_entry_set_mtime(ae, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
}

static int add_xattrs(struct archive_entry *ae, int fd, const char *rel, hcs_error_t *err) {
  char small[4096];
  cleanup_free char *big = NULL;
  char *list = small;
  ssize_t n = flistxattr(fd, small, sizeof small);
  if (n < 0 && errno == ERANGE) { /* up to XATTR_LIST_MAX */
    list = big = hcs_xmalloc(65536);
    n = flistxattr(fd, big, 65536);
  }
  if (n < 0) return errno == ENOTSUP ? 0 : hcs_error_make(err, errno, "list xattrs of `%s`", rel);
  if (n == 0) return 0;
  /* sorted names for reproducible output */
  size_t cap = 16, k = 0;
  cleanup_free const char **names = hcs_xmalloc(cap * sizeof *names);
  for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1) {
    if (layer_is_overlay_xattr(list + i)) continue;
    if (k == cap) names = hcs_xrealloc(names, (cap *= 2) * sizeof *names);
    names[k++] = list + i;
  }
  qsort(names, k, sizeof *names, cmp_name);
  cleanup_free char *val = k ? hcs_xmalloc(65536) : NULL; /* XATTR_SIZE_MAX */
  for (size_t i = 0; i < k; i++) {
    ssize_t vn = fgetxattr(fd, names[i], val, 65536);
    if (vn < 0) return hcs_error_make(err, errno, "read xattr `%s` of `%s`", names[i], rel);
    archive_entry_xattr_add_entry(ae, names[i], val, (size_t)vn);
  }
  return 0;
}

static int write_header(struct exporter *x, struct archive_entry *ae, const char *rel, hcs_error_t *err) {
  int r = archive_write_header(x->a, ae);
  if (r < ARCHIVE_WARN) return hcs_error_make(err, 0, "write entry `%s`: %s", rel, archive_error_string(x->a));
  return 0;
}

static int emit_empty(struct exporter *x, const char *name, const struct stat *st, hcs_error_t *err) {
  struct archive_entry *ae = archive_entry_new();
  set_common(x, ae, name, st);
  archive_entry_set_filetype(ae, AE_IFREG);
  archive_entry_set_perm(ae, 0644);
  archive_entry_set_uid(ae, 0);
  archive_entry_set_gid(ae, 0);
  archive_entry_set_size(ae, 0);
  int r = write_header(x, ae, name, err);
  archive_entry_free(ae);
  return r;
}

/* --- sparse files -------------------------------------------------------
 * A file with at least SPARSE_MIN_HOLES of holes is written as a PAX sparse
 * entry (GNU format 1.0: GNU.sparse.* records and a map before the data, as
 * GNU tar, libarchive and Go's archive/tar read), so a 1 TiB file of holes
 * costs its data, not a TiB of zeros.  Other files (no holes, or a few
 * small ones) stay plain entries: their bytes, hence their digests, do not
 * change, and tools that ignore the sparse records see ordinary files. */
#define SPARSE_MIN_HOLES (1u << 20)
#define HOLE_CHUNK (1u << 30)

struct extent {
  off_t off, len;
};

/* The data extents of the file when it is to be exported sparse (returns 1),
 * else 0 (a plain entry). */
static int sparse_map(int fd, const struct node *nd, struct extent **out, size_t *n, hcs_error_t *err) {
  *out = NULL;
  *n = 0;
  off_t size = nd->st.st_size;
  /* the blocks allocated bound the data: most files are ruled out here */
  if ((uint64_t)nd->st.st_blocks * 512 + SPARSE_MIN_HOLES > (uint64_t)size) return 0;
  struct extent *v = NULL;
  size_t k = 0, cap = 0;
  uint64_t data = 0;
  for (off_t off = 0; off < size;) {
    off_t d = lseek(fd, off, SEEK_DATA);
    if (d < 0 && errno == ENXIO) break; /* holes to the end */
    if (d < 0 && (errno == EINVAL || errno == EOPNOTSUPP)) {
      free(v); /* no hole support here: a plain file */
      return 0;
    }
    if (d < 0) {
      free(v);
      return hcs_error_make(err, errno, "find data in `%s`", nd->rel);
    }
    if (d >= size) break;
    off_t h = lseek(fd, d, SEEK_HOLE);
    if (h < 0) {
      free(v);
      return hcs_error_make(err, errno, "find holes in `%s`", nd->rel);
    }
    if (h > size) h = size;
    if (k == cap) v = hcs_xrealloc(v, (cap = cap ? 2 * cap : 16) * sizeof *v);
    v[k++] = (struct extent){d, h - d};
    data += (uint64_t)(h - d);
    off = h;
  }
  if ((uint64_t)size - data < SPARSE_MIN_HOLES) {
    free(v);
    return 0;
  }
  *out = v;
  *n = k;
  return 1;
}

static void count_progress(struct exporter *x, uint64_t n) {
  x->done += n;
  if (x->opts->progress && x->done - x->last_progress >= (4u << 20)) {
    x->last_progress = x->done;
    x->opts->progress(x->done, x->total, x->opts->progress_data);
  }
}

/* The pax writer takes the whole logical content and drops what falls in
 * holes without reading it; the zeros come from a read-only anonymous
 * mapping (the zero page: nothing is allocated) so a hole is a handful of
 * calls whatever its size, and still correct for a writer that reads. */
static int emit_hole(struct exporter *x, uint64_t len, const struct node *nd, hcs_error_t *err) {
  if (len == 0) return 0;
  if (x->zeros == NULL) {
    void *z = mmap(NULL, HOLE_CHUNK, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (z == MAP_FAILED) return hcs_error_make(err, errno, "map zeros for `%s`", nd->rel);
    x->zeros = z;
  }
  while (len > 0) {
    size_t k = len < HOLE_CHUNK ? (size_t)len : HOLE_CHUNK;
    la_ssize_t w = archive_write_data(x->a, x->zeros, k);
    if (w <= 0) return hcs_error_make(err, 0, "write `%s`: %s", nd->rel, archive_error_string(x->a));
    len -= (uint64_t)w;
    count_progress(x, (uint64_t)w);
  }
  return 0;
}

/* File data into the stream.  With gzip, data that looks random is marked
 * for storing: the whole of a file up to 64 KiB (a tail under 4 KiB goes
 * with the piece before it), bigger files in 64 KiB pieces; the pieces are
 * at fixed offsets of the file, so the marks depend on its content alone. */
#define CLASSIFY_PIECE (64u << 10)

static size_t classify_piece(size_t left) { return left > CLASSIFY_PIECE + 4096 ? CLASSIFY_PIECE : left; }

static int write_data(struct exporter *x, const unsigned char *p, size_t n, const struct node *nd, hcs_error_t *err) {
  bool r = x->classify && n > 0 && layer_looks_random(p, classify_piece(n));
  while (n > 0) {
    size_t k = n;
    if (x->classify) {
      /* the following pieces of the same kind go in one call; the first
       * of another kind, already classified, starts the next one */
      bool next = r;
      for (k = classify_piece(n); k < n; k += classify_piece(n - k))
        if ((next = layer_looks_random(p + k, classify_piece(n - k))) != r) break;
      x->stored = r;
      r = next;
    }
    la_ssize_t w = archive_write_data(x->a, p, k);
    x->stored = false;
    if (w < 0) return hcs_error_make(err, 0, "write `%s`: %s", nd->rel, archive_error_string(x->a));
    p += k;
    n -= k;
  }
  return 0;
}

static int emit_range(struct exporter *x, int fd, off_t off, uint64_t len, const struct node *nd, hcs_error_t *err) {
  while (len > 0) {
    /* whole reads (a short one is continued), so the pieces write_data
     * classifies start at the same offsets of the range on any machine */
    size_t want = len < (1u << 20) ? (size_t)len : (1u << 20), n = 0;
    while (n < want) {
      ssize_t r = pread(fd, x->buf + n, want - n, off + (off_t)n);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return hcs_error_make(err, errno, "read `%s`", nd->rel);
      if (r == 0) return hcs_error_make(err, 0, "read `%s`: file shrank while exporting", nd->rel);
      n += (size_t)r;
    }
    if (write_data(x, x->buf, n, nd, err) < 0) return -1;
    if (x->mfd >= 0 && layer_mirror_file_write(x->mfd, x->buf, n, off, nd->rel, err) < 0) return -1;
    off += (off_t)n;
    len -= n;
    count_progress(x, n);
  }
  return 0;
}

/* A capture's small file: read whole into a buffer the copy takes to a
 * worker thread, after it went into the stream. */
static int emit_small(struct exporter *x, struct archive_entry *ae, int fd, const struct node *nd, hcs_error_t *err) {
  size_t size = (size_t)nd->st.st_size, len = 0;
  unsigned char *data = hcs_xmalloc(size ? size : 1);
  while (len < size) {
    ssize_t n = pread(fd, data + len, size - len, (off_t)len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      free(data);
      if (n < 0) return hcs_error_make(err, errno, "read `%s`", nd->rel);
      return hcs_error_make(err, 0, "read `%s`: file shrank while exporting", nd->rel);
    }
    len += (size_t)n;
  }
  if (size && archive_write_data(x->a, data, size) < 0) {
    free(data);
    return hcs_error_make(err, 0, "write `%s`: %s", nd->rel, archive_error_string(x->a));
  }
  count_progress(x, size);
  return layer_mirror_file_data(x->m, nd->rel, &nd->st, ae, data, err);
}

static int emit_sparse(struct exporter *x, struct archive_entry *ae, int fd, const struct node *nd,
                       const struct extent *v, size_t n, hcs_error_t *err) {
  off_t size = nd->st.st_size;
  archive_entry_set_size(ae, size);
  for (size_t i = 0; i < n; i++)
    archive_entry_sparse_add_entry(ae, v[i].off, v[i].len);
  /* a map ends at the file's size (a file of holes alone still has one) */
  if (n == 0 || v[n - 1].off + v[n - 1].len < size) archive_entry_sparse_add_entry(ae, size, 0);
  if (write_header(x, ae, nd->rel, err) < 0) return -1;
  off_t pos = 0;
  for (size_t i = 0; i < n; i++) {
    if (emit_hole(x, (uint64_t)(v[i].off - pos), nd, err) < 0) return -1;
    if (emit_range(x, fd, v[i].off, (uint64_t)v[i].len, nd, err) < 0) return -1;
    pos = v[i].off + v[i].len;
  }
  return emit_hole(x, (uint64_t)(size - pos), nd, err);
}

static int emit_dir(struct exporter *x, int dfd, const char *rel, struct inomap *links, hcs_error_t *err);

/* One entry of directory dfd (name, with the type its directory listing
 * gave) into the stream, and a directory's contents after it. */
static int emit(struct exporter *x, int dfd, const struct dent *de, const char *rel, struct inomap *links,
                hcs_error_t *err) {
  struct node node = {.rel = rel};
  struct node *nd = &node;
  struct stat *st = &node.st;
  const char *base = de->name;
  unsigned char type = de->type;
  if (type != DT_DIR && type != DT_REG) { /* the rest is not opened: its stat is all there is */
    if (fstatat(dfd, base, st, AT_SYMLINK_NOFOLLOW) < 0) return hcs_error_make(err, errno, "stat `%s`", rel);
    type = S_ISDIR(st->st_mode) ? DT_DIR : S_ISREG(st->st_mode) ? DT_REG : DT_UNKNOWN;
  }
  if (layer_is_whiteout(st)) { /* before hardlinks: overlay may share one whiteout inode */
    cleanup_free char *wh = layer_whiteout_entry(nd->rel);
    if (emit_empty(x, wh, st, err) < 0) return -1;
    return x->m ? layer_mirror_whiteout(x->m, nd->rel, st, err) : 0;
  }
  if (S_ISSOCK(st->st_mode)) return 0;
  /* A running container may swap an entry between the listing and this
   * open (a regular file for a device node or a FIFO): open one name
   * beneath the directory without blocking or following, then take the
   * type and size from the fd, so no device's bytes can enter the layer. */
  cleanup_close int fd = -1;
  if (type == DT_DIR || type == DT_REG) {
    fd = layer_openat2(dfd, base, (type == DT_DIR ? O_DIRECTORY : 0) | O_RDONLY | O_NOFOLLOW | O_NONBLOCK,
                       LAYER_RESOLVE);
    if (fd < 0 && (errno == ENOTDIR || errno == ELOOP))
      return hcs_error_make(err, EAGAIN, "export `%s`: it changed type while being read (pause its system)", rel);
    if (fd < 0) return hcs_error_make(err, errno, "open `%s`", rel);
    if (fstat(fd, st) < 0) return hcs_error_make(err, errno, "stat `%s`", rel);
    if (!(type == DT_DIR ? S_ISDIR(st->st_mode) : S_ISREG(st->st_mode)))
      return hcs_error_make(err, EAGAIN, "export `%s`: it changed type while being read (pause its system)", rel);
    if (type == DT_DIR) node.opaque = layer_is_opaque(fd);
  }
  struct archive_entry *ae = archive_entry_new();
  set_common(x, ae, nd->rel, st);
  archive_entry_set_perm(ae, st->st_mode & 07777);
  int ret = -1;
  if (fd >= 0 && add_xattrs(ae, fd, nd->rel, err) < 0) goto out;
  if (S_ISDIR(st->st_mode)) {
    archive_entry_set_filetype(ae, AE_IFDIR);
    if (write_header(x, ae, nd->rel, err) < 0) goto out;
    if (nd->opaque) {
      cleanup_free char *opq = hcs_xasprintf("%s/" WH_OPAQUE, nd->rel);
      if (emit_empty(x, opq, st, err) < 0) goto out;
    }
    if (x->m && layer_mirror_dir(x->m, nd->rel, st, ae, nd->opaque, err) < 0) goto out;
    archive_entry_free(ae);
    ae = NULL;
    if (emit_dir(x, fd, nd->rel, links, err) < 0) goto out;
  } else if (S_ISREG(st->st_mode)) {
    const char *first = st->st_nlink > 1 ? inomap_get_or_put(links, st, nd->rel) : NULL;
    archive_entry_set_filetype(ae, AE_IFREG);
    if (first) {
      archive_entry_set_hardlink(ae, first);
      archive_entry_set_size(ae, 0);
      if (write_header(x, ae, nd->rel, err) < 0) goto out;
      if (x->m && layer_mirror_link(x->m, nd->rel, first, err) < 0) goto out;
    } else {
      cleanup_free struct extent *map = NULL;
      size_t nmap = 0;
      int sparse = sparse_map(fd, nd, &map, &nmap, err);
      if (sparse < 0) goto out;
      if (x->m && !sparse && layer_mirror_pooled(x->m, st->st_size)) {
        archive_entry_set_size(ae, st->st_size);
        if (write_header(x, ae, nd->rel, err) < 0 || emit_small(x, ae, fd, nd, err) < 0) goto out;
      } else {
        if (x->m && (x->mfd = layer_mirror_file_open(x->m, nd->rel, err)) < 0) goto out;
        if (sparse) {
          if (emit_sparse(x, ae, fd, nd, map, nmap, err) < 0) goto out;
        } else {
          archive_entry_set_size(ae, st->st_size);
          if (write_header(x, ae, nd->rel, err) < 0 || emit_range(x, fd, 0, (uint64_t)st->st_size, nd, err) < 0)
            goto out;
        }
        if (x->mfd >= 0) {
          int r = layer_mirror_file_close(x->mfd, nd->rel, st, ae, err);
          close(x->mfd);
          x->mfd = -1;
          if (r < 0) goto out;
        }
      }
    }
  } else if (S_ISLNK(st->st_mode)) {
    /* on the heap: emit recurses through emit_dir, once per level of a
     * tree a container may have made as deep as it liked */
    cleanup_free char *target = hcs_xmalloc(PATH_MAX + 1);
    ssize_t n = readlinkat(dfd, base, target, PATH_MAX);
    if (n < 0) {
      hcs_error_make(err, errno, "readlink `%s`", nd->rel);
      goto out;
    }
    target[n] = '\0';
    archive_entry_set_filetype(ae, AE_IFLNK);
    archive_entry_set_symlink(ae, target);
    if (write_header(x, ae, nd->rel, err) < 0) goto out;
    if (x->m && layer_mirror_symlink(x->m, nd->rel, target, st, err) < 0) goto out;
  } else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) || S_ISFIFO(st->st_mode)) {
    archive_entry_set_filetype(ae, st->st_mode & S_IFMT);
    if (!S_ISFIFO(st->st_mode)) archive_entry_set_rdev(ae, st->st_rdev);
    if (write_header(x, ae, nd->rel, err) < 0) goto out;
    if (x->m && layer_mirror_node(x->m, nd->rel, st, err) < 0) goto out;
  }
  ret = 0;
out:
  if (x->mfd >= 0) {
    close(x->mfd);
    x->mfd = -1;
  }
  if (ae) archive_entry_free(ae);
  return ret;
}

/* The entries of directory dfd (at rel), in name order, each followed by
 * its contents when it is a directory: the order of the whole stream. */
static int emit_dir(struct exporter *x, int dfd, const char *rel, struct inomap *links, hcs_error_t *err) {
  struct dent *v;
  size_t n;
  if (list_dir(dfd, rel, &v, &n, err) < 0) return -1;
  int ret = 0;
  for (size_t i = 0; i < n; i++) {
    if (ret == 0) {
      cleanup_free char *child = rel[0] ? hcs_xasprintf("%s/%s", rel, v[i].name) : hcs_xstrdup(v[i].name);
      ret = emit(x, dfd, &v[i], child, links, err);
    }
    free(v[i].name);
  }
  free(v);
  return ret;
}

static int export_impl(hcs_layer_store_t *s, const char *id, int fd, const hcs_layer_export_opts_t *opts,
                       struct layer_mirror *mirror, hcs_layer_export_result_t *result, hcs_error_t *err) {
  hcs_layer_export_opts_t defaults;
  memset(&defaults, 0, sizeof defaults);
  if (opts == NULL) opts = &defaults;
  if ((unsigned)opts->compression > HCS_LAYER_COMPRESSION_ZSTD)
    return hcs_error_make(err, 0, "export layer `%s`: unknown compression %d", id, (int)opts->compression);
  {
    cleanup_close int lk = layer_store_lock(s, true, err);
    if (lk < 0) return -1;
    cleanup_json json_t *m = layer_meta_load(s, id, err);
    if (m == NULL) return hcs_error_wrap(err, "export layer");
  }
  cleanup_free char *diff = hcs_xasprintf("%s/%s/diff", s->path, id);
  struct exporter x;
  memset(&x, 0, sizeof x);
  x.opts = opts;
  x.m = mirror;
  x.mfd = -1;
  x.rootfd = open(diff, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (x.rootfd < 0) return hcs_error_make(err, errno, "export layer `%s`: open `%s`", id, diff);
  struct inomap links;
  memset(&links, 0, sizeof links);
  int ret = -1;
  if (opts->progress) {
    x.total = count_bytes(x.rootfd);
    lseek(x.rootfd, 0, SEEK_SET); /* the listing starts over */
  }
  x.buf = hcs_xmalloc(1u << 20);
  x.w = layer_writer_start(fd, opts->compression, opts->level, opts->threads, err);
  if (x.w == NULL) goto out;
  x.classify = layer_writer_stores(x.w);
  x.a = archive_write_new();
  if (x.a == NULL) abort();
  archive_write_set_format_pax_restricted(x.a);
  archive_write_set_bytes_per_block(x.a, 0); /* our writer buffers; no padding */
  if (archive_write_open2(x.a, &x, NULL, write_cb, NULL, NULL) != ARCHIVE_OK) {
    hcs_error_make(err, 0, "open archive: %s", archive_error_string(x.a));
    goto out;
  }
  if (emit_dir(&x, x.rootfd, "", &links, err) < 0) goto out;
  if (archive_write_close(x.a) != ARCHIVE_OK) {
    hcs_error_make(err, 0, "finish archive: %s", archive_error_string(x.a));
    goto out;
  }
  if (layer_writer_finish(x.w, result, err) < 0) goto out;
  if (mirror && layer_mirror_finish(mirror, err) < 0) goto out;
  if (opts->progress) opts->progress(x.done, x.total, opts->progress_data);
  ret = 0;
out:
  if (ret < 0) hcs_error_wrap(err, "export layer `%s`", id);
  if (x.a) archive_write_free(x.a);
  layer_writer_free(x.w);
  free(x.buf);
  if (x.zeros) munmap(x.zeros, HOLE_CHUNK);
  inomap_free(&links);
  close(x.rootfd);
  return ret;
}

int hcs_layer_export(hcs_layer_store_t *s, const char *id, int fd, const hcs_layer_export_opts_t *opts,
                     hcs_layer_export_result_t *result, hcs_error_t *err) {
  return export_impl(s, id, fd, opts, NULL, result, err);
}

int layer_export_mirrored(hcs_layer_store_t *s, const char *id, const hcs_layer_export_opts_t *opts,
                          struct layer_mirror *mirror, hcs_layer_export_result_t *result, hcs_error_t *err) {
  return export_impl(s, id, -1, opts, mirror, result, err);
}

int hcs_layer_export_file(hcs_layer_store_t *s, const char *id, const char *path, const hcs_layer_export_opts_t *opts,
                          hcs_layer_export_result_t *result, hcs_error_t *err) {
  /* A device, fifo or socket (/dev/null, a pipe) is written in place: the
   * atomic rename below would replace the node itself with a file. */
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    if (S_ISDIR(st.st_mode)) return hcs_error_make(err, EISDIR, "export layer `%s`: write `%s`", id, path);
    cleanup_close int out = open(path, O_WRONLY | O_CLOEXEC);
    if (out < 0) return hcs_error_make(err, errno, "export layer `%s`: open `%s`", id, path);
    return hcs_layer_export(s, id, out, opts, result, err);
  }
  cleanup_free char *tmp = hcs_xasprintf("%s.tmp.%d", path, (int)getpid());
  cleanup_close int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return hcs_error_make(err, errno, "export layer `%s`: create `%s`", id, tmp);
  if (hcs_layer_export(s, id, fd, opts, result, err) < 0) {
    unlink(tmp);
    return -1;
  }
  if (fsync(fd) < 0 || rename(tmp, path) < 0) {
    int e = errno;
    unlink(tmp);
    return hcs_error_make(err, e, "export layer `%s`: write `%s`", id, path);
  }
  return 0;
}
