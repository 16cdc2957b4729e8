/* IPAM: one lease file per address, `<run root>/net/ipam/<net>/<a.b.c.d>`
 * holding the endpoint id, claimed with O_CREAT|O_EXCL under the store lock.
 * The endpoint documents (written atomically, in the run root too) are the
 * truth: a lease whose endpoint document is gone is reclaimed, a lease lost
 * in a crash is rebuilt from the document (hcs_ipam_reconcile), and a reboot
 * takes leases and endpoints together, so addresses never leak -- CNI
 * host-local's known failure mode. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "net/internal.h"

static char *lease_dir(hcs_net_t *net, const char *netid) { return hcs_xasprintf("%s/ipam/%s", net->runstate, netid); }

static char *lease_path(hcs_net_t *net, const char *netid, struct in_addr a) {
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, ip, sizeof ip);
  return hcs_xasprintf("%s/ipam/%s/%s", net->runstate, netid, ip);
}

/* The endpoint id in a lease, or NULL. */
static char *lease_owner(const char *path) {
  char *owner = NULL;
  if (hcs_read_file(path, &owner, NULL, NULL) < 0) return NULL;
  owner[strcspn(owner, "\n")] = '\0';
  return owner;
}

/* An endpoint holds the address if its document names it. */
static bool endpoint_holds(hcs_net_t *net, const char *epid, struct in_addr a) {
  if (epid == NULL || hcs_validate_id("endpoint", epid, NULL) < 0) return false;
  cleanup_json json_t *ep = hcs_net_load(net, "endpoints", epid, NULL);
  if (ep == NULL) return false;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(ep, "IpConfigurations"), i, c) {
    struct in_addr b;
    if (inet_pton(AF_INET, json_string_value(json_object_get(c, "IpAddress")) ?: "", &b) == 1 && b.s_addr == a.s_addr)
      return true;
  }
  return false;
}

static int write_lease(int fd, const char *epid) {
  size_t n = strlen(epid);
  return write(fd, epid, n) == (ssize_t)n ? 0 : -1;
}

/* 1 claimed, 0 held by a live endpoint, -1 error. */
static int try_claim(hcs_net_t *net, const char *netid, struct in_addr a, const char *epid, char **holder,
                     hcs_error_t *err) {
  cleanup_free char *path = lease_path(net, netid, a);
  for (int attempt = 0; attempt < 2; attempt++) {
    cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      if (write_lease(fd, epid) < 0) {
        int saved = errno;
        unlink(path);
        return hcs_error_make(err, saved, "write lease `%s`", path);
      }
      return 1;
    }
    if (errno != EEXIST) return hcs_error_make(err, errno, "create lease `%s`", path);
    cleanup_free char *owner = lease_owner(path);
    if (endpoint_holds(net, owner, a) || (owner && strcmp(owner, epid) == 0)) {
      if (holder) *holder = steal_ptr(owner);
      return 0;
    }
    hcs_info("ipam: reclaiming stale lease `%s` (endpoint `%s` is gone)", path, owner ? owner : "?");
    if (unlink(path) < 0 && errno != ENOENT) return hcs_error_make(err, errno, "reclaim lease `%s`", path);
  }
  return 0;
}

int hcs_ipam_claim(hcs_net_t *net, const char *netid, struct in_addr a, const char *epid, hcs_error_t *err) {
  cleanup_free char *dir = lease_dir(net, netid);
  if (hcs_net_mkdir(dir, err) < 0) return -1;
  cleanup_free char *holder = NULL;
  int rc = try_claim(net, netid, a, epid, &holder, err);
  if (rc < 0) return -1;
  if (rc == 0 && holder && strcmp(holder, epid) == 0) return 0; /* already ours (reconcile) */
  if (rc == 0) {
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, ip, sizeof ip);
    return hcs_error_make(err, 0, "IpConfigurations: address `%s` is already in use by endpoint `%s`", ip,
                          holder ? holder : "?");
  }
  return 0;
}

int hcs_ipam_allocate(hcs_net_t *net, const char *netid, const struct hcs_prefix *subnet, struct in_addr gateway,
                      const char *epid, struct in_addr *out, hcs_error_t *err) {
  cleanup_free char *dir = lease_dir(net, netid);
  if (hcs_net_mkdir(dir, err) < 0) return -1;
  uint32_t base = ntohl(subnet->addr.s_addr), size = subnet->len >= 31 ? 0 : (1u << (32 - subnet->len));
  /* Skip the network and broadcast addresses and the gateway. */
  for (uint32_t i = 1; i + 1 < size; i++) {
    struct in_addr a = {htonl(base + i)};
    if (a.s_addr == gateway.s_addr) continue;
    int rc = try_claim(net, netid, a, epid, NULL, err);
    if (rc < 0) return -1;
    if (rc == 1) {
      *out = a;
      return 0;
    }
  }
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &subnet->addr, ip, sizeof ip);
  return hcs_error_make(err, ENOSPC, "allocate an address in `%s/%d` for network `%s`", ip, subnet->len, netid);
}

int hcs_ipam_release(hcs_net_t *net, const char *netid, struct in_addr a, const char *epid) {
  cleanup_free char *path = lease_path(net, netid, a);
  cleanup_free char *owner = lease_owner(path);
  if (owner && strcmp(owner, epid) == 0) return unlink(path);
  return 0;
}

int hcs_ipam_reconcile(hcs_net_t *net, const char *netid, json_t *reclaimed, hcs_error_t *err) {
  cleanup_free char *dir = lease_dir(net, netid);
  cleanup_dir DIR *d = opendir(dir);
  if (d == NULL) return errno == ENOENT ? 0 : hcs_error_make(err, errno, "open `%s`", dir);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    struct in_addr a;
    if (de->d_name[0] == '.' || inet_pton(AF_INET, de->d_name, &a) != 1) continue;
    cleanup_free char *path = hcs_xasprintf("%s/%s", dir, de->d_name);
    cleanup_free char *owner = lease_owner(path);
    if (endpoint_holds(net, owner, a)) continue;
    if (unlink(path) < 0 && errno != ENOENT) return hcs_error_make(err, errno, "reclaim lease `%s`", path);
    if (reclaimed)
      json_array_append_new(reclaimed, json_pack("{s:s,s:s,s:s}", "Network", netid, "IpAddress", de->d_name, "Endpoint",
                                                 owner ? owner : ""));
  }
  return 0;
}

int hcs_ipam_drop(hcs_net_t *net, const char *netid, hcs_error_t *err) {
  cleanup_free char *dir = lease_dir(net, netid);
  return hcs_rm_rf(dir, err);
}
