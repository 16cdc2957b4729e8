/* ExportLayer: a layer directory (read-only `diff/` or a scratch upper) ->
 * an OCI layer tar.  The tree is walked in sorted order (byte order of
 * names, a directory before its contents) so the same tree always gives the
 * same bytes; overlay whiteouts (0/0 character devices) become `.wh.NAME`
 * and opaque directories get a `.wh..wh..opq` entry right after them;
 * overlay's own trusted.overlay.* attributes are never exported. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "layer/internal.h"
#include "layer/path.h"

struct node {
  char *rel; /* path inside the layer, no leading ./ */
  struct stat st;
  bool opaque;
};

struct walk {
  struct node *v;
  size_t n, cap;
  uint64_t total;
};

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int walk_dir(struct walk *w, int dfd, const char *rel, hcs_error_t *err) {
  int dup_fd = dup(dfd);
  if (dup_fd < 0) return hcs_error_make(err, errno, "dup");
  cleanup_dir DIR *d = fdopendir(dup_fd);
  if (d == NULL) {
    close(dup_fd);
    return hcs_error_make(err, errno, "open directory `%s`", rel[0] ? rel : ".");
  }
  size_t cap = 32, n = 0;
  char **names = hcs_xmalloc(cap * sizeof *names);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (n == cap) names = hcs_xrealloc(names, (cap *= 2) * sizeof *names);
    names[n++] = hcs_xstrdup(de->d_name);
  }
  qsort(names, n, sizeof *names, cmp_name);
  int ret = 0;
  for (size_t i = 0; i < n; i++) {
    if (ret < 0) {
      free(names[i]);
      continue;
    }
    struct node nd;
    memset(&nd, 0, sizeof nd);
    nd.rel = rel[0] ? hcs_xasprintf("%s/%s", rel, names[i]) : hcs_xstrdup(names[i]);
    if (fstatat(dfd, names[i], &nd.st, AT_SYMLINK_NOFOLLOW) < 0) {
      ret = hcs_error_make(err, errno, "stat `%s`", nd.rel);
      free(nd.rel);
      free(names[i]);
      continue;
    }
    int cfd = -1;
    if (S_ISDIR(nd.st.st_mode)) {
      cfd = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (cfd < 0) ret = hcs_error_make(err, errno, "open `%s`", nd.rel);
      nd.opaque = cfd >= 0 && layer_is_opaque(cfd);
    } else if (S_ISREG(nd.st.st_mode)) {
      w->total += (uint64_t)nd.st.st_size;
    }
    if (w->n == w->cap) w->v = hcs_xrealloc(w->v, (w->cap = w->cap ? 2 * w->cap : 1024) * sizeof *w->v);
    w->v[w->n++] = nd;
    if (cfd >= 0) {
      if (ret == 0) ret = walk_dir(w, cfd, nd.rel, err);
      close(cfd);
    }
    free(names[i]);
  }
  free(names);
  return ret;
}

/* (dev, ino) -> first path, for hardlinks. */
struct inomap {
  struct {
    dev_t dev;
    ino_t ino;
    const char *rel;
  } * slots;
  size_t cap, n;
};

static const char *inomap_get_or_put(struct inomap *m, const struct stat *st, const char *rel) {
  if (m->n * 2 >= m->cap) {
    struct inomap old = *m;
    m->cap = m->cap ? m->cap * 2 : 1024;
    m->slots = hcs_xcalloc(m->cap, sizeof *m->slots);
    m->n = 0;
    for (size_t i = 0; i < old.cap; i++)
      if (old.slots[i].rel) {
        struct stat s2 = {.st_dev = old.slots[i].dev, .st_ino = old.slots[i].ino};
        inomap_get_or_put(m, &s2, old.slots[i].rel);
      }
    free(old.slots);
  }
  size_t h = ((size_t)st->st_ino * 0x9E3779B97F4A7C15ull ^ (size_t)st->st_dev) & (m->cap - 1);
  for (;; h = (h + 1) & (m->cap - 1)) {
    if (m->slots[h].rel == NULL) {
      m->slots[h].dev = st->st_dev;
      m->slots[h].ino = st->st_ino;
      m->slots[h].rel = rel;
      m->n++;
      return NULL;
    }
    if (m->slots[h].dev == st->st_dev && m->slots[h].ino == st->st_ino) return m->slots[h].rel;
  }
}

struct exporter {
  struct archive *a;
  struct layer_writer *w;
  const hcs_layer_export_opts_t *opts;
  int rootfd;
  unsigned char *buf;
  uint64_t done, total, last_progress;
};

