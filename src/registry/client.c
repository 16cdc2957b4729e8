/* The registry HTTP client on libcurl: references, the /v2/ ping that picks
 * https or (for loopback and insecure registries only) http, TLS trust
 * (system CAs plus certs.d), and requests that answer a 401 challenge with
 * basic credentials or a bearer token (Docker's token protocol). */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "registry/internal.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* --- references ---------------------------------------------------------- */

void reg_ref_free(struct reg_ref *r) {
  free(r->registry);
  free(r->repo);
  free(r->tag);
  free(r->digest);
  free(r->short_name);
  memset(r, 0, sizeof *r);
}

bool reg_valid_digest(const char *d) {
  if (d == NULL || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71) return false;
  for (const char *p = d + 7; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
  return true;
}

static bool path_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/';
}

int reg_ref_parse(const char *text, struct reg_ref *r, hcs_error_t *err) {
  memset(r, 0, sizeof *r);
  if (text == NULL || *text == '\0') return hcs_error_make(err, 0, "invalid image reference: empty");
  cleanup_free char *s = hcs_xstrdup(text);
  char *at = strchr(s, '@');
  if (at) {
    *at = '\0';
    if (!reg_valid_digest(at + 1))
      return hcs_error_make(err, 0, "invalid image reference `%s`: the digest must be sha256:<64 hex>", text);
    r->digest = hcs_xstrdup(at + 1);
  }
  char *slash = strchr(s, '/');
  char *rest = s;
  if (slash && (memchr(s, '.', (size_t)(slash - s)) || memchr(s, ':', (size_t)(slash - s)) ||
                strncmp(s, "localhost/", 10) == 0)) {
    r->registry = strndup(s, (size_t)(slash - s));
    rest = slash + 1;
  } else {
    r->registry = hcs_xstrdup("docker.io");
  }
  bool unqualified = rest == s;
  char *colon = strrchr(rest, ':');
  if (colon) {
    *colon = '\0';
    r->tag = hcs_xstrdup(colon + 1);
    cleanup_error hcs_error_t e = NULL;
    if (*r->tag == '\0' || strlen(r->tag) > 128 || hcs_validate_id("tag", r->tag, &e) < 0) {
      hcs_error_make(err, 0, "invalid image reference `%s`: bad tag `%s`", text, r->tag);
      reg_ref_free(r);
      return -1;
    }
  } else if (r->digest == NULL) {
    r->tag = hcs_xstrdup("latest");
  }
  bool ok = *rest != '\0' && rest[0] != '/' && rest[strlen(rest) - 1] != '/' && !strstr(rest, "//") &&
            !strstr(rest, "..") && strlen(rest) < 256;
  for (const char *p = rest; ok && *p; p++)
    ok = path_char(*p);
  if (!ok) {
    hcs_error_make(err, 0, "invalid image reference `%s`: the repository must be lowercase [a-z0-9._/-]", text);
    reg_ref_free(r);
    return -1;
  }
  r->repo = strcmp(r->registry, "docker.io") == 0 && !strchr(rest, '/') ? hcs_xasprintf("library/%s", rest)
                                                                        : hcs_xstrdup(rest);
  if (unqualified) r->short_name = hcs_xstrdup(rest);
  return 0;
}

char *reg_ref_name(const struct reg_ref *r) { return hcs_xasprintf("%s/%s", r->registry, r->repo); }

bool reg_host_is_loopback(const char *registry) {
  cleanup_free char *host = hcs_xstrdup(registry);
  if (host[0] == '[') { /* [::1]:5000 */
    char *end = strchr(host, ']');
    if (end) *end = '\0';
    return strcmp(host + 1, "::1") == 0;
  }
  char *colon = strchr(host, ':');
  if (colon) *colon = '\0';
  return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0;
}

/* --- TLS trust -------------------------------------------------------------- */

static void append_file(char **buf, size_t *len, const char *path) {
  cleanup_free char *data = NULL;
  size_t n = 0;
  if (hcs_read_file(path, &data, &n, NULL) < 0) return;
  *buf = hcs_xrealloc(*buf, *len + n + 2);
  memcpy(*buf + *len, data, n);
  *len += n;
  (*buf)[(*len)++] = '\n';
  (*buf)[*len] = '\0';
}

