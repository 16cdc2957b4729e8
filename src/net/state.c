/* The network store under `<root>/net`: networks/, endpoints/, namespaces/
 * documents (atomic writes), ipam/ leases, one flock for mutations. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "net/internal.h"

/* Networks are configuration and persist.  Compartments, endpoints and
 * their leases name kernel objects (netns, veths) that die with the machine,
 * so their documents live in the run root (tmpfs in production): a reboot
 * cannot leave a lease behind for an endpoint that no longer exists (CNI
 * host-local's leak; podman keeps its IPAM in /run for the same reason). */
static bool runtime_kind(const char *kind) { return strcmp(kind, "networks") != 0; }

static const char *kind_root(hcs_net_t *net, const char *kind) {
  return runtime_kind(kind) ? net->runstate : net->root;
}

char *hcs_net_path(hcs_net_t *net, const char *kind, const char *id, const char *suffix) {
  return hcs_xasprintf("%s/%s/%s%s", kind_root(net, kind), kind, id, suffix ? suffix : "");
}

char *hcs_net_endpoint_rundir(hcs_net_t *net, const char *id) {
  return hcs_xasprintf("%s/endpoints/%s", net->runstate, id);
}

int hcs_net_lock(hcs_net_t *net, bool shared, hcs_error_t *err) {
  cleanup_free char *path = hcs_xasprintf("%s/lock", net->root);
  return hcs_lock_file(path, shared, err);
}

static char *busy_path(hcs_net_t *net) { return hcs_xasprintf("%s/busy", net->runstate); }

hcs_net_held_t hcs_net_lock_change(hcs_net_t *net, hcs_error_t *err) {
  hcs_net_held_t h = {hcs_net_lock(net, false, err), net};
  if (h.fd < 0) return h;
  cleanup_free char *busy = busy_path(net);
  int fd = open(busy, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    hcs_error_make(err, errno, "create `%s`", busy);
    close(h.fd);
    h.fd = -1;
    return h;
  }
  close(fd);
  return h;
}

void hcs_net_unlock_change(hcs_net_held_t *h) {
  if (h->fd < 0) return;
  cleanup_free char *busy = busy_path(h->net);
  unlink(busy);
  close(h->fd);
  h->fd = -1;
}

json_t *hcs_net_load(hcs_net_t *net, const char *kind, const char *id, hcs_error_t *err) {
  if (hcs_validate_id(kind, id, err) < 0) return NULL;
  cleanup_free char *path = hcs_net_path(net, kind, id, ".json");
  return hcs_json_load_file(path, err);
}

int hcs_net_save(hcs_net_t *net, const char *kind, const char *id, json_t *doc, hcs_error_t *err) {
  cleanup_free char *path = hcs_net_path(net, kind, id, ".json");
  /* Runtime documents need atomicity (a killed writer), not durability. */
  return runtime_kind(kind) ? hcs_json_write_replace(path, doc, err) : hcs_json_write_atomic(path, doc, err);
}

int hcs_net_remove(hcs_net_t *net, const char *kind, const char *id, hcs_error_t *err) {
  cleanup_free char *path = hcs_net_path(net, kind, id, ".json");
  if (unlink(path) < 0 && errno != ENOENT) return hcs_error_make(err, errno, "remove `%s`", path);
  return 0;
}

json_t *hcs_net_load_all(hcs_net_t *net, const char *kind, hcs_error_t *err) {
  cleanup_free char *dir = hcs_xasprintf("%s/%s", kind_root(net, kind), kind);
  cleanup_dir DIR *d = opendir(dir);
  if (d == NULL) {
    hcs_error_make(err, errno, "open `%s`", dir);
    return NULL;
  }
  cleanup_json json_t *all = json_array();
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t n = strlen(de->d_name);
    if (de->d_name[0] == '.' || n < 6 || strcmp(de->d_name + n - 5, ".json") != 0) continue;
    cleanup_free char *path = hcs_xasprintf("%s/%s", dir, de->d_name);
    hcs_error_t e = NULL;
    json_t *doc = hcs_json_load_file(path, &e);
    if (doc == NULL) {
      /* Another process removed it between readdir and open: not an error. */
      if (hcs_error_status(e) == ENOENT) {
        hcs_error_release(&e);
        continue;
      }
      *err = e;
      return NULL;
    }
    json_array_append_new(all, doc);
  }
  return steal_ptr(all);
}