static la_ssize_t write_cb(struct archive *a, void *data, const void *buf, size_t n) {
  struct exporter *e = data;
  if (layer_writer_write(e->w, buf, n) < 0) {
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

static int emit_file_data(struct exporter *x, int fd, const struct node *nd, hcs_error_t *err) {
  uint64_t left = (uint64_t)nd->st.st_size;
  while (left > 0) {
    ssize_t n = read(fd, x->buf, left < (1u << 20) ? left : (1u << 20));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return hcs_error_make(err, errno, "read `%s`", nd->rel);
    if (n == 0) return hcs_error_make(err, 0, "read `%s`: file shrank while exporting", nd->rel);
    if (archive_write_data(x->a, x->buf, (size_t)n) < 0)
      return hcs_error_make(err, 0, "write `%s`: %s", nd->rel, archive_error_string(x->a));
    left -= (uint64_t)n;
    x->done += (uint64_t)n;
    if (x->opts->progress && x->done - x->last_progress >= (4u << 20)) {
      x->last_progress = x->done;
      x->opts->progress(x->done, x->total, x->opts->progress_data);
    }
  }
  return 0;
}

static int emit(struct exporter *x, const struct node *nd, struct inomap *links, hcs_error_t *err) {
  const struct stat *st = &nd->st;
  const char *slash = strrchr(nd->rel, '/');
  const char *base = slash ? slash + 1 : nd->rel;
  if (layer_is_whiteout(st)) { /* before hardlinks: overlay may share one whiteout inode */
    cleanup_free char *wh = layer_whiteout_entry(nd->rel);
    return emit_empty(x, wh, st, err);
  }
  if (S_ISSOCK(st->st_mode)) return 0;
  /* A running container may swap an entry between the walk's stat and
   * this open (a regular file for a device node or a FIFO): open without
   * blocking or following, then take the type and size from the fd, never
   * from the earlier stat, so no device's bytes can enter the layer. */
  struct node fresh;
  cleanup_close int fd = -1;
  if (S_ISDIR(st->st_mode) || S_ISREG(st->st_mode)) {
    fd = layer_openat2(x->rootfd, nd->rel,
                       (S_ISDIR(st->st_mode) ? O_DIRECTORY : 0) | O_RDONLY | O_NOFOLLOW | O_NONBLOCK, LAYER_RESOLVE);
    if (fd < 0) return hcs_error_make(err, errno, "open `%s`", nd->rel);
    fresh = *nd;
    if (fstat(fd, &fresh.st) < 0) return hcs_error_make(err, errno, "stat `%s`", nd->rel);
    if ((fresh.st.st_mode & S_IFMT) != (st->st_mode & S_IFMT))
      return hcs_error_make(err, EAGAIN, "export `%s`: it changed type while being read (pause its system)", nd->rel);
    nd = &fresh;
    st = &fresh.st;
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
  } else if (S_ISREG(st->st_mode)) {
    const char *first = st->st_nlink > 1 ? inomap_get_or_put(links, st, nd->rel) : NULL;
    archive_entry_set_filetype(ae, AE_IFREG);
    if (first) {
      archive_entry_set_hardlink(ae, first);
      archive_entry_set_size(ae, 0);
      if (write_header(x, ae, nd->rel, err) < 0) goto out;
    } else {
      archive_entry_set_size(ae, st->st_size);
      if (write_header(x, ae, nd->rel, err) < 0 || emit_file_data(x, fd, nd, err) < 0) goto out;
    }
  } else if (S_ISLNK(st->st_mode)) {
    char target[PATH_MAX + 1];
    cleanup_close int pfd = -1;
    ssize_t n;
    {
      cleanup_free char *parent = slash ? strndup(nd->rel, (size_t)(slash - nd->rel)) : hcs_xstrdup("");
      pfd = layer_resolve_dir(x->rootfd, parent, false, O_PATH);
      n = pfd >= 0 ? readlinkat(pfd, base, target, PATH_MAX) : -1;
    }
    if (n < 0) {
      hcs_error_make(err, errno, "readlink `%s`", nd->rel);
      goto out;
    }
    target[n] = '\0';
    archive_entry_set_filetype(ae, AE_IFLNK);
    archive_entry_set_symlink(ae, target);
    if (write_header(x, ae, nd->rel, err) < 0) goto out;
  } else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) || S_ISFIFO(st->st_mode)) {
    archive_entry_set_filetype(ae, st->st_mode & S_IFMT);
    if (!S_ISFIFO(st->st_mode)) archive_entry_set_rdev(ae, st->st_rdev);
    if (write_header(x, ae, nd->rel, err) < 0) goto out;
  }
  ret = 0;
out:
  archive_entry_free(ae);
  return ret;
}

int hcs_layer_export(hcs_layer_store_t *s, const char *id, int fd, const hcs_layer_export_opts_t *opts,
                     hcs_layer_export_result_t *result, hcs_error_t *err) {
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
  x.rootfd = open(diff, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (x.rootfd < 0) return hcs_error_make(err, errno, "export layer `%s`: open `%s`", id, diff);
  struct walk w;
  memset(&w, 0, sizeof w);
  struct inomap links;
  memset(&links, 0, sizeof links);
  int ret = -1;
  if (walk_dir(&w, x.rootfd, "", err) < 0) goto out;
  x.total = w.total;
  x.buf = hcs_xmalloc(1u << 20);
  x.w = layer_writer_start(fd, opts->compression, opts->level, opts->threads, err);
  if (x.w == NULL) goto out;
  x.a = archive_write_new();
  if (x.a == NULL) abort();
  archive_write_set_format_pax_restricted(x.a);
  archive_write_set_bytes_per_block(x.a, 0); /* our writer buffers; no padding */
  if (archive_write_open2(x.a, &x, NULL, write_cb, NULL, NULL) != ARCHIVE_OK) {
    hcs_error_make(err, 0, "open archive: %s", archive_error_string(x.a));
    goto out;
  }
  for (size_t i = 0; i < w.n; i++)
    if (emit(&x, &w.v[i], &links, err) < 0) goto out;
  if (archive_write_close(x.a) != ARCHIVE_OK) {
    hcs_error_make(err, 0, "finish archive: %s", archive_error_string(x.a));
    goto out;
  }
  if (layer_writer_finish(x.w, result, err) < 0) goto out;
  if (opts->progress) opts->progress(x.done, x.total, opts->progress_data);
  ret = 0;
out:
  if (ret < 0) hcs_error_wrap(err, "export layer `%s`", id);
  if (x.a) archive_write_free(x.a);
  layer_writer_free(x.w);
  free(x.buf);
  for (size_t i = 0; i < w.n; i++)
    free(w.v[i].rel);
  free(w.v);
  free(links.slots);
  close(x.rootfd);
  return ret;
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
