/* Image store: metadata records, references and tags, users (containers),
 * removal with layer garbage collection, and new images from layers. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <openssl/evp.h>

#include "image/internal.h"

void hcs_image_sha256_buf(const void *data, size_t len, char out[72]) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
  strcpy(out, "sha256:");
  for (unsigned i = 0; i < 32; i++)
    sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

int hcs_image_sha256_file(const char *path, char out[72], uint64_t *size, hcs_error_t *err) {
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return hcs_error_make(err, errno, "open `%s`", path);
  return hcs_image_sha256_fd(fd, path, out, size, err);
}

int hcs_image_sha256_fd(int fd, const char *path, char out[72], uint64_t *size, hcs_error_t *err) {
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  size_t bufsize = 1 << 20;
  cleanup_free unsigned char *buf = hcs_xmalloc(bufsize);
  uint64_t total = 0;
  for (;;) {
    ssize_t r = read(fd, buf, bufsize);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      EVP_MD_CTX_free(ctx);
      return hcs_error_make(err, errno, "read `%s`", path);
    }
    if (r == 0) break;
    EVP_DigestUpdate(ctx, buf, (size_t)r);
    total += (uint64_t)r;
  }
  unsigned char md[32];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, md, &n);
  EVP_MD_CTX_free(ctx);
  strcpy(out, "sha256:");
  for (unsigned i = 0; i < 32; i++)
    sprintf(out + 7 + 2 * i, "%02x", md[i]);
  if (size) *size = total;
  return 0;
}

int hcs_image_lock(hcs_image_store_t *s, bool exclusive, hcs_error_t *err) {
  cleanup_free char *p = hcs_xasprintf("%s/.lock", s->dir);
  return hcs_lock_file(p, !exclusive, err);
}

char *hcs_image_tmpdir(hcs_image_store_t *s, const char *what, hcs_error_t *err) {
  char *tmpl = hcs_xasprintf("%s/.tmp-%s-%d-XXXXXX", s->dir, what, (int)getpid());
  if (mkdtemp(tmpl) == NULL) {
    hcs_error_make(err, errno, "create temporary directory in `%s`", s->dir);
    free(tmpl);
    return NULL;
  }
  return tmpl;
}

/* Remove temporary directories left by killed processes.  A removal
 * killed after its image was renamed away leaves that image's record: its
 * layers are collected first (see gc.c), then it goes. */
static void sweep_tmp(hcs_image_store_t *s) {
  cleanup_dir DIR *d = opendir(s->dir);
  if (d == NULL) return;
  cleanup_json json_t *removed = json_array(), *paths = json_array();
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strncmp(de->d_name, ".tmp-", 5) != 0) continue;
    const char *dash = strchr(de->d_name + 5, '-');
    int pid = dash ? atoi(dash + 1) : 0;
    if (pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH)) continue;
    cleanup_free char *p = hcs_xasprintf("%s/%s", s->dir, de->d_name);
    if (strncmp(de->d_name, ".tmp-removed-", 13) == 0) {
      cleanup_free char *meta = hcs_xasprintf("%s/image.json", p);
      cleanup_error hcs_error_t e = NULL;
      json_t *m = hcs_path_exists(meta) ? hcs_json_load_file(meta, &e) : NULL;
      if (m) json_array_append_new(removed, m);
    }
    json_array_append_new(paths, json_string(p));
  }
  cleanup_error hcs_error_t e = NULL;
  if (hcs_image_recover(s, removed, &e) < 0) {
    hcs_warning("image store: collect what killed operations left: %s", hcs_error_message(e));
    return; /* the records stay for the next open */
  }
  size_t i;
  json_t *v;
  json_array_foreach(paths, i, v) {
    cleanup_error hcs_error_t e2 = NULL;
    if (hcs_rm_rf(json_string_value(v), &e2) < 0)
      hcs_warning("sweep `%s`: %s", json_string_value(v), hcs_error_message(e2));
  }
}

hcs_image_store_t *hcs_image_store_open(const char *root, hcs_error_t *err) {
  hcs_image_store_t *s = hcs_xcalloc(1, sizeof *s);
  s->root = hcs_root_resolve(root);
  s->dir = hcs_xasprintf("%s/images", s->root);
  {
    cleanup_free char *run_root = hcs_run_root_resolve(root);
    s->run = hcs_xasprintf("%s/images", run_root);
  }
  if (hcs_mkdir_p(s->dir, 0700, err) < 0) goto fail;
  s->layers = hcs_layer_store_open(s->root, err);
  if (s->layers == NULL) goto fail;
  int lock = hcs_image_lock(s, true, err);
  if (lock < 0) goto fail;
  sweep_tmp(s);
  close(lock);
  return s;
fail:
  hcs_error_wrap(err, "open image store `%s`", s->dir);
  hcs_image_store_close(s);
  return NULL;
}

