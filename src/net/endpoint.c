/* HostComputeEndpoint: an address from the network's IPAM, port mappings,
 * DNS files, and -- once attached to a namespace -- a veth pair whose
 * container end is created directly inside that namespace (moving a link
 * between namespaces costs ~30 ms; creating it in place does not).
 * Order of work makes crashes harmless: lease first, then the document
 * (saved while the veth is made) on create; document first, lease last on
 * delete.  IPAM reconciliation reclaims what a crash leaves. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "core/crash.h"
#include "net/internal.h"

#define MAX_PORTMAPS HCS_NET_MAX_PORTMAPS

static void host_ifname(const char *id, char out[16]) {
  memcpy(out, "vh", 2);
  hcs_net_short_hash(id, out + 2, 10);
}

static const char *ep_str(json_t *ep, const char *key) { return json_string_value(json_object_get(ep, key)); }
static const char *ep_linux_str(json_t *ep, const char *key) {
  return json_string_value(json_object_get(json_object_get(ep, "Linux"), key));
}

/* Linux.NamespacePath, copied (forget_attach drops it), or NULL. */
static char *ep_nspath(json_t *ep) {
  const char *p = ep_linux_str(ep, "NamespacePath");
  return p ? hcs_xstrdup(p) : NULL;
}

static bool ep_address(json_t *ep, struct in_addr *a, int *len) {
  json_t *c = json_array_get(json_object_get(ep, "IpConfigurations"), 0);
  if (c == NULL || hcs_net_parse_ip(json_string_value(json_object_get(c, "IpAddress")), a, "", NULL) < 0) return false;
  if (len) *len = (int)json_integer_value(json_object_get(c, "PrefixLength"));
  return true;
}

/* Port mappings of an endpoint document. */
static int ep_portmaps(json_t *policies, struct hcs_portmap *pm, size_t *n, const char *what, hcs_error_t *err) {
  size_t i;
  json_t *p;
  *n = 0;
  json_array_foreach(policies, i, p) {
    const char *type = json_string_value(json_object_get(p, "Type"));
    if (type && strcmp(type, "OutBoundNAT") == 0) continue; /* see ep_exceptions */
    if (type == NULL || strcmp(type, "PortMapping") != 0)
      return hcs_error_make(err, 0,
                            "%s: Policies[%zu]: Type `%s` is not supported on an endpoint (expected PortMapping or "
                            "OutBoundNAT)",
                            what, i, type ?: "?");
    if (*n >= MAX_PORTMAPS) return hcs_error_make(err, 0, "%s: more than %d port mappings", what, MAX_PORTMAPS);
    cleanup_free char *w = hcs_xasprintf("%s: Policies[%zu].Settings", what, i);
    if (hcs_net_parse_portmap(json_object_get(p, "Settings"), &pm[*n], w, err) < 0) return -1;
    for (size_t j = 0; j < *n; j++)
      if (pm[j].proto == pm[*n].proto && pm[j].external == pm[*n].external && pm[j].vip.s_addr == pm[*n].vip.s_addr)
        return hcs_error_make(err, 0, "%s: Policies[%zu]: host port %d is mapped twice", what, i, pm[*n].external);
    (*n)++;
  }
  return 0;
}

/* OutBoundNAT {Exceptions: [prefixes]}: destinations this endpoint reaches
 * without masquerade.  New reference to a flat array of prefixes. */
static json_t *ep_exceptions(json_t *policies, const char *what, hcs_error_t *err) {
  cleanup_json json_t *out = json_array();
  size_t i, j;
  json_t *p, *e;
  json_array_foreach(policies, i, p) {
    if (strcmp(json_string_value(json_object_get(p, "Type")) ?: "", "OutBoundNAT") != 0) continue;
    json_t *exc = json_object_get(json_object_get(p, "Settings"), "Exceptions");
    if (exc && !json_is_array(exc)) {
      hcs_error_make(err, 0, "%s: Policies[%zu].Settings.Exceptions must be an array of prefixes", what, i);
      return NULL;
    }
    json_array_foreach(exc, j, e) {
      cleanup_free char *w = hcs_xasprintf("%s: Policies[%zu].Settings.Exceptions[%zu]", what, i, j);
      struct hcs_prefix x;
      if (hcs_net_parse_prefix(json_string_value(e), &x, w, err) < 0) return NULL;
      json_array_append(out, e);
    }
  }
  return steal_ptr(out);
}

/* An endpoint is attached while the netns it was plugged into still exists:
 * deleting a compartment reaps its veths with the netns (asynchronously, in
 * the kernel) and leaves the endpoint documents untouched, which then read
 * as detached.  The netns inode tells a re-created namespace of the same
 * name from the one the endpoint was plugged into. */
