/* Manifests and indexes: fetched by tag or digest and verified, the
 * platform picked from an OCI index or a Docker manifest list, the config
 * fetched; inspect and find (catalog + tags list) on top. */
#include <fnmatch.h>
#include <string.h>
#include <sys/utsname.h>

#include "registry/internal.h"

static const char *ACCEPT_ALL =
    REG_MEDIA_OCI_MANIFEST ", " REG_MEDIA_OCI_INDEX ", " REG_MEDIA_DOCKER_MANIFEST ", " REG_MEDIA_DOCKER_LIST;

int reg_get_manifest(struct reg_client *c, const char *repo, const char *reference, char **body, size_t *len,
                     char **media_type, char digest[72], hcs_error_t *err) {
  cleanup_free char *path = hcs_xasprintf("/v2/%s/manifests/%s", repo, reference);
  cleanup_free char *scope = hcs_xasprintf("repository:%s:pull", repo);
  cleanup_free char *what = hcs_xasprintf("get manifest `%s:%s`", repo, reference);
  struct reg_request rq = {
      .method = "GET", .path = path, .scope = scope, .accept = ACCEPT_ALL, .body_fd = -1, .max_body = REG_MAX_JSON};
  struct reg_response resp = {0};
  if (reg_request(c, &rq, &resp, err) < 0) return -1;
  int rc = -1;
  cleanup_json json_t *j = NULL;
  if (resp.status != 200) {
    reg_status_error(c, what, &resp, err);
    goto out;
  }
  if (resp.truncated) {
    hcs_error_make(err, EFBIG, "%s: larger than %u bytes", what, REG_MAX_JSON);
    goto out;
  }
  reg_sha256(resp.body ? resp.body : "", resp.len, digest);
  if (strncmp(reference, "sha256:", 7) == 0 && strcmp(reference, digest) != 0) {
    hcs_error_make(err, 0, "%s: the manifest is corrupt: its content hashes to %s", what, digest);
    goto out;
  }
  j = json_loadb(resp.body ? resp.body : "", resp.len, 0, NULL);
  const char *mt = json_string_value(json_object_get(j, "mediaType"));
  if (mt == NULL) mt = resp.content_type;
  if (mt == NULL) mt = json_object_get(j, "manifests") ? REG_MEDIA_OCI_INDEX : REG_MEDIA_OCI_MANIFEST;
  if (strcmp(mt, REG_MEDIA_OCI_MANIFEST) && strcmp(mt, REG_MEDIA_OCI_INDEX) && strcmp(mt, REG_MEDIA_DOCKER_MANIFEST) &&
      strcmp(mt, REG_MEDIA_DOCKER_LIST)) {
    hcs_error_make(err, 0, "%s: unsupported manifest media type `%s`", what, mt);
    goto out;
  }
  *media_type = hcs_xstrdup(mt);
  *body = steal_ptr(resp.body);
  *len = resp.len;
  rc = 0;
out:
  reg_response_free(&resp);
  return rc;
}

char *reg_get_json_blob(struct reg_client *c, const char *repo, const char *digest, size_t *len, hcs_error_t *err) {
  if (!reg_valid_digest(digest)) {
    hcs_error_make(err, 0, "unsupported digest `%s`: only sha256 is supported", digest ? digest : "(none)");
    return NULL;
  }
  cleanup_free char *path = hcs_xasprintf("/v2/%s/blobs/%s", repo, digest);
  cleanup_free char *scope = hcs_xasprintf("repository:%s:pull", repo);
  struct reg_request rq = {.method = "GET", .path = path, .scope = scope, .body_fd = -1, .max_body = REG_MAX_JSON};
  struct reg_response resp = {0};
  if (reg_request(c, &rq, &resp, err) < 0) return NULL;
  cleanup_free char *what = hcs_xasprintf("get blob `%s` of `%s`", digest, repo);
  char got[72];
  reg_sha256(resp.body ? resp.body : "", resp.len, got);
  char *out = NULL;
  if (resp.status != 200)
    reg_status_error(c, what, &resp, err);
  else if (resp.truncated)
    hcs_error_make(err, EFBIG, "%s: larger than %u bytes", what, REG_MAX_JSON);
  else if (strcmp(got, digest) != 0)
    hcs_error_make(err, 0, "%s: the blob is corrupt: its content hashes to %s", what, got);
  else {
    out = resp.body ? steal_ptr(resp.body) : hcs_xstrdup("");
    *len = resp.len;
  }
  reg_response_free(&resp);
  return out;
}