json_t *hcs_net_find(hcs_net_t *net, const char *kind, const char *ref, hcs_error_t *err) {
  if (ref == NULL || *ref == '\0') {
    hcs_error_make(err, 0, "find %s: empty id or name", kind);
    return NULL;
  }
  if (hcs_validate_id(kind, ref, NULL) == 0) {
    cleanup_free char *path = hcs_net_path(net, kind, ref, ".json");
    if (hcs_path_exists(path)) return hcs_json_load_file(path, err);
  }
  if (strcmp(kind, "endpoints") == 0) {
    bool known;
    json_t *doc = hcs_claims_find_name(net, ref, &known);
    if (doc) return doc;
    if (known) {
      hcs_error_make(err, ENOENT, "find %s `%s`: no such id or name", kind, ref);
      return NULL;
    }
  }
  cleanup_json json_t *all = hcs_net_load_all(net, kind, err);
  if (all == NULL) return NULL;
  size_t i;
  json_t *doc;
  json_array_foreach(all, i, doc) {
    const char *name = json_string_value(json_object_get(doc, "Name"));
    if (name && strcmp(name, ref) == 0) return json_incref(doc);
  }
  hcs_error_make(err, ENOENT, "find %s `%s`: no such id or name", kind, ref);
  return NULL;
}

char *hcs_net_new_id(void) {
  uint8_t b[16];
  if (getrandom(b, sizeof b, 0) != sizeof b) abort();
  b[6] = (b[6] & 0x0f) | 0x40; /* RFC 4122 version 4, like HCN's GUIDs */
  b[8] = (b[8] & 0x3f) | 0x80;
  return hcs_xasprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
                       b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* FNV-1a: a stable short name part for kernel objects named after an id
 * (bridge, veth, nftables chains) that also tells apart ids that differ
 * only in characters an interface name cannot hold. */
void hcs_net_short_hash(const char *id, char *out, size_t n) {
  uint64_t h = hcs_fnv1a(HCS_FNV1A_INIT, id, strlen(id));
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++)
    out[i] = hex[(h >> (4 * (15 - i % 16))) & 0xf];
  out[n] = '\0';
}

char *hcs_net_dump_release(json_t *doc) {
  char *s = hcs_json_dumps(doc);
  json_decref(doc);
  return s;
}

static int reconcile_if_interrupted(hcs_net_t *net, hcs_error_t *err);

hcs_net_t *hcs_net_open(const char *root, hcs_error_t *err) {
  cleanup_free char *state = hcs_root_resolve(root);
  cleanup_free char *run = hcs_run_root_resolve(root);
  hcs_net_t *net = hcs_xcalloc(1, sizeof *net);
  net->root = hcs_xasprintf("%s/net", state);
  net->run = steal_ptr(run);
  net->netns = hcs_xasprintf("%s/netns", net->run);
  net->runstate = hcs_xasprintf("%s/net", net->run);
  static const char *dirs[] = {"networks", "endpoints", "ipam", "namespaces", "ready"};
  for (size_t i = 0; i < HCS_ARRAY_SIZE(dirs); i++) {
    char *d = hcs_xasprintf("%s/%s", kind_root(net, dirs[i]), dirs[i]);
    int rc = hcs_mkdir_p(d, 0755, err);
    free(d);
    if (rc < 0) goto fail;
  }
  {
    /* The nftables table is named after the canonical state root, so every
     * spelling of one root (relative, through a symlink) names one table. */
    cleanup_free char *real = realpath(state, NULL);
    if (real == NULL) {
      hcs_error_make(err, errno, "resolve `%s`", state);
      goto fail;
    }
    char h[9];
    hcs_net_short_hash(real, h, 8);
    net->table = hcs_xasprintf("ip hcs%s", h);
  }
  if (reconcile_if_interrupted(net, err) < 0) goto fail;
  if (hcs_nft_adopt(net, err) < 0) goto fail;
  return net;
fail:
  hcs_error_wrap(err, "open network store `%s`", net->root);
  hcs_net_close(net);
  return NULL;
}

void hcs_net_close(hcs_net_t *net) {
  if (net == NULL) return;
  /* A store with no compartment left leaves no mount behind: the shared
   * mount of the netns directory goes (under the lock, unless another
   * process is busy with the store, which then keeps it). */
  cleanup_free char *lock_path = hcs_xasprintf("%s/lock", net->root);
  cleanup_close int lock = open(lock_path, O_RDWR | O_CLOEXEC);
  if (lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) == 0) hcs_netns_dir_release(net->netns);
  free(net->root);
  free(net->run);
  free(net->netns);
  free(net->runstate);
  free(net->table);
  free(net);
}

/* Every write happens under the store lock, so under it a temporary file is
 * the remains of a killed writer. */
static void remove_temporaries(const char *dir) {
  cleanup_dir DIR *d = opendir(dir);
  if (d == NULL) return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strstr(de->d_name, ".tmp.")) unlinkat(dirfd(d), de->d_name, 0);
}