bool hcs_net_endpoint_attached(json_t *ep) {
  json_t *lnx = json_object_get(ep, "Linux");
  const char *path = json_string_value(json_object_get(lnx, "NamespacePath"));
  json_int_t ino = json_integer_value(json_object_get(lnx, "NamespaceInode"));
  struct stat st;
  return json_is_string(json_object_get(ep, "HostComputeNamespace")) && path && stat(path, &st) == 0 &&
         (json_int_t)st.st_ino == ino;
}

/* The document as callers see it: a stale attachment reads as detached. */
static json_t *present(json_t *ep) {
  if (!json_is_string(json_object_get(ep, "HostComputeNamespace")) || hcs_net_endpoint_attached(ep)) return ep;
  json_object_set_new(ep, "HostComputeNamespace", json_null());
  json_object_del(json_object_get(ep, "Linux"), "NamespacePath");
  json_object_del(json_object_get(ep, "Linux"), "NamespaceInode");
  json_object_del(json_object_get(ep, "Linux"), "Interface");
  return ep;
}

/* Resolve and open the namespace, recording it in the document; returns the
 * netns fd. */
static int prepare_attach(hcs_net_t *net, json_t *ep, const char *ns, struct hcs_nl **inner, hcs_error_t *err) {
  cleanup_free char *path = hcs_net_ns_resolve(net, ns, err);
  if (path == NULL) return -1;
  cleanup_close int nsfd = hcs_netns_open(path, err);
  if (nsfd < 0) return -1;
  struct stat st;
  if (fstat(nsfd, &st) < 0) return hcs_error_make(err, errno, "stat `%s`", path);
  /* The interface name: the one asked for, else the first free ethN. */
  json_t *lnx = json_object_get(ep, "Linux");
  const char *want = json_string_value(json_object_get(lnx, "InterfaceRequested"));
  *inner = hcs_nl_open(nsfd, err);
  if (*inner == NULL) return -1;
  char name[16];
  for (int k = 0; k < 1000; k++) {
    if (want)
      snprintf(name, sizeof name, "%s", want);
    else
      snprintf(name, sizeof name, "eth%d", k);
    int idx = hcs_nl_link_index(*inner, name, err);
    if (idx == 0) break;
    if (idx < 0 || want) {
      if (idx > 0) hcs_error_make(err, EEXIST, "interface `%s` already exists in namespace `%s`", name, ns);
      hcs_nl_close(*inner);
      *inner = NULL;
      return -1;
    }
  }
  json_object_set_new(lnx, "Interface", json_string(name));
  json_object_set_new(ep, "HostComputeNamespace", json_string(ns));
  json_object_set_new(lnx, "NamespacePath", json_string(path));
  json_object_set_new(lnx, "NamespaceInode", json_integer((json_int_t)st.st_ino));
  return steal_fd(nsfd);
}

static void forget_attach(json_t *ep) {
  json_object_del(json_object_get(ep, "Linux"), "Interface");
  json_object_set_new(ep, "HostComputeNamespace", json_null());
  json_object_del(json_object_get(ep, "Linux"), "NamespacePath");
  json_object_del(json_object_get(ep, "Linux"), "NamespaceInode");
}

/* Create the veth with its peer inside the namespace, enslaved to bridge
 * `br`, and configure it there. */