/* The CAs to trust for this registry: none extra -> NULL (curl's default
 * bundle); else the system bundle plus certs.d/<registry>/NAME.crt.  And
 * a client certificate, NAME.cert with its key NAME.key (podman's
 * convention; the first in name order when there are several). */
static int load_cas(struct reg_client *c, const hcs_registry_opts_t *o, hcs_error_t *err) {
  const char *base = o && o->certs_dir ? o->certs_dir : "/etc/containers/certs.d";
  cleanup_free char *dir = hcs_xasprintf("%s/%s", base, c->registry);
  struct dirent **names = NULL;
  int count = scandir(dir, &names, NULL, alphasort);
  if (count < 0) return 0;
  char *buf = NULL;
  size_t len = 0;
  int rc = 0;
  for (int i = 0; i < count; i++) {
    const char *name = names[i]->d_name;
    size_t n = strlen(name);
    cleanup_free char *p = hcs_xasprintf("%s/%s", dir, name);
    if (n > 4 && strcmp(name + n - 4, ".crt") == 0) {
      append_file(&buf, &len, p);
    } else if (n > 5 && strcmp(name + n - 5, ".cert") == 0 && c->cert_path == NULL && rc == 0) {
      cleanup_free char *key = hcs_xasprintf("%s/%.*s.key", dir, (int)(n - 5), name);
      if (!hcs_path_exists(key)) {
        rc = hcs_error_make(err, ENOENT, "client certificate `%s` has no key `%s`", p, key);
      } else {
        c->cert_path = steal_ptr(p);
        c->key_path = steal_ptr(key);
      }
    }
  }
  for (int i = 0; i < count; i++)
    free(names[i]);
  free(names);
  if (buf == NULL) return rc;
  append_file(&buf, &len, "/etc/ssl/certs/ca-certificates.crt");
  c->ca_data = buf;
  c->ca.data = buf;
  c->ca.len = len;
  c->ca.flags = CURL_BLOB_NOCOPY;
  return rc;
}

/* --- requests --------------------------------------------------------------- */

void reg_response_free(struct reg_response *r) {
  free(r->body);
  free(r->location);
  free(r->digest);
  free(r->content_type);
  free(r->range);
  memset(r, 0, sizeof *r);
}

struct xfer {
  const struct reg_request *rq;
  struct reg_response *resp;
  char *challenge;
  uint64_t skip; /* bytes to drop: a 200 answered a Range request */
};

static char *header_value(const char *line, size_t n, const char *name) {
  size_t k = strlen(name);
  if (n <= k + 1 || strncasecmp(line, name, k) != 0 || line[k] != ':') return NULL;
  const char *v = line + k + 1;
  const char *end = line + n;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  return strndup(v, (size_t)(end - v));
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud) {
  struct xfer *x = ud;
  size_t n = size * nmemb;
  struct reg_response *r = x->resp;
  if (n > 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response (after a redirect or 100) */
    const char *sp = memchr(line, ' ', n);
    r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    r->content_length = -1;
    x->skip = r->status == 200 && x->rq->resume_from ? x->rq->resume_from : 0;
    free(x->challenge);
    x->challenge = NULL;
    return n;
  }
  char *v;
  if ((v = header_value(line, n, "www-authenticate"))) {
    free(x->challenge);
    x->challenge = v;
  } else if ((v = header_value(line, n, "location"))) {
    free(r->location);
    r->location = v;
  } else if ((v = header_value(line, n, "docker-content-digest"))) {
    free(r->digest);
    r->digest = v;
  } else if ((v = header_value(line, n, "content-type"))) {
    free(r->content_type);
    r->content_type = v;
  } else if ((v = header_value(line, n, "range"))) {
    free(r->range);
    r->range = v;
  } else if ((v = header_value(line, n, "content-length"))) {
    r->content_length = strtoll(v, NULL, 10);
    free(v);
  }
  return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  struct xfer *x = ud;
  size_t n = size * nmemb;
  struct reg_response *r = x->resp;
  if (x->rq->sink && r->status >= 200 && r->status < 300) {
    if (x->skip) { /* the server ignored the Range: drop what we already have */
      size_t drop = x->skip < n ? (size_t)x->skip : n;
      x->skip -= drop;
      if (drop == n) return n;
      return drop + (x->rq->sink(data + drop, n - drop, x->rq->sink_data) == n - drop ? n - drop : 0);
    }
    return x->rq->sink(data, n, x->rq->sink_data);
  }
  size_t max = x->rq->max_body ? x->rq->max_body : (1u << 20);
  if (r->len + n > max) {
    r->truncated = true;
    return 0;
  }
  r->body = hcs_xrealloc(r->body, r->len + n + 1);
  memcpy(r->body + r->len, data, n);
  r->len += n;
  r->body[r->len] = '\0';
  return n;
}

