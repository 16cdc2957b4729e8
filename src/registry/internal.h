/* Internals of the registry client: references, the HTTP client with its
 * authentication (client.c), credentials files (auth.c). */
#ifndef HCS_REGISTRY_INTERNAL_H
#define HCS_REGISTRY_INTERNAL_H

#include <pthread.h>
#include <curl/curl.h>

#include "core/util.h"
#include "hcs/registry.h"

#define REG_MEDIA_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define REG_MEDIA_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define REG_MEDIA_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define REG_MEDIA_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define REG_MAX_JSON (8u << 20)

struct reg_ref {
  char *registry;   /* as written ("docker.io", "127.0.0.1:5000") */
  char *repo;       /* "library/busybox" */
  char *tag;        /* NULL when only a digest was given (then "latest" if neither) */
  char *digest;     /* "sha256:..." or NULL */
  char *short_name; /* the repository as written when no registry was named, else NULL */
};

HCS_INTERNAL int reg_ref_parse(const char *text, struct reg_ref *ref, hcs_error_t *err);
HCS_INTERNAL void reg_ref_free(struct reg_ref *ref);
/* "registry/repo" as the local image name (docker.io familiar form is
 * shortened by the image store). */
HCS_INTERNAL char *reg_ref_name(const struct reg_ref *ref);
/* True for localhost, 127.0.0.0/8 and ::1. */
HCS_INTERNAL bool reg_host_is_loopback(const char *registry);

struct reg_client {
  char *registry;      /* "host[:port]" for messages, credentials and certs.d */
  char *base;          /* "https://host:port" or "http://..." after the ping */
  bool verify;         /* verify the TLS peer */
  struct curl_blob ca; /* system CAs + certs.d/<registry>/NAME.crt, or empty */
  char *ca_data;
  char *cert_path, *key_path; /* the client certificate from certs.d, or NULL */
  char *basic;                /* base64 "user:pass" or NULL */
  long timeout;
  uint64_t max_rate;
  /* Connections outlive a request: finished easy handles wait in `idle`
   * (each keeps its connections: the one that fetched the manifest carries
   * a blob next), and all share the DNS and TLS session caches, so a TLS
   * registry resumes its sessions.  libcurl does not share one connection
   * cache between threads, hence handles, not a shared cache. */
  CURLSH *share;
  pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
  CURL *idle[8];
  size_t nidle;
  pthread_mutex_t mu; /* guards the token fields, shared by transfer threads */
  char *token, *token_scope;
  char *challenge; /* the last WWW-Authenticate of the registry */
};

HCS_INTERNAL struct reg_client *reg_client_new(const char *registry, const hcs_registry_opts_t *opts, hcs_error_t *err);
HCS_INTERNAL void reg_client_free(struct reg_client *c);

/* One request.  The response body goes to `sink` when given (called only
 * for a 2xx response, with the bytes after `resume_from`), else into
 * resp->body (at most max_body bytes). */
struct reg_request {
  const char *method; /* GET HEAD PUT POST PATCH DELETE */
  const char *path;   /* "/v2/..." or an absolute URL (a Location) */
  const char *scope;  /* token scope, e.g. "repository:library/x:pull" */
  const char *accept;
  const char *content_type;
  const void *body; /* request body in memory */
  size_t body_len;
  int body_fd;        /* or streamed from an fd (chunked), -1 for none; not retried */
  uint64_t body_size; /* the fd's length when known: sent with Content-Length, not chunked */
  uint64_t *sent;     /* bytes read from body_fd so far (atomic), or NULL */
  const bool *cancel; /* when it turns true, a streamed upload stops */
  void (*tap)(void *tap_data, const void *data, size_t len); /* sees every byte read from body_fd */
  void *tap_data;
  size_t (*sink)(const void *data, size_t len, void *userdata);
  void *sink_data;
  uint64_t resume_from; /* Range: bytes=N- */
  size_t max_body;
};

struct reg_response {
  long status;
  char *body;
  size_t len;
  char *location, *digest, *content_type, *range;
  int64_t content_length;
  bool truncated; /* the body exceeded max_body */
};

HCS_INTERNAL void reg_response_free(struct reg_response *r);
/* Performs the request, answering a 401 challenge (basic or bearer) once.
 * Returns 0 when a response was received (any status), -1 on a transport
 * error (err names the registry and the curl error). */
HCS_INTERNAL int reg_request(struct reg_client *c, const struct reg_request *rq, struct reg_response *resp,
                             hcs_error_t *err);