static int plumb(json_t *ep, json_t *network, int nsfd, struct hcs_nl *nl, int br, struct hcs_nl *inner,
                 hcs_error_t *err) {
  struct hcs_netinfo ni;
  if (hcs_net_network_info(network, &ni, err) < 0) return -1;
  json_t *lnx = json_object_get(ep, "Linux");
  const char *host = json_string_value(json_object_get(lnx, "HostInterface"));
  const char *ifname = json_string_value(json_object_get(lnx, "Interface"));
  uint8_t mac[6];
  if (hcs_net_parse_mac(ep_str(ep, "MacAddress"), mac, "MacAddress", err) < 0) return -1;
  hcs_error_t first = NULL;
  int rc = hcs_nl_veth_add(nl, host, br, ifname, nsfd, mac, &first);
  bool full = rc < 0 && hcs_error_status(first) == EXFULL;
  hcs_error_release(&first);
  if (full) goto bridge_full;
  if (rc < 0) {
    /* The name is this endpoint's own: a leftover of an earlier attachment
     * whose netns the kernel is still reaping.  Remove it and retry. */
    rc = hcs_nl_link_del(nl, host, err) < 0 ? -1 : hcs_nl_veth_add(nl, host, br, ifname, nsfd, mac, err);
    if (rc < 0 && hcs_error_status(*err) == EXFULL) {
      hcs_error_release(err);
      goto bridge_full;
    }
  }
  if (rc < 0) return -1;
  /* The host end is a bridge port and needs no IPv6.  Left on, each took a
   * link-local address and three routes in the host's IPv6 table, which
   * every link removal walks (fib6_ifdown): with 1000 endpoints a delete
   * walked 3000 routes.  Set while the peer is still down (no carrier), so
   * nothing is added at all.  Best effort: a host without IPv6 has no key. */
  {
    cleanup_free char *key = hcs_xasprintf("ipv6/conf/%s/disable_ipv6", host);
    hcs_error_t e = NULL;
    if (hcs_net_sysctl(key, "1", &e) < 0 && hcs_error_status(e) != ENOENT)
      hcs_debug("endpoint: %s: %s", key, hcs_error_message(e));
    hcs_error_release(&e);
  }
  struct in_addr addr = {0};
  int len = 0;
  bool have_addr = ep_address(ep, &addr, &len);
  struct hcs_nl_route routes[16];
  size_t n = 0, i;
  json_t *r;
  json_t *subnet = json_array_get(json_object_get(json_array_get(json_object_get(network, "Ipams"), 0), "Subnets"), 0);
  json_array_foreach(have_addr ? json_object_get(subnet, "Routes") : NULL, i, r) {
    if (n >= HCS_ARRAY_SIZE(routes)) break;
    struct hcs_nl_route *rt = &routes[n];
    if (hcs_net_parse_prefix(ep_str(r, "DestinationPrefix"), &rt->dst, "route", NULL) < 0 || rt->dst.len == 0)
      continue; /* the default route is the gateway, added below */
    rt->has_via = hcs_net_parse_ip(ep_str(r, "NextHop"), &rt->via, "route", NULL) == 0;
    n++;
  }
  struct hcs_nl_ifconf conf = {.ifname = ifname,
                               .addr = addr,
                               .prefixlen = have_addr ? len : 0,
                               .has_gateway = ni.has_gateway && ni.gateway.s_addr != addr.s_addr,
                               .gateway = ni.gateway,
                               .routes = routes,
                               .n_routes = n};
  rc = hcs_nl_configure(inner, &conf, err);
  if (rc < 0) hcs_nl_link_del(nl, host, NULL);
  return rc;
bridge_full:
  /* The kernel numbers a bridge's ports in 10 bits, 0 unused (BR_MAX_PORTS):
   * the veth is refused with EXFULL ("Exchange full"). */
  return hcs_error_make(err, EXFULL,
                        "plug endpoint `%s` into network `%s`: its bridge `%s` has all the %d ports a Linux bridge "
                        "takes; use another network",
                        ep_str(ep, "Name") ?: "?", ni.name, ni.bridge, HCS_NET_BRIDGE_MAX_PORTS);
}

/* Work done between saving the document and plumbing (DNS files, port
 * mappings); a failure skips the plumbing. */
struct before_plumb {
  int (*fn)(void *arg, hcs_error_t *err);
  void *arg;
};

/* Plug into the namespace and persist; on failure neither is left behind.
 * The document is saved first, so a crash during the plumbing leaves a
 * document naming the host interface, which a later delete removes. */
static int attach_and_save(hcs_net_t *net, json_t *ep, json_t *network, const char *ns, bool existing,
                           const struct before_plumb *before, hcs_error_t *err) {
  struct hcs_nl *inner = NULL;
  cleanup_close int nsfd = prepare_attach(net, ep, ns, &inner, err);
  if (nsfd < 0) return -1;
  const char *id = ep_str(ep, "Id");
  /* Listed as a member of the compartment before the attach is saved. */
  cleanup_free char *nspath = ep_nspath(ep);
  if (nspath && hcs_claims_ready(net, err) < 0) return -1;
  if (nspath && hcs_claim_member(net, nspath, id, err) < 0) return -1;
  /* The network first: its bridge and nftables chains may need setting up
   * again (after a reboot) before the port mappings and the veth. */
  struct hcs_nl *nl = hcs_nl_open(-1, err);
  int br = nl ? hcs_net_network_ensure(net, network, nl, err) : -1;
  int rc = br > 0 ? hcs_net_save(net, "endpoints", id, ep, err) : -1;
  bool saved = rc == 0;
  if (rc == 0 && before && before->fn) rc = before->fn(before->arg, err);
  if (rc == 0) hcs_crash_point("endpoint attach: document saved, policies added");
  if (rc == 0) rc = plumb(ep, network, nsfd, nl, br, inner, err);
  if (rc == 0) hcs_crash_point("endpoint attach: plumbed");
  hcs_nl_close(nl);
  hcs_nl_close(inner);
  if (rc < 0) forget_attach(ep), hcs_release_member(net, nspath, id);
  if (rc < 0 && saved) {
    /* Put the document back as it was: detached, or absent for a new one. */
    if (existing)
      hcs_net_save(net, "endpoints", id, ep, NULL);
    else
      hcs_net_remove(net, "endpoints", id, NULL);
  }
  return rc;
}