/* This host's platform in OCI terms. */
static void host_platform(char os[64], char arch[64], char variant[64]) {
  struct utsname u;
  strcpy(os, "linux");
  variant[0] = '\0';
  if (uname(&u) < 0) {
    strcpy(arch, "amd64");
    return;
  }
  if (strcmp(u.machine, "x86_64") == 0)
    strcpy(arch, "amd64");
  else if (strcmp(u.machine, "aarch64") == 0)
    strcpy(arch, "arm64"), strcpy(variant, "v8");
  else if (strncmp(u.machine, "armv7", 5) == 0)
    strcpy(arch, "arm"), strcpy(variant, "v7");
  else if (strcmp(u.machine, "i686") == 0)
    strcpy(arch, "386");
  else
    snprintf(arch, 64, "%.60s", u.machine);
}

static char *platform_string(json_t *p) {
  const char *os = json_string_value(json_object_get(p, "os"));
  const char *arch = json_string_value(json_object_get(p, "architecture"));
  const char *var = json_string_value(json_object_get(p, "variant"));
  return hcs_xasprintf("%s/%s%s%s", os ? os : "?", arch ? arch : "?", var ? "/" : "", var ? var : "");
}

/* The descriptor of the index entry for the platform. */
static json_t *pick_platform(json_t *index, const char *want, const char *what, hcs_error_t *err) {
  char os[64], arch[64], variant[64];
  host_platform(os, arch, variant);
  if (want) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", want);
    char *a = strchr(buf, '/');
    if (a == NULL) {
      hcs_error_make(err, 0, "invalid platform `%s`: expected os/arch[/variant]", want);
      return NULL;
    }
    *a++ = '\0';
    char *v = strchr(a, '/');
    if (v) *v++ = '\0';
    snprintf(os, sizeof os, "%s", buf);
    snprintf(arch, sizeof arch, "%s", a);
    snprintf(variant, sizeof variant, "%s", v ? v : "");
  }
  json_t *list = json_object_get(index, "manifests");
  json_t *best = NULL;
  size_t i;
  json_t *d;
  json_array_foreach(list, i, d) {
    json_t *p = json_object_get(d, "platform");
    const char *pos = json_string_value(json_object_get(p, "os"));
    const char *parch = json_string_value(json_object_get(p, "architecture"));
    const char *pvar = json_string_value(json_object_get(p, "variant"));
    if (!pos || !parch || strcmp(pos, os) != 0 || strcmp(parch, arch) != 0) continue;
    if (variant[0] && pvar && strcmp(pvar, variant) != 0) continue;
    if (want && variant[0] && !pvar && best) continue;
    best = d;
    if (!variant[0] || (pvar && strcmp(pvar, variant) == 0)) break;
  }
  if (best) return best;
  cleanup_free char *avail = hcs_xstrdup("");
  json_array_foreach(list, i, d) {
    cleanup_free char *ps = platform_string(json_object_get(d, "platform"));
    char *n = hcs_xasprintf("%s%s%s", avail, *avail ? ", " : "", ps);
    free(avail);
    avail = n;
  }
  hcs_error_make(err, ENOENT, "%s: no image for platform %s/%s%s%s; available: %s", what, os, arch,
                 variant[0] ? "/" : "", variant, *avail ? avail : "none");
  return NULL;
}