/* An error for an unexpected status: "unauthorized" for 401, the
 * registry's error codes and messages otherwise. */
HCS_INTERNAL int reg_status_error(struct reg_client *c, const char *what, const struct reg_response *resp,
                                  hcs_error_t *err);

/* Credentials "user:pass" (malloc'd) for a registry from the auth files, or
 * NULL. */
HCS_INTERNAL char *reg_auth_lookup(const char *registry, const hcs_registry_opts_t *opts);
HCS_INTERNAL char *reg_auth_file_path(const hcs_registry_opts_t *opts);
/* base64 of data (malloc'd), and back (NULL when malformed). */
HCS_INTERNAL char *reg_base64(const void *data, size_t len);
HCS_INTERNAL char *reg_unbase64(const char *text, size_t *len);
/* Is the registry listed as insecure in the registries file? */
HCS_INTERNAL bool reg_insecure_listed(const char *registry, const hcs_registry_opts_t *opts);

/* sha256 of a buffer as "sha256:<hex>". */
HCS_INTERNAL void reg_sha256(const void *data, size_t len, char out[72]);
HCS_INTERNAL bool reg_valid_digest(const char *digest);

/* GET a manifest by tag or digest; verifies the digest when known. */
HCS_INTERNAL int reg_get_manifest(struct reg_client *c, const char *repo, const char *reference, char **body,
                                  size_t *len, char **media_type, char digest[72], hcs_error_t *err);
/* GET a small blob (config) and verify it. */
HCS_INTERNAL char *reg_get_json_blob(struct reg_client *c, const char *repo, const char *digest, size_t *len,
                                     hcs_error_t *err);
/* Resolve a reference to one image manifest for the platform: fills the
 * manifest, its digest and media type, the config bytes and the parsed
 * config.  *top_digest is the digest the tag names (an index's). */
struct reg_image {
  json_t *manifest;
  char *manifest_bytes;
  size_t manifest_len;
  char *media_type;
  char digest[72];     /* of the image manifest */
  char top_digest[72]; /* of what the reference names */
  char *config;
  size_t config_len;
  json_t *cfg;
  char *top_bytes, *top_media_type; /* the index, when the reference names one */
  size_t top_len;
};
HCS_INTERNAL int reg_resolve_image(struct reg_client *c, const struct reg_ref *ref, const char *platform,
                                   struct reg_image *img, hcs_error_t *err);
HCS_INTERNAL void reg_image_free(struct reg_image *img);

/* --- registries.conf (conf.c) ---------------------------------------------- */
struct reg_conf_mirror {
  char *location;
  bool insecure;
};
struct reg_conf_entry {
  char *prefix, *location; /* "host[:port][/path]" */
  bool insecure, blocked;
  struct reg_conf_mirror *mirrors;
  size_t nmirrors;
  const char *file; /* the file it came from, for messages */
};
struct reg_conf {
  struct reg_conf_entry *entries;
  size_t n;
  char **search; /* unqualified-search-registries */
  size_t nsearch;
  char **paths; /* the files read */
  size_t npaths;
};
/* $CONTAINERS_REGISTRIES_CONF, else the user's then the system's file;
 * absent files are empty. */
HCS_INTERNAL int reg_conf_load(struct reg_conf *conf, hcs_error_t *err);
HCS_INTERNAL void reg_conf_free(struct reg_conf *conf);
/* The entry with the longest prefix matching registry[/repo], or NULL. */
HCS_INTERNAL const struct reg_conf_entry *reg_conf_match(const struct reg_conf *conf, const char *registry,
                                                         const char *repo);
/* Is registry (a location or a mirror's) marked insecure? */
HCS_INTERNAL bool reg_conf_insecure(const struct reg_conf *conf, const char *registry);
/* A client for registry (repo: for the prefix match), refused when blocked. */
HCS_INTERNAL struct reg_client *reg_open(const char *registry, const char *repo, const hcs_registry_opts_t *o,
                                         hcs_error_t *err);
/* A client to pull ref from, with the image resolved: the registry's
 * mirrors in order, then the registry itself (refused when blocked); an
 * unqualified name tries each unqualified-search registry in turn and ref
 * becomes the one that had it.  *src is ref as on the source used (a
 * mirror's registry and repository). */
HCS_INTERNAL struct reg_client *reg_open_pull(struct reg_ref *ref, const hcs_registry_opts_t *o, struct reg_ref *src,
                                              struct reg_image *img, hcs_error_t *err);

#endif