/* hcs_net_network_ensure on a socket of its own. */
static int ensure_network(hcs_net_t *net, json_t *network, hcs_error_t *err) {
  struct hcs_nl *nl = hcs_nl_open(-1, err);
  int br = nl ? hcs_net_network_ensure(net, network, nl, err) : -1;
  hcs_nl_close(nl);
  return br > 0 ? 0 : -1;
}

static int unplug(json_t *ep, hcs_error_t *err) {
  const char *host = json_string_value(json_object_get(json_object_get(ep, "Linux"), "HostInterface"));
  if (host == NULL || !hcs_net_endpoint_attached(ep)) return 0;
  struct hcs_nl *nl = hcs_nl_open(-1, err);
  if (nl == NULL) return -1;
  int rc = hcs_nl_link_del(nl, host, err);
  hcs_nl_close(nl);
  return rc;
}

struct create_extras {
  hcs_net_t *net;
  const char *dnsdir;
  json_t *dns;
  const char *name, *ip;
  struct hcs_nft_ep nft;
};

static int create_extras_apply(void *arg, hcs_error_t *err) {
  struct create_extras *x = arg;
  if (hcs_dns_write(x->dnsdir, x->dns, x->name, x->ip, err) < 0) return -1;
  return hcs_nft_endpoint(x->net, &x->nft, err);
}

/* Claims of a create in progress, released unless it succeeds. */
struct ep_claims {
  hcs_net_t *net;
  const char *id, *name;
  const struct hcs_portmap *pm;
  size_t npm;
  bool keep;
};

static void ep_claims_release(struct ep_claims *c) {
  if (c->keep) return;
  if (c->name) hcs_release_name(c->net, c->name, c->id);
  hcs_release_ports(c->net, c->pm, c->npm, c->id);
}
#define cleanup_ep_claims __attribute__((cleanup(ep_claims_release)))

/* Names are unique among endpoints: claimed, or on a hash collision
 * checked against every document. */
static int claim_name(hcs_net_t *net, json_t *doc, const char *id, hcs_error_t *err) {
  const char *name = ep_str(doc, "Name");
  cleanup_free char *holder = NULL;
  int rc = hcs_claim_name(net, name, id, &holder, err);
  if (rc < 0) return -1;
  if (rc == 0) return hcs_error_make(err, 0, "endpoint `%s`: the name is already used by endpoint `%s`", name, holder);
  if (rc == 2) {
    cleanup_json json_t *all = hcs_net_load_all(net, "endpoints", err);
    if (all == NULL) return -1;
    size_t i;
    json_t *o;
    json_array_foreach(all, i, o) if (strcmp(ep_str(o, "Name") ?: "", name) == 0) return hcs_error_make(
        err, 0, "endpoint `%s`: the name is already used by endpoint `%s`", name, ep_str(o, "Id"));
  }
  return 0;
}

