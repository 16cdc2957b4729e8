/* Compressed layer blobs kept beside the unpacked layers, so that a push
 * (or a save) of a pulled or imported image uploads the bytes it received
 * instead of exporting and compressing each layer again.
 *
 *   <images>/blobs/sha256/<hex>            the blob, content-addressed
 *   <images>/blobs/layers/<hex>.<gzip|zstd>  {Digest, MediaType, Size, DiffID}
 *
 * A mapping is keyed by the diff id a layer of the store records (its
 * DiffID) and names the blob that holds that layer's files in one
 * compression (DiffID in the mapping: of the blob's own tar, which differs
 * for a layer imported from another tool's tar and re-exported).
 *
 * A blob is written into an unnamed O_TMPFILE in the blob directory while
 * it streams in (so a killed writer leaves nothing visible), synced, and
 * linked under its digest only once the reader verified the digest; its
 * mapping is written before the link.  Collection (under the exclusive
 * store lock, after the layers were collected) lists the blobs first, then
 * reads the mappings, then the layers: a mapping whose diff id no layer
 * holds goes, then every blob no mapping names.  A writer that runs
 * without the store lock (a pull) commits its layer, then the mapping,
 * then the link, in that order, so a collection that runs concurrently
 * never sees a linked blob without its mapping and layer. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "image/internal.h"

#define BLOBS "blobs/sha256"
#define MAPS "blobs/layers"

static const char *comp_name(hcs_layer_compression_t c) {
  return c == HCS_LAYER_COMPRESSION_ZSTD ? "zstd" : c == HCS_LAYER_COMPRESSION_GZIP ? "gzip" : NULL;
}

hcs_layer_compression_t hcs_image_blob_compression(const char *media_type) {
  if (media_type == NULL) return HCS_LAYER_COMPRESSION_NONE;
  if (strstr(media_type, "zstd")) return HCS_LAYER_COMPRESSION_ZSTD;
  if (strstr(media_type, "gzip")) return HCS_LAYER_COMPRESSION_GZIP;
  return HCS_LAYER_COMPRESSION_NONE;
}

static bool is_hex64(const char *s) {
  if (strlen(s) != 64) return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
  return true;
}

static bool valid_digest(const char *d) { return d && strncmp(d, "sha256:", 7) == 0 && is_hex64(d + 7); }

int hcs_image_blob_begin(hcs_image_store_t *s, struct hcs_image_blob *b, hcs_error_t *err) {
  b->fd = -1;
  b->tmpname = NULL;
  b->size = 0;
  b->synced = 0;
  b->failed = false;
  cleanup_free char *dir = hcs_xasprintf("%s/" BLOBS, s->dir);
  if (hcs_mkdir_p(dir, 0700, err) < 0) return -1;
  b->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (b->fd >= 0) return 0;
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
    return hcs_error_make(err, errno, "create a blob in `%s`", dir);
  /* no O_TMPFILE here: a named file that the store open of a later
   * process sweeps once this pid is gone */
  b->tmpname = hcs_xasprintf("%s/.tmp-%d-XXXXXX", dir, (int)getpid());
  b->fd = mkostemp(b->tmpname, O_CLOEXEC);
  if (b->fd < 0) {
    int e = errno;
    free(b->tmpname);
    b->tmpname = NULL;
    return hcs_error_make(err, e, "create a blob in `%s`", dir);
  }
  return 0;
}

void hcs_image_blob_write(struct hcs_image_blob *b, const void *data, size_t len) {
  if (b->fd < 0 || b->failed) return;
  const char *p = data;
  while (len > 0) {
    ssize_t w = write(b->fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) { /* a full disk costs the kept blob, not the transfer */
      hcs_debug("write a layer blob: %s", strerror(errno));
      b->failed = true;
      return;
    }
    p += w;
    len -= (size_t)w;
    b->size += (uint64_t)w;
  }
  /* Start writeback as the blob grows (as the layer writer does for its
   * files): the disk works while the pull inflates and unpacks, instead of
   * at the layer's final sync. */
  if (b->size - b->synced >= (8u << 20)) {
    sync_file_range(b->fd, (off64_t)b->synced, (off64_t)(b->size - b->synced), SYNC_FILE_RANGE_WRITE);
    b->synced = b->size;
  }
}

void hcs_image_blob_abort(struct hcs_image_blob *b) {
  if (b->tmpname) unlink(b->tmpname);
  free(b->tmpname);
  b->tmpname = NULL;
  if (b->fd >= 0) close(b->fd);
  b->fd = -1;
}

