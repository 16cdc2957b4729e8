/* Credentials in the containers auth file format shared by podman, buildah
 * and skopeo ({"auths": {"HOST[:PORT]": {"auth": base64("user:pass")}}}),
 * also read from Docker's ~/.docker/config.json; login and logout; the
 * registries file that marks registries insecure. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "registry/internal.h"

void reg_sha256(const void *data, size_t len, char out[72]) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
  strcpy(out, "sha256:");
  for (unsigned i = 0; i < 32; i++)
    sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

char *reg_base64(const void *data, size_t len) {
  char *out = hcs_xmalloc(4 * ((len + 2) / 3) + 1);
  EVP_EncodeBlock((unsigned char *)out, data, (int)len);
  return out;
}

char *reg_unbase64(const char *text, size_t *len) {
  size_t n = strlen(text);
  if (n % 4 != 0) return NULL;
  unsigned char *out = hcs_xmalloc(n / 4 * 3 + 1);
  int r = EVP_DecodeBlock(out, (const unsigned char *)text, (int)n);
  if (r < 0) {
    free(out);
    return NULL;
  }
  /* EVP_DecodeBlock counts the padding as zero bytes */
  size_t m = (size_t)r;
  for (size_t i = n; i > 0 && text[i - 1] == '=' && m > 0; i--)
    m--;
  out[m] = '\0';
  if (len) *len = m;
  return (char *)out;
}

char *reg_auth_file_path(const hcs_registry_opts_t *o) {
  if (o && o->auth_file) return hcs_xstrdup(o->auth_file);
  const char *env = getenv("REGISTRY_AUTH_FILE");
  if (env && *env) return hcs_xstrdup(env);
  const char *run = getenv("XDG_RUNTIME_DIR");
  if (run && *run) return hcs_xasprintf("%s/containers/auth.json", run);
  return hcs_xasprintf("/run/containers/%d/auth.json", (int)getuid());
}

/* "user:pass" of the entry for registry in one file. */
static char *lookup_in(const char *path, const char *registry) {
  if (!hcs_path_exists(path)) return NULL;
  cleanup_error hcs_error_t e = NULL;
  cleanup_json json_t *j = hcs_json_load_file(path, &e);
  if (j == NULL) {
    hcs_warning("ignore credentials file `%s`: %s", path, hcs_error_message(e));
    return NULL;
  }
  json_t *auths = json_object_get(j, "auths");
  json_t *entry = json_object_get(auths, registry);
  if (entry == NULL && strcmp(registry, "docker.io") == 0) {
    entry = json_object_get(auths, "https://index.docker.io/v1/");
    if (entry == NULL) entry = json_object_get(auths, "registry-1.docker.io");
  }
  const char *b64 = json_string_value(json_object_get(entry, "auth"));
  if (b64 == NULL) return NULL;
  char *up = reg_unbase64(b64, NULL);
  if (up == NULL || strchr(up, ':') == NULL) {
    hcs_warning("ignore the credentials for `%s` in `%s`: malformed auth", registry, path);
    free(up);
    return NULL;
  }
  return up;
}

char *reg_auth_lookup(const char *registry, const hcs_registry_opts_t *o) {
  cleanup_free char *path = reg_auth_file_path(o);
  char *up = lookup_in(path, registry);
  if (up || (o && o->auth_file)) return up;
  const char *home = getenv("HOME");
  if (home == NULL) return NULL;
  cleanup_free char *docker = hcs_xasprintf("%s/.docker/config.json", home);
  return lookup_in(docker, registry);
}