static char *endpoint_create(hcs_net_t *net, const char *settings, hcs_error_t *err) {
  cleanup_json json_t *doc = hcs_json_parse(settings ? settings : "", "HostComputeEndpoint", err);
  if (doc == NULL) return NULL;
  if (!json_is_object(doc)) {
    hcs_error_make(err, 0, "HostComputeEndpoint: expected a JSON object");
    return NULL;
  }
  const char *given = ep_str(doc, "Id");
  if (given && hcs_validate_id("HostComputeEndpoint.Id", given, err) < 0) return NULL;
  cleanup_free char *id = given ? hcs_xstrdup(given) : hcs_net_new_id();
  json_object_set_new(doc, "Id", json_string(id));
  if (json_object_get(doc, "Name") == NULL) {
    cleanup_free char *name = hcs_xasprintf("ep-%.8s", id);
    json_object_set_new(doc, "Name", json_string(name));
  }
  cleanup_net_change hcs_net_held_t lock = hcs_net_lock_change(net, err);
  if (lock.fd < 0) return NULL;
  json_t *jname = json_object_get(doc, "Name");
  if (!json_is_string(jname) || json_string_length(jname) == 0 || json_string_length(jname) > 128) {
    hcs_error_make(err, 0, "HostComputeEndpoint.Name: a string of 1..128 characters");
    return NULL;
  }
  const char *name = json_string_value(jname);
  cleanup_free char *what = hcs_xasprintf("endpoint `%s`", name);
  {
    cleanup_free char *path = hcs_net_path(net, "endpoints", id, ".json");
    if (hcs_path_exists(path)) {
      hcs_error_make(err, 0, "%s: Id `%s` is already used", what, id);
      return NULL;
    }
  }
  /* The name and the host ports are claimed (claims.c) until the create
   * succeeds; a failure releases them. */
  /* Before `held`: its clean-up reads them, and locals declared after it
   * are out of scope by then. */
  struct hcs_portmap pm[MAX_PORTMAPS];
  size_t npm = 0;
  cleanup_ep_claims struct ep_claims held = {.net = net, .id = id};
  if (hcs_claims_ready(net, err) < 0 || claim_name(net, doc, id, err) < 0) return NULL;
  held.name = name;
  const char *netref = ep_str(doc, "HostComputeNetwork");
  if (netref == NULL) {
    hcs_error_make(err, 0, "%s: HostComputeNetwork (a network id or name) is required", what);
    return NULL;
  }
  cleanup_json json_t *network = hcs_net_find(net, "networks", netref, err);
  if (network == NULL) {
    hcs_error_wrap(err, "%s: HostComputeNetwork", what);
    return NULL;
  }
  struct hcs_netinfo ni;
  if (hcs_net_network_info(network, &ni, err) < 0) return NULL;
  if (ni.bridge == NULL) {
    hcs_error_make(err, 0, "%s: network `%s` is of type %s and takes no endpoints", what, ni.name, ni.type);
    return NULL;
  }
  json_object_set_new(doc, "HostComputeNetwork", json_string(ni.id));

  json_t *policies = json_object_get(doc, "Policies");
  if (policies && !json_is_array(policies)) {
    hcs_error_make(err, 0, "%s: Policies must be an array", what);
    return NULL;
  }
  if (ep_portmaps(policies, pm, &npm, what, err) < 0) return NULL;
  held.pm = pm, held.npm = npm;
  if (hcs_claim_ports(net, pm, npm, id, false, what, err) < 0) return NULL;
  cleanup_json json_t *exceptions = ep_exceptions(policies, what, err);
  if (exceptions == NULL) return NULL;
  if ((npm || json_array_size(exceptions)) && !ni.nat) {
    hcs_error_make(err, 0, "%s: port mappings and OutBoundNAT need a NAT network, `%s` is %s", what, ni.name, ni.type);
    return NULL;
  }

  json_t *ipc = json_object_get(doc, "IpConfigurations");
  if (ipc && (!json_is_array(ipc) || json_array_size(ipc) > 1)) {
    hcs_error_make(err, 0, "%s: IpConfigurations must be an array of at most one address", what);
    return NULL;
  }
  struct in_addr addr = {0};
  int plen = ni.subnet.len;
  bool have_addr = false;
  /* Declared before the first `goto fail`: cleanup must never see garbage. */
  cleanup_free char *mac_text = NULL, *dnsdir = NULL, *ns_copy = NULL, *ip = NULL;
  json_t *c0 = json_array_get(ipc, 0);
  if (c0) {
    if (hcs_net_parse_ip(ep_str(c0, "IpAddress"), &addr, "IpConfigurations[0].IpAddress", err) < 0) {
      hcs_error_wrap(err, "%s", what);
      return NULL;
    }
    json_t *pl = json_object_get(c0, "PrefixLength");
    if (pl && (!json_is_integer(pl) || json_integer_value(pl) < 1 || json_integer_value(pl) > 32)) {
      hcs_error_make(err, 0, "%s: IpConfigurations[0].PrefixLength must be 1..32", what);
      return NULL;
    }
    if (pl) plen = (int)json_integer_value(pl);
    if (ni.has_subnet && !hcs_net_in_prefix(&ni.subnet, addr)) {
      hcs_error_make(err, 0, "%s: IpConfigurations[0].IpAddress `%s` is outside the subnet of network `%s`", what,
                     ep_str(c0, "IpAddress"), ni.name);
      return NULL;
    }
    if (ni.has_gateway && addr.s_addr == ni.gateway.s_addr) {
      hcs_error_make(err, 0, "%s: IpConfigurations[0].IpAddress `%s` is the gateway of network `%s`", what,
                     ep_str(c0, "IpAddress"), ni.name);
      return NULL;
    }
    if (hcs_ipam_claim(net, ni.id, addr, id, err) < 0) {
      hcs_error_wrap(err, "%s", what);
      return NULL;
    }
    have_addr = true;
  } else if (ni.has_subnet) {
    if (hcs_ipam_allocate(net, ni.id, &ni.subnet, ni.gateway, id, &addr, err) < 0) return NULL;
    have_addr = true;
  }
  if (have_addr) {
    hcs_crash_point("endpoint create: lease claimed");
    cleanup_free char *text = hcs_net_format_ip(addr);
    json_object_set_new(doc, "IpConfigurations",
                        json_pack("[{s:s,s:i}]", "IpAddress", text, "PrefixLength", plen ? plen : 32));
  }

  uint8_t mac[6];
  const char *macs = ep_str(doc, "MacAddress");
  if (macs) {
    if (hcs_net_parse_mac(macs, mac, "MacAddress", err) < 0) goto fail;
  } else if (have_addr) { /* like Docker: a locally administered MAC from the address */
    uint32_t a = ntohl(addr.s_addr);
    uint8_t m[6] = {0x02, 0x42, (uint8_t)(a >> 24), (uint8_t)(a >> 16), (uint8_t)(a >> 8), (uint8_t)a};
    memcpy(mac, m, 6);
  } else {
    if (getrandom(mac, 6, 0) != 6) abort();
    mac[0] = (uint8_t)((mac[0] & 0xfe) | 0x02);
  }
  mac_text = hcs_net_format_mac(mac);
  json_object_set_new(doc, "MacAddress", json_string(mac_text));

  char host[16];
  host_ifname(id, host);
  json_t *lnx = json_object_get(doc, "Linux");
  const char *ifname = json_string_value(json_object_get(lnx, "Interface"));
  if (ifname && (strlen(ifname) == 0 || strlen(ifname) > 15 || strchr(ifname, '/') || strchr(ifname, ' '))) {
    hcs_error_make(err, 0, "%s: Linux.Interface `%s` is not a valid interface name (1..15 characters)", what, ifname);
    goto fail;
  }
  dnsdir = hcs_net_endpoint_rundir(net, id);
  json_t *lx =
      json_pack("{s:s,s:s,s:s,s:s}", "HostInterface", host, "Bridge", ni.bridge, "ResolvConf", "", "Hosts", "");
  if (ifname) json_object_set_new(lx, "InterfaceRequested", json_string(ifname));
  {
    cleanup_free char *rc = hcs_xasprintf("%s/resolv.conf", dnsdir);
    cleanup_free char *hs = hcs_xasprintf("%s/hosts", dnsdir);
    json_object_set_new(lx, "ResolvConf", json_string(rc));
    json_object_set_new(lx, "Hosts", json_string(hs));
  }
  json_object_set_new(doc, "Linux", lx);
  if (ni.has_gateway) {
    cleanup_free char *g = hcs_net_format_ip(ni.gateway);
    json_object_set_new(lx, "Gateway", json_string(g));
  }
  const char *ns = ep_str(doc, "HostComputeNamespace");
  ns_copy = ns ? hcs_xstrdup(ns) : NULL;
  json_object_set_new(doc, "HostComputeNamespace", json_null());

  /* The endpoint's Dns wins over the network's. */
  ip = have_addr ? hcs_net_format_ip(addr) : NULL;
  struct create_extras extras = {
      net,  dnsdir, json_object_get(doc, "Dns") ?: json_object_get(network, "Dns"),
      name, ip,     {.netid = ni.id, .target = addr, .add = pm, .n_add = npm, .exc_add = exceptions}};
  struct before_plumb before = {create_extras_apply, &extras};
  if (ns_copy ? attach_and_save(net, doc, network, ns_copy, false, &before, err) < 0
              : (((npm || json_array_size(exceptions)) && ensure_network(net, network, err) < 0) ||
                 create_extras_apply(&extras, err) < 0 || hcs_net_save(net, "endpoints", id, doc, err) < 0)) {
    struct hcs_nft_ep undo = {.netid = ni.id, .target = addr, .del = pm, .n_del = npm, .exc_del = exceptions};
    hcs_nft_endpoint(net, &undo, NULL);
    goto fail;
  }
  held.keep = true;
  return hcs_json_dumps(doc);
fail:
  hcs_error_wrap(err, "create endpoint `%s`", name);
  {
    cleanup_free char *dir = hcs_net_endpoint_rundir(net, id);
    hcs_rm_rf(dir, NULL);
  }
  if (have_addr) hcs_ipam_release(net, ni.id, addr, id);
  return NULL;
}

