/* Helpers for the layer C tests: temporary roots, crafted tar archives
 * (libarchive), and a manifest of a tree (types, modes, owners, times, xattrs,
 * content digests, hardlink groups) to compare trees exactly. */
#ifndef HCS_TESTS_LAYER_UTIL_H
#define HCS_TESTS_LAYER_UTIL_H

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* A fresh /tmp/hcs-test.XXXXXX (check-leaks looks there). */
static inline char *t_tmpdir(void) {
  char *p = strdup("/tmp/hcs-test.XXXXXX");
  if (mkdtemp(p) == NULL) abort();
  return p;
}

/* Unmount what is left below root (there should be nothing) and remove it.
 * Returns the number of mounts that were left. */
static inline int t_rmroot(const char *root) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "grep -c ' %s' /proc/self/mountinfo", root);
  FILE *f = popen(cmd, "r");
  int left = 0;
  if (f) {
    if (fscanf(f, "%d", &left) != 1) left = 0;
    pclose(f);
  }
  snprintf(cmd, sizeof cmd, "grep -o ' %s[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; rm -rf '%s'",
           root, root);
  if (system(cmd) != 0) fprintf(stderr, "# cleanup of %s failed\n", root);
  return left;
}

static inline int t_mounts_under(const char *root) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "grep -c ' %s' /proc/self/mountinfo", root);
  FILE *f = popen(cmd, "r");
  int n = 0;
  if (f) {
    if (fscanf(f, "%d", &n) != 1) n = 0;
    pclose(f);
  }
  return n;
}

/* One crafted archive entry. */
struct t_entry {
  char type; /* 'f' file, 'd' dir, 'l' symlink, 'h' hardlink, 'c' char dev, 'p' fifo */
  const char *name;
  const char *data;  /* file content, symlink or hardlink target */
  mode_t mode;       /* permission bits (0: default) */
  const char *xattr; /* "name=value" or NULL */
};

/* Write entries as a pax tar ("gzip"/"zstd"/NULL for none), entry i owned
 * by owners[2i]:owners[2i+1] (NULL: all 0:0). */
static inline int t_write_tar_owned(const char *path, const struct t_entry *e, size_t n, const char *filter,
                                    const unsigned *owners) {
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (filter && strcmp(filter, "gzip") == 0) archive_write_add_filter_gzip(a);
  if (filter && strcmp(filter, "zstd") == 0) archive_write_add_filter_zstd(a);
  if (archive_write_open_filename(a, path) != ARCHIVE_OK) return -1;
  for (size_t i = 0; i < n; i++) {
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, e[i].name);
    archive_entry_set_mtime(ae, 1700000000 + (time_t)i, 0);
    size_t size = 0;
    switch (e[i].type) {
    case 'f':
      archive_entry_set_filetype(ae, AE_IFREG);
      size = e[i].data ? strlen(e[i].data) : 0;
      archive_entry_set_perm(ae, e[i].mode ? e[i].mode : 0644);
      break;
    case 'd':
      archive_entry_set_filetype(ae, AE_IFDIR);
      archive_entry_set_perm(ae, e[i].mode ? e[i].mode : 0755);
      break;
    case 'l':
      archive_entry_set_filetype(ae, AE_IFLNK);
      archive_entry_set_symlink(ae, e[i].data);
      archive_entry_set_perm(ae, 0777);
      break;
    case 'h':
      archive_entry_set_filetype(ae, AE_IFREG);
      archive_entry_set_hardlink(ae, e[i].data);
      archive_entry_set_perm(ae, 0644);
      break;
    case 'c':
      archive_entry_set_filetype(ae, AE_IFCHR);
      archive_entry_set_rdev(ae, makedev(1, 3));
      archive_entry_set_perm(ae, 0666);
      break;
    case 'p':
      archive_entry_set_filetype(ae, AE_IFIFO);
      archive_entry_set_perm(ae, 0600);
      break;
    }
    archive_entry_set_size(ae, (la_int64_t)size);
    archive_entry_set_uid(ae, owners ? owners[2 * i] : 0);
    archive_entry_set_gid(ae, owners ? owners[2 * i + 1] : 0);
    if (e[i].xattr) {
      const char *eq = strchr(e[i].xattr, '=');
      char name[256];
      snprintf(name, sizeof name, "%.*s", (int)(eq - e[i].xattr), e[i].xattr);
      archive_entry_xattr_add_entry(ae, name, eq + 1, strlen(eq + 1));
    }
    if (archive_write_header(a, ae) != ARCHIVE_OK) {
      fprintf(stderr, "# write header %s: %s\n", e[i].name, archive_error_string(a));
      return -1;
    }
    if (size) archive_write_data(a, e[i].data, size);
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  return 0;
}

