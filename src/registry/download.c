/* Save-ContainerImage -Name: an image from a registry straight into an OCI
 * archive (a tar of an OCI image layout) that `hcs image import`, skopeo
 * and umoci read.  Each blob streams from the registry into its tar entry
 * (its size is known from the descriptor) while being hashed; the archive is
 * written under a temporary name and renamed into place only when every
 * digest matched. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "registry/internal.h"

struct blob_sink {
  struct archive *a;
  EVP_MD_CTX *md;
  uint64_t got, size;
  bool failed;
};

static size_t to_archive(const void *data, size_t len, void *ud) {
  struct blob_sink *b = ud;
  if (b->got + len > b->size) return 0;
  if (archive_write_data(b->a, data, len) != (la_ssize_t)len) {
    b->failed = true;
    return 0;
  }
  EVP_DigestUpdate(b->md, data, len);
  b->got += len;
  return len;
}

static int entry_header(struct archive *a, const char *name, bool dir, uint64_t size, hcs_error_t *err) {
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_mtime(e, time(NULL), 0);
  archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
  archive_entry_set_perm(e, dir ? 0755 : 0644);
  if (!dir) archive_entry_set_size(e, (la_int64_t)size);
  int r = archive_write_header(a, e);
  archive_entry_free(e);
  return r == ARCHIVE_OK ? 0 : hcs_error_make(err, 0, "write `%s`: %s", name, archive_error_string(a));
}

static int add_bytes(struct archive *a, const char *name, const void *data, size_t len, hcs_error_t *err) {
  if (entry_header(a, name, false, len, err) < 0) return -1;
  if (len && archive_write_data(a, data, len) != (la_ssize_t)len)
    return hcs_error_make(err, 0, "write `%s`: %s", name, archive_error_string(a));
  return 0;
}

static int add_blob(struct reg_client *c, struct archive *a, const char *repo, json_t *desc, hcs_error_t *err) {
  const char *digest = json_string_value(json_object_get(desc, "digest"));
  uint64_t size = (uint64_t)json_integer_value(json_object_get(desc, "size"));
  cleanup_free char *name = hcs_xasprintf("blobs/sha256/%s", digest + 7);
  if (entry_header(a, name, false, size, err) < 0) return -1;
  cleanup_free char *path = hcs_xasprintf("/v2/%s/blobs/%s", repo, digest);
  cleanup_free char *scope = hcs_xasprintf("repository:%s:pull", repo);
  struct blob_sink b = {.a = a, .md = EVP_MD_CTX_new(), .size = size};
  EVP_DigestInit_ex(b.md, EVP_sha256(), NULL);
  struct reg_request rq = {
      .method = "GET", .path = path, .scope = scope, .body_fd = -1, .sink = to_archive, .sink_data = &b};
  struct reg_response resp = {0};
  int rc = reg_request(c, &rq, &resp, err);
  if (rc == 0 && resp.status != 200) rc = reg_status_error(c, path, &resp, err);
  reg_response_free(&resp);
  unsigned char md[32];
  unsigned int n = 0;
  EVP_DigestFinal_ex(b.md, md, &n);
  EVP_MD_CTX_free(b.md);
  if (rc < 0) return -1;
  if (b.failed) return hcs_error_make(err, 0, "write `%s`: %s", name, archive_error_string(a));
  if (b.got != size)
    return hcs_error_make(err, 0, "blob `%s`: the registry sent %llu bytes, the descriptor says %llu", digest,
                          (unsigned long long)b.got, (unsigned long long)size);
  char got[72] = "sha256:";
  for (unsigned i = 0; i < 32; i++)
    sprintf(got + 7 + 2 * i, "%02x", md[i]);
  if (strcmp(got, digest) != 0)
    return hcs_error_make(err, 0, "blob `%s` is corrupt: its content hashes to %s", digest, got);
  return 0;
}

static int write_layout(struct reg_client *c, const struct reg_ref *ref, const char *src_repo, struct reg_image *img,
                        struct archive *a, hcs_error_t *err) {
  const char *layout = "{\"imageLayoutVersion\":\"1.0.0\"}";
  if (add_bytes(a, "oci-layout", layout, strlen(layout), err) < 0 || entry_header(a, "blobs", true, 0, err) < 0 ||
      entry_header(a, "blobs/sha256", true, 0, err) < 0)
    return -1;
  cleanup_free char *mname = hcs_xasprintf("blobs/sha256/%s", img->digest + 7);
  cleanup_free char *cname = NULL;
  json_t *cdesc = json_object_get(img->manifest, "config");
  cname = hcs_xasprintf("blobs/sha256/%s", json_string_value(json_object_get(cdesc, "digest")) + 7);
  if (add_bytes(a, mname, img->manifest_bytes, img->manifest_len, err) < 0 ||
      add_bytes(a, cname, img->config, img->config_len, err) < 0)
    return -1;
  size_t i;
  json_t *l;
  cleanup_json json_t *seen = json_object();
  json_array_foreach(json_object_get(img->manifest, "layers"), i, l) {
    const char *d = json_string_value(json_object_get(l, "digest"));
    if (json_object_get(seen, d)) continue;
    json_object_set_new(seen, d, json_true());
    if (add_blob(c, a, src_repo, l, err) < 0) return hcs_error_wrap(err, "layer %zu", i + 1);
  }
  cleanup_free char *refname = hcs_xasprintf("%s/%s:%s", ref->registry, ref->repo, ref->tag ? ref->tag : "latest");
  cleanup_json json_t *index =
      json_pack("{s:i,s:s,s:[{s:s,s:s,s:I,s:{s:s}}]}", "schemaVersion", 2, "mediaType", REG_MEDIA_OCI_INDEX,
                "manifests", "mediaType", img->media_type, "digest", img->digest, "size", (json_int_t)img->manifest_len,
                "annotations", "org.opencontainers.image.ref.name", refname);
  cleanup_free char *itext = hcs_json_dumps(index);
  return add_bytes(a, "index.json", itext, strlen(itext), err);
}

int hcs_registry_download(const char *text, const char *path, const hcs_registry_opts_t *o, hcs_error_t *err) {
  struct reg_ref ref;
  if (reg_ref_parse(text, &ref, err) < 0) return -1;
  struct reg_image img = {0};
  int rc = -1;
  cleanup_free char *part = hcs_xasprintf("%s.tmp.%d", path, (int)getpid());
  struct archive *a = NULL;
  struct reg_ref src = {0};
  struct reg_client *c = reg_open_pull(&ref, o, &src, &img, err);
  if (c == NULL) goto out;
  a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (archive_write_open_filename(a, part) != ARCHIVE_OK) {
    hcs_error_make(err, errno, "create `%s`: %s", part, archive_error_string(a));
    goto out;
  }
  if (write_layout(c, &ref, src.repo, &img, a, err) < 0) goto out;
  if (archive_write_close(a) != ARCHIVE_OK) {
    hcs_error_make(err, 0, "finish `%s`: %s", part, archive_error_string(a));
    goto out;
  }
  {
    cleanup_close int fd = open(part, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
      hcs_error_make(err, errno, "fsync `%s`", part);
      goto out;
    }
  }
  if (rename(part, path) < 0) {
    hcs_error_make(err, errno, "rename `%s` to `%s`", part, path);
    goto out;
  }
  rc = 0;
out:
  if (a) archive_write_free(a);
  if (rc < 0) unlink(part);
  reg_image_free(&img);
  reg_client_free(c);
  reg_ref_free(&src);
  if (rc < 0) hcs_error_wrap(err, "download `%s` to `%s`", text, path);
  reg_ref_free(&ref);
  return rc;
}