int hcs_net_endpoint_policies(json_t *ep, struct hcs_portmap *pm, struct hcs_nft_ep *c, json_t **exc) {
  memset(c, 0, sizeof *c);
  c->netid = ep_str(ep, "HostComputeNetwork");
  *exc = ep_exceptions(json_object_get(ep, "Policies"), "endpoint", NULL);
  if (!ep_address(ep, &c->target, NULL) || c->netid == NULL ||
      ep_portmaps(json_object_get(ep, "Policies"), pm, &c->n_add, "endpoint", NULL) < 0)
    c->n_add = 0;
  c->add = pm;
  c->exc_add = *exc;
  return c->n_add || json_array_size(*exc) ? 1 : 0;
}

static void emit_endpoint(hcs_net_t *net, const char *action, json_t *ep) {
  const char *id = json_string_value(json_object_get(ep, "Id"));
  if (id == NULL) return;
  json_t *attrs = json_pack("{s:s?,s:s?}", "Name", json_string_value(json_object_get(ep, "Name")), "Network",
                            json_string_value(json_object_get(ep, "HostComputeNetwork")));
  hcs_event_emit(net->run, "endpoint", action, id, NULL, attrs);
}

char *hcs_net_endpoint_create(hcs_net_t *net, const char *settings, hcs_error_t *err) {
  char *out = endpoint_create(net, settings, err);
  if (out) {
    cleanup_json json_t *doc = json_loads(out, 0, NULL);
    emit_endpoint(net, "created", doc);
  }
  return out;
}

