/* Uniqueness indexes of endpoints: a name, and a host port (per protocol
 * and address), belong to one endpoint.  Checking them against every
 * endpoint document cost a JSON load per endpoint on each create and port
 * mapping (~50 ms with 1,000 endpoints); instead each is a claim file in
 * <run root>/net/claims/, created with O_EXCL under the store lock and
 * holding the endpoint id:
 *   names/<16 hex digits of a hash of the name>
 *   ports/<tcp|udp>-<port>/<any|a.b.c.d>   (the mapping's address, if any)
 * and, to find a compartment's endpoints without reading them all, the
 * members of each compartment (below).
 * As with IPAM leases, the documents are the truth: a claim whose endpoint
 * is gone, or no longer has that name or mapping, is stale and is taken
 * over (a killed create, modify or delete leaves such claims behind).  A
 * store from before the index is indexed once from its documents
 * (then the directory claims/.indexed is made).  The run root holds them: a reboot takes the claims
 * with the endpoints. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/stat.h>

#include "net/internal.h"

static char *claims_dir(hcs_net_t *net) { return hcs_xasprintf("%s/claims", net->runstate); }

static char *name_path(hcs_net_t *net, const char *name) {
  return hcs_xasprintf("%s/claims/names/%016llx", net->runstate, (unsigned long long)hcs_fnv1a(0, name, strlen(name)));
}

static char *port_dir(hcs_net_t *net, const struct hcs_portmap *pm) {
  return hcs_xasprintf("%s/claims/ports/%s-%d", net->runstate, pm->proto == IPPROTO_UDP ? "udp" : "tcp", pm->external);
}

static void port_entry(const struct hcs_portmap *pm, char out[INET_ADDRSTRLEN]) {
  if (pm->has_vip)
    inet_ntop(AF_INET, &pm->vip, out, INET_ADDRSTRLEN);
  else
    strcpy(out, "any");
}

/* The endpoint id in a claim file, or NULL. */
static char *holder_of(const char *path) {
  char *id = NULL;
  if (hcs_read_file(path, &id, NULL, NULL) < 0) return NULL;
  id[strcspn(id, "\n")] = '\0';
  return id;
}

/* The holder's document, if the holder is an endpoint that exists. */
static json_t *holder_doc(hcs_net_t *net, const char *id) {
  if (id == NULL || hcs_validate_id("endpoint", id, NULL) < 0) return NULL;
  return hcs_net_load(net, "endpoints", id, NULL);
}

/* Create `path` holding epid; 1 done, 0 exists, -1 error. */
static int create_claim(const char *path, const char *epid, hcs_error_t *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return errno == EEXIST ? 0 : hcs_error_make(err, errno, "create claim `%s`", path);
  size_t n = strlen(epid);
  bool ok = write(fd, epid, n) == (ssize_t)n;
  int saved = errno;
  close(fd);
  if (!ok) {
    unlink(path);
    return hcs_error_make(err, saved, "write claim `%s`", path);
  }
  return 1;
}

static void release_claim(const char *path, const char *epid) {
  cleanup_free char *id = holder_of(path);
  if (id && strcmp(id, epid) == 0) unlink(path);
}

/* --- names ---------------------------------------------------------------- */

int hcs_claim_name(hcs_net_t *net, const char *name, const char *epid, char **holder, hcs_error_t *err) {
  cleanup_free char *dir = hcs_xasprintf("%s/claims/names", net->runstate), *path = name_path(net, name);
  if (hcs_net_mkdir(dir, err) < 0) return -1;
  for (int attempt = 0; attempt < 2; attempt++) {
    int rc = create_claim(path, epid, err);
    if (rc != 0) return rc;
    cleanup_free char *id = holder_of(path);
    if (id && strcmp(id, epid) == 0) return 1;
    cleanup_json json_t *doc = holder_doc(net, id);
    const char *theirs = json_string_value(json_object_get(doc, "Name"));
    if (theirs && strcmp(theirs, name) == 0) {
      *holder = steal_ptr(id);
      return 0;
    }
    /* Another name with the same hash: the caller checks by a scan. */
    if (theirs) return 2;
    if (unlink(path) < 0 && errno != ENOENT) return hcs_error_make(err, errno, "reclaim claim `%s`", path);
  }
  return hcs_error_make(err, EAGAIN, "claim `%s`: taken again while reclaimed", path);
}