void hcs_image_store_close(hcs_image_store_t *s) {
  if (s == NULL) return;
  if (s->layers) hcs_layer_store_close(s->layers);
  free(s->root);
  free(s->dir);
  free(s->run);
  free(s);
}

hcs_layer_store_t *hcs_image_store_layers(hcs_image_store_t *s) { return s->layers; }

/* --- references ----------------------------------------------------------- */

static bool valid_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-' || c == '/';
}

int hcs_image_parse_ref(const char *ref, char **name, char **tag, hcs_error_t *err) {
  if (ref == NULL || *ref == '\0') return hcs_error_make(err, 0, "invalid image reference: empty");
  /* Familiar names, as docker shows them: docker.io/library/x -> x. */
  if (strncmp(ref, "docker.io/library/", 18) == 0 && ref[18])
    ref += 18;
  else if (strncmp(ref, "docker.io/", 10) == 0 && ref[10])
    ref += 10;
  const char *colon = strrchr(ref, ':');
  const char *slash = strrchr(ref, '/');
  if (colon && slash && colon < slash) colon = NULL; /* a registry port, not a tag */
  size_t nlen = colon ? (size_t)(colon - ref) : strlen(ref);
  const char *t = colon ? colon + 1 : "latest";
  if (nlen == 0 || nlen > 255) return hcs_error_make(err, 0, "invalid image reference `%s`: bad name length", ref);
  for (size_t i = 0; i < nlen; i++) {
    char c = ref[i];
    if (c == ':' && slash && ref + i < slash) continue; /* host:port/ prefix */
    if (!valid_name_char(c))
      return hcs_error_make(err, 0,
                            "invalid image reference `%s`: character %zu of the name is not one of "
                            "[A-Za-z0-9._/-]",
                            ref, i + 1);
  }
  if (ref[0] == '/' || ref[nlen - 1] == '/' || strstr(ref, "//") || strstr(ref, ".."))
    return hcs_error_make(err, 0, "invalid image reference `%s`: malformed name", ref);
  cleanup_error hcs_error_t e = NULL;
  if (hcs_validate_id("tag", t, &e) < 0)
    return hcs_error_make(err, 0, "invalid image reference `%s`: %s", ref, hcs_error_message(e));
  *name = strndup(ref, nlen);
  *tag = hcs_xstrdup(t);
  return 0;
}

static bool is_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
  return true;
}

json_t *hcs_image_load(hcs_image_store_t *s, const char *id, hcs_error_t *err) {
  cleanup_free char *p = hcs_xasprintf("%s/%s/image.json", s->dir, id);
  return hcs_json_load_file(p, err);
}

int hcs_image_store_meta(hcs_image_store_t *s, json_t *meta, hcs_error_t *err) {
  cleanup_free char *p = hcs_xasprintf("%s/%s/image.json", s->dir, json_string_value(json_object_get(meta, "Id")));
  return hcs_json_write_atomic(p, meta, err);
}

int hcs_image_read_config(hcs_image_store_t *s, const char *id, char **out, size_t *len, hcs_error_t *err) {
  cleanup_free char *p = hcs_xasprintf("%s/%s/config.json", s->dir, id);
  return hcs_read_file(p, out, len, err);
}

/* Every image record, in directory order. */
json_t *hcs_image_all(hcs_image_store_t *s, hcs_error_t *err) {
  cleanup_dir DIR *d = opendir(s->dir);
  if (d == NULL) {
    hcs_error_make(err, errno, "open `%s`", s->dir);
    return NULL;
  }
  json_t *all = json_array();
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strlen(de->d_name) != 64 || !is_hex(de->d_name, 64)) continue;
    cleanup_error hcs_error_t e = NULL;
    json_t *m = hcs_image_load(s, de->d_name, &e);
    if (m == NULL) {
      hcs_warning("skip image `%s`: %s", de->d_name, hcs_error_message(e));
      continue;
    }
    json_array_append_new(all, m);
  }
  return all;
}

static bool has_tag(json_t *meta, const char *tag) {
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(meta, "Tags"), i, t) if (strcmp(json_string_value(t), tag) == 0) return true;
  return false;
}