static size_t on_read_fd(char *buf, size_t size, size_t nmemb, void *ud) {
  const struct reg_request *rq = ud;
  if (rq->cancel && __atomic_load_n(rq->cancel, __ATOMIC_RELAXED)) return CURL_READFUNC_ABORT;
  for (;;) {
    ssize_t n = read(rq->body_fd, buf, size * nmemb);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0 && rq->sent) __atomic_add_fetch(rq->sent, (uint64_t)n, __ATOMIC_RELAXED);
    if (n > 0 && rq->tap) rq->tap(rq->tap_data, buf, (size_t)n);
    return n < 0 ? CURL_READFUNC_ABORT : (size_t)n;
  }
}

/* Value of key in a challenge's parameter list (key="value",...). */
static char *challenge_param(const char *ch, const char *key) {
  size_t k = strlen(key);
  for (const char *p = ch; (p = strcasestr(p, key)) != NULL; p += k) {
    if (p != ch && p[-1] != ' ' && p[-1] != ',') continue;
    if (p[k] != '=') continue;
    const char *v = p + k + 1;
    if (*v == '"') {
      const char *end = strchr(v + 1, '"');
      return end ? strndup(v + 1, (size_t)(end - v - 1)) : NULL;
    }
    size_t n = strcspn(v, ", ");
    return strndup(v, n);
  }
  return NULL;
}

static char *url_escape(const char *s) {
  size_t n = strlen(s);
  char *out = hcs_xmalloc(3 * n + 1), *o = out;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-._~", *p))
      *o++ = (char)*p;
    else
      o += sprintf(o, "%%%02X", *p);
  }
  *o = '\0';
  return out;
}

static void common_opts(struct reg_client *c, CURL *h) {
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 8L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->timeout);
  /* A stalled transfer (a stopped registry) fails after `timeout` s. */
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->timeout);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "hcs/" HCS_VERSION);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->verify ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->verify ? 2L : 0L);
  if (c->ca.data) curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &c->ca);
  if (c->cert_path) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_path);
    curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_path);
  }
  if (c->max_rate) curl_easy_setopt(h, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)c->max_rate);
}

static int transport_error(struct reg_client *c, CURLcode rc, const char *errbuf, const char *method, const char *path,
                           hcs_error_t *err) {
  const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  if (rc == CURLE_OPERATION_TIMEDOUT)
    return hcs_error_make(err, ETIMEDOUT, "%s `%s` on registry `%s`: timed out (no data for %ld s): %s", method, path,
                          c->registry, c->timeout, why);
  return hcs_error_make(err, 0, "%s `%s` on registry `%s`: %s", method, path, c->registry, why);
}

/* An easy handle of the client: an idle one (with its open connections),
 * else a new one. */
static CURL *handle_get(struct reg_client *c) {
  pthread_mutex_lock(&c->mu);
  CURL *h = c->nidle > 0 ? c->idle[--c->nidle] : NULL;
  pthread_mutex_unlock(&c->mu);
  return h ? h : curl_easy_init();
}

/* A finished request's handle goes back to the idle ones, its options
 * (which point at the request's memory) cleared; one that failed is
 * closed with its connection. */