void reg_image_free(struct reg_image *img) {
  json_decref(img->manifest);
  json_decref(img->cfg);
  free(img->manifest_bytes);
  free(img->media_type);
  free(img->config);
  free(img->top_bytes);
  free(img->top_media_type);
  memset(img, 0, sizeof *img);
}

int reg_resolve_image(struct reg_client *c, const struct reg_ref *ref, const char *platform, struct reg_image *img,
                      hcs_error_t *err) {
  memset(img, 0, sizeof *img);
  const char *reference = ref->digest ? ref->digest : ref->tag;
  cleanup_free char *what =
      hcs_xasprintf("image `%s/%s%s%s`", ref->registry, ref->repo, ref->digest ? "@" : ":", reference);
  char *body = NULL, *mt = NULL;
  size_t len = 0;
  if (reg_get_manifest(c, ref->repo, reference, &body, &len, &mt, img->top_digest, err) < 0) return -1;
  strcpy(img->digest, img->top_digest);
  for (int depth = 0; strcmp(mt, REG_MEDIA_OCI_INDEX) == 0 || strcmp(mt, REG_MEDIA_DOCKER_LIST) == 0; depth++) {
    cleanup_json json_t *index = json_loadb(body, len, 0, NULL);
    json_t *d = index && depth < 4 ? pick_platform(index, platform, what, err) : NULL;
    if (index && depth >= 4) hcs_error_make(err, 0, "%s: indexes nested too deeply", what);
    if (index == NULL) hcs_error_make(err, 0, "%s: the index is not valid JSON", what);
    const char *dd = json_string_value(json_object_get(d, "digest"));
    if (d && !reg_valid_digest(dd)) hcs_error_make(err, 0, "%s: index entry with a bad digest", what);
    if (!d || !reg_valid_digest(dd)) {
      free(body);
      free(mt);
      return -1;
    }
    cleanup_free char *want = hcs_xstrdup(dd);
    if (depth == 0) {
      img->top_bytes = body;
      img->top_len = len;
      img->top_media_type = mt;
    } else {
      free(body);
      free(mt);
    }
    body = mt = NULL;
    if (reg_get_manifest(c, ref->repo, want, &body, &len, &mt, img->digest, err) < 0) return -1;
  }
  img->manifest_bytes = body;
  img->manifest_len = len;
  img->media_type = mt;
  img->manifest = json_loadb(body, len, 0, NULL);
  json_t *cdesc = json_object_get(img->manifest, "config");
  json_t *layers = json_object_get(img->manifest, "layers");
  if (!json_is_object(cdesc) || !json_is_array(layers) || json_array_size(layers) == 0) {
    hcs_error_make(err, 0, "%s: manifest `%s` has no config or no layers", what, img->digest);
    return -1;
  }
  const char *cdigest = json_string_value(json_object_get(cdesc, "digest"));
  img->config = reg_get_json_blob(c, ref->repo, cdigest, &img->config_len, err);
  if (img->config == NULL) return hcs_error_wrap(err, "%s: config", what);
  img->cfg = hcs_json_parse(img->config, "image config", err);
  if (img->cfg == NULL) return -1;
  json_t *diff_ids = json_object_get(json_object_get(img->cfg, "rootfs"), "diff_ids");
  if (json_array_size(diff_ids) != json_array_size(layers))
    return hcs_error_make(err, 0, "%s: the config has %zu diff ids but the manifest %zu layers", what,
                          json_array_size(diff_ids), json_array_size(layers));
  size_t i;
  json_t *l;
  json_array_foreach(layers, i, l) {
    const char *lmt = json_string_value(json_object_get(l, "mediaType"));
    if (lmt && strstr(lmt, "nondistributable"))
      return hcs_error_make(err, 0, "%s: layer %zu has media type `%s`: foreign layers are not supported", what, i + 1,
                            lmt);
    if (!reg_valid_digest(json_string_value(json_object_get(l, "digest"))) ||
        !json_is_integer(json_object_get(l, "size")) || json_integer_value(json_object_get(l, "size")) < 0)
      return hcs_error_make(err, 0, "%s: layer %zu has no valid sha256 digest and size", what, i + 1);
    const char *did = json_string_value(json_array_get(diff_ids, i));
    if (!reg_valid_digest(did)) return hcs_error_make(err, 0, "%s: config diff id %zu is not sha256", what, i + 1);
  }
  return 0;
}