static char *map_path(hcs_image_store_t *s, const char *layer_diff_id, hcs_layer_compression_t c) {
  return hcs_xasprintf("%s/" MAPS "/%s.%s", s->dir, layer_diff_id + 7, comp_name(c));
}

int hcs_image_blob_commit(hcs_image_store_t *s, struct hcs_image_blob *b, const char *layer_diff_id,
                          const struct hcs_image_blob_info *info, hcs_error_t *err) {
  int rc = -1;
  hcs_layer_compression_t c = hcs_image_blob_compression(info->media_type);
  if (b->fd < 0 || b->failed || b->size != info->size || comp_name(c) == NULL || !valid_digest(info->digest) ||
      !valid_digest(info->diff_id) || !valid_digest(layer_diff_id)) {
    hcs_image_blob_abort(b);
    return 0; /* nothing worth keeping: not an error */
  }
  cleanup_free char *dir = hcs_xasprintf("%s/" BLOBS, s->dir);
  cleanup_free char *maps = hcs_xasprintf("%s/" MAPS, s->dir);
  cleanup_free char *dst = hcs_xasprintf("%s/%s", dir, info->digest + 7);
  cleanup_free char *mpath = map_path(s, layer_diff_id, c);
  cleanup_json json_t *m = json_pack("{s:s,s:s,s:I,s:s}", "Digest", info->digest, "MediaType", info->media_type, "Size",
                                     (json_int_t)info->size, "DiffID", info->diff_id);
  /* the data before the name: a linked blob is never torn */
  if (fdatasync(b->fd) < 0) {
    hcs_error_make(err, errno, "sync blob `%s`", info->digest);
    goto out;
  }
  if (hcs_mkdir_p(maps, 0700, err) < 0 || hcs_json_write_atomic(mpath, m, err) < 0) goto out;
  hcs_crash_point("blob: mapping written");
  if (b->tmpname) {
    if (rename(b->tmpname, dst) < 0) {
      hcs_error_make(err, errno, "rename `%s` to `%s`", b->tmpname, dst);
      goto out;
    }
    free(b->tmpname);
    b->tmpname = NULL;
  } else {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", b->fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) < 0 && errno != EEXIST) {
      hcs_error_make(err, errno, "link blob `%s`", dst);
      goto out;
    }
  }
  if (hcs_fsync_dir(dir, err) < 0) goto out;
  rc = 0;
out:
  hcs_image_blob_abort(b);
  return rc;
}

int hcs_image_blob_lookup(hcs_image_store_t *s, const char *layer_diff_id, hcs_layer_compression_t c,
                          struct hcs_image_blob_info *info, int *fd_out, hcs_error_t *err) {
  *fd_out = -1;
  if (!valid_digest(layer_diff_id) || comp_name(c) == NULL) return 0;
  cleanup_free char *mpath = map_path(s, layer_diff_id, c);
  if (!hcs_path_exists(mpath)) return 0;
  cleanup_json json_t *m = hcs_json_load_file(mpath, err);
  if (m == NULL) return -1;
  const char *digest = json_string_value(json_object_get(m, "Digest"));
  const char *mt = json_string_value(json_object_get(m, "MediaType"));
  const char *diff = json_string_value(json_object_get(m, "DiffID"));
  json_int_t size = json_integer_value(json_object_get(m, "Size"));
  if (!valid_digest(digest) || !valid_digest(diff) || mt == NULL || strlen(mt) >= sizeof info->media_type ||
      hcs_image_blob_compression(mt) != c || size <= 0) {
    hcs_warning("image store: ignoring the malformed blob mapping `%s`", mpath);
    return 0;
  }
  cleanup_free char *dir = hcs_xasprintf("%s/" BLOBS, s->dir);
  cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return 0;
  cleanup_close int fd = openat(dfd, digest + 7, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return 0; /* mapped, never linked (a writer killed between the two) */
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != (off_t)size) {
    hcs_warning("image store: blob `%s` is not the %lld-byte file its mapping says; not used", digest, (long long)size);
    return 0;
  }
  snprintf(info->digest, sizeof info->digest, "%s", digest);
  snprintf(info->diff_id, sizeof info->diff_id, "%s", diff);
  snprintf(info->media_type, sizeof info->media_type, "%s", mt);
  info->size = (uint64_t)size;
  *fd_out = steal_fd(fd);
  return 1;
}