static void handle_put(struct reg_client *c, CURL *h, bool ok) {
  if (ok) {
    curl_easy_reset(h);
    pthread_mutex_lock(&c->mu);
    if (c->nidle < sizeof c->idle / sizeof c->idle[0]) {
      c->idle[c->nidle++] = h;
      h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
  }
  if (h) curl_easy_cleanup(h);
}

/* One HTTP exchange with the given Authorization header (or none). */
static int perform(struct reg_client *c, const struct reg_request *rq, const char *auth, struct reg_response *resp,
                   char **challenge, CURLcode *code, hcs_error_t *err) {
  CURL *h = handle_get(c);
  if (h == NULL) return hcs_error_make(err, ENOMEM, "initialize libcurl");
  reg_response_free(resp);
  resp->content_length = -1;
  struct xfer x = {.rq = rq, .resp = resp};
  cleanup_free char *url =
      strncmp(rq->path, "http", 4) == 0 ? hcs_xstrdup(rq->path) : hcs_xasprintf("%s%s", c->base, rq->path);
  char errbuf[CURL_ERROR_SIZE] = "";
  struct curl_slist *hdrs = NULL;
  cleanup_free char *accept = rq->accept ? hcs_xasprintf("Accept: %s", rq->accept) : NULL;
  cleanup_free char *ctype = rq->content_type ? hcs_xasprintf("Content-Type: %s", rq->content_type) : NULL;
  if (accept) hdrs = curl_slist_append(hdrs, accept);
  if (ctype) hdrs = curl_slist_append(hdrs, ctype);
  if (auth) hdrs = curl_slist_append(hdrs, auth);
  hdrs = curl_slist_append(hdrs, "Expect:");
  common_opts(c, h);
  if (c->share) curl_easy_setopt(h, CURLOPT_SHARE, c->share);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
  if (strcmp(rq->method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (rq->body_fd >= 0) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read_fd);
    curl_easy_setopt(h, CURLOPT_READDATA, (void *)rq);
    /* fewer, larger reads of the file or pipe (the default is 64 KiB) */
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 20);
    if (rq->body_size > 0)
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_size);
    else
      hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
  } else if (strcmp(rq->method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? (const char *)rq->body : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
  }
  /* A blob streams through the sink in bigger blocks: fewer calls, each a
   * write to the importer's pipe and one to the kept blob (the default is
   * 16 KiB).  Not under a rate limit, which it would make coarser. */
  if (rq->sink && c->max_rate == 0) curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L << 10);
  cleanup_free char *range = NULL;
  if (rq->resume_from) {
    range = hcs_xasprintf("%llu-", (unsigned long long)rq->resume_from);
    curl_easy_setopt(h, CURLOPT_RANGE, range);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  CURLcode rc = curl_easy_perform(h);
  if (code) *code = rc;
  curl_slist_free_all(hdrs);
  handle_put(c, h, rc == CURLE_OK);
  *challenge = x.challenge;
  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && resp->truncated)) {
    reg_response_free(resp);
    return transport_error(c, rc, errbuf, rq->method, rq->path, err);
  }
  return 0;
}

/* Fetch a bearer token for scope from the challenge's realm. */
static char *fetch_token(struct reg_client *c, const char *challenge, const char *scope, hcs_error_t *err) {
  cleanup_free char *realm = challenge_param(challenge, "realm");
  cleanup_free char *service = challenge_param(challenge, "service");
  cleanup_free char *chscope = challenge_param(challenge, "scope");
  if (realm == NULL || strncmp(realm, "http", 4) != 0) {
    hcs_error_make(err, 0, "registry `%s`: bearer challenge without a usable realm", c->registry);
    return NULL;
  }
  /* The challenge names what the request needs (a cross-repository mount
   * needs pull on the source too); one scope parameter per scope. */
  const char *want = chscope ? chscope : scope;
  cleanup_free char *esvc = service ? url_escape(service) : hcs_xstrdup("");
  cleanup_free char *url = hcs_xasprintf("%s%sservice=%s", realm, strchr(realm, '?') ? "&" : "?", esvc);
  cleanup_free char *scopes = want ? hcs_xstrdup(want) : NULL;
  for (char *save = NULL, *tok = scopes ? strtok_r(scopes, " ", &save) : NULL; tok; tok = strtok_r(NULL, " ", &save)) {
    cleanup_free char *e = url_escape(tok);
    char *next = hcs_xasprintf("%s&scope=%s", url, e);
    free(url);
    url = next;
  }
  cleanup_free char *auth = c->basic ? hcs_xasprintf("Authorization: Basic %s", c->basic) : NULL;
  struct reg_request rq = {.method = "GET", .path = url, .body_fd = -1, .max_body = 1 << 20};
  struct reg_response resp = {0};
  cleanup_free char *ch = NULL;
  if (perform(c, &rq, auth, &resp, &ch, NULL, err) < 0) {
    hcs_error_wrap(err, "get a token from `%s`", realm);
    return NULL;
  }
  if (resp.status == 401 || resp.status == 403) {
    hcs_error_make(err, EACCES, "unauthorized: registry `%s` (token server `%s`) refused %s", c->registry, realm,
                   c->basic ? "the credentials" : "anonymous access");
    reg_response_free(&resp);
    return NULL;
  }
  if (resp.status != 200) {
    hcs_error_make(err, 0, "get a token from `%s` for registry `%s`: HTTP status %ld", realm, c->registry, resp.status);
    reg_response_free(&resp);
    return NULL;
  }
  cleanup_json json_t *j = json_loads(resp.body ? resp.body : "", 0, NULL);
  reg_response_free(&resp);
  const char *tok = json_string_value(json_object_get(j, "token"));
  if (tok == NULL) tok = json_string_value(json_object_get(j, "access_token"));
  if (tok == NULL) {
    hcs_error_make(err, 0, "token server `%s` for registry `%s`: the answer holds no token", realm, c->registry);
    return NULL;
  }
  return hcs_xstrdup(tok);
}