char *hcs_registry_inspect(const char *text, const hcs_registry_opts_t *o, hcs_error_t *err) {
  struct reg_ref ref;
  if (reg_ref_parse(text, &ref, err) < 0) return NULL;
  struct reg_image img = {0};
  struct reg_ref src = {0};
  struct reg_client *c = reg_open_pull(&ref, o, &src, &img, err);
  char *out = NULL;
  reg_ref_free(&src);
  if (c) {
    {
      cleanup_json json_t *j = json_pack("{s:s,s:s,s:O,s:O}", "Digest", img.digest, "MediaType", img.media_type,
                                         "Manifest", img.manifest, "Config", img.cfg);
      if (img.top_bytes) {
        cleanup_json json_t *index = json_loadb(img.top_bytes, img.top_len, 0, NULL);
        json_t *plats = json_array();
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(index, "manifests"), i, d) {
          cleanup_free char *ps = platform_string(json_object_get(d, "platform"));
          json_array_append_new(plats, json_string(ps));
        }
        json_object_set_new(j, "Platforms", plats);
        json_object_set_new(j, "IndexDigest", json_string(img.top_digest));
      }
      out = hcs_json_dumps(j);
    }
  }
  reg_image_free(&img);
  reg_client_free(c);
  reg_ref_free(&ref);
  if (out == NULL) hcs_error_wrap(err, "inspect `%s`", text);
  return out;
}

/* GET a JSON list endpoint, page by page (n=1000, then last=<the last
 * entry>: registries cap n). */
static json_t *get_list(struct reg_client *c, const char *base, const char *scope, const char *key, const char *what,
                        hcs_error_t *err) {
  cleanup_json json_t *all = json_array();
  for (int page = 0; page < 1000; page++) {
    const char *last = json_string_value(json_array_get(all, json_array_size(all) - 1));
    cleanup_free char *elast = last ? hcs_xstrdup(last) : NULL;
    cleanup_free char *path = hcs_xasprintf("%s?n=1000%s%s", base, elast ? "&last=" : "", elast ? elast : "");
    struct reg_request rq = {.method = "GET", .path = path, .scope = scope, .body_fd = -1, .max_body = REG_MAX_JSON};
    struct reg_response resp = {0};
    if (reg_request(c, &rq, &resp, err) < 0) return NULL;
    int rc = 0;
    size_t got = 0;
    if ((resp.status == 404 || resp.status == 405) && strcmp(key, "repositories") == 0)
      rc = hcs_error_make(err, ENOTSUP,
                          "%s: registry `%s` does not offer a catalog (HTTP status %ld); name a repository "
                          "(hcs image find %s/REPOSITORY lists its tags)",
                          what, c->registry, resp.status, c->registry);
    else if ((resp.status == 401 || resp.status == 403) && strcmp(key, "repositories") == 0)
      /* Docker Hub, GHCR and most hosted registries keep their catalog to
       * themselves: a 401 here is no sign of bad credentials */
      rc = hcs_error_make(err, ENOTSUP,
                          "%s: registry `%s` does not show its catalog %s (HTTP status %ld); name a repository "
                          "(hcs image find %s/REPOSITORY lists its tags)",
                          what, c->registry, c->basic ? "to these credentials" : "without credentials", resp.status,
                          c->registry);
    else if (resp.status != 200)
      rc = reg_status_error(c, what, &resp, err);
    else {
      cleanup_json json_t *j = json_loadb(resp.body ? resp.body : "", resp.len, 0, NULL);
      json_t *list = json_object_get(j, key);
      got = json_array_size(list);
      json_array_extend(all, list);
    }
    reg_response_free(&resp);
    if (rc < 0) return NULL;
    if (got < 1000) break;
  }
  return json_incref(all);
}