static int endpoint_delete_locked(hcs_net_t *net, json_t *ep, hcs_error_t *err);

/* Also the deletes a forced network delete does. */
int hcs_net_endpoint_delete_locked(hcs_net_t *net, json_t *ep, hcs_error_t *err) {
  if (endpoint_delete_locked(net, ep, err) < 0) return -1;
  emit_endpoint(net, "deleted", ep);
  return 0;
}

static int endpoint_delete_locked(hcs_net_t *net, json_t *ep, hcs_error_t *err) {
  const char *id = ep_str(ep, "Id");
  struct hcs_portmap pm[MAX_PORTMAPS];
  size_t npm = 0;
  struct in_addr addr = {0};
  bool have_addr = ep_address(ep, &addr, NULL);
  cleanup_json json_t *exc = ep_exceptions(json_object_get(ep, "Policies"), "endpoint", NULL);
  if (ep_portmaps(json_object_get(ep, "Policies"), pm, &npm, "endpoint", NULL) < 0) npm = 0;
  struct hcs_nft_ep undo = {
      .netid = ep_str(ep, "HostComputeNetwork"), .target = addr, .del = pm, .n_del = npm, .exc_del = exc};
  if ((npm || json_array_size(exc)) && hcs_nft_endpoint(net, &undo, NULL) < 0)
    hcs_info("endpoint `%s`: its nftables policies were already gone", id);
  hcs_crash_point("endpoint delete: policies removed");
  if (unplug(ep, err) < 0) return hcs_error_wrap(err, "delete endpoint `%s`", id);
  hcs_crash_point("endpoint delete: unplugged");
  if (hcs_net_remove(net, "endpoints", id, err) < 0) return -1;
  hcs_crash_point("endpoint delete: document removed");
  if (ep_str(ep, "Name")) hcs_release_name(net, ep_str(ep, "Name"), id);
  hcs_release_ports(net, pm, npm, id);
  hcs_release_member(net, ep_linux_str(ep, "NamespacePath"), id);
  cleanup_free char *dir = hcs_net_endpoint_rundir(net, id);
  hcs_rm_rf(dir, NULL);
  if (have_addr) hcs_ipam_release(net, ep_str(ep, "HostComputeNetwork"), addr, id);
  return 0;
}

int hcs_net_endpoint_delete(hcs_net_t *net, const char *ref, hcs_error_t *err) {
  cleanup_net_change hcs_net_held_t lock = hcs_net_lock_change(net, err);
  if (lock.fd < 0) return -1;
  cleanup_json json_t *ep = hcs_net_find(net, "endpoints", ref, err);
  if (ep == NULL) return -1;
  return hcs_net_endpoint_delete_locked(net, ep, err);
}

char *hcs_net_endpoint_query(hcs_net_t *net, const char *ref, hcs_error_t *err) {
  cleanup_close int lock = hcs_net_lock(net, true, err);
  if (lock < 0) return NULL;
  json_t *doc = hcs_net_find(net, "endpoints", ref, err);
  return doc ? hcs_net_dump_release(present(doc)) : NULL;
}

char *hcs_net_endpoint_list(hcs_net_t *net, const char *network, hcs_error_t *err) {
  cleanup_close int lock = hcs_net_lock(net, true, err);
  if (lock < 0) return NULL;
  cleanup_json json_t *filter = network ? hcs_net_find(net, "networks", network, err) : NULL;
  if (network && filter == NULL) return NULL;
  json_t *all = hcs_net_load_all(net, "endpoints", err);
  if (all == NULL) return NULL;
  if (filter) {
    const char *nid = ep_str(filter, "Id");
    for (size_t i = json_array_size(all); i-- > 0;)
      if (strcmp(ep_str(json_array_get(all, i), "HostComputeNetwork") ?: "", nid) != 0) json_array_remove(all, i);
  }
  size_t i;
  json_t *e;
  json_array_foreach(all, i, e) present(e);
  return hcs_net_dump_release(all);
}

char *hcs_net_endpoint_attach(hcs_net_t *net, const char *ref, const char *ns, hcs_error_t *err) {
  cleanup_net_change hcs_net_held_t lock = hcs_net_lock_change(net, err);
  if (lock.fd < 0) return NULL;
  cleanup_json json_t *ep = hcs_net_find(net, "endpoints", ref, err);
  if (ep == NULL) return NULL;
  if (hcs_net_endpoint_attached(ep)) {
    hcs_error_make(err, EBUSY, "attach endpoint `%s`: already attached to namespace `%s` (detach it first)", ref,
                   ep_str(ep, "HostComputeNamespace"));
    return NULL;
  }
  cleanup_json json_t *network = hcs_net_find(net, "networks", ep_str(ep, "HostComputeNetwork"), err);
  if (network == NULL || attach_and_save(net, ep, network, ns, true, NULL, err) < 0) {
    hcs_error_wrap(err, "attach endpoint `%s` to `%s`", ref, ns);
    return NULL;
  }
  return hcs_json_dumps(ep);
}

