/* registries.conf, the file podman, buildah and skopeo share
 * (containers-registries.conf(5), version 2), in the subset hcs uses:
 *
 *   unqualified-search-registries = ["docker.io"]
 *   [[registry]]
 *   prefix = "example.com/foo"   # default: location
 *   location = "127.0.0.1:5000"
 *   insecure = true              # plain HTTP allowed, certificates not verified
 *   blocked = true               # refused
 *   [[registry.mirror]]          # tried first by pulls, in order
 *   location = "127.0.0.1:5001"
 *   insecure = true
 *
 * Read from $CONTAINERS_REGISTRIES_CONF alone when set, else
 * /etc/containers/registries.conf and then
 * $HOME/.config/containers/registries.conf (whose entries come first, so
 * they win for the same prefix).  Keys hcs does not use are ignored; the
 * version 1 tables ([registries.search] ...) and inline tables are errors
 * naming the file and line. */
#include <ctype.h>
#include <string.h>

#include "registry/internal.h"

static void entry_free(struct reg_conf_entry *e) {
  free(e->prefix);
  free(e->location);
  for (size_t i = 0; i < e->nmirrors; i++)
    free(e->mirrors[i].location);
  free(e->mirrors);
}

void reg_conf_free(struct reg_conf *conf) {
  for (size_t i = 0; i < conf->n; i++)
    entry_free(&conf->entries[i]);
  free(conf->entries);
  for (size_t i = 0; i < conf->nsearch; i++)
    free(conf->search[i]);
  free(conf->search);
  for (size_t i = 0; i < conf->npaths; i++)
    free(conf->paths[i]);
  free(conf->paths);
  memset(conf, 0, sizeof *conf);
}

struct parser {
  const char *path;
  const char *p; /* the rest of the file */
  int line;
  hcs_error_t *err;
};

static int perr(struct parser *ps, const char *what) {
  return hcs_error_make(ps->err, EINVAL, "parse `%s` line %d: %s", ps->path, ps->line, what);
}

/* Skips blanks, comments and (when nl) newlines. */
static void skip(struct parser *ps, bool nl) {
  for (;;) {
    if (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r') {
      ps->p++;
    } else if (*ps->p == '#') {
      while (*ps->p && *ps->p != '\n')
        ps->p++;
    } else if (nl && *ps->p == '\n') {
      ps->p++;
      ps->line++;
    } else {
      return;
    }
  }
}

/* A basic "..." or literal '...' string (malloc'd). */
static char *parse_string(struct parser *ps) {
  char q = *ps->p++;
  size_t cap = 64, n = 0;
  char *out = hcs_xcalloc(1, cap);
  for (;;) {
    char ch = *ps->p++;
    if (ch == '\0' || ch == '\n') {
      free(out);
      perr(ps, "unterminated string");
      return NULL;
    }
    if (ch == q) break;
    if (q == '"' && ch == '\\') {
      char e = *ps->p++;
      ch = e == 'n' ? '\n' : e == 't' ? '\t' : e == '"' ? '"' : e == '\\' ? '\\' : '\0';
      if (ch == '\0') {
        free(out);
        perr(ps, "unsupported escape in a string");
        return NULL;
      }
    }
    if (n + 2 > cap) out = hcs_xrealloc(out, cap *= 2);
    out[n++] = ch;
    out[n] = '\0';
  }
  return out;
}

