/* Unpack an image archive (an OCI archive or a docker-archive) into a
 * private directory of the image store.  The archive is hostile: every
 * entry is created beneath the directory through openat2(RESOLVE_BENEATH,
 * no symlinks) one component at a time, files with O_CREAT|O_EXCL|O_NOFOLLOW,
 * so no entry (an absolute name, `..`, a symlink planted by an earlier
 * entry, a hard link to a host file) can ever make hcs write outside it.
 * Only what an image archive holds is unpacked: directories, regular files,
 * symlinks (docker keeps `<id>/layer.tar -> ../blobs/...`; they are only
 * ever read back through openat2 beneath the directory) and hard links,
 * which become copies of a file already unpacked.  libarchive's
 * archive_write_disk is never used: it follows a hard link's target
 * wherever it points. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "image/internal.h"

#define RESOLVE_STRICT (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

static int openat2_strict(int dirfd, const char *path, int flags) {
  struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_STRICT};
  int fd;
  do
    fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  return fd;
}

/* Normalize an entry name: drop `./`, empty components and trailing
 * slashes.  NULL for an absolute name or any `..` component. */
static char *clean_name(const char *in) {
  if (in == NULL || in[0] == '/') return NULL;
  char *out = hcs_xcalloc(1, strlen(in) + 1);
  size_t n = 0;
  for (const char *p = in; *p;) {
    const char *end = strchrnul(p, '/');
    size_t len = (size_t)(end - p);
    if (len == 2 && p[0] == '.' && p[1] == '.') {
      free(out);
      return NULL;
    }
    if (len > 0 && !(len == 1 && p[0] == '.')) {
      if (n) out[n++] = '/';
      memcpy(out + n, p, len);
      n += len;
    }
    p = *end ? end + 1 : end;
  }
  out[n] = '\0';
  return out;
}

/* The directory `rel` beneath rootfd, made (0700) where missing; an
 * existing component that is not a directory (a symlink included) fails. */
static int make_dirs(int rootfd, const char *rel) {
  int cur = dup(rootfd);
  if (cur < 0 || rel[0] == '\0') return cur;
  cleanup_free char *copy = hcs_xstrdup(rel);
  char *save = NULL;
  for (char *comp = strtok_r(copy, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
    int next = openat2_strict(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW);
    if (next < 0 && errno == ENOENT) {
      if (mkdirat(cur, comp, 0700) < 0 && errno != EEXIST) goto fail;
      next = openat2_strict(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW);
    }
    if (next < 0) goto fail;
    close(cur);
    cur = next;
  }
  return cur;
fail : {
  int e = errno;
  close(cur);
  errno = e;
  return -1;
}
}

/* Split a cleaned name into its parent directory's fd and base name. */
static int open_parent(int rootfd, const char *name, const char **base) {
  const char *slash = strrchr(name, '/');
  *base = slash ? slash + 1 : name;
  cleanup_free char *parent = slash ? strndup(name, (size_t)(slash - name)) : hcs_xstrdup("");
  return make_dirs(rootfd, parent);
}

/* A later entry of the same name replaces an earlier file (tar semantics);
 * a directory is never replaced. */
static int make_room(int pfd, const char *base) {
  struct stat st;
  if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) return errno == ENOENT ? 0 : -1;
  if (S_ISDIR(st.st_mode)) {
    errno = EISDIR;
    return -1;
  }
  return unlinkat(pfd, base, 0);
}

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

/* A new regular file `name` beneath rootfd, open for writing. */
static int create_file(int rootfd, const char *name) {
  const char *base;
  cleanup_close int pfd = open_parent(rootfd, name, &base);
  if (pfd < 0 || make_room(pfd, base) < 0) return -1;
  return openat2_strict(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW);
}

/* A hard link becomes a copy of its target, which must be a regular file
 * unpacked earlier beneath the root. */
static int copy_link(int rootfd, const char *target, int out) {
  cleanup_close int in = openat2_strict(rootfd, target, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  if (in < 0) return -1;
  struct stat st;
  if (fstat(in, &st) < 0) return -1;
  if (!S_ISREG(st.st_mode)) {
    errno = EINVAL;
    return -1;
  }
  char buf[1 << 16];
  for (;;) {
    ssize_t r = read(in, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) return 0;
    if (write_all(out, buf, (size_t)r) < 0) return -1;
  }
}

/* The entry's data into fd (sparse entries come as blocks with offsets). */
static int copy_data(struct archive *a, int fd, const char *name, const char *tar_path, hcs_error_t *err) {
  const void *buf;
  size_t size;
  int64_t off;
  int r;
  while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK)
    if (pwrite(fd, buf, size, off) != (ssize_t)size)
      return hcs_error_make(err, errno, "extract `%s` from `%s`: write", name, tar_path);
  if (r != ARCHIVE_EOF)
    return hcs_error_make(err, 0, "extract `%s` from `%s`: %s", name, tar_path, archive_error_string(a));
  return 0;
}