char *hcs_image_resolve_locked(hcs_image_store_t *s, const char *ref, hcs_error_t *err) {
  if (ref == NULL || *ref == '\0') {
    hcs_error_make(err, 0, "invalid image reference: empty");
    return NULL;
  }
  const char *hex = strncmp(ref, "sha256:", 7) == 0 ? ref + 7 : ref;
  size_t hlen = strlen(hex);
  cleanup_json json_t *all = hcs_image_all(s, err);
  if (all == NULL) return NULL;
  if (hlen == 64 && is_hex(hex, 64)) {
    cleanup_free char *p = hcs_xasprintf("%s/%s/image.json", s->dir, hex);
    if (hcs_path_exists(p)) return hcs_xstrdup(hex);
  }
  /* "name:tag", or "name" meaning name:latest or the only tag of that name */
  const char *found = NULL;
  size_t i;
  json_t *m;
  cleanup_free char *name = NULL, *tag = NULL;
  if (hcs_image_parse_ref(ref, &name, &tag, NULL) == 0) {
    cleanup_free char *full = hcs_xasprintf("%s:%s", name, tag);
    json_array_foreach(all, i, m) if (has_tag(m, full)) return hcs_xstrdup(json_string_value(json_object_get(m, "Id")));
    if (strchr(ref, ':') == NULL) {
      int matches = 0;
      size_t nlen = strlen(name);
      json_array_foreach(all, i, m) {
        size_t j;
        json_t *t;
        json_array_foreach(json_object_get(m, "Tags"), j, t) {
          const char *ts = json_string_value(t);
          if (strncmp(ts, name, nlen) == 0 && ts[nlen] == ':') {
            if (found == NULL || strcmp(found, json_string_value(json_object_get(m, "Id"))) != 0) matches++;
            found = json_string_value(json_object_get(m, "Id"));
          }
        }
      }
      if (matches == 1) return hcs_xstrdup(found);
      if (matches > 1) {
        hcs_error_make(err, 0, "image reference `%s` is ambiguous: give a tag", ref);
        return NULL;
      }
      found = NULL;
    }
  }
  if (hlen >= 6 && hlen < 64 && is_hex(hex, hlen)) {
    int matches = 0;
    json_array_foreach(all, i, m) {
      const char *id = json_string_value(json_object_get(m, "Id"));
      if (strncmp(id, hex, hlen) == 0) {
        found = id;
        matches++;
      }
    }
    if (matches == 1) return hcs_xstrdup(found);
    if (matches > 1) {
      hcs_error_make(err, 0, "image id prefix `%s` is ambiguous", ref);
      return NULL;
    }
  }
  hcs_error_make(err, ENOENT, "image `%s`", ref);
  return NULL;
}

char *hcs_image_resolve(hcs_image_store_t *s, const char *ref, hcs_error_t *err) {
  cleanup_close int lock = hcs_image_lock(s, false, err);
  if (lock < 0) return NULL;
  return hcs_image_resolve_locked(s, ref, err);
}

/* The record of the image a reference names (caller holds the lock). */
static json_t *load_ref(hcs_image_store_t *s, const char *ref, hcs_error_t *err) {
  cleanup_free char *id = hcs_image_resolve_locked(s, ref, err);
  return id ? hcs_image_load(s, id, err) : NULL;
}

static void add_runtime_users(hcs_image_store_t *s, const char *id, json_t *users);

/* --- summaries ------------------------------------------------------------ */

static void split_tag(const char *full, char **name, char **version) {
  const char *colon = strrchr(full, ':');
  *name = colon ? strndup(full, (size_t)(colon - full)) : hcs_xstrdup(full);
  *version = hcs_xstrdup(colon ? colon + 1 : "");
}

/* The public view of an image: image.json plus Name and Version taken
 * from the first tag (Get-ContainerImage's columns). */
static json_t *summary(json_t *meta) {
  json_t *out = json_deep_copy(meta);
  json_t *tags = json_object_get(meta, "Tags");
  if (json_array_size(tags) > 0) {
    cleanup_free char *name = NULL, *version = NULL;
    split_tag(json_string_value(json_array_get(tags, 0)), &name, &version);
    json_object_set_new(out, "Name", json_string(name));
    json_object_set_new(out, "Version", json_string(version));
  } else {
    json_object_set_new(out, "Name", json_string("<none>"));
    json_object_set_new(out, "Version", json_string("<none>"));
  }
  return out;
}

static int compare_summaries(const void *a, const void *b) {
  json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
  int c = strcmp(json_string_value(json_object_get(x, "Name")), json_string_value(json_object_get(y, "Name")));
  if (c) return c;
  c = strcmp(json_string_value(json_object_get(x, "Version")), json_string_value(json_object_get(y, "Version")));
  return c ? c : strcmp(json_string_value(json_object_get(x, "Id")), json_string_value(json_object_get(y, "Id")));
}

char *hcs_image_list(hcs_image_store_t *s, hcs_error_t *err) {
  cleanup_close int lock = hcs_image_lock(s, false, err);
  if (lock < 0) return NULL;
  cleanup_json json_t *all = hcs_image_all(s, err);
  if (all == NULL) return NULL;
  size_t n = json_array_size(all);
  cleanup_free json_t **items = hcs_xcalloc(n, sizeof *items);
  for (size_t i = 0; i < n; i++)
    items[i] = summary(json_array_get(all, i));
  qsort(items, n, sizeof *items, compare_summaries);
  cleanup_json json_t *out = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(out, items[i]);
  return hcs_json_dumps(out);
}