/* A value: a string, a boolean or an array of strings, as JSON. */
static json_t *parse_value(struct parser *ps) {
  if (*ps->p == '"' || *ps->p == '\'') {
    char *s = parse_string(ps);
    if (s == NULL) return NULL;
    json_t *v = json_string(s);
    free(s);
    if (v == NULL) perr(ps, "a string that is not UTF-8");
    return v;
  }
  if (strncmp(ps->p, "true", 4) == 0 || strncmp(ps->p, "false", 5) == 0) {
    bool t = *ps->p == 't';
    ps->p += t ? 4 : 5;
    return json_boolean(t);
  }
  if (*ps->p == '[') {
    ps->p++;
    json_t *arr = json_array();
    for (;;) {
      skip(ps, true);
      if (*ps->p == ']') {
        ps->p++;
        return arr;
      }
      if (*ps->p != '"' && *ps->p != '\'') {
        json_decref(arr);
        perr(ps, "an array holds strings only here");
        return NULL;
      }
      json_t *v = parse_value(ps);
      if (v == NULL) {
        json_decref(arr);
        return NULL;
      }
      json_array_append_new(arr, v);
      skip(ps, true);
      if (*ps->p == ',')
        ps->p++;
      else if (*ps->p != ']') {
        json_decref(arr);
        perr(ps, "expected `,` or `]` in an array");
        return NULL;
      }
    }
  }
  if (*ps->p == '{') {
    perr(ps, "inline tables are not supported (write [[registry.mirror]] tables)");
    return NULL;
  }
  /* numbers and dates: no key hcs reads takes one; skipped to the line's end */
  const char *start = ps->p;
  while (*ps->p && *ps->p != '\n' && *ps->p != '#')
    ps->p++;
  if (ps->p == start) {
    perr(ps, "expected a value");
    return NULL;
  }
  return json_null();
}

enum section { TOP, REGISTRY, MIRROR, OTHER };

static int set_key(struct parser *ps, struct reg_conf *conf, enum section sec, const char *key, json_t *v) {
  if (sec == TOP && strcmp(key, "unqualified-search-registries") == 0) {
    if (!json_is_array(v)) return perr(ps, "unqualified-search-registries: expected an array of strings");
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) {
      conf->search = hcs_xrealloc(conf->search, (conf->nsearch + 1) * sizeof *conf->search);
      conf->search[conf->nsearch++] = hcs_xstrdup(json_string_value(s));
    }
    return 0;
  }
  if (sec != REGISTRY && sec != MIRROR) return 0;
  struct reg_conf_entry *e = &conf->entries[conf->n - 1];
  struct reg_conf_mirror *m = sec == MIRROR ? &e->mirrors[e->nmirrors - 1] : NULL;
  bool is_str = json_is_string(v), is_bool = json_is_boolean(v);
  if (strcmp(key, "location") == 0 || (sec == REGISTRY && strcmp(key, "prefix") == 0)) {
    if (!is_str) return perr(ps, "expected a string");
    char **dst = strcmp(key, "prefix") == 0 ? &e->prefix : m ? &m->location : &e->location;
    free(*dst);
    *dst = hcs_xstrdup(json_string_value(v));
    size_t n = strlen(*dst);
    while (n > 0 && (*dst)[n - 1] == '/') /* "host/" is "host" */
      (*dst)[--n] = '\0';
    return 0;
  }
  if (strcmp(key, "insecure") == 0 || (sec == REGISTRY && strcmp(key, "blocked") == 0)) {
    if (!is_bool) return perr(ps, "expected true or false");
    bool b = json_is_true(v);
    if (strcmp(key, "blocked") == 0)
      e->blocked = b;
    else if (m)
      m->insecure = b;
    else
      e->insecure = b;
    return 0;
  }
  if (sec == REGISTRY && strcmp(key, "mirror") == 0)
    return perr(ps, "mirror = [...] is not supported (write [[registry.mirror]] tables)");
  return 0; /* mirror-by-digest-only, pull-from-mirror, ...: not used */
}

