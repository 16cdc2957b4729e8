/* IPAM: one lease file per address, `<run root>/net/ipam/<net>/<a.b.c.d>`
 * holding the endpoint id, claimed with O_CREAT|O_EXCL under the store lock.
 * The endpoint documents (written atomically, in the run root too) are the
 * truth: a lease whose endpoint document is gone is reclaimed, a lease lost
 * in a crash is rebuilt from the document (hcs_ipam_reconcile), and a reboot
 * takes leases and endpoints together, so addresses never leak -- CNI
 * host-local's known failure mode. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdlib.h>
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

/* The lowest address that may be free, kept in <dir>/.next: the
 * search starts there instead of walking every lease (each an open, a read
 * and an endpoint document: ~50 ms with 1,000 endpoints), and still hands
 * out the lowest free address, as before.  An allocation moves it past the
 * address, a release back down to it.  A symbolic link whose target is the
 * number: replaced atomically by a rename, no file to write, and no file
 * left once every lease is gone.  Only a hint: a lost one costs one walk,
 * which also reclaims stale leases below it. */
static bool read_hint(const char *dir, struct in_addr *a) {
  char path[PATH_MAX], text[INET_ADDRSTRLEN];
  snprintf(path, sizeof path, "%s/.next", dir);
  ssize_t n = readlink(path, text, sizeof text - 1);
  if (n <= 0) return false;
  text[n] = '\0';
  return inet_pton(AF_INET, text, a) == 1;
}

static void write_hint(const char *dir, struct in_addr a) {
  char path[PATH_MAX], tmp[PATH_MAX], text[INET_ADDRSTRLEN];
  snprintf(path, sizeof path, "%s/.next", dir);
  snprintf(tmp, sizeof tmp, "%s/.next.%d", dir, (int)getpid());
  inet_ntop(AF_INET, &a, text, sizeof text);
  unlink(tmp);
  if (symlink(text, tmp) == 0 && rename(tmp, path) < 0) unlink(tmp);
}

int hcs_ipam_allocate(hcs_net_t *net, const char *netid, const struct hcs_prefix *subnet, struct in_addr gateway,
                      const char *epid, struct in_addr *out, hcs_error_t *err) {
  cleanup_free char *dir = lease_dir(net, netid);
  if (hcs_net_mkdir(dir, err) < 0) return -1;
  uint32_t base = ntohl(subnet->addr.s_addr), size = subnet->len >= 31 ? 0 : (1u << (32 - subnet->len));
  /* Host numbers 1 .. size-2 (not the network and broadcast addresses, nor
   * the gateway), from the hint round to it. */
  uint32_t span = size > 2 ? size - 2 : 0, start = 1;
  struct in_addr h;
  if (read_hint(dir, &h) && ntohl(h.s_addr) - base >= 1 && ntohl(h.s_addr) - base + 1 < size)
    start = ntohl(h.s_addr) - base;
  for (uint32_t k = 0; k < span; k++) {
    uint32_t i = 1 + (start - 1 + k) % span;
    struct in_addr a = {htonl(base + i)};
    if (a.s_addr == gateway.s_addr) continue;
    int rc = try_claim(net, netid, a, epid, NULL, err);
    if (rc < 0) return -1;
    if (rc == 1) {
      struct in_addr next = {htonl(base + (i + 1 < size - 1 ? i + 1 : 1))};
      write_hint(dir, next);
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
  if (owner == NULL || strcmp(owner, epid) != 0) return 0;
  if (unlink(path) < 0) return -1;
  /* The lowest free address again, when below the hint. */
  cleanup_free char *dir = lease_dir(net, netid);
  struct in_addr h;
  if (read_hint(dir, &h) && ntohl(a.s_addr) < ntohl(h.s_addr)) write_hint(dir, a);
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