/* Ids of images whose Parent is id. */
static json_t *children_of(json_t *all, const char *id) {
  json_t *kids = json_array();
  size_t i;
  json_t *m;
  json_array_foreach(all, i, m) {
    const char *p = json_string_value(json_object_get(m, "Parent"));
    if (p && strcmp(p, id) == 0) json_array_append(kids, json_object_get(m, "Id"));
  }
  return kids;
}

char *hcs_image_inspect(hcs_image_store_t *s, const char *ref, hcs_error_t *err) {
  cleanup_close int lock = hcs_image_lock(s, false, err);
  if (lock < 0) return NULL;
  cleanup_json json_t *meta = load_ref(s, ref, err);
  if (meta == NULL) return NULL;
  const char *id = json_string_value(json_object_get(meta, "Id"));
  cleanup_free char *config = NULL;
  size_t len = 0;
  if (hcs_image_read_config(s, id, &config, &len, err) < 0) return NULL;
  cleanup_json json_t *out = summary(meta);
  add_runtime_users(s, id, json_object_get(out, "Users"));
  json_t *cfg = hcs_json_parse(config, "image config", err);
  if (cfg == NULL) return NULL;
  json_object_set_new(out, "Config", cfg);
  cleanup_json json_t *all = hcs_image_all(s, err);
  if (all == NULL) return NULL;
  json_object_set_new(out, "Children", children_of(all, id));
  return hcs_json_dumps(out);
}

/* --- records --------------------------------------------------------------- */

/* Remove `full` from the image's Tags; 1 if it was there. */
static int drop_tag(json_t *m, const char *full) {
  json_t *tags = json_object_get(m, "Tags");
  for (size_t j = 0; j < json_array_size(tags); j++)
    if (strcmp(json_string_value(json_array_get(tags, j)), full) == 0) return json_array_remove(tags, j), 1;
  return 0;
}

/* Take the tag away from whichever other image has it. */
static int move_tag(hcs_image_store_t *s, const char *tag, const char *to_id, hcs_error_t *err) {
  cleanup_json json_t *all = hcs_image_all(s, err);
  if (all == NULL) return -1;
  size_t i;
  json_t *m;
  json_array_foreach(all, i, m) {
    if (strcmp(json_string_value(json_object_get(m, "Id")), to_id) == 0 || !drop_tag(m, tag)) continue;
    if (hcs_image_store_meta(s, m, err) < 0) return -1;
  }
  return 0;
}

/* "name:tag" of a reference (tag defaults to latest), malloc'd. */
static char *full_tag(const char *ref, hcs_error_t *err) {
  cleanup_free char *name = NULL, *tag = NULL;
  if (hcs_image_parse_ref(ref, &name, &tag, err) < 0) return NULL;
  return hcs_xasprintf("%s:%s", name, tag);
}

static uint64_t layer_size(hcs_layer_store_t *layers, const char *id) {
  cleanup_error hcs_error_t e = NULL;
  cleanup_free char *info = hcs_layer_inspect(layers, id, &e);
  if (info == NULL) return 0;
  cleanup_json json_t *j = json_loads(info, 0, NULL);
  return j ? (uint64_t)json_integer_value(json_object_get(j, "Size")) : 0;
}

/* Write config.json and image.json into a temporary directory and rename
 * it to <images>/<id>: the image appears complete or not at all. */
static int write_record(hcs_image_store_t *s, const char *id, const char *digest, const char *config, size_t config_len,
                        json_t *layer_ids, const struct hcs_image_meta *meta, const char *tag, uint64_t size,
                        hcs_error_t *err) {
  cleanup_free char *tmp = hcs_image_tmpdir(s, "record", err);
  if (tmp == NULL) return -1;
  cleanup_free char *cfg_path = hcs_xasprintf("%s/config.json", tmp);
  cleanup_free char *meta_path = hcs_xasprintf("%s/image.json", tmp);
  cleanup_free char *dir = hcs_xasprintf("%s/%s", s->dir, id);
  cleanup_free char *now = hcs_now_rfc3339();
  cleanup_json json_t *m = json_pack("{s:s,s:s,s:s,s:b,s:[],s:O,s:[],s:s,s:I}", "Id", id, "ConfigDigest", digest,
                                     "Publisher", meta->publisher ? meta->publisher : "", "IsOSImage", meta->is_os,
                                     "Tags", "Layers", layer_ids, "Users", "Created", now, "Size", (json_int_t)size);
  if (meta->parent) json_object_set_new(m, "Parent", json_string(meta->parent));
  if (tag) json_array_append_new(json_object_get(m, "Tags"), json_string(tag));
  if (hcs_write_file_atomic(cfg_path, config, config_len, 0644, err) < 0 ||
      hcs_json_write_atomic(meta_path, m, err) < 0 || (tag && move_tag(s, tag, id, err) < 0)) {
    hcs_rm_rf(tmp, NULL);
    return -1;
  }
  hcs_crash_point("image store: before a new image is renamed in");
  if (rename(tmp, dir) < 0) {
    hcs_error_make(err, errno, "rename `%s` to `%s`", tmp, dir);
    hcs_rm_rf(tmp, NULL);
    return -1;
  }
  return hcs_fsync_dir(s->dir, err);
}