static int parse_file(struct reg_conf *conf, const char *path, const char *text, hcs_error_t *err) {
  struct parser ps = {.path = path, .p = text, .line = 1, .err = err};
  enum section sec = TOP;
  size_t first = conf->n;
  for (;;) {
    skip(&ps, true);
    if (*ps.p == '\0') break;
    if (*ps.p == '[') {
      const char *end = strchr(ps.p, '\n');
      size_t len = end ? (size_t)(end - ps.p) : strlen(ps.p);
      cleanup_free char *head = strndup(ps.p, len);
      char *hash = strchr(head, '#');
      if (hash) *hash = '\0';
      for (size_t n = strlen(head); n > 0 && isspace((unsigned char)head[n - 1]);)
        head[--n] = '\0';
      ps.p += len;
      if (strcmp(head, "[[registry]]") == 0) {
        conf->entries = hcs_xrealloc(conf->entries, (conf->n + 1) * sizeof *conf->entries);
        memset(&conf->entries[conf->n++], 0, sizeof *conf->entries);
        sec = REGISTRY;
      } else if (strcmp(head, "[[registry.mirror]]") == 0) {
        if (conf->n == first) return perr(&ps, "[[registry.mirror]] before any [[registry]]");
        struct reg_conf_entry *e = &conf->entries[conf->n - 1];
        e->mirrors = hcs_xrealloc(e->mirrors, (e->nmirrors + 1) * sizeof *e->mirrors);
        memset(&e->mirrors[e->nmirrors++], 0, sizeof *e->mirrors);
        sec = MIRROR;
      } else if (strncmp(head, "[registries.", 12) == 0) {
        return perr(&ps, "the version 1 format ([registries.search], ...) is not supported; write [[registry]] "
                         "tables and unqualified-search-registries");
      } else {
        sec = OTHER; /* [aliases], ...: not used */
      }
      continue;
    }
    const char *k = ps.p;
    while (isalnum((unsigned char)*ps.p) || *ps.p == '-' || *ps.p == '_')
      ps.p++;
    if (ps.p == k) return perr(&ps, "expected a key, a [table] or a [[table]]");
    cleanup_free char *key = strndup(k, (size_t)(ps.p - k));
    skip(&ps, false);
    if (*ps.p != '=') return perr(&ps, "expected `=` after a key");
    ps.p++;
    skip(&ps, false);
    cleanup_json json_t *v = parse_value(&ps);
    if (v == NULL) return -1;
    if (set_key(&ps, conf, sec, key, v) < 0) return -1;
    skip(&ps, false);
    if (*ps.p != '\n' && *ps.p != '\0') return perr(&ps, "expected the end of the line after a value");
  }
  for (size_t i = first; i < conf->n; i++) {
    struct reg_conf_entry *e = &conf->entries[i];
    if (e->location == NULL && e->prefix == NULL)
      return hcs_error_make(err, EINVAL, "`%s`: a [[registry]] has neither location nor prefix", path);
    for (size_t j = 0; j < e->nmirrors; j++)
      if (e->mirrors[j].location == NULL)
        return hcs_error_make(err, EINVAL, "`%s`: a mirror of `%s` has no location", path,
                              e->prefix ? e->prefix : e->location);
    if (e->prefix == NULL) e->prefix = hcs_xstrdup(e->location);
    if (e->location == NULL) e->location = hcs_xstrdup(e->prefix);
    e->file = path;
  }
  return 0;
}

static int load_one(struct reg_conf *conf, const char *path, hcs_error_t *err) {
  if (!hcs_path_exists(path)) return 0;
  size_t len = 0;
  cleanup_free char *text = NULL;
  if (hcs_read_file(path, &text, &len, err) < 0) return -1;
  if (strlen(text) != len) return hcs_error_make(err, EINVAL, "parse `%s`: it holds a NUL byte", path);
  conf->paths = hcs_xrealloc(conf->paths, (conf->npaths + 1) * sizeof *conf->paths);
  /* the paths outlive the parse: entries point at them */
  char *keep = hcs_xstrdup(path);
  conf->paths[conf->npaths++] = keep;
  return parse_file(conf, keep, text, err);
}

int reg_conf_load(struct reg_conf *conf, hcs_error_t *err) {
  memset(conf, 0, sizeof *conf);
  const char *env = getenv("CONTAINERS_REGISTRIES_CONF");
  int rc;
  if (env && *env) {
    rc = load_one(conf, env, err);
  } else {
    const char *home = getenv("HOME");
    cleanup_free char *user = home ? hcs_xasprintf("%s/.config/containers/registries.conf", home) : NULL;
    rc = user ? load_one(conf, user, err) : 0;
    if (rc == 0) rc = load_one(conf, "/etc/containers/registries.conf", err);
  }
  if (rc < 0) reg_conf_free(conf);
  return rc;
}