bool reg_insecure_listed(const char *registry, const hcs_registry_opts_t *o) {
  {
    struct reg_conf conf;
    cleanup_error hcs_error_t ce = NULL;
    if (reg_conf_load(&conf, &ce) == 0) {
      bool yes = reg_conf_insecure(&conf, registry);
      reg_conf_free(&conf);
      if (yes) return true;
    } /* else the pull itself reports the broken file (reg_open) */
  }
  const char *path = o && o->registries_conf ? o->registries_conf : getenv("HCS_REGISTRIES_CONF");
  if (path == NULL || *path == '\0') path = "/etc/hcs/registries.json";
  if (!hcs_path_exists(path)) return false;
  cleanup_error hcs_error_t e = NULL;
  cleanup_json json_t *j = hcs_json_load_file(path, &e);
  if (j == NULL) {
    hcs_warning("ignore registries file `%s`: %s", path, hcs_error_message(e));
    return false;
  }
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(j, "insecure"), i,
                     v) if (json_is_string(v) && strcmp(json_string_value(v), registry) == 0) return true;
  return false;
}

/* Change the entry of registry in the auth file (up NULL removes it);
 * 1 if an entry was removed.  The file is created 0600, replaced atomically. */
static int update_auth_file(const hcs_registry_opts_t *o, const char *registry, const char *up, hcs_error_t *err) {
  cleanup_free char *path = reg_auth_file_path(o);
  cleanup_json json_t *j = NULL;
  if (hcs_path_exists(path)) {
    j = hcs_json_load_file(path, err);
    if (j == NULL) return -1;
    if (!json_is_object(j)) return hcs_error_make(err, 0, "credentials file `%s`: not a JSON object", path);
  } else {
    j = json_object();
  }
  json_t *auths = json_object_get(j, "auths");
  if (!json_is_object(auths)) {
    auths = json_object();
    json_object_set_new(j, "auths", auths);
  }
  int removed = 0;
  if (up) {
    cleanup_free char *b64 = reg_base64(up, strlen(up));
    json_object_set_new(auths, registry, json_pack("{s:s}", "auth", b64));
  } else {
    removed = json_object_del(auths, registry) == 0;
    if (!removed) return 0;
  }
  cleanup_free char *dir = hcs_xstrdup(path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    if (hcs_mkdir_p(dir, 0700, err) < 0) return -1;
  }
  cleanup_free char *text = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
  if (hcs_write_file_atomic(path, text, strlen(text), 0600, err) < 0) return -1;
  return removed;
}

int hcs_registry_login(const char *registry, const char *username, const char *password,
                       const hcs_registry_opts_t *opts, hcs_error_t *err) {
  if (registry == NULL || username == NULL || password == NULL || *username == '\0')
    return hcs_error_make(err, 0, "log in: a registry, a user name and a password are required");
  if (strchr(username, ':')) return hcs_error_make(err, 0, "log in to `%s`: the user name contains ':'", registry);
  hcs_registry_opts_t o;
  if (opts)
    o = *opts;
  else
    hcs_registry_opts_init(&o);
  o.username = username;
  o.password = password;
  struct reg_client *c = reg_client_new(registry, &o, err);
  if (c == NULL) return -1;
  /* A registry with bearer tokens checks the credentials at the token
   * server; one with basic auth on /v2/ itself. */
  struct reg_request rq = {.method = "GET", .path = "/v2/", .body_fd = -1};
  struct reg_response resp = {0};
  int rc = reg_request(c, &rq, &resp, err);
  if (rc == 0 && resp.status != 200) rc = reg_status_error(c, "log in", &resp, err);
  reg_response_free(&resp);
  reg_client_free(c);
  if (rc < 0) return -1;
  cleanup_free char *up = hcs_xasprintf("%s:%s", username, password);
  if (update_auth_file(opts, registry, up, err) < 0) return hcs_error_wrap(err, "log in to `%s`", registry);
  return 0;
}

int hcs_registry_logout(const char *registry, const hcs_registry_opts_t *opts, hcs_error_t *err) {
  int r = update_auth_file(opts, registry, NULL, err);
  if (r < 0) return hcs_error_wrap(err, "log out of `%s`", registry);
  if (r == 0) return hcs_error_make(err, ENOENT, "log out of `%s`: not logged in", registry);
  return 0;
}