/* Names in a directory (new reference), or an empty array. */
static json_t *list_dir(const char *path) {
  json_t *out = json_array();
  cleanup_dir DIR *d = opendir(path);
  if (d == NULL) return out;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (de->d_name[0] != '.' || strncmp(de->d_name, ".tmp-", 5) == 0)
      json_array_append_new(out, json_string(de->d_name));
  return out;
}

int hcs_image_blob_collect(hcs_image_store_t *s, hcs_error_t *err) {
  cleanup_free char *dir = hcs_xasprintf("%s/" BLOBS, s->dir);
  cleanup_free char *maps = hcs_xasprintf("%s/" MAPS, s->dir);
  if (!hcs_path_exists(dir) && !hcs_path_exists(maps)) return 0;
  /* the order matters (see the top of the file): blobs, mappings, layers */
  cleanup_json json_t *blobs = list_dir(dir);
  cleanup_json json_t *names = list_dir(maps);
  cleanup_free char *text = hcs_layer_list(s->layers, err);
  if (text == NULL) return -1;
  cleanup_json json_t *layers = hcs_json_parse(text, "layer list", err);
  if (layers == NULL) return -1;
  cleanup_json json_t *diffs = json_object(), *used = json_object();
  size_t i;
  json_t *v;
  json_array_foreach(layers, i, v) {
    const char *d = json_string_value(json_object_get(v, "DiffID"));
    if (d) json_object_set_new(diffs, d, json_true());
  }
  json_array_foreach(names, i, v) {
    const char *name = json_string_value(v);
    cleanup_free char *path = hcs_xasprintf("%s/%s", maps, name);
    const char *dot = strchr(name, '.');
    const char *tmp = strstr(name, ".tmp.");
    if (tmp) { /* a mapping being written (hcs_json_write_atomic): swept once its writer is gone */
      int pid = atoi(tmp + 5);
      if (pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH)) continue;
      unlink(path);
      continue;
    }
    cleanup_free char *diff = dot ? hcs_xasprintf("sha256:%.*s", (int)(dot - name), name) : NULL;
    if (diff == NULL || json_object_get(diffs, diff) == NULL) {
      if (unlink(path) == 0) hcs_debug("image store: dropped the blob mapping `%s`", name);
      continue;
    }
    cleanup_error hcs_error_t e = NULL;
    cleanup_json json_t *m = hcs_json_load_file(path, &e);
    const char *digest = json_string_value(json_object_get(m, "Digest"));
    if (valid_digest(digest)) json_object_set_new(used, digest + 7, json_true());
  }
  json_array_foreach(blobs, i, v) {
    const char *name = json_string_value(v);
    if (strncmp(name, ".tmp-", 5) == 0) { /* a named temporary blob: swept once its writer is gone */
      int pid = atoi(name + 5);
      if (pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH)) continue;
    } else if (json_object_get(used, name)) {
      continue;
    }
    cleanup_free char *path = hcs_xasprintf("%s/%s", dir, name);
    if (unlink(path) == 0) hcs_info("image store: collected unreferenced blob `%s`", name);
  }
  return 0;
}

int hcs_image_blob_keep_fd(hcs_image_store_t *s, int src, const char *layer_diff_id,
                           const struct hcs_image_blob_info *info, hcs_error_t *err) {
  int fd = -1;
  struct hcs_image_blob_info have;
  int r = hcs_image_blob_lookup(s, layer_diff_id, hcs_image_blob_compression(info->media_type), &have, &fd, err);
  if (fd >= 0) close(fd);
  if (r != 0) return r < 0 ? -1 : 0; /* kept already */
  struct hcs_image_blob b;
  if (hcs_image_blob_begin(s, &b, err) < 0) return -1;
  off_t off = 0;
  for (;;) {
    ssize_t n = copy_file_range(src, &off, b.fd, NULL, 1 << 30, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      hcs_image_blob_abort(&b);
      return hcs_error_make(err, e, "copy blob `%s`", info->digest);
    }
    if (n == 0) break;
    b.size += (uint64_t)n;
    b.synced = b.size;
  }
  /* the copy is checked, not the source: a file outside the store may
   * change between the importer's check and this copy */
  char got[72];
  int rfd = -1;
  {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", b.fd);
    rfd = open(proc, O_RDONLY | O_CLOEXEC);
  }
  if (rfd < 0 || hcs_image_sha256_fd(rfd, info->digest, got, NULL, err) < 0 || strcmp(got, info->digest) != 0) {
    if (rfd >= 0) close(rfd);
    hcs_image_blob_abort(&b);
    return 0;
  }
  close(rfd);
  return hcs_image_blob_commit(s, &b, layer_diff_id, info, err);
}