char *hcs_image_record(hcs_image_store_t *s, const char *config, size_t config_len, json_t *layer_ids,
                       const struct hcs_image_meta *meta, hcs_error_t *err) {
  char digest[72];
  hcs_image_sha256_buf(config, config_len, digest);
  const char *id = digest + 7;
  cleanup_free char *tag = meta->name ? hcs_xasprintf("%s:%s", meta->name, meta->tag ? meta->tag : "latest") : NULL;
  cleanup_free char *dir = hcs_xasprintf("%s/%s", s->dir, id);
  if (hcs_path_exists(dir)) { /* same config: the same image; just tag it */
    cleanup_json json_t *m = hcs_image_load(s, id, err);
    if (m == NULL) return NULL;
    if (tag && !has_tag(m, tag)) {
      if (move_tag(s, tag, id, err) < 0) return NULL;
      json_array_append_new(json_object_get(m, "Tags"), json_string(tag));
      if (hcs_image_store_meta(s, m, err) < 0) return NULL;
    }
    return hcs_xstrdup(id);
  }
  size_t n = json_array_size(layer_ids), acquired = 0;
  uint64_t size = 0;
  for (; acquired < n; acquired++) {
    const char *lid = json_string_value(json_array_get(layer_ids, acquired));
    if (hcs_layer_acquire(s->layers, lid, err) < 0) break;
    size += layer_size(s->layers, lid);
  }
  if (acquired == n && write_record(s, id, digest, config, config_len, layer_ids, meta, tag, size, err) == 0)
    return hcs_xstrdup(id);
  while (acquired-- > 0)
    hcs_layer_release(s->layers, json_string_value(json_array_get(layer_ids, acquired)), NULL);
  return NULL;
}

/* --- tags, users, removal ---------------------------------------------------- */

int hcs_image_tag(hcs_image_store_t *s, const char *ref, const char *new_ref, hcs_error_t *err) {
  cleanup_free char *full = full_tag(new_ref, err);
  if (full == NULL) return -1;
  cleanup_close int lock = hcs_image_lock(s, true, err);
  if (lock < 0) return -1;
  cleanup_json json_t *m = load_ref(s, ref, err);
  if (m == NULL || move_tag(s, full, json_string_value(json_object_get(m, "Id")), err) < 0) return -1;
  if (!has_tag(m, full)) json_array_append_new(json_object_get(m, "Tags"), json_string(full));
  return hcs_image_store_meta(s, m, err);
}

int hcs_image_untag(hcs_image_store_t *s, const char *ref, hcs_error_t *err) {
  cleanup_free char *full = full_tag(ref, err);
  if (full == NULL) return -1;
  cleanup_close int lock = hcs_image_lock(s, true, err);
  if (lock < 0) return -1;
  cleanup_json json_t *m = load_ref(s, ref, err);
  if (m == NULL) return -1;
  if (!drop_tag(m, full)) return hcs_error_make(err, ENOENT, "tag `%s`", full);
  return hcs_image_store_meta(s, m, err);
}

static int change_users(hcs_image_store_t *s, const char *ref, const char *user, bool add, hcs_error_t *err) {
  if (hcs_validate_id("container id", user, err) < 0) return -1;
  cleanup_close int lock = hcs_image_lock(s, true, err);
  if (lock < 0) return -1;
  cleanup_json json_t *m = load_ref(s, ref, err);
  if (m == NULL) return -1;
  json_t *users = json_object_get(m, "Users");
  for (size_t i = 0; i < json_array_size(users); i++) {
    if (strcmp(json_string_value(json_array_get(users, i)), user) != 0) continue;
    if (add) return 0;
    json_array_remove(users, i);
    return hcs_image_store_meta(s, m, err);
  }
  if (!add) return 0;
  json_array_append_new(users, json_string(user));
  return hcs_image_store_meta(s, m, err);
}

int hcs_image_acquire(hcs_image_store_t *s, const char *ref, const char *user, hcs_error_t *err) {
  return change_users(s, ref, user, true, err);
}

/* Runtime references: `<run root>/images/<image id>/<user>`, empty files on
 * tmpfs, made and removed without fsync.  They name containers that do not
 * outlive the boot (`hcs run --rm`), so a reboot rightly drops them with
 * the containers; image.json is not rewritten for them. */
