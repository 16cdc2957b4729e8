/* Save-ContainerImage: write images as an OCI archive (a tar of an OCI
 * image layout) that skopeo, umoci and hcs itself read.  Layers are exported
 * once each (shared layers are written once), or copied from the compressed
 * blob the store kept for them (image/blobs.c); the archive appears
 * atomically. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "image/internal.h"

static const char *layer_media_type(hcs_layer_compression_t c) {
  switch (c) {
  case HCS_LAYER_COMPRESSION_GZIP: return "application/vnd.oci.image.layer.v1.tar+gzip";
  case HCS_LAYER_COMPRESSION_ZSTD: return "application/vnd.oci.image.layer.v1.tar+zstd";
  default: return "application/vnd.oci.image.layer.v1.tar";
  }
}

/* Write a blob file into <tmp>/blobs/sha256/<hex>; returns its descriptor. */
static json_t *write_blob(const char *tmp, const char *media_type, const char *data, size_t len, hcs_error_t *err) {
  char digest[72];
  hcs_image_sha256_buf(data, len, digest);
  cleanup_free char *p = hcs_xasprintf("%s/blobs/sha256/%s", tmp, digest + 7);
  if (hcs_write_file_atomic(p, data, len, 0644, err) < 0) return NULL;
  return json_pack("{s:s,s:s,s:I}", "mediaType", media_type, "digest", digest, "size", (json_int_t)len);
}

/* The blob the store kept for the layer (image/blobs.c), copied to path:
 * 1, or 0 when there is none. */
static int copy_kept_blob(hcs_image_store_t *s, const char *lid, hcs_layer_compression_t c, const char *path,
                          hcs_layer_export_result_t *r, hcs_error_t *err) {
  cleanup_free char *text = hcs_layer_inspect(s->layers, lid, err);
  if (text == NULL) return -1;
  cleanup_json json_t *m = hcs_json_parse(text, "layer info", err);
  if (m == NULL) return -1;
  struct hcs_image_blob_info info;
  cleanup_close int fd = -1;
  int found = hcs_image_blob_lookup(s, json_string_value(json_object_get(m, "DiffID")), c, &info, &fd, err);
  if (found <= 0) return found;
  cleanup_close int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) return hcs_error_make(err, errno, "create `%s`", path);
  for (uint64_t left = info.size; left > 0;) {
    ssize_t n = copy_file_range(fd, NULL, out, NULL, left, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return hcs_error_make(err, n < 0 ? errno : EIO, "copy blob `%s` to `%s`", info.digest, path);
    left -= (uint64_t)n;
  }
  memset(r, 0, sizeof *r);
  snprintf(r->digest, sizeof r->digest, "%s", info.digest);
  snprintf(r->diff_id, sizeof r->diff_id, "%s", info.diff_id);
  r->size = info.size;
  return 1;
}

/* Export every layer of the image not exported yet; returns the layer
 * descriptors for its manifest. */
static json_t *export_layers(hcs_image_store_t *s, const char *tmp, json_t *layer_ids, json_t *done, json_t *diff_ids,
                             const hcs_image_save_opts_t *o, hcs_error_t *err) {
  json_t *descs = json_array();
  size_t i;
  json_t *l;
  json_array_foreach(layer_ids, i, l) {
    const char *lid = json_string_value(l);
    json_t *known = json_object_get(done, lid);
    if (known) {
      json_array_append(descs, json_object_get(known, "desc"));
      json_array_append(diff_ids, json_object_get(known, "diff_id"));
      continue;
    }
    cleanup_free char *part = hcs_xasprintf("%s/blobs/sha256/.part-%zu", tmp, json_object_size(done));
    hcs_layer_export_opts_t eo = {
        .compression = o->compression, .progress = o->progress, .progress_data = o->progress_data};
    hcs_layer_export_result_t r;
    int kept = copy_kept_blob(s, lid, o->compression, part, &r, err);
    if (kept < 0 || (kept == 0 && hcs_layer_export_file(s->layers, lid, part, &eo, &r, err) < 0)) {
      hcs_error_wrap(err, "export layer `%s`", lid);
      json_decref(descs);
      return NULL;
    }
    cleanup_free char *final = hcs_xasprintf("%s/blobs/sha256/%s", tmp, r.digest + 7);
    if (rename(part, final) < 0) {
      hcs_error_make(err, errno, "rename `%s`", part);
      json_decref(descs);
      return NULL;
    }
    json_t *d = json_pack("{s:s,s:s,s:I}", "mediaType", layer_media_type(o->compression), "digest", r.digest, "size",
                          (json_int_t)r.size);
    json_object_set_new(done, lid, json_pack("{s:O,s:s}", "desc", d, "diff_id", r.diff_id));
    json_array_append_new(descs, d);
    json_array_append_new(diff_ids, json_string(r.diff_id));
  }
  return descs;
}