/* Does prefix match name ("host[:port]/path")?  Length matched, or 0. */
static size_t prefix_match(const char *prefix, const char *name) {
  size_t n = strlen(prefix);
  if (strncmp(prefix, name, n) != 0 || (name[n] != '\0' && name[n] != '/')) return 0;
  return n;
}

const struct reg_conf_entry *reg_conf_match(const struct reg_conf *conf, const char *registry, const char *repo) {
  cleanup_free char *name = repo ? hcs_xasprintf("%s/%s", registry, repo) : hcs_xstrdup(registry);
  const struct reg_conf_entry *best = NULL;
  size_t best_len = 0;
  for (size_t i = 0; i < conf->n; i++) {
    size_t n = prefix_match(conf->entries[i].prefix, name);
    if (n > best_len) { /* the longest prefix; the first file's entry on a tie */
      best = &conf->entries[i];
      best_len = n;
    }
  }
  return best;
}

/* The host part ("host[:port]") of a location. */
static bool location_host_is(const char *location, const char *registry) {
  size_t n = strcspn(location, "/");
  return strlen(registry) == n && strncmp(location, registry, n) == 0;
}

bool reg_conf_insecure(const struct reg_conf *conf, const char *registry) {
  for (size_t i = 0; i < conf->n; i++) {
    const struct reg_conf_entry *e = &conf->entries[i];
    if (e->insecure && location_host_is(e->location, registry)) return true;
    for (size_t j = 0; j < e->nmirrors; j++)
      if (e->mirrors[j].insecure && location_host_is(e->mirrors[j].location, registry)) return true;
  }
  return false;
}

/* registry/repo of `name` with the entry's prefix replaced by location. */
static int rewrite(const struct reg_conf_entry *e, const char *location, const struct reg_ref *ref, struct reg_ref *out,
                   hcs_error_t *err) {
  cleanup_free char *name = hcs_xasprintf("%s/%s", ref->registry, ref->repo);
  cleanup_free char *moved = hcs_xasprintf("%s%s", location, name + strlen(e->prefix));
  const char *slash = strchr(moved, '/');
  if (slash == NULL || slash[1] == '\0')
    return hcs_error_make(err, EINVAL, "`%s`: location `%s` for `%s` leaves no repository", e->file, location, name);
  memset(out, 0, sizeof *out);
  out->registry = strndup(moved, (size_t)(slash - moved));
  out->repo = hcs_xstrdup(slash + 1);
  out->tag = ref->tag ? hcs_xstrdup(ref->tag) : NULL;
  out->digest = ref->digest ? hcs_xstrdup(ref->digest) : NULL;
  return 0;
}

static void ref_copy(const struct reg_ref *in, struct reg_ref *out) {
  memset(out, 0, sizeof *out);
  out->registry = hcs_xstrdup(in->registry);
  out->repo = hcs_xstrdup(in->repo);
  out->tag = in->tag ? hcs_xstrdup(in->tag) : NULL;
  out->digest = in->digest ? hcs_xstrdup(in->digest) : NULL;
}

struct reg_client *reg_open(const char *registry, const char *repo, const hcs_registry_opts_t *o, hcs_error_t *err) {
  struct reg_conf conf;
  if (reg_conf_load(&conf, err) < 0) return NULL;
  const struct reg_conf_entry *e = reg_conf_match(&conf, registry, repo);
  if (e && e->blocked) {
    hcs_error_make(err, EACCES, "registry `%s` is blocked (prefix `%s` in `%s`)", registry, e->prefix, e->file);
    reg_conf_free(&conf);
    return NULL;
  }
  reg_conf_free(&conf);
  return reg_client_new(registry, o, err);
}