/* The Authorization header for a scope from what is known (malloc'd). */
static char *auth_header(struct reg_client *c, const char *scope) {
  pthread_mutex_lock(&c->mu);
  char *h = NULL;
  if (c->token && (scope == NULL || (c->token_scope && strcmp(c->token_scope, scope) == 0)))
    h = hcs_xasprintf("Authorization: Bearer %s", c->token);
  else if (c->basic && c->challenge && strncasecmp(c->challenge, "basic", 5) == 0)
    h = hcs_xasprintf("Authorization: Basic %s", c->basic);
  pthread_mutex_unlock(&c->mu);
  return h;
}

int reg_request(struct reg_client *c, const struct reg_request *rq, struct reg_response *resp, hcs_error_t *err) {
  for (int attempt = 0;; attempt++) {
    cleanup_free char *auth = auth_header(c, rq->scope);
    cleanup_free char *ch = NULL;
    if (perform(c, rq, auth, resp, &ch, NULL, err) < 0) return -1;
    if (resp->status != 401 || ch == NULL || attempt > 0) return 0;
    if (rq->body_fd >= 0 && auth != NULL) return 0; /* a stream cannot be sent twice */
    pthread_mutex_lock(&c->mu);
    free(c->challenge);
    c->challenge = hcs_xstrdup(ch);
    pthread_mutex_unlock(&c->mu);
    if (strncasecmp(ch, "basic", 5) == 0) {
      if (c->basic == NULL) return 0; /* no credentials: the 401 stands */
      continue;
    }
    if (strncasecmp(ch, "bearer", 6) != 0) {
      reg_response_free(resp);
      return hcs_error_make(err, 0, "registry `%s`: unsupported authentication challenge `%s`", c->registry, ch);
    }
    char *tok = fetch_token(c, ch, rq->scope, err);
    if (tok == NULL) {
      reg_response_free(resp); /* a failed request leaves no response */
      return -1;
    }
    pthread_mutex_lock(&c->mu);
    free(c->token);
    free(c->token_scope);
    c->token = tok;
    c->token_scope = rq->scope ? hcs_xstrdup(rq->scope) : NULL;
    pthread_mutex_unlock(&c->mu);
    if (rq->body_fd >= 0) return 0; /* the caller retries a stream */
  }
}

int reg_status_error(struct reg_client *c, const char *what, const struct reg_response *resp, hcs_error_t *err) {
  if (resp->status == 401 || resp->status == 403)
    return hcs_error_make(err, EACCES, "%s: unauthorized: registry `%s` %s", what, c->registry,
                          c->basic ? "refused the credentials (or their access to this repository)"
                                   : "requires credentials (hcs login)");
  cleanup_free char *detail = NULL;
  cleanup_json json_t *j = resp->body ? json_loads(resp->body, 0, NULL) : NULL;
  json_t *errs = json_object_get(j, "errors");
  size_t i;
  json_t *e;
  json_array_foreach(errs, i, e) {
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    char *d = hcs_xasprintf("%s%s%s%s%s", detail ? detail : "", detail ? "; " : "", code ? code : "",
                            code && msg ? ": " : "", msg ? msg : "");
    free(detail);
    detail = d;
  }
  return hcs_error_make(err, resp->status == 404 ? ENOENT : 0, "%s on registry `%s`: HTTP status %ld%s%s", what,
                        c->registry, resp->status, detail ? ": " : "", detail ? detail : "");
}

/* --- the client ----------------------------------------------------------- */