static bool matches(const char *pattern, const char *repo) {
  if (*pattern == '\0') return true;
  if (strpbrk(pattern, "*?[")) return fnmatch(pattern, repo, 0) == 0;
  return strstr(repo, pattern) != NULL;
}

/* A repository path, not a glob or an empty pattern. */
static bool literal_repo(const char *pattern) {
  if (*pattern == '\0' || strpbrk(pattern, "*?[") || pattern[strlen(pattern) - 1] == '/') return false;
  return strspn(pattern, "abcdefghijklmnopqrstuvwxyz0123456789._/-") == strlen(pattern);
}

char *hcs_registry_find(const char *text, const hcs_registry_opts_t *o, hcs_error_t *err) {
  if (text == NULL || *text == '\0') text = "docker.io/";
  /* "REGISTRY/PATTERN": the registry is the first component when it looks
   * like a host; else docker.io. */
  cleanup_free char *registry = NULL;
  const char *pattern = text;
  const char *slash = strchr(text, '/');
  if (slash && (memchr(text, '.', (size_t)(slash - text)) || memchr(text, ':', (size_t)(slash - text)) ||
                strncmp(text, "localhost/", 10) == 0)) {
    registry = strndup(text, (size_t)(slash - text));
    pattern = slash + 1;
  } else {
    registry = hcs_xstrdup("docker.io");
  }
  struct reg_client *c = reg_open(registry, NULL, o, err);
  if (c == NULL) return NULL;
  cleanup_json json_t *out = json_array();
  cleanup_free char *what = hcs_xasprintf("find `%s`", text);
  cleanup_json json_t *repos = get_list(c, "/v2/_catalog", "registry:catalog:*", "repositories", what, err);
  if (repos == NULL && hcs_error_status(err ? *err : NULL) == ENOTSUP && literal_repo(pattern)) {
    /* no catalog, but the pattern names a repository: its tags, if it has any */
    cleanup_free char *name = strcmp(registry, "docker.io") == 0 && strchr(pattern, '/') == NULL
                                  ? hcs_xasprintf("library/%s", pattern)
                                  : hcs_xstrdup(pattern);
    cleanup_free char *path = hcs_xasprintf("/v2/%s/tags/list", name);
    cleanup_free char *scope = hcs_xasprintf("repository:%s:pull", name);
    cleanup_error hcs_error_t e = NULL;
    cleanup_json json_t *tags = get_list(c, path, scope, "tags", what, &e);
    if (tags) {
      hcs_error_release(err);
      json_array_append_new(out, json_pack("{s:s,s:s,s:O}", "Name", name, "Registry", registry, "Tags", tags));
      reg_client_free(c);
      return hcs_json_dumps(out);
    }
    hcs_debug("%s: no tags list for `%s`: %s", what, name, hcs_error_message(e));
  }
  if (repos == NULL) {
    reg_client_free(c);
    return NULL;
  }
  size_t i;
  json_t *r;
  json_array_foreach(repos, i, r) {
    const char *name = json_string_value(r);
    if (name == NULL || !matches(pattern, name)) continue;
    cleanup_free char *path = hcs_xasprintf("/v2/%s/tags/list", name);
    cleanup_free char *scope = hcs_xasprintf("repository:%s:pull", name);
    cleanup_json json_t *tags = get_list(c, path, scope, "tags", what, err);
    if (tags == NULL) {
      reg_client_free(c);
      return NULL;
    }
    json_array_append_new(out, json_pack("{s:s,s:s,s:O}", "Name", name, "Registry", registry, "Tags", tags));
  }
  reg_client_free(c);
  return hcs_json_dumps(out);
}