static int extract_entry(struct archive *a, struct archive_entry *e, int rootfd, const char *tar_path,
                         hcs_error_t *err) {
  const char *raw = archive_entry_pathname(e);
  cleanup_free char *name = clean_name(raw);
  if (name == NULL)
    return hcs_error_make(err, 0, "extract `%s` from `%s`: the entry escapes the archive root", raw ? raw : "",
                          tar_path);
  if (name[0] == '\0') return 0; /* the root itself */
  const char *link = archive_entry_hardlink(e);
  if (link) {
    /* Also a pax "hard link with data": never a link, only a copy of a file
     * beneath the root, or the entry's own data. */
    cleanup_free char *target = clean_name(link);
    if (target == NULL || target[0] == '\0')
      return hcs_error_make(err, 0, "extract `%s` from `%s`: its hard link target `%s` escapes the archive root", name,
                            tar_path, link);
    cleanup_close int fd = create_file(rootfd, name);
    if (fd < 0) return hcs_error_make(err, errno, "extract `%s` from `%s`", name, tar_path);
    if (archive_entry_size(e) > 0) return copy_data(a, fd, name, tar_path, err);
    if (copy_link(rootfd, target, fd) < 0)
      return hcs_error_make(err, errno, "extract `%s` from `%s`: copy its hard link target `%s`", name, tar_path,
                            target);
    return 0;
  }
  mode_t type = archive_entry_filetype(e);
  switch (type) {
  case AE_IFDIR: {
    cleanup_close int fd = make_dirs(rootfd, name);
    if (fd < 0) return hcs_error_make(err, errno, "extract directory `%s` from `%s`", name, tar_path);
    return 0;
  }
  case AE_IFREG: {
    cleanup_close int fd = create_file(rootfd, name);
    if (fd < 0) return hcs_error_make(err, errno, "extract `%s` from `%s`", name, tar_path);
    return copy_data(a, fd, name, tar_path, err);
  }
  case AE_IFLNK: {
    const char *target = archive_entry_symlink(e);
    const char *base;
    cleanup_close int pfd = open_parent(rootfd, name, &base);
    if (pfd < 0 || make_room(pfd, base) < 0 || symlinkat(target ? target : "", pfd, base) < 0)
      return hcs_error_make(err, errno, "extract symlink `%s` from `%s`", name, tar_path);
    return 0;
  }
  default: /* devices, FIFOs: never part of an image archive */
    hcs_debug("extract `%s` from `%s`: skipping an entry of type %o", name, tar_path, (unsigned)type);
    return 0;
  }
}

int hcs_image_extract_tar(const char *tar_path, const char *dir, hcs_error_t *err) {
  cleanup_close int fd = open(tar_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return hcs_error_make(err, errno, "open archive `%s`", tar_path);
  struct stat st;
  if (fstat(fd, &st) < 0) return hcs_error_make(err, errno, "stat archive `%s`", tar_path);
  if (!S_ISREG(st.st_mode)) return hcs_error_make(err, EINVAL, "open archive `%s`: not a regular file", tar_path);
  cleanup_close int rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (rootfd < 0) return hcs_error_make(err, errno, "open `%s`", dir);
  struct archive *a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_filter_all(a);
  int rc = -1;
  if (archive_read_open_fd(a, fd, 1 << 20) != ARCHIVE_OK) {
    hcs_error_make(err, archive_errno(a) > 0 ? archive_errno(a) : 0, "open archive `%s`: %s", tar_path,
                   archive_error_string(a));
    goto out;
  }
  for (;;) {
    struct archive_entry *e;
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      hcs_error_make(err, 0, "read archive `%s`: %s", tar_path, archive_error_string(a));
      goto out;
    }
    if (extract_entry(a, e, rootfd, tar_path, err) < 0) goto out;
  }
  rc = 0;
out:
  archive_read_free(a);
  return rc;
}