int hcs_image_acquire_runtime(hcs_image_store_t *s, const char *ref, const char *user, hcs_error_t *err) {
  if (hcs_validate_id("container id", user, err) < 0) return -1;
  cleanup_close int lock = hcs_image_lock(s, false, err);
  if (lock < 0) return -1;
  cleanup_free char *id = hcs_image_resolve_locked(s, ref, err);
  if (id == NULL) return -1;
  cleanup_free char *dir = hcs_xasprintf("%s/%s", s->run, id);
  if (hcs_mkdir_p(dir, 0700, err) < 0) return -1;
  cleanup_free char *p = hcs_xasprintf("%s/%s", dir, user);
  cleanup_close int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return hcs_error_make(err, errno, "create `%s`", p);
  return 0;
}

/* Drop a runtime reference if there is one; true when there was. */
static bool drop_runtime_user(hcs_image_store_t *s, const char *id, const char *user) {
  cleanup_free char *dir = hcs_xasprintf("%s/%s", s->run, id);
  cleanup_free char *p = hcs_xasprintf("%s/%s", dir, user);
  if (unlink(p) < 0) return false;
  rmdir(dir); /* when it was the last */
  return true;
}

/* Append the runtime references of image id to the array users. */
static void add_runtime_users(hcs_image_store_t *s, const char *id, json_t *users) {
  cleanup_free char *dir = hcs_xasprintf("%s/%s", s->run, id);
  cleanup_dir DIR *d = opendir(dir);
  if (d == NULL || !json_is_array(users)) return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (de->d_name[0] != '.') json_array_append_new(users, json_string(de->d_name));
}

static bool is_full_id(const char *ref) {
  size_t n = strspn(ref, "0123456789abcdef");
  return n == 64 && ref[n] == '\0';
}

int hcs_image_release(hcs_image_store_t *s, const char *ref, const char *user, hcs_error_t *err) {
  if (hcs_validate_id("container id", user, err) < 0) return -1;
  /* By full id (as the workflows release), a runtime reference goes even
   * when the image itself was force-removed meanwhile. */
  if (is_full_id(ref) && drop_runtime_user(s, ref, user)) return 0;
  {
    cleanup_close int lock = hcs_image_lock(s, false, err);
    if (lock < 0) return -1;
    cleanup_free char *id = hcs_image_resolve_locked(s, ref, err);
    if (id == NULL) return -1;
    if (drop_runtime_user(s, id, user)) return 0;
  }
  return change_users(s, ref, user, false, err);
}

/* Destroy the image's layers from the top down while nothing else holds
 * them; a layer still referenced or with children ends the walk. */
static void collect_layers(hcs_image_store_t *s, json_t *layers) {
  for (size_t i = json_array_size(layers); i-- > 0;) {
    const char *lid = json_string_value(json_array_get(layers, i));
    cleanup_error hcs_error_t e = NULL;
    if (hcs_layer_destroy(s->layers, lid, false, &e) < 0) {
      hcs_debug("keep layer `%s`: %s", lid, hcs_error_message(e));
      return;
    }
  }
}

static char *join_strings(json_t *arr) {
  size_t n = 1;
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) n += strlen(json_string_value(v)) + 2;
  char *out = hcs_xcalloc(1, n);
  json_array_foreach(arr, i, v) {
    if (i) strcat(out, ", ");
    strcat(out, json_string_value(v));
  }
  return out;
}

int hcs_image_remove(hcs_image_store_t *s, const char *ref, bool force, hcs_error_t *err) {
  cleanup_close int lock = hcs_image_lock(s, true, err);
  if (lock < 0) return -1;
  cleanup_json json_t *m = load_ref(s, ref, err);
  if (m == NULL) return -1;
  const char *id = json_string_value(json_object_get(m, "Id"));
  /* Removing one of several tags only untags (as `docker rmi name:tag`). */
  if (json_array_size(json_object_get(m, "Tags")) > 1 && strchr(ref, ':')) {
    cleanup_free char *full = full_tag(ref, NULL);
    if (full && drop_tag(m, full)) return hcs_image_store_meta(s, m, err);
  }
  json_t *users = json_object_get(m, "Users");
  add_runtime_users(s, id, users);
  if (json_array_size(users) > 0 && !force) {
    cleanup_free char *who = join_strings(users);
    return hcs_error_make(err, EBUSY, "remove image `%s`: in use by container%s %s (use force)", ref,
                          json_array_size(users) > 1 ? "s" : "", who);
  }
  cleanup_json json_t *all = hcs_image_all(s, err);
  if (all == NULL) return -1;
  cleanup_json json_t *kids = children_of(all, id);
  if (json_array_size(kids) > 0 && !force) {
    cleanup_free char *who = join_strings(kids);
    return hcs_error_make(err, EBUSY, "remove image `%s`: image%s %s %s built on it (use force)", ref,
                          json_array_size(kids) > 1 ? "s" : "", who, json_array_size(kids) > 1 ? "are" : "is");
  }
  /* Rename away first: the image disappears atomically, then is deleted. */
  cleanup_free char *dir = hcs_xasprintf("%s/%s", s->dir, id);
  cleanup_free char *gone = hcs_xasprintf("%s/.tmp-removed-%d-%s", s->dir, (int)getpid(), id);
  hcs_crash_point("image store: before a removed image is renamed away");
  if (rename(dir, gone) < 0) return hcs_error_make(err, errno, "rename `%s`", dir);
  json_t *layers = json_object_get(m, "Layers");
  size_t i;
  json_t *l;
  json_array_foreach(layers, i, l) {
    cleanup_error hcs_error_t e = NULL;
    if (hcs_layer_release(s->layers, json_string_value(l), &e) < 0)
      hcs_warning("release layer `%s`: %s", json_string_value(l), hcs_error_message(e));
  }
  collect_layers(s, layers);
  {
    cleanup_error hcs_error_t e = NULL;
    if (hcs_image_blob_collect(s, &e) < 0) hcs_warning("image store: collect blobs: %s", hcs_error_message(e));
  }
  return hcs_rm_rf(gone, err);
}