json_t *hcs_claims_find_name(hcs_net_t *net, const char *name, bool *known) {
  *known = false;
  cleanup_free char *marker = hcs_xasprintf("%s/claims/.indexed", net->runstate);
  if (access(marker, F_OK) < 0) return NULL;
  cleanup_free char *path = name_path(net, name);
  cleanup_free char *id = holder_of(path);
  if (id == NULL) {
    /* Never claimed: no endpoint has the name. */
    *known = access(path, F_OK) < 0 && errno == ENOENT;
    return NULL;
  }
  json_t *doc = holder_doc(net, id);
  const char *theirs = json_string_value(json_object_get(doc, "Name"));
  if (theirs && strcmp(theirs, name) == 0) {
    *known = true;
    return doc;
  }
  json_decref(doc); /* stale, or another name with the same hash: scan */
  return NULL;
}

void hcs_release_name(hcs_net_t *net, const char *name, const char *epid) {
  cleanup_free char *path = name_path(net, name);
  release_claim(path, epid);
}

/* --- host ports ----------------------------------------------------------- */

/* Does the endpoint document map this host port on this address (or on
 * none, for "any")? */
static bool doc_maps(json_t *doc, int proto, int port, const char *entry) {
  struct hcs_portmap pm[HCS_NET_MAX_PORTMAPS];
  struct hcs_nft_ep c;
  json_t *exc = NULL;
  bool found = false;
  if (hcs_net_endpoint_policies(doc, pm, &c, &exc) > 0)
    for (size_t i = 0; i < c.n_add && !found; i++) {
      char e[INET_ADDRSTRLEN];
      port_entry(&pm[i], e);
      found = pm[i].proto == proto && pm[i].external == port && strcmp(e, entry) == 0;
    }
  json_decref(exc);
  return found;
}

/* The entry `name` of a port directory: NULL when stale (removed), else its
 * live holder's document. */
static json_t *live_entry(hcs_net_t *net, const char *dir, const char *name, const struct hcs_portmap *pm,
                          char **holder) {
  cleanup_free char *path = hcs_xasprintf("%s/%s", dir, name);
  cleanup_free char *id = holder_of(path);
  if (id == NULL) return NULL;
  json_t *doc = holder_doc(net, id);
  if (doc && doc_maps(doc, pm->proto, pm->external, name)) {
    *holder = steal_ptr(id);
    return doc;
  }
  json_decref(doc);
  unlink(path);
  return NULL;
}

/* A conflict with pm[i] in its port directory: the first live holder. */
static int check_port(hcs_net_t *net, const struct hcs_portmap *pm, const char *epid, bool conflict_self,
                      const char *what, hcs_error_t *err) {
  cleanup_free char *dir = port_dir(net, pm);
  char mine[INET_ADDRSTRLEN];
  port_entry(pm, mine);
  cleanup_dir DIR *d = opendir(dir);
  if (d == NULL) return errno == ENOENT ? 0 : hcs_error_make(err, errno, "open `%s`", dir);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    /* Who may conflict: any mapping of the port for a mapping on all
     * addresses; the same address or all addresses for one with an address. */
    if (pm->has_vip && strcmp(de->d_name, "any") != 0 && strcmp(de->d_name, mine) != 0) continue;
    if (!conflict_self) {
      cleanup_free char *path = hcs_xasprintf("%s/%s", dir, de->d_name);
      cleanup_free char *id = holder_of(path);
      if (id && strcmp(id, epid) == 0) continue;
    }
    cleanup_free char *holder = NULL;
    cleanup_json json_t *doc = live_entry(net, dir, de->d_name, pm, &holder);
    if (doc == NULL) continue;
    return hcs_error_make(err, 0, "%s: host port %s/%d is already mapped by endpoint `%s` (%s)", what,
                          pm->proto == IPPROTO_UDP ? "udp" : "tcp", pm->external,
                          json_string_value(json_object_get(doc, "Name")) ?: "?", holder);
  }
  return 0;
}