static int add_file(struct archive *a, const char *root, const char *rel, hcs_error_t *err) {
  cleanup_free char *full = hcs_xasprintf("%s/%s", root, rel);
  struct stat st;
  if (lstat(full, &st) < 0) return hcs_error_make(err, errno, "stat `%s`", full);
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, rel);
  archive_entry_set_mtime(e, st.st_mtime, 0);
  if (S_ISDIR(st.st_mode)) {
    archive_entry_set_filetype(e, AE_IFDIR);
    archive_entry_set_perm(e, 0755);
  } else {
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, st.st_size);
  }
  int r = archive_write_header(a, e);
  archive_entry_free(e);
  if (r != ARCHIVE_OK) return hcs_error_make(err, 0, "write `%s`: %s", rel, archive_error_string(a));
  if (S_ISDIR(st.st_mode)) return 0;
  cleanup_close int fd = open(full, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return hcs_error_make(err, errno, "open `%s`", full);
  size_t bufsize = 1 << 20;
  cleanup_free char *buf = hcs_xmalloc(bufsize);
  for (;;) {
    ssize_t n = read(fd, buf, bufsize);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return hcs_error_make(err, errno, "read `%s`", full);
    if (n == 0) break;
    if (archive_write_data(a, buf, (size_t)n) != n)
      return hcs_error_make(err, 0, "write `%s`: %s", rel, archive_error_string(a));
  }
  return 0;
}

/* Tar the layout at tmp into an open archive. */
static int write_entries(struct archive *a, const char *tmp, hcs_error_t *err) {
  cleanup_free char *blobs = hcs_xasprintf("%s/blobs/sha256", tmp);
  if (add_file(a, tmp, "oci-layout", err) < 0 || add_file(a, tmp, "index.json", err) < 0 ||
      add_file(a, tmp, "manifest.json", err) < 0 || add_file(a, tmp, "blobs", err) < 0 ||
      add_file(a, tmp, "blobs/sha256", err) < 0)
    return -1;
  struct dirent **names = NULL;
  int n = scandir(blobs, &names, NULL, alphasort);
  if (n < 0) return hcs_error_make(err, errno, "scan `%s`", blobs);
  int bad = 0;
  for (int i = 0; i < n; i++) {
    if (!bad && names[i]->d_name[0] != '.') {
      cleanup_free char *rel = hcs_xasprintf("blobs/sha256/%s", names[i]->d_name);
      bad = add_file(a, tmp, rel, err) < 0;
    }
    free(names[i]);
  }
  free(names);
  if (bad) return -1;
  if (archive_write_close(a) != ARCHIVE_OK)
    return hcs_error_make(err, 0, "finish archive: %s", archive_error_string(a));
  return 0;
}

/* Tar the layout at tmp into fd (a stream: standard output, a pipe). */
static int write_archive_fd(const char *tmp, int fd, hcs_error_t *err) {
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  int rc = -1;
  if (archive_write_open_fd(a, fd) != ARCHIVE_OK)
    hcs_error_make(err, errno, "write archive: %s", archive_error_string(a));
  else
    rc = write_entries(a, tmp, err);
  archive_write_free(a);
  return rc;
}

/* Tar the layout at tmp into path (atomically: temp, fsync, rename). */
static int write_archive(const char *tmp, const char *path, hcs_error_t *err) {
  cleanup_free char *part = hcs_xasprintf("%s.tmp.%d", path, (int)getpid());
  cleanup_close int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return hcs_error_make(err, errno, "create `%s`", part);
  int rc = -1;
  if (write_archive_fd(tmp, fd, err) < 0) goto out;
  if (fsync(fd) < 0) {
    hcs_error_make(err, errno, "fsync `%s`", part);
    goto out;
  }
  hcs_crash_point("image save: rename archive");
  if (rename(part, path) < 0) {
    hcs_error_make(err, errno, "rename `%s` to `%s`", part, path);
    goto out;
  }
  rc = 0;
out:
  if (rc < 0) unlink(part);
  return rc;
}

/* The manifest of one image (its layers exported into tmp) and its
 * descriptor; `tag` ("name:tag" or NULL) names it in the annotations. *cfg_out
 * gets the config descriptor, for the docker-compatible manifest.json. */