/* The mirrors of ref's entry, then its location. */
static struct reg_client *open_one(const struct reg_conf *conf, const struct reg_ref *ref, const hcs_registry_opts_t *o,
                                   struct reg_ref *src, struct reg_image *img, hcs_error_t *err) {
  const struct reg_conf_entry *e = reg_conf_match(conf, ref->registry, ref->repo);
  if (e && e->blocked) {
    hcs_error_make(err, EACCES, "registry `%s` is blocked (prefix `%s` in `%s`)", ref->registry, e->prefix, e->file);
    return NULL;
  }
  /* the mirrors first, in order; any failure moves on to the next */
  for (size_t i = 0; e && i < e->nmirrors; i++) {
    hcs_error_t me = NULL;
    struct reg_ref m;
    if (rewrite(e, e->mirrors[i].location, ref, &m, &me) == 0) {
      struct reg_client *c = reg_client_new(m.registry, o, &me);
      if (c && reg_resolve_image(c, &m, o ? o->platform : NULL, img, &me) == 0) {
        hcs_info("pull `%s/%s` from mirror `%s`", ref->registry, ref->repo, m.registry);
        *src = m;
        return c;
      }
      reg_client_free(c);
      reg_image_free(img);
      reg_ref_free(&m);
    }
    hcs_info("mirror `%s` of `%s`: %s", e->mirrors[i].location, ref->registry, hcs_error_message(me));
    hcs_error_release(&me);
  }
  struct reg_ref main_ref;
  if (e && strcmp(e->location, e->prefix) != 0) {
    if (rewrite(e, e->location, ref, &main_ref, err) < 0) return NULL;
  } else {
    ref_copy(ref, &main_ref);
  }
  struct reg_client *c = reg_client_new(main_ref.registry, o, err);
  if (c == NULL || reg_resolve_image(c, &main_ref, o ? o->platform : NULL, img, err) < 0) {
    reg_client_free(c);
    reg_image_free(img);
    reg_ref_free(&main_ref);
    return NULL;
  }
  *src = main_ref;
  return c;
}

struct reg_client *reg_open_pull(struct reg_ref *ref, const hcs_registry_opts_t *o, struct reg_ref *src,
                                 struct reg_image *img, hcs_error_t *err) {
  memset(src, 0, sizeof *src);
  struct reg_conf conf;
  if (reg_conf_load(&conf, err) < 0) return NULL;
  struct reg_client *c = NULL;
  if (ref->short_name == NULL || conf.nsearch == 0) {
    c = open_one(&conf, ref, o, src, img, err);
    reg_conf_free(&conf);
    return c;
  }
  /* an unqualified name: each search registry in turn, the first that has
   * the image names it */
  cleanup_free char *tried = hcs_xstrdup("");
  hcs_error_t last = NULL;
  for (size_t i = 0; i < conf.nsearch && c == NULL; i++) {
    struct reg_ref cand = {.registry = hcs_xstrdup(conf.search[i]),
                           .tag = ref->tag ? hcs_xstrdup(ref->tag) : NULL,
                           .digest = ref->digest ? hcs_xstrdup(ref->digest) : NULL};
    cand.repo = strcmp(cand.registry, "docker.io") == 0 && strchr(ref->short_name, '/') == NULL
                    ? hcs_xasprintf("library/%s", ref->short_name)
                    : hcs_xstrdup(ref->short_name);
    char *t = hcs_xasprintf("%s%s%s", tried, *tried ? ", " : "", cand.registry);
    free(tried);
    tried = t;
    hcs_error_release(&last);
    c = open_one(&conf, &cand, o, src, img, &last);
    if (c) { /* the reference is now this registry's */
      free(ref->registry);
      free(ref->repo);
      ref->registry = steal_ptr(cand.registry);
      ref->repo = steal_ptr(cand.repo);
    }
    reg_ref_free(&cand);
  }
  if (c == NULL) {
    hcs_error_make(err, hcs_error_status(last), "no unqualified-search registry (%s in `%s`) has `%s`: %s", tried,
                   conf.npaths ? conf.paths[0] : "registries.conf", ref->short_name, hcs_error_message(last));
    hcs_error_release(&last);
  }
  reg_conf_free(&conf);
  return c;
}
