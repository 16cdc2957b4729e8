/* OCI image layouts and archives: import (a layout directory or a tar of
 * one, and the format detection shared with docker-archive) and save (an OCI
 * archive that skopeo and umoci read).  Every blob is verified against its
 * digest; every path in a layout resolves inside it. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "image/internal.h"

#define MAX_JSON_BLOB (16 << 20)

int hcs_image_open_in(int dirfd, const char *dirname, const char *path, bool follow, hcs_error_t *err) {
  /* O_NONBLOCK: a FIFO planted in a layout must not hang the open; the
   * type is checked on the fd, never before the open. */
  struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW),
                         .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
  int fd;
  do
    fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  if (fd < 0) {
    if (errno == EXDEV) return hcs_error_make(err, EXDEV, "open `%s` in `%s`: it leads outside", path, dirname);
    if (errno == ELOOP) return hcs_error_make(err, ELOOP, "open `%s` in `%s`: a symlink", path, dirname);
    return hcs_error_make(err, errno, "open `%s` in `%s`", path, dirname);
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return hcs_error_make(err, EINVAL, "open `%s` in `%s`: not a regular file", path, dirname);
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  return fd;
}

char *hcs_image_read_in(int dirfd, const char *dirname, const char *path, bool follow, size_t max, size_t *len,
                        hcs_error_t *err) {
  cleanup_close int fd = hcs_image_open_in(dirfd, dirname, path, follow, err);
  if (fd < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) < 0 || (size_t)st.st_size > max) {
    hcs_error_make(err, EFBIG, "read `%s` in `%s`: larger than %zu bytes", path, dirname, max);
    return NULL;
  }
  size_t n = 0, cap = (size_t)st.st_size + 2;
  char *out = hcs_xmalloc(cap);
  for (;;) {
    ssize_t r = read(fd, out + n, cap - n - 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      free(out);
      hcs_error_make(err, errno, "read `%s` in `%s`", path, dirname);
      return NULL;
    }
    if (r == 0) break;
    n += (size_t)r;
    if (n + 1 >= cap) out = hcs_xrealloc(out, cap *= 2);
  }
  out[n] = '\0';
  if (len) *len = n;
  return out;
}

/* "sha256:<64 hex>" -> "blobs/sha256/<hex>" */
static char *blob_path(const char *digest, hcs_error_t *err) {
  if (digest == NULL || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 71) {
    hcs_error_make(err, 0, "unsupported digest `%s`: only sha256 is supported", digest ? digest : "(none)");
    return NULL;
  }
  for (const char *p = digest + 7; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
      hcs_error_make(err, 0, "malformed digest `%s`", digest);
      return NULL;
    }
  return hcs_xasprintf("blobs/sha256/%s", digest + 7);
}

/* Read a JSON blob and check it against its descriptor (digest, size). */
static json_t *read_json_blob(int dirfd, const char *dirname, json_t *desc, const char *what, hcs_error_t *err) {
  const char *digest = json_string_value(json_object_get(desc, "digest"));
  cleanup_free char *path = blob_path(digest, err);
  if (path == NULL) return NULL;
  size_t len = 0;
  cleanup_free char *text = hcs_image_read_in(dirfd, dirname, path, false, MAX_JSON_BLOB, &len, err);
  if (text == NULL) return NULL;
  char got[72];
  hcs_image_sha256_buf(text, len, got);
  if (strcmp(got, digest) != 0) {
    hcs_error_make(err, 0, "%s blob `%s` is corrupt: its content hashes to %s", what, digest, got);
    return NULL;
  }
  json_t *size = json_object_get(desc, "size");
  if (json_is_integer(size) && (size_t)json_integer_value(size) != len) {
    hcs_error_make(err, 0, "%s blob `%s`: size %zu differs from the descriptor's %lld", what, digest, len,
                   (long long)json_integer_value(size));
    return NULL;
  }
  cleanup_free char *label = hcs_xasprintf("%s blob `%s`", what, digest);
  return hcs_json_parse(text, label, err);
}

static bool str_eq(json_t *j, const char *s) { return json_is_string(j) && strcmp(json_string_value(j), s) == 0; }