static json_t *manifest_for(hcs_image_store_t *s, const char *tmp, const char *id, json_t *meta, const char *tag,
                            json_t *done, const hcs_image_save_opts_t *o, json_t **layers_out, json_t **cfg_out,
                            hcs_error_t *err) {
  cleanup_free char *config = NULL;
  size_t clen = 0;
  if (hcs_image_read_config(s, id, &config, &clen, err) < 0) return NULL;
  cleanup_json json_t *diff_ids = json_array();
  cleanup_json json_t *layers = export_layers(s, tmp, json_object_get(meta, "Layers"), done, diff_ids, o, err);
  if (layers == NULL) return NULL;
  /* Images made by hcs store canonical layers, so their config goes out
   * byte for byte.  A layer imported from another tool's tar re-exports to
   * different bytes; then the config must name the new diff ids (a
   * different, still valid, image config). */
  cleanup_json json_t *cfg = hcs_json_parse(config, "image config", err);
  if (cfg == NULL) return NULL;
  json_t *rootfs = json_object_get(cfg, "rootfs");
  if (!json_equal(json_object_get(rootfs, "diff_ids"), diff_ids)) {
    json_object_set(rootfs, "diff_ids", diff_ids);
    free(config);
    config = hcs_json_dumps(cfg);
    clen = strlen(config);
  }
  cleanup_json json_t *cdesc = write_blob(tmp, "application/vnd.oci.image.config.v1+json", config, clen, err);
  if (cdesc == NULL) return NULL;
  cleanup_free char *name = tag ? hcs_xstrdup(tag) : NULL;
  char *colon = name ? strrchr(name, ':') : NULL;
  if (colon) *colon = '\0';
  cleanup_json json_t *ann =
      json_pack("{s:s,s:s}", "org.opencontainers.image.vendor", json_string_value(json_object_get(meta, "Publisher")),
                "io.hcs.image.os", json_is_true(json_object_get(meta, "IsOSImage")) ? "true" : "false");
  if (name && colon) {
    json_object_set_new(ann, "org.opencontainers.image.title", json_string(name));
    json_object_set_new(ann, "org.opencontainers.image.version", json_string(colon + 1));
  }
  cleanup_json json_t *manifest =
      json_pack("{s:i,s:s,s:O,s:O,s:O}", "schemaVersion", 2, "mediaType", "application/vnd.oci.image.manifest.v1+json",
                "config", cdesc, "layers", layers, "annotations", ann);
  cleanup_free char *bytes = hcs_json_dumps(manifest);
  *layers_out = json_incref(layers);
  *cfg_out = json_incref(cdesc);
  return write_blob(tmp, "application/vnd.oci.image.manifest.v1+json", bytes, strlen(bytes), err);
}

/* The tags an image is saved under: the one the caller named ("name:tag";
 * a bare name means the image's own tag of that name, not `latest`), or
 * every tag when it was named by id. */
static json_t *wanted_tags(const char *ref, const char *id, json_t *meta) {
  json_t *tags = json_object_get(meta, "Tags");
  json_t *wanted = json_array();
  cleanup_free char *n = NULL, *t = NULL;
  bool by_id = strncmp(ref, "sha256:", 7) == 0 || strncmp(ref, id, strlen(ref)) == 0;
  if (by_id || hcs_image_parse_ref(ref, &n, &t, NULL) < 0) {
    json_array_extend(wanted, tags);
    return wanted;
  }
  cleanup_free char *full = hcs_xasprintf("%s:%s", n, t);
  const char *slash = strrchr(ref, '/');
  bool tagged = strchr(slash ? slash : ref, ':') != NULL;
  size_t i;
  json_t *v;
  json_array_foreach(tags, i, v) {
    const char *have = json_string_value(v);
    if (strcmp(have, full) == 0 || (!tagged && strncmp(have, n, strlen(n)) == 0 && have[strlen(n)] == ':')) {
      json_array_append(wanted, v);
      if (tagged || strcmp(have, full) == 0) break;
    }
  }
  /* name:latest matched exactly wins over other tags of the name */
  if (!tagged && json_array_size(wanted) > 1) {
    json_array_foreach(wanted, i, v) if (strcmp(json_string_value(v), full) == 0) {
      json_array_clear(wanted);
      json_array_append_new(wanted, json_string(full));
      break;
    }
    while (json_array_size(wanted) > 1)
      json_array_remove(wanted, 1);
  }
  if (json_array_size(wanted) == 0) json_array_append_new(wanted, json_string(full));
  return wanted;
}

/* Lay the images out in tmp: blobs, index.json (one entry per tag, with
 * org.opencontainers.image.ref.name), oci-layout, and a docker-compatible
 * manifest.json (Config, RepoTags, Layers) so `docker load` and skopeo's
 * docker-archive: read the same archive with its tags. */