/* --- new images -------------------------------------------------------------- */

static const char *host_arch(void) {
  static struct utsname u;
  if (uname(&u) < 0) return "amd64";
  if (strcmp(u.machine, "x86_64") == 0) return "amd64";
  if (strcmp(u.machine, "aarch64") == 0) return "arm64";
  if (strncmp(u.machine, "armv7", 5) == 0) return "arm";
  return u.machine;
}

json_t *hcs_image_new_config(json_t *base_config, json_t *diff_ids, json_t *history, const char *created_by,
                             const char *comment) {
  cleanup_free char *now = hcs_now_rfc3339();
  json_t *cfg = json_pack("{s:s,s:s,s:s,s:O,s:{s:s,s:O}}", "created", now, "architecture", host_arch(), "os", "linux",
                          "config", base_config, "rootfs", "type", "layers", "diff_ids", diff_ids);
  json_t *h = history ? json_deep_copy(history) : json_array();
  json_t *entry = json_pack("{s:s}", "created", now);
  if (created_by) json_object_set_new(entry, "created_by", json_string(created_by));
  if (comment) json_object_set_new(entry, "comment", json_string(comment));
  json_array_append_new(h, entry);
  json_object_set_new(cfg, "history", h);
  return cfg;
}

static json_t *layer_diff_id(hcs_layer_store_t *layers, const char *id, hcs_error_t *err) {
  cleanup_free char *info = hcs_layer_inspect(layers, id, err);
  if (info == NULL) return NULL;
  cleanup_json json_t *j = hcs_json_parse(info, "layer info", err);
  if (j == NULL) return NULL;
  json_t *d = json_object_get(j, "DiffID");
  if (!json_is_string(d)) {
    hcs_error_make(err, 0, "layer `%s` has no diff id (a scratch layer cannot be part of an image)", id);
    return NULL;
  }
  return json_incref(d);
}

char *hcs_image_create(hcs_image_store_t *s, const hcs_image_create_opts_t *o, hcs_error_t *err) {
  if (o == NULL || o->name == NULL) {
    hcs_error_make(err, 0, "create image: a name is required");
    return NULL;
  }
  cleanup_free char *pname = NULL, *ptag = NULL;
  cleanup_free char *want = hcs_xasprintf("%s:%s", o->name, o->version ? o->version : "latest");
  if (hcs_image_parse_ref(want, &pname, &ptag, err) < 0) return NULL;
  cleanup_json json_t *overrides = NULL;
  if (o->config) {
    overrides = hcs_json_parse(o->config, "image config", err);
    if (overrides == NULL) return NULL;
    if (!json_is_object(overrides)) {
      hcs_error_make(err, 0, "create image: config must be a JSON object, got %s",
                     json_is_array(overrides) ? "an array" : "a scalar");
      return NULL;
    }
  }
  cleanup_close int lock = hcs_image_lock(s, true, err);
  if (lock < 0) return NULL;
  cleanup_json json_t *layers = json_array(), *diff_ids = json_array(), *base = json_object(), *history = NULL;
  cleanup_free char *parent_id = NULL;
  if (o->parent) {
    parent_id = hcs_image_resolve_locked(s, o->parent, err);
    if (parent_id == NULL) return NULL;
    cleanup_json json_t *pm = hcs_image_load(s, parent_id, err);
    cleanup_free char *pcfg_text = NULL;
    if (pm == NULL || hcs_image_read_config(s, parent_id, &pcfg_text, NULL, err) < 0) return NULL;
    cleanup_json json_t *pcfg = hcs_json_parse(pcfg_text, "parent image config", err);
    if (pcfg == NULL) return NULL;
    json_array_extend(layers, json_object_get(pm, "Layers"));
    json_t *rootfs = json_object_get(pcfg, "rootfs");
    json_array_extend(diff_ids, json_object_get(rootfs, "diff_ids"));
    if (json_is_object(json_object_get(pcfg, "config"))) json_object_update(base, json_object_get(pcfg, "config"));
    history = json_incref(json_object_get(pcfg, "history"));
  }
  if (o->layer_id) {
    json_t *d = layer_diff_id(s->layers, o->layer_id, err);
    if (d == NULL) return NULL;
    json_array_append_new(diff_ids, d);
    json_array_append_new(layers, json_string(o->layer_id));
  }
  if (json_array_size(layers) == 0) {
    hcs_error_make(err, 0, "create image `%s`: no layers (give a parent image or a layer)", want);
    return NULL;
  }
  if (overrides) json_object_update(base, overrides);
  cleanup_json json_t *cfg = hcs_image_new_config(base, diff_ids, history, o->created_by, o->comment);
  cleanup_free char *bytes = hcs_json_dumps(cfg);
  struct hcs_image_meta meta = {
      .name = pname, .tag = ptag, .publisher = o->publisher, .is_os = o->parent == NULL, .parent = parent_id};
  char *id = hcs_image_record(s, bytes, strlen(bytes), layers, &meta, err);
  if (id == NULL) hcs_error_wrap(err, "create image `%s`", want);
  return id;
}