static inline int t_write_tar(const char *path, const struct t_entry *e, size_t n, const char *filter) {
  return t_write_tar_owned(path, e, n, filter, NULL);
}

/* --- manifest of a tree --------------------------------------------------- */
struct t_buf {
  char *s;
  size_t n, cap;
};

static inline void t_printf(struct t_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[8192];
  int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (b->n + (size_t)k + 1 > b->cap) {
    b->cap = (b->n + (size_t)k + 1) * 2;
    b->s = realloc(b->s, b->cap);
  }
  memcpy(b->s + b->n, tmp, (size_t)k + 1);
  b->n += (size_t)k;
}

static int t_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

struct t_ino {
  ino_t ino;
  char path[1024];
};

static inline void t_manifest_dir(struct t_buf *b, const char *root, const char *rel, struct t_ino *inos,
                                  size_t *ninos) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/%s", root, rel);
  DIR *d = opendir(dir);
  if (!d) return;
  char *names[4096];
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) && n < 4096)
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) names[n++] = strdup(de->d_name);
  closedir(d);
  qsort(names, n, sizeof *names, t_cmp);
  for (size_t i = 0; i < n; i++) {
    char r[1024], p[4096];
    snprintf(r, sizeof r, "%s%s%s", rel, rel[0] ? "/" : "", names[i]);
    snprintf(p, sizeof p, "%s/%s", root, r);
    struct stat st;
    lstat(p, &st);
    t_printf(b, "%s %o %o %u:%u mtime=%lld", r, st.st_mode & S_IFMT, st.st_mode & 07777, st.st_uid, st.st_gid,
             (long long)st.st_mtime);
    if (S_ISREG(st.st_mode)) {
      unsigned char md[32];
      unsigned int mdl;
      EVP_MD_CTX *c = EVP_MD_CTX_new();
      EVP_DigestInit_ex(c, EVP_sha256(), NULL);
      int fd = open(p, O_RDONLY);
      char buf[65536];
      ssize_t k;
      while ((k = read(fd, buf, sizeof buf)) > 0)
        EVP_DigestUpdate(c, buf, (size_t)k);
      close(fd);
      EVP_DigestFinal_ex(c, md, &mdl);
      EVP_MD_CTX_free(c);
      t_printf(b, " size=%lld sha=%02x%02x%02x%02x%02x%02x", (long long)st.st_size, md[0], md[1], md[2], md[3], md[4],
               md[5]);
      if (st.st_nlink > 1) {
        const char *first = NULL;
        for (size_t k2 = 0; k2 < *ninos; k2++)
          if (inos[k2].ino == st.st_ino) first = inos[k2].path;
        if (first)
          t_printf(b, " link=%s", first);
        else if (*ninos < 4096) {
          inos[*ninos].ino = st.st_ino;
          snprintf(inos[*ninos].path, sizeof inos[*ninos].path, "%s", r);
          (*ninos)++;
        }
      }
    } else if (S_ISLNK(st.st_mode)) {
      char t[4096];
      ssize_t k = readlink(p, t, sizeof t - 1);
      t[k < 0 ? 0 : k] = '\0';
      t_printf(b, " -> %s", t);
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      t_printf(b, " dev=%u,%u", major(st.st_rdev), minor(st.st_rdev));
    }
    char list[4096];
    ssize_t xl = llistxattr(p, list, sizeof list);
    char *xn[64];
    size_t nx = 0;
    for (ssize_t k = 0; k < xl && nx < 64; k += (ssize_t)strlen(list + k) + 1)
      xn[nx++] = list + k;
    qsort(xn, nx, sizeof *xn, t_cmp);
    for (size_t k = 0; k < nx; k++) {
      char v[1024];
      ssize_t vl = lgetxattr(p, xn[k], v, sizeof v - 1);
      v[vl < 0 ? 0 : vl] = '\0';
      t_printf(b, " %s=%s", xn[k], v);
    }
    t_printf(b, "\n");
    if (S_ISDIR(st.st_mode)) t_manifest_dir(b, root, r, inos, ninos);
    free(names[i]);
  }
}

/* malloc'd manifest of the tree under root. */
static inline char *t_manifest(const char *root) {
  struct t_buf b = {0};
  t_printf(&b, "");
  static struct t_ino inos[4096];
  size_t ninos = 0;
  t_manifest_dir(&b, root, "", inos, &ninos);
  return b.s;
}

static inline int t_write_file(const char *path, const char *data) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs(data, f);
  return fclose(f);
}

static inline char *t_read_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char *buf = calloc(1, 1 << 16);
  size_t n = fread(buf, 1, (1 << 16) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

#endif