void reg_client_free(struct reg_client *c) {
  if (c == NULL) return;
  free(c->registry);
  free(c->base);
  free(c->ca_data);
  free(c->cert_path);
  free(c->key_path);
  free(c->basic);
  free(c->token);
  free(c->token_scope);
  free(c->challenge);
  for (size_t i = 0; i < c->nidle; i++)
    curl_easy_cleanup(c->idle[i]);
  if (c->share) { /* after the handles that use it */
    curl_share_cleanup(c->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
      pthread_mutex_destroy(&c->share_mu[i]);
  }
  pthread_mutex_destroy(&c->mu);
  free(c);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud) {
  (void)h, (void)access;
  struct reg_client *c = ud;
  pthread_mutex_lock(&c->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud) {
  (void)h;
  struct reg_client *c = ud;
  pthread_mutex_unlock(&c->share_mu[data]);
}

/* The share handle of the client (DNS and TLS sessions), or none. */
static void share_init(struct reg_client *c) {
  CURLSH *sh = curl_share_init();
  if (sh == NULL) return;
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&c->share_mu[i], NULL);
  if (curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
      curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
      curl_share_setopt(sh, CURLSHOPT_USERDATA, c) != CURLSHE_OK ||
      curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
      curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
    curl_share_cleanup(sh);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
      pthread_mutex_destroy(&c->share_mu[i]);
    return;
  }
  c->share = sh;
}

/* GET /v2/ over scheme; 0 when the registry answered (any status). */
static int ping(struct reg_client *c, const char *scheme, CURLcode *how, hcs_error_t *err) {
  free(c->base);
  const char *host = strcmp(c->registry, "docker.io") == 0 ? "registry-1.docker.io" : c->registry;
  c->base = hcs_xasprintf("%s://%s", scheme, host);
  struct reg_request rq = {.method = "GET", .path = "/v2/", .body_fd = -1};
  struct reg_response resp = {0};
  cleanup_free char *ch = NULL;
  hcs_error_t e = NULL;
  int rc = perform(c, &rq, NULL, &resp, &ch, how, &e);
  if (rc < 0) {
    if (err) {
      hcs_error_release(err);
      *err = e;
    } else {
      hcs_error_release(&e);
    }
    reg_response_free(&resp);
    return -1;
  }
  if (ch) c->challenge = steal_ptr(ch);
  reg_response_free(&resp);
  return 0;
}

void hcs_registry_opts_init(hcs_registry_opts_t *o) { memset(o, 0, sizeof *o); }

struct reg_client *reg_client_new(const char *registry, const hcs_registry_opts_t *o, hcs_error_t *err) {
  pthread_once(&curl_once, curl_init_once);
  struct reg_client *c = hcs_xcalloc(1, sizeof *c);
  pthread_mutex_init(&c->mu, NULL);
  c->registry = hcs_xstrdup(registry);
  c->timeout = o && o->timeout > 0 ? o->timeout : 30;
  c->max_rate = o ? o->max_rate : 0;
  share_init(c);
  int verify = o ? o->tls_verify : 0;
  bool insecure = verify < 0 || (verify == 0 && reg_insecure_listed(registry, o));
  c->verify = !insecure;
  if (load_cas(c, o, err) < 0) {
    hcs_error_wrap(err, "registry `%s`", registry);
    reg_client_free(c);
    return NULL;
  }
  if (o && o->username) {
    cleanup_free char *up = hcs_xasprintf("%s:%s", o->username, o->password ? o->password : "");
    c->basic = reg_base64(up, strlen(up));
  } else {
    cleanup_free char *up = reg_auth_lookup(registry, o);
    if (up) c->basic = reg_base64(up, strlen(up));
  }
  CURLcode how;
  hcs_error_t https_err = NULL;
  if (ping(c, "https", &how, &https_err) == 0) return c;
  /* Plain HTTP only where the user allowed it, or on loopback, and only
   * when the TLS handshake itself failed (not a refused certificate). */
  bool may_plain = (insecure || (verify == 0 && reg_host_is_loopback(registry))) && how == CURLE_SSL_CONNECT_ERROR;
  if (may_plain && ping(c, "http", &how, NULL) == 0) {
    hcs_error_release(&https_err);
    return c;
  }
  if (err) {
    hcs_error_release(err);
    *err = https_err;
  } else {
    hcs_error_release(&https_err);
  }
  hcs_error_wrap(err, "reach registry `%s`", registry);
  reg_client_free(c);
  return NULL;
}
