/* Subnets picked for NAT networks created without one (the default network
 * of `hcs run -p`, `hcs network create NAME`): the first subnet of a pool,
 * as Docker and podman pick theirs, that overlaps no route or address of
 * the host (read over netlink in the calling thread's netns) and no other
 * network of the store (whose bridge may be down after a reboot). */
#include <arpa/inet.h>
#include <string.h>
#include <sys/stat.h>

#include "net/internal.h"

/* 10.88.0.0/16 (podman's default) to 10.99.0.0/16, 172.17.0.0/16 to
 * 172.31.0.0/16 (Docker's), then 192.168.0.0/20 to 192.168.240.0/20. */
static const struct {
  uint32_t first; /* host order */
  int len, count;
} pools[] = {
    {0x0a580000u, 16, 12},
    {0xac110000u, 16, 15},
    {0xc0a80000u, 20, 16},
};

/* Prefixes in use: routes of the main table but the default route, and the
 * interfaces' addresses with their prefix length. */
static int host_prefixes(json_t **out, hcs_error_t *err) {
  struct hcs_nl *nl = hcs_nl_open(-1, err);
  if (nl == NULL) return -1;
  cleanup_json json_t *routes = hcs_nl_dump_routes(nl, err);
  cleanup_json json_t *ifs = routes ? hcs_nl_dump_interfaces(nl, err) : NULL;
  hcs_nl_close(nl);
  if (ifs == NULL) return -1;
  json_t *all = json_array();
  size_t i, j;
  json_t *r, *l, *a;
  json_array_foreach(routes, i, r) json_array_append(all, json_object_get(r, "DestinationPrefix"));
  json_array_foreach(ifs, i, l) json_array_foreach(json_object_get(l, "IpAddresses"), j, a) {
    struct in_addr ip;
    if (inet_pton(AF_INET, json_string_value(json_object_get(a, "IpAddress")) ?: "", &ip) != 1) continue;
    int len = (int)json_integer_value(json_object_get(a, "PrefixLength"));
    struct in_addr base = {htonl(ntohl(ip.s_addr) & hcs_net_mask(len))};
    cleanup_free char *b = hcs_net_format_ip(base);
    json_array_append_new(all, json_sprintf("%s/%d", b, len));
  }
  *out = all;
  return 0;
}

static bool overlaps_any(const struct hcs_prefix *p, json_t *prefixes) {
  size_t i;
  json_t *s;
  json_array_foreach(prefixes, i, s) {
    struct hcs_prefix q;
    if (hcs_net_parse_prefix(json_string_value(s), &q, "prefix", NULL) < 0 || q.len == 0) continue;
    if (hcs_net_prefix_overlap(p, &q)) return true;
  }
  return false;
}

int hcs_net_subnet_lock(hcs_error_t *err) {
  struct stat st;
  const char *path = stat("/run/lock", &st) == 0 ? "/run/lock/hcs-subnet.lock" : "/run/hcs-subnet.lock";
  return hcs_lock_file(path, false, err);
}

char *hcs_net_subnet_pick(json_t *others, hcs_error_t *err) {
  cleanup_json json_t *used = NULL;
  if (host_prefixes(&used, err) < 0) {
    hcs_error_wrap(err, "read the host's routes to pick a subnet");
    return NULL;
  }
  size_t i;
  json_t *o;
  json_array_foreach(others, i, o) {
    json_t *s = json_array_get(json_object_get(json_array_get(json_object_get(o, "Ipams"), 0), "Subnets"), 0);
    json_t *prefix = json_object_get(s, "IpAddressPrefix");
    if (json_is_string(prefix)) json_array_append(used, prefix);
  }
  for (size_t k = 0; k < HCS_ARRAY_SIZE(pools); k++)
    for (int n = 0; n < pools[k].count; n++) {
      struct hcs_prefix p = {{htonl(pools[k].first + ((uint32_t)n << (32 - pools[k].len)))}, pools[k].len};
      if (overlaps_any(&p, used)) continue;
      cleanup_free char *a = hcs_net_format_ip(p.addr);
      return hcs_xasprintf("%s/%d", a, p.len);
    }
  hcs_error_make(err, EADDRINUSE,
                 "no free subnet in 10.88.0.0/16-10.99.0.0/16, 172.17.0.0/16-172.31.0.0/16 or "
                 "192.168.0.0/20-192.168.240.0/20: give Ipams[0].Subnets[0].IpAddressPrefix");
  return NULL;
}