int hcs_claim_ports(hcs_net_t *net, const struct hcs_portmap *pm, size_t n, const char *epid, bool conflict_self,
                    const char *what, hcs_error_t *err) {
  /* All checked first: the new claims are not in the documents yet, so
   * they would read as stale to a check made after them. */
  for (size_t i = 0; i < n; i++)
    if (check_port(net, &pm[i], epid, conflict_self, what, err) < 0) return -1;
  for (size_t i = 0; i < n; i++) {
    cleanup_free char *dir = port_dir(net, &pm[i]);
    if (hcs_net_mkdir(dir, err) < 0) return -1;
    char mine[INET_ADDRSTRLEN];
    port_entry(&pm[i], mine);
    cleanup_free char *path = hcs_xasprintf("%s/%s", dir, mine);
    int rc = create_claim(path, epid, err);
    if (rc < 0) return -1;
    if (rc == 0) { /* stale (checked above), or this endpoint's own */
      cleanup_free char *id = holder_of(path);
      if (id && strcmp(id, epid) == 0) continue;
      unlink(path);
      if (create_claim(path, epid, err) <= 0) return hcs_error_make(err, EAGAIN, "claim `%s`", path);
    }
  }
  return 0;
}

void hcs_release_ports(hcs_net_t *net, const struct hcs_portmap *pm, size_t n, const char *epid) {
  for (size_t i = 0; i < n; i++) {
    cleanup_free char *dir = port_dir(net, &pm[i]);
    char mine[INET_ADDRSTRLEN];
    port_entry(&pm[i], mine);
    cleanup_free char *path = hcs_xasprintf("%s/%s", dir, mine);
    release_claim(path, epid);
    rmdir(dir); /* when no other address has the port */
  }
}

/* --- compartment members --------------------------------------------------- */
/* members/<16 hex digits of a hash of the netns path>/<endpoint id>: the
 * endpoints attached to a compartment, made before the attach is saved and
 * removed after the detach is, so a superset: readers check each endpoint's
 * document (a compartment's query and delete need its endpoints only). */

static char *members_dir(hcs_net_t *net, const char *nspath) {
  return hcs_xasprintf("%s/claims/members/%016llx", net->runstate,
                       (unsigned long long)hcs_fnv1a(0, nspath, strlen(nspath)));
}

int hcs_claim_member(hcs_net_t *net, const char *nspath, const char *epid, hcs_error_t *err) {
  cleanup_free char *dir = members_dir(net, nspath);
  if (hcs_net_mkdir(dir, err) < 0) return -1;
  cleanup_free char *path = hcs_xasprintf("%s/%s", dir, epid);
  return create_claim(path, epid, err) < 0 ? -1 : 0;
}

void hcs_release_member(hcs_net_t *net, const char *nspath, const char *epid) {
  if (nspath == NULL || epid == NULL) return;
  cleanup_free char *dir = members_dir(net, nspath);
  cleanup_free char *path = hcs_xasprintf("%s/%s", dir, epid);
  unlink(path);
  rmdir(dir);
}

json_t *hcs_members_load(hcs_net_t *net, const char *nspath, hcs_error_t *err) {
  cleanup_free char *marker = hcs_xasprintf("%s/claims/.indexed", net->runstate);
  if (nspath == NULL || access(marker, F_OK) < 0) return hcs_net_load_all(net, "endpoints", err);
  cleanup_free char *dir = members_dir(net, nspath);
  json_t *out = json_array();
  cleanup_dir DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    json_t *doc = hcs_net_load(net, "endpoints", de->d_name, NULL);
    if (doc) json_array_append_new(out, doc);
  }
  return out;
}