static char *install_leased(hcs_image_store_t *s, const char *rootfs_tar, const hcs_image_install_opts_t *o,
                            const char *want, const char *n, const char *t, hcs_error_t *err);

char *hcs_image_install_os(hcs_image_store_t *s, const char *rootfs_tar, const hcs_image_install_opts_t *o,
                           hcs_error_t *err) {
  if (o == NULL || o->name == NULL) {
    hcs_error_make(err, 0, "install OS image: a name is required");
    return NULL;
  }
  cleanup_free char *n = NULL, *t = NULL;
  cleanup_free char *want = hcs_xasprintf("%s:%s", o->name, o->version ? o->version : "latest");
  if (hcs_image_parse_ref(want, &n, &t, err) < 0) return NULL;
  /* A lease on the base layers made from now on: a kill before the image
   * holds them leaves nothing the next store open does not collect. */
  struct hcs_image_lease lease;
  if (hcs_image_lease_begin(s, "install", true, NULL, NULL, &lease, err) < 0) return NULL;
  char *id = install_leased(s, rootfs_tar, o, want, n, t, err);
  hcs_image_lease_end(s, &lease, false); /* a failure destroyed its layers already */
  return id;
}

static char *install_leased(hcs_image_store_t *s, const char *rootfs_tar, const hcs_image_install_opts_t *o,
                            const char *want, const char *n, const char *t, hcs_error_t *err) {
  hcs_layer_import_opts_t io = {.progress = o->progress, .progress_data = o->progress_data};
  cleanup_free char *raw = hcs_layer_import_file(s->layers, rootfs_tar, &io, err);
  if (raw == NULL) {
    hcs_error_wrap(err, "install OS image `%s`", want);
    return NULL;
  }
  /* A tarball from another tool is not in hcs's canonical tar form: store
   * the canonical re-export instead, so that saving the image reproduces
   * its diff id exactly and the image keeps its id across save/import. */
  cleanup_free char *layer = hcs_image_reimport_layer(s, raw, NULL, NULL, NULL, err);
  if (layer == NULL) {
    hcs_layer_destroy(s->layers, raw, false, NULL);
    hcs_error_wrap(err, "install OS image `%s`: canonicalize layer", want);
    return NULL;
  }
  if (strcmp(raw, layer) != 0) hcs_layer_destroy(s->layers, raw, false, NULL);
  const char *default_config = "{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],"
                               "\"Cmd\":[\"/bin/sh\"]}";
  cleanup_free char *merged = NULL;
  if (o->config) {
    cleanup_json json_t *base = json_loads(default_config, 0, NULL);
    cleanup_json json_t *extra = hcs_json_parse(o->config, "image config", err);
    if (extra == NULL || !json_is_object(extra)) {
      if (extra) hcs_error_make(err, 0, "install OS image: config must be a JSON object");
      return NULL;
    }
    json_object_update(base, extra);
    merged = hcs_json_dumps(base);
  }
  hcs_image_create_opts_t co = {.layer_id = layer,
                                .name = n,
                                .version = t,
                                .publisher = o->publisher,
                                .config = merged ? merged : default_config,
                                .created_by = "hcs image install-os",
                                .comment = rootfs_tar};
  char *id = hcs_image_create(s, &co, err);
  if (id == NULL) hcs_layer_destroy(s->layers, layer, false, NULL); /* kept if another image shares it */
  return id;
}

json_t *hcs_image_summary_of(hcs_image_store_t *s, const char *id, hcs_error_t *err) {
  cleanup_json json_t *m = hcs_image_load(s, id, err);
  return m ? summary(m) : NULL;
}