static char *chain_next(const char *prev_chain, const char *diff_id) {
  if (prev_chain == NULL) return hcs_xstrdup(diff_id);
  cleanup_free char *in = hcs_xasprintf("%s %s", prev_chain, diff_id);
  char out[72];
  hcs_image_sha256_buf(in, strlen(in), out);
  return hcs_xstrdup(out);
}

/* Keep a compressed layer blob of an archive for push and save (a plain
 * tar is not kept: a push compresses it anyway). */
static void keep_blob(hcs_image_store_t *s, int fd, const char *digest, const char *diff_id) {
  unsigned char magic[4];
  if (pread(fd, magic, sizeof magic, 0) != (ssize_t)sizeof magic) return;
  struct hcs_image_blob_info info = {0};
  if (magic[0] == 0x1f && magic[1] == 0x8b)
    snprintf(info.media_type, sizeof info.media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
  else if (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
    snprintf(info.media_type, sizeof info.media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
  else
    return;
  struct stat st;
  if (fstat(fd, &st) < 0) return;
  snprintf(info.digest, sizeof info.digest, "%s", digest);
  snprintf(info.diff_id, sizeof info.diff_id, "%s", diff_id);
  info.size = (uint64_t)st.st_size;
  cleanup_error hcs_error_t e = NULL;
  if (hcs_image_blob_keep_fd(s, fd, diff_id, &info, &e) < 0)
    hcs_warning("keep the blob `%s`: %s", digest, hcs_error_message(e));
}

json_t *hcs_image_import_layers(hcs_image_store_t *s, int dirfd, const char *dirname, bool follow, json_t *diff_ids,
                                json_t *blob_paths, json_t *blob_digests, const hcs_image_import_opts_t *o,
                                hcs_error_t *err) {
  size_t n = json_array_size(diff_ids);
  if (n == 0 || json_array_size(blob_paths) != n) {
    hcs_error_make(err, 0, "image has %zu diff ids in its config but %zu layers in its manifest", n,
                   json_array_size(blob_paths));
    return NULL;
  }
  cleanup_json json_t *ids = json_array();
  cleanup_free char *chain = NULL;
  for (size_t i = 0; i < n; i++) {
    const char *diff_id = json_string_value(json_array_get(diff_ids, i));
    if (diff_id == NULL || strncmp(diff_id, "sha256:", 7) != 0 || strlen(diff_id) != 71) {
      hcs_error_make(err, 0, "config rootfs.diff_ids[%zu]: expected a sha256 digest", i);
      return NULL;
    }
    char *next = chain_next(chain, diff_id);
    free(chain);
    chain = next;
    const char *id = chain + 7;
    int exists = hcs_layer_exists(s->layers, id, err);
    if (exists < 0) return NULL;
    if (!exists) {
      /* named in the lease before it exists: a kill during the import
       * leaves nothing the next store open does not collect */
      if (s->lease && hcs_image_lease_add(s->lease, id, err) < 0) return NULL;
      const char *path = json_string_value(json_array_get(blob_paths, i));
      cleanup_close int fd = hcs_image_open_in(dirfd, dirname, path, follow, err);
      if (fd < 0) return NULL;
      const char *digest = json_string_value(json_array_get(blob_digests, i));
      if (digest) { /* the compressed blob must match the manifest before anything is unpacked */
        char got[72];
        if (hcs_image_sha256_fd(fd, path, got, NULL, err) < 0) return NULL;
        if (strcmp(got, digest) != 0) {
          hcs_error_make(err, 0, "layer %zu blob `%s` is corrupt: its content hashes to %s", i + 1, digest, got);
          return NULL;
        }
        if (lseek(fd, 0, SEEK_SET) < 0) {
          hcs_error_make(err, errno, "seek `%s`", path);
          return NULL;
        }
      }
      const char *parents[2] = {i ? json_string_value(json_array_get(ids, i - 1)) : NULL, NULL};
      hcs_layer_import_opts_t io = {.id = id,
                                    .parents = i ? parents : NULL,
                                    .expect_diff_id = diff_id,
                                    .progress = o ? o->progress : NULL,
                                    .progress_data = o ? o->progress_data : NULL};
      cleanup_free char *got_id = hcs_layer_import(s->layers, fd, &io, err);
      if (got_id == NULL) {
        hcs_error_wrap(err, "import layer %zu of %zu (`%s`)", i + 1, n, path);
        return NULL;
      }
      if (digest) keep_blob(s, fd, digest, diff_id);
    }
    json_array_append_new(ids, json_string(id));
  }
  return json_incref(ids);
}

/* The name and tag an index entry carries (org.opencontainers.image.ref.name
 * holds "name:tag" when written by hcs or skopeo with a full reference, or
 * only a tag).  Options override. */
static int entry_ref(json_t *desc, json_t *manifest, const hcs_image_import_opts_t *o, char **name, char **tag,
                     hcs_error_t *err) {
  json_t *ann = json_object_get(desc, "annotations");
  const char *ref = json_string_value(json_object_get(ann, "org.opencontainers.image.ref.name"));
  const char *title =
      json_string_value(json_object_get(json_object_get(manifest, "annotations"), "org.opencontainers.image.title"));
  cleanup_free char *n = NULL, *t = NULL;
  if (ref && (strchr(ref, ':') || strchr(ref, '/'))) {
    if (hcs_image_parse_ref(ref, &n, &t, err) < 0) return -1;
  } else if (ref) {
    t = hcs_xstrdup(ref);
  }
  if (o && o->name) {
    free(n);
    n = hcs_xstrdup(o->name);
  }
  if (o && o->tag) {
    free(t);
    t = hcs_xstrdup(o->tag);
  }
  if (n == NULL && title) n = hcs_xstrdup(title);
  if (n == NULL)
    return hcs_error_make(err, 0,
                          "the archive does not name the image (no org.opencontainers.image.ref.name with a "
                          "name): give a name");
  cleanup_free char *full = hcs_xasprintf("%s:%s", n, t ? t : "latest");
  return hcs_image_parse_ref(full, name, tag, err);
}

static json_t *import_manifest(hcs_image_store_t *s, int dirfd, const char *dir, json_t *desc,
                               const hcs_image_import_opts_t *o, hcs_error_t *err) {
  cleanup_json json_t *manifest = read_json_blob(dirfd, dir, desc, "manifest", err);
  if (manifest == NULL) return NULL;
  json_t *cdesc = json_object_get(manifest, "config");
  json_t *layers = json_object_get(manifest, "layers");
  if (!json_is_object(cdesc) || !json_is_array(layers)) {
    hcs_error_make(err, 0, "manifest `%s`: expected config and layers",
                   json_string_value(json_object_get(desc, "digest")));
    return NULL;
  }
  const char *cdigest = json_string_value(json_object_get(cdesc, "digest"));
  cleanup_free char *cpath = blob_path(cdigest, err);
  if (cpath == NULL) return NULL;
  size_t clen = 0;
  cleanup_free char *config = hcs_image_read_in(dirfd, dir, cpath, false, MAX_JSON_BLOB, &clen, err);
  if (config == NULL) return NULL;
  char got[72];
  hcs_image_sha256_buf(config, clen, got);
  if (strcmp(got, cdigest) != 0) {
    hcs_error_make(err, 0, "config blob `%s` is corrupt: its content hashes to %s", cdigest, got);
    return NULL;
  }
  cleanup_json json_t *cfg = hcs_json_parse(config, "image config", err);
  if (cfg == NULL) return NULL;
  cleanup_json json_t *paths = json_array(), *digests = json_array();
  size_t i;
  json_t *l;
  json_array_foreach(layers, i, l) {
    const char *mt = json_string_value(json_object_get(l, "mediaType"));
    if (mt && strstr(mt, "nondistributable")) {
      hcs_error_make(err, 0, "layer %zu has media type `%s`: foreign layers are not supported", i + 1, mt);
      return NULL;
    }
    const char *d = json_string_value(json_object_get(l, "digest"));
    char *p = blob_path(d, err);
    if (p == NULL) return NULL;
    json_array_append_new(paths, json_string(p));
    free(p);
    json_array_append_new(digests, json_string(d));
  }
  json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
  cleanup_json json_t *ids = hcs_image_import_layers(s, dirfd, dir, false, diff_ids, paths, digests, o, err);
  if (ids == NULL) return NULL;
  cleanup_free char *name = NULL, *tag = NULL;
  if (entry_ref(desc, manifest, o, &name, &tag, err) < 0) return NULL;
  json_t *ann = json_object_get(manifest, "annotations");
  const char *vendor = json_string_value(json_object_get(ann, "org.opencontainers.image.vendor"));
  struct hcs_image_meta meta = {.name = name,
                                .tag = tag,
                                .publisher = o && o->publisher ? o->publisher : vendor,
                                .is_os = str_eq(json_object_get(ann, "io.hcs.image.os"), "true") ||
                                         json_array_size(ids) == 1};
  cleanup_free char *id = hcs_image_record(s, config, clen, ids, &meta, err);
  if (id == NULL) return NULL;
  return hcs_image_summary_of(s, id, err);
}

/* Manifests of an index, following nested indexes; picks this platform. */
static int collect_manifests(int dirfd, const char *dir, json_t *index, json_t *parent_ann, json_t *out, int depth,
                             hcs_error_t *err) {
  if (depth > 4) return hcs_error_make(err, 0, "image index nested too deeply");
  json_t *list = json_object_get(index, "manifests");
  if (!json_is_array(list)) return hcs_error_make(err, 0, "image index has no manifests array");
  size_t i;
  json_t *d;
  json_array_foreach(list, i, d) {
    const char *mt = json_string_value(json_object_get(d, "mediaType"));
    json_t *platform = json_object_get(d, "platform");
    if (platform && !str_eq(json_object_get(platform, "os"), "linux")) continue;
    if (mt && (strcmp(mt, "application/vnd.oci.image.index.v1+json") == 0 ||
               strcmp(mt, "application/vnd.docker.distribution.manifest.list.v2+json") == 0)) {
      cleanup_json json_t *sub = read_json_blob(dirfd, dir, d, "index", err);
      if (sub == NULL) return -1;
      json_t *ann = json_object_get(d, "annotations") ? json_object_get(d, "annotations") : parent_ann;
      if (collect_manifests(dirfd, dir, sub, ann, out, depth + 1, err) < 0) return -1;
      continue;
    }
    json_t *copy = json_deep_copy(d);
    if (!json_object_get(copy, "annotations") && parent_ann) json_object_set(copy, "annotations", parent_ann);
    json_array_append_new(out, copy);
  }
  return 0;
}

json_t *hcs_image_import_oci_layout(hcs_image_store_t *s, const char *dir, const hcs_image_import_opts_t *o,
                                    hcs_error_t *err) {
  cleanup_close int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) {
    hcs_error_make(err, errno, "open `%s`", dir);
    return NULL;
  }
  cleanup_free char *layout = hcs_image_read_in(dirfd, dir, "oci-layout", false, 4096, NULL, err);
  if (layout == NULL) return NULL;
  cleanup_json json_t *lj = hcs_json_parse(layout, "oci-layout", err);
  if (lj == NULL) return NULL;
  if (!str_eq(json_object_get(lj, "imageLayoutVersion"), "1.0.0")) {
    hcs_error_make(err, 0, "oci-layout: unsupported imageLayoutVersion (want 1.0.0)");
    return NULL;
  }
  cleanup_free char *index_text = hcs_image_read_in(dirfd, dir, "index.json", false, MAX_JSON_BLOB, NULL, err);
  if (index_text == NULL) return NULL;
  cleanup_json json_t *index = hcs_json_parse(index_text, "index.json", err);
  if (index == NULL) return NULL;
  cleanup_json json_t *manifests = json_array();
  if (collect_manifests(dirfd, dir, index, NULL, manifests, 0, err) < 0) return NULL;
  if (json_array_size(manifests) == 0) {
    hcs_error_make(err, 0, "index.json lists no linux image manifest");
    return NULL;
  }
  cleanup_json json_t *out = json_array();
  size_t i;
  json_t *d;
  json_array_foreach(manifests, i, d) {
    json_t *img = import_manifest(s, dirfd, dir, d, o, err);
    if (img == NULL) return NULL;
    json_array_append_new(out, img);
  }
  return json_incref(out);
}

/* What kind of image source `path` is: 'o' OCI layout dir, 'a' OCI archive,
 * 'd' docker-archive, 0 unknown. */
static int detect(const char *path, hcs_error_t *err) {
  struct stat st;
  if (stat(path, &st) < 0) return hcs_error_make(err, errno, "import image `%s`", path);
  if (S_ISDIR(st.st_mode)) {
    cleanup_free char *p = hcs_xasprintf("%s/oci-layout", path);
    if (hcs_path_exists(p)) return 'o';
    cleanup_free char *m = hcs_xasprintf("%s/manifest.json", path);
    if (hcs_path_exists(m)) return 'd';
    return hcs_error_make(err, 0, "import image `%s`: a directory without oci-layout or manifest.json", path);
  }
  if (!S_ISREG(st.st_mode))
    return hcs_error_make(err, EINVAL, "import image `%s`: not a regular file or directory", path);
  /* Opened without blocking: the path may have become a FIFO since stat. */
  cleanup_close int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return hcs_error_make(err, errno, "open `%s`", path);
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
    return hcs_error_make(err, EINVAL, "import image `%s`: not a regular file or directory", path);
  struct archive *a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_filter_all(a);
  int kind = 0;
  if (archive_read_open_fd(a, fd, 1 << 16) == ARCHIVE_OK) {
    struct archive_entry *e;
    while (kind == 0 && archive_read_next_header(a, &e) == ARCHIVE_OK) {
      const char *n = archive_entry_pathname(e);
      if (strncmp(n, "./", 2) == 0) n += 2;
      if (strcmp(n, "oci-layout") == 0)
        kind = 'a';
      else if (strcmp(n, "manifest.json") == 0)
        kind = 'd';
    }
  }
  archive_read_free(a);
  if (kind == 0)
    return hcs_error_make(err, 0,
                          "import image `%s`: not an OCI layout, OCI archive or docker-archive "
                          "(no oci-layout or manifest.json inside)",
                          path);
  return kind;
}

static json_t *import_locked(hcs_image_store_t *s, const char *path, int kind, const hcs_image_import_opts_t *o,
                             hcs_error_t *err);

char *hcs_image_import(hcs_image_store_t *s, const char *path, const hcs_image_import_opts_t *o, hcs_error_t *err) {
  int kind = detect(path, err);
  if (kind < 0) return NULL;
  cleanup_close int lock = hcs_image_lock(s, true, err);
  if (lock < 0) return NULL;
  struct hcs_image_lease lease;
  if (hcs_image_lease_begin(s, "import", false, NULL, NULL, &lease, err) < 0) return NULL;
  s->lease = &lease;
  json_t *out = import_locked(s, path, kind, o, err);
  s->lease = NULL;
  /* a failed import leaves no layer it made that no image uses */
  hcs_image_lease_end(s, &lease, out == NULL);
  if (out == NULL) {
    hcs_error_wrap(err, "import image `%s`", path);
    return NULL;
  }
  char *text = hcs_json_dumps(out);
  json_decref(out);
  return text;
}

static json_t *import_locked(hcs_image_store_t *s, const char *path, int kind, const hcs_image_import_opts_t *o,
                             hcs_error_t *err) {
  cleanup_free char *tmp = NULL;
  const char *dir = path;
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
    tmp = hcs_image_tmpdir(s, "import", err);
    if (tmp == NULL) return NULL;
    if (hcs_image_extract_tar(path, tmp, err) < 0) {
      hcs_rm_rf(tmp, NULL);
      return NULL;
    }
    dir = tmp;
  }
  json_t *out =
      kind == 'd' ? hcs_image_import_docker_archive(s, dir, o, err) : hcs_image_import_oci_layout(s, dir, o, err);
  if (tmp) hcs_rm_rf(tmp, NULL);
  return out;
}