void hcs_drop_members(hcs_net_t *net, const char *nspath) {
  if (nspath == NULL) return;
  cleanup_free char *dir = members_dir(net, nspath);
  hcs_rm_rf(dir, NULL);
}

/* --- after a change cut short ------------------------------------------------ */

static bool endpoint_exists(hcs_net_t *net, const char *id) {
  if (id == NULL || hcs_validate_id("endpoint", id, NULL) < 0) return false;
  cleanup_free char *path = hcs_net_path(net, "endpoints", id, ".json");
  return hcs_path_exists(path);
}

/* The claims in dir (members: named by the endpoint id; else holding it)
 * whose endpoint is gone; then dir itself if empty. */
static void prune_dir(hcs_net_t *net, const char *dir, bool by_name) {
  cleanup_dir DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    cleanup_free char *path = hcs_xasprintf("%s/%s", dir, de->d_name);
    cleanup_free char *id = by_name ? hcs_xstrdup(de->d_name) : holder_of(path);
    if (!endpoint_exists(net, id)) unlink(path);
  }
  rmdir(dir);
}

void hcs_claims_prune(hcs_net_t *net) {
  cleanup_free char *names = hcs_xasprintf("%s/claims/names", net->runstate);
  prune_dir(net, names, false);
  static const char *const nested[] = {"ports", "members"};
  for (size_t k = 0; k < HCS_ARRAY_SIZE(nested); k++) {
    cleanup_free char *top = hcs_xasprintf("%s/claims/%s", net->runstate, nested[k]);
    cleanup_dir DIR *d = opendir(top);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
      if (de->d_name[0] == '.') continue;
      cleanup_free char *sub = hcs_xasprintf("%s/%s", top, de->d_name);
      prune_dir(net, sub, k == 1);
    }
  }
}

/* --- a store from before the index ---------------------------------------- */

int hcs_claims_ready(hcs_net_t *net, hcs_error_t *err) {
  cleanup_free char *dir = claims_dir(net);
  /* A directory, not a file: a store whose objects are all gone holds no
   * file but its lock. */
  cleanup_free char *marker = hcs_xasprintf("%s/.indexed", dir);
  if (access(marker, F_OK) == 0) return 0;
  if (hcs_net_mkdir(dir, err) < 0) return -1;
  cleanup_json json_t *all = hcs_net_load_all(net, "endpoints", err);
  if (all == NULL) return -1;
  size_t i;
  json_t *ep;
  json_array_foreach(all, i, ep) {
    const char *id = json_string_value(json_object_get(ep, "Id")),
               *name = json_string_value(json_object_get(ep, "Name"));
    if (id == NULL) continue;
    cleanup_free char *holder = NULL;
    if (name && hcs_claim_name(net, name, id, &holder, err) < 0) return -1;
    struct hcs_portmap pm[HCS_NET_MAX_PORTMAPS];
    struct hcs_nft_ep c;
    json_t *exc = NULL;
    int have = hcs_net_endpoint_policies(ep, pm, &c, &exc);
    json_decref(exc);
    hcs_error_t e = NULL;
    if (have > 0 && hcs_claim_ports(net, pm, c.n_add, id, false, "index", &e) < 0)
      hcs_error_release(&e); /* two endpoints already sharing a port: left to the documents */
    const char *nspath = json_string_value(json_object_get(json_object_get(ep, "Linux"), "NamespacePath"));
    if (nspath && hcs_claim_member(net, nspath, id, err) < 0) return -1;
  }
  if (mkdir(marker, 0755) < 0 && errno != EEXIST) return hcs_error_make(err, errno, "create `%s`", marker);
  return 0;
}