static int lay_out(hcs_image_store_t *s, const char *const *refs, const char *tmp, const hcs_image_save_opts_t *o,
                   hcs_error_t *err) {
  cleanup_free char *blobs = hcs_xasprintf("%s/blobs/sha256", tmp);
  cleanup_json json_t *done = json_object(), *index_list = json_array(), *docker = json_array();
  if (hcs_mkdir_p(blobs, 0755, err) < 0) return -1;
  for (size_t i = 0; refs[i]; i++) {
    cleanup_free char *id = hcs_image_resolve_locked(s, refs[i], err);
    if (id == NULL) return -1;
    cleanup_json json_t *meta = hcs_image_load(s, id, err);
    if (meta == NULL) return -1;
    cleanup_json json_t *wanted = wanted_tags(refs[i], id, meta);
    cleanup_json json_t *layers = NULL, *cdesc = NULL;
    cleanup_json json_t *mdesc =
        manifest_for(s, tmp, id, meta, json_string_value(json_array_get(wanted, 0)), done, o, &layers, &cdesc, err);
    if (mdesc == NULL) return hcs_error_wrap(err, "save image `%s`", refs[i]);
    json_object_set_new(mdesc, "platform", json_pack("{s:s,s:s}", "architecture", "amd64", "os", "linux"));
    if (json_array_size(wanted) == 0) json_array_append(index_list, mdesc);
    size_t j;
    json_t *tag;
    json_array_foreach(wanted, j, tag) {
      json_t *d = json_deep_copy(mdesc);
      json_object_set_new(d, "annotations", json_pack("{s:O}", "org.opencontainers.image.ref.name", tag));
      json_array_append_new(index_list, d);
    }
    json_t *paths = json_array();
    json_array_foreach(layers, j, tag) {
      const char *d = json_string_value(json_object_get(tag, "digest"));
      json_array_append_new(paths, json_sprintf("blobs/sha256/%s", d + 7));
    }
    const char *cd = json_string_value(json_object_get(cdesc, "digest"));
    json_array_append_new(docker, json_pack("{s:o,s:O,s:o}", "Config", json_sprintf("blobs/sha256/%s", cd + 7),
                                            "RepoTags", wanted, "Layers", paths));
  }
  cleanup_json json_t *index = json_pack("{s:i,s:s,s:O}", "schemaVersion", 2, "mediaType",
                                         "application/vnd.oci.image.index.v1+json", "manifests", index_list);
  cleanup_free char *ipath = hcs_xasprintf("%s/index.json", tmp);
  cleanup_free char *lpath = hcs_xasprintf("%s/oci-layout", tmp);
  cleanup_free char *mpath = hcs_xasprintf("%s/manifest.json", tmp);
  const char *layout = "{\"imageLayoutVersion\":\"1.0.0\"}";
  /* A private temporary tree, tarred at the end: no need to sync it. */
  cleanup_free char *itext = hcs_json_dumps(index), *mtext = hcs_json_dumps(docker);
  if (hcs_write_file_replace(ipath, itext, strlen(itext), 0644, err) < 0 ||
      hcs_write_file_replace(mpath, mtext, strlen(mtext), 0644, err) < 0 ||
      hcs_write_file_replace(lpath, layout, strlen(layout), 0644, err) < 0)
    return -1;
  return 0;
}

static int save_impl(hcs_image_store_t *s, const char *const *refs, const char *path, int fd,
                     const hcs_image_save_opts_t *opts, hcs_error_t *err) {
  hcs_image_save_opts_t o = {.compression = HCS_LAYER_COMPRESSION_GZIP};
  if (opts) o = *opts;
  if (refs == NULL || refs[0] == NULL) return hcs_error_make(err, 0, "save images: no image given");
  cleanup_close int lock = hcs_image_lock(s, false, err);
  if (lock < 0) return -1;
  cleanup_free char *tmp = hcs_image_tmpdir(s, "save", err);
  if (tmp == NULL) return -1;
  int rc = lay_out(s, refs, tmp, &o, err);
  if (rc == 0) rc = path ? write_archive(tmp, path, err) : write_archive_fd(tmp, fd, err);
  if (rc < 0 && path) hcs_error_wrap(err, "save images to `%s`", path);
  if (rc < 0 && !path) hcs_error_wrap(err, "save images");
  hcs_rm_rf(tmp, NULL);
  return rc;
}

int hcs_image_save(hcs_image_store_t *s, const char *const *refs, const char *path, const hcs_image_save_opts_t *opts,
                   hcs_error_t *err) {
  if (path == NULL) return hcs_error_make(err, EINVAL, "save images: no path given");
  return save_impl(s, refs, path, -1, opts, err);
}

int hcs_image_save_fd(hcs_image_store_t *s, const char *const *refs, int fd, const hcs_image_save_opts_t *opts,
                      hcs_error_t *err) {
  return save_impl(s, refs, NULL, fd, opts, err);
}
