/* docker-archive import: the format `docker save` and `skopeo copy
 * docker-archive:` write (manifest.json listing Config, RepoTags and
 * Layers).  Layers are verified through the config's diff ids. */
#include <fcntl.h>
#include <string.h>

#include "image/internal.h"

#define MAX_JSON (16 << 20)

/* A config named "<hex>.json" or "blobs/sha256/<hex>" promises its digest. */
static const char *digest_from_name(const char *name) {
  const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
  size_t n = strlen(base);
  if (n == 69 && strcmp(base + 64, ".json") == 0) return base;
  if (n == 64) return base;
  return NULL;
}

static json_t *import_one(hcs_image_store_t *s, int dirfd, const char *dir, json_t *entry, size_t index,
                          const hcs_image_import_opts_t *o, hcs_error_t *err) {
  const char *config_path = json_string_value(json_object_get(entry, "Config"));
  json_t *layers = json_object_get(entry, "Layers");
  if (config_path == NULL || !json_is_array(layers)) {
    hcs_error_make(err, 0, "manifest.json[%zu]: expected Config (string) and Layers (array)", index);
    return NULL;
  }
  size_t clen = 0;
  cleanup_free char *config = hcs_image_read_in(dirfd, dir, config_path, true, MAX_JSON, &clen, err);
  if (config == NULL) return NULL;
  char digest[72];
  hcs_image_sha256_buf(config, clen, digest);
  const char *promised = digest_from_name(config_path);
  if (promised && strncmp(promised, digest + 7, 64) != 0) {
    hcs_error_make(err, 0, "config `%s` is corrupt: its content hashes to %s", config_path, digest);
    return NULL;
  }
  cleanup_json json_t *cfg = hcs_json_parse(config, config_path, err);
  if (cfg == NULL) return NULL;
  cleanup_json json_t *digests = json_array();
  for (size_t i = 0; i < json_array_size(layers); i++)
    json_array_append_new(digests, json_null());
  json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
  cleanup_json json_t *ids = hcs_image_import_layers(s, dirfd, dir, true, diff_ids, layers, digests, o, err);
  if (ids == NULL) return NULL;

  json_t *tags = json_object_get(entry, "RepoTags");
  cleanup_free char *name = NULL, *tag = NULL;
  const char *first = json_string_value(json_array_get(tags, 0));
  if (first && hcs_image_parse_ref(first, &name, &tag, err) < 0) return NULL;
  if (o && o->name) {
    free(name);
    name = hcs_xstrdup(o->name);
  }
  if (o && o->tag) {
    free(tag);
    tag = hcs_xstrdup(o->tag);
  }
  if (name == NULL) {
    hcs_error_make(err, 0, "manifest.json[%zu] has no RepoTags: give a name", index);
    return NULL;
  }
  struct hcs_image_meta meta = {.name = name,
                                .tag = tag ? tag : "latest",
                                .publisher = o ? o->publisher : NULL,
                                .is_os = json_array_size(ids) == 1};
  cleanup_free char *id = hcs_image_record(s, config, clen, ids, &meta, err);
  if (id == NULL) return NULL;
  /* Further RepoTags become further tags, unless a name was forced. */
  for (size_t i = 1; i < json_array_size(tags) && !(o && (o->name || o->tag)); i++) {
    cleanup_free char *n2 = NULL, *t2 = NULL;
    if (hcs_image_parse_ref(json_string_value(json_array_get(tags, i)), &n2, &t2, err) < 0) return NULL;
    struct hcs_image_meta more = meta;
    more.name = n2;
    more.tag = t2;
    cleanup_free char *again = hcs_image_record(s, config, clen, ids, &more, err);
    if (again == NULL) return NULL;
  }
  return hcs_image_summary_of(s, id, err);
}

json_t *hcs_image_import_docker_archive(hcs_image_store_t *s, const char *dir, const hcs_image_import_opts_t *o,
                                        hcs_error_t *err) {
  cleanup_close int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) {
    hcs_error_make(err, errno, "open `%s`", dir);
    return NULL;
  }
  cleanup_free char *text = hcs_image_read_in(dirfd, dir, "manifest.json", false, MAX_JSON, NULL, err);
  if (text == NULL) return NULL;
  cleanup_json json_t *manifest = hcs_json_parse(text, "manifest.json", err);
  if (manifest == NULL) return NULL;
  if (!json_is_array(manifest) || json_array_size(manifest) == 0) {
    hcs_error_make(err, 0, "manifest.json: expected a non-empty array of images");
    return NULL;
  }
  cleanup_json json_t *out = json_array();
  size_t i;
  json_t *entry;
  json_array_foreach(manifest, i, entry) {
    json_t *img = import_one(s, dirfd, dir, entry, i, o, err);
    if (img == NULL) return NULL;
    json_array_append_new(out, img);
  }
  return json_incref(out);
}