int hcs_net_endpoint_detach_locked(hcs_net_t *net, json_t *ep, hcs_error_t *err) {
  if (unplug(ep, err) < 0) return hcs_error_wrap(err, "detach endpoint `%s`", ep_str(ep, "Id"));
  cleanup_free char *nspath = ep_nspath(ep);
  forget_attach(ep);
  if (hcs_net_save(net, "endpoints", ep_str(ep, "Id"), ep, err) < 0) return -1;
  hcs_release_member(net, nspath, ep_str(ep, "Id"));
  return 0;
}

char *hcs_net_endpoint_detach(hcs_net_t *net, const char *ref, hcs_error_t *err) {
  cleanup_net_change hcs_net_held_t lock = hcs_net_lock_change(net, err);
  if (lock.fd < 0) return NULL;
  cleanup_json json_t *ep = hcs_net_find(net, "endpoints", ref, err);
  if (ep == NULL || hcs_net_endpoint_detach_locked(net, ep, err) < 0) return NULL;
  return hcs_json_dumps(ep);
}

char *hcs_net_endpoint_modify(hcs_net_t *net, const char *ref, const char *request, hcs_error_t *err) {
  cleanup_json json_t *req = NULL;
  json_t *policies;
  bool add;
  if (hcs_net_parse_modify(request, "endpoint", &req, &add, &policies, err) < 0) return NULL;
  cleanup_net_change hcs_net_held_t lock = hcs_net_lock_change(net, err);
  if (lock.fd < 0) return NULL;
  cleanup_json json_t *ep = hcs_net_find(net, "endpoints", ref, err);
  if (ep == NULL) return NULL;
  cleanup_free char *what = hcs_xasprintf("modify endpoint `%s`", ep_str(ep, "Name"));
  struct hcs_portmap pm[MAX_PORTMAPS];
  size_t npm;
  if (ep_portmaps(policies, pm, &npm, what, err) < 0) return NULL;
  size_t i;
  json_t *p;
  json_array_foreach(policies, i,
                     p) if (strcmp(json_string_value(json_object_get(p, "Type")) ?: "", "OutBoundNAT") == 0) {
    hcs_error_make(err, 0, "%s: Policies[%zu]: an endpoint's OutBoundNAT is set when it is created", what, i);
    return NULL;
  }
  struct in_addr addr;
  if (!ep_address(ep, &addr, NULL)) {
    hcs_error_make(err, 0, "%s: the endpoint has no address to map ports to", what);
    return NULL;
  }
  json_t *cur = json_object_get(ep, "Policies");
  if (!json_is_array(cur)) {
    cur = json_array();
    json_object_set_new(ep, "Policies", cur);
  }
  const char *id = ep_str(ep, "Id");
  if (add) {
    if (hcs_claims_ready(net, err) < 0 || hcs_claim_ports(net, pm, npm, id, true, what, err) < 0) return NULL;
    if (hcs_nft_portmaps(net, addr, pm, npm, NULL, 0, err) < 0) {
      hcs_release_ports(net, pm, npm, id);
      return NULL;
    }
    json_array_foreach(policies, i, p) json_array_append(cur, p);
  } else {
    /* Remove the mappings named by protocol, host port and address. */
    struct hcs_portmap gone[MAX_PORTMAPS];
    size_t ngone = 0;
    for (size_t k = json_array_size(cur); k-- > 0;) {
      json_t *q = json_array_get(cur, k);
      struct hcs_portmap have;
      if (strcmp(json_string_value(json_object_get(q, "Type")) ?: "", "PortMapping") != 0 ||
          hcs_net_parse_portmap(json_object_get(q, "Settings"), &have, what, NULL) < 0)
        continue;
      for (size_t j = 0; j < npm; j++)
        if (have.proto == pm[j].proto && have.external == pm[j].external && have.vip.s_addr == pm[j].vip.s_addr) {
          gone[ngone++] = have;
          json_array_remove(cur, k);
          break;
        }
    }
    if (ngone < npm) {
      hcs_error_make(err, ENOENT, "%s: %zu of the port mappings to remove do not exist", what, npm - ngone);
      return NULL;
    }
    if (hcs_nft_portmaps(net, addr, NULL, 0, gone, ngone, err) < 0) return NULL;
    if (hcs_net_save(net, "endpoints", id, ep, err) < 0) return NULL;
    hcs_release_ports(net, gone, ngone, id);
    return hcs_json_dumps(ep);
  }
  if (hcs_net_save(net, "endpoints", id, ep, err) < 0) return NULL;
  return hcs_json_dumps(ep);
}