/* A netns mounted by a create killed before its document was written. */
static int reclaim_orphans(hcs_net_t *net, json_t *removed, hcs_error_t *err) {
  static const char *kinds[] = {"networks", "endpoints", "namespaces", "ready"};
  for (size_t i = 0; i < HCS_ARRAY_SIZE(kinds); i++) {
    cleanup_free char *dir = hcs_xasprintf("%s/%s", kind_root(net, kinds[i]), kinds[i]);
    remove_temporaries(dir);
  }
  remove_temporaries(net->runstate); /* the nftables marker's */
  /* DNS files of endpoints whose create was killed before the document. */
  cleanup_free char *epdir = hcs_xasprintf("%s/endpoints", net->runstate);
  cleanup_dir DIR *e = opendir(epdir);
  struct dirent *de;
  while (e && (de = readdir(e)) != NULL) {
    /* Only the per-endpoint directories: the documents share the parent. */
    if (de->d_type != DT_DIR || de->d_name[0] == '.' || hcs_validate_id("endpoint", de->d_name, NULL) < 0) continue;
    cleanup_free char *doc = hcs_net_path(net, "endpoints", de->d_name, ".json");
    if (!hcs_path_exists(doc) && hcs_rm_rf_at(dirfd(e), de->d_name, err) < 0) return -1;
  }
  cleanup_dir DIR *d = opendir(net->netns);
  if (d == NULL) return 0;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.' || hcs_validate_id("namespace", de->d_name, NULL) < 0) continue;
    cleanup_free char *doc = hcs_net_path(net, "namespaces", de->d_name, ".json");
    if (hcs_path_exists(doc)) continue;
    cleanup_free char *path = hcs_xasprintf("%s/%s", net->netns, de->d_name);
    if (hcs_netns_remove(path, err) < 0) return -1;
    json_array_append_new(removed, json_string(de->d_name));
  }
  return 0;
}

/* Leases are rebuilt from the endpoint documents (a lease lost in a crash is
 * recreated) and leases no endpoint holds are reclaimed. */
static char *reconcile_locked(hcs_net_t *net, hcs_error_t *err) {
  hcs_claims_prune(net);
  cleanup_json json_t *reclaimed = json_array();
  cleanup_json json_t *restored = json_array();
  cleanup_json json_t *eps = hcs_net_load_all(net, "endpoints", err);
  if (eps == NULL) return NULL;
  size_t i, j;
  json_t *ep, *c;
  json_array_foreach(eps, i, ep) {
    const char *id = json_string_value(json_object_get(ep, "Id"));
    const char *netid = json_string_value(json_object_get(ep, "HostComputeNetwork"));
    if (id == NULL || netid == NULL || hcs_validate_id("network", netid, NULL) < 0) continue;
    json_array_foreach(json_object_get(ep, "IpConfigurations"), j, c) {
      struct in_addr a;
      if (hcs_net_parse_ip(json_string_value(json_object_get(c, "IpAddress")), &a, "lease", NULL) < 0) continue;
      cleanup_free char *lease =
          hcs_xasprintf("%s/ipam/%s/%s", net->runstate, netid, json_string_value(json_object_get(c, "IpAddress")));
      if (hcs_path_exists(lease)) continue;
      if (hcs_ipam_claim(net, netid, a, id, err) < 0) return NULL;
      json_array_append_new(restored,
                            json_pack("{s:s,s:O}", "Endpoint", id, "IpAddress", json_object_get(c, "IpAddress")));
    }
  }
  cleanup_free char *ipam = hcs_xasprintf("%s/ipam", net->runstate);
  cleanup_dir DIR *d = opendir(ipam);
  if (d == NULL) {
    hcs_error_make(err, errno, "open `%s`", ipam);
    return NULL;
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    if (hcs_ipam_reconcile(net, de->d_name, reclaimed, err) < 0) return NULL;
  }
  cleanup_json json_t *netns = json_array();
  if (reclaim_orphans(net, netns, err) < 0) return NULL;
  json_t *report =
      json_pack("{s:O,s:O,s:O}", "ReclaimedLeases", reclaimed, "RestoredLeases", restored, "RemovedNamespaces", netns);
  return hcs_net_dump_release(report);
}

char *hcs_net_reconcile(hcs_net_t *net, hcs_error_t *err) {
  cleanup_net_change hcs_net_held_t lock = hcs_net_lock_change(net, err);
  if (lock.fd < 0) return NULL;
  return reconcile_locked(net, err);
}

/* At open: only after a change was cut short (its busy marker is left; a
 * live holder removes it before we get the lock).  Reading every endpoint
 * document and lease on each open made every network command cost O(N). */
static int reconcile_if_interrupted(hcs_net_t *net, hcs_error_t *err) {
  cleanup_free char *busy = busy_path(net);
  if (access(busy, F_OK) < 0) return 0;
  cleanup_close int lock = hcs_net_lock(net, false, err);
  if (lock < 0) return -1;
  if (access(busy, F_OK) < 0) return 0;
  char *report = reconcile_locked(net, err);
  if (report == NULL) return -1;
  hcs_info("network store `%s`: a change was interrupted; reconciled: %s", net->root, report);
  free(report);
  unlink(busy);
  return 0;
}
