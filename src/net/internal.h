/* Internal interfaces between the files of the networks subsystem. */
#ifndef HCS_NET_INTERNAL_H
#define HCS_NET_INTERNAL_H

#include <netinet/in.h>
#include <stdint.h>

#include "core/util.h"
#include "hcs/net.h"

struct nftables_context;

struct hcs_net_s {
  char *root;     /* <state root>/net */
  char *run;      /* <run root> */
  char *netns;    /* <run root>/netns */
  char *runstate; /* <run root>/net: namespace documents, endpoint DNS files */
  struct nftables_context *nft;
  char *table; /* "ip hcs<hash of the canonical state root>": this root's nftables table */
};

/* --- state.c: paths, documents, the store lock ---------------------------- */
HCS_INTERNAL char *hcs_net_path(hcs_net_t *net, const char *kind, const char *id, const char *suffix);
HCS_INTERNAL char *hcs_net_endpoint_rundir(hcs_net_t *net, const char *id);
HCS_INTERNAL int hcs_net_lock(hcs_net_t *net, bool shared, hcs_error_t *err);
/* The store lock held exclusively for a change.  <run root>/net/busy exists
 * while it is held: a holder killed mid-change leaves it, and the next open
 * of the store reconciles (leases, orphan namespaces) before going on, where
 * a store left consistent is opened without reading every document. */
typedef struct {
  int fd;
  hcs_net_t *net;
} hcs_net_held_t;
HCS_INTERNAL hcs_net_held_t hcs_net_lock_change(hcs_net_t *net, hcs_error_t *err);
HCS_INTERNAL void hcs_net_unlock_change(hcs_net_held_t *h);
#define cleanup_net_change __attribute__((cleanup(hcs_net_unlock_change)))
HCS_INTERNAL json_t *hcs_net_load(hcs_net_t *net, const char *kind, const char *id, hcs_error_t *err);
HCS_INTERNAL int hcs_net_save(hcs_net_t *net, const char *kind, const char *id, json_t *doc, hcs_error_t *err);
HCS_INTERNAL int hcs_net_remove(hcs_net_t *net, const char *kind, const char *id, hcs_error_t *err);
/* All documents of a kind as a JSON array (new reference). */
HCS_INTERNAL json_t *hcs_net_load_all(hcs_net_t *net, const char *kind, hcs_error_t *err);
/* Find by id or Name; NULL with a "not found" error otherwise. */
HCS_INTERNAL json_t *hcs_net_find(hcs_net_t *net, const char *kind, const char *ref, hcs_error_t *err);
HCS_INTERNAL char *hcs_net_new_id(void);
/* n hex digits of a hash of id into out (n + 1 bytes). */
HCS_INTERNAL void hcs_net_short_hash(const char *id, char *out, size_t n);
HCS_INTERNAL char *hcs_net_dump_release(json_t *doc);

/* --- addr.c: IPv4 prefixes and MAC addresses ----------------------------- */
struct hcs_prefix {
  struct in_addr addr;
  int len;
};
HCS_INTERNAL int hcs_net_parse_prefix(const char *s, struct hcs_prefix *p, const char *where, hcs_error_t *err);
HCS_INTERNAL int hcs_net_parse_ip(const char *s, struct in_addr *a, const char *where, hcs_error_t *err);
HCS_INTERNAL int hcs_net_parse_mac(const char *s, uint8_t mac[6], const char *where, hcs_error_t *err);
HCS_INTERNAL char *hcs_net_format_mac(const uint8_t mac[6]);
HCS_INTERNAL char *hcs_net_format_ip(struct in_addr a);
HCS_INTERNAL uint32_t hcs_net_mask(int len); /* host order */
HCS_INTERNAL bool hcs_net_in_prefix(const struct hcs_prefix *p, struct in_addr a);
HCS_INTERNAL bool hcs_net_prefix_overlap(const struct hcs_prefix *a, const struct hcs_prefix *b);

/* --- netlink.c: rtnetlink over libmnl ----------------------------------- */
struct hcs_nl;
/* A route socket in the calling thread's netns, or in `nsfd` when >= 0. */
HCS_INTERNAL struct hcs_nl *hcs_nl_open(int nsfd, hcs_error_t *err);
HCS_INTERNAL void hcs_nl_close(struct hcs_nl *nl);
HCS_INTERNAL int hcs_nl_link_index(struct hcs_nl *nl, const char *name, hcs_error_t *err); /* 0 if absent */
/* A bridge, up, with address `mac` (NULL: the kernel's choice). */
HCS_INTERNAL int hcs_nl_bridge_add(struct hcs_nl *nl, const char *name, const uint8_t mac[6], hcs_error_t *err);
HCS_INTERNAL int hcs_nl_link_set(struct hcs_nl *nl, int ifindex, int master, bool up, hcs_error_t *err);
HCS_INTERNAL int hcs_nl_link_del(struct hcs_nl *nl, const char *name, hcs_error_t *err); /* ENODEV is fine */
/* Set links down, in one batch (ENODEV is fine). */
HCS_INTERNAL int hcs_nl_links_down(struct hcs_nl *nl, const char *const *names, size_t n, hcs_error_t *err);
HCS_INTERNAL bool hcs_nl_link_is_bridge(struct hcs_nl *nl, const char *name);
/* veth `host` enslaved to `master` and up; its peer `peer` created directly in
 * the netns `peer_nsfd` (up, with `mac`). */
HCS_INTERNAL int hcs_nl_veth_add(struct hcs_nl *nl, const char *host, int master, const char *peer, int peer_nsfd,
                                 const uint8_t mac[6], hcs_error_t *err);
struct hcs_nl_ifconf {
  const char *ifname;
  struct in_addr addr;
  int prefixlen;
  bool has_gateway;
  struct in_addr gateway;
  const struct hcs_nl_route *routes;
  size_t n_routes;
};
struct hcs_nl_route {
  struct hcs_prefix dst;
  bool has_via;
  struct in_addr via;
};
/* One batch inside a namespace: lo up, address, routes, default route. */
HCS_INTERNAL int hcs_nl_configure(struct hcs_nl *nl, const struct hcs_nl_ifconf *c, hcs_error_t *err);
HCS_INTERNAL int hcs_nl_addr_add(struct hcs_nl *nl, int ifindex, struct in_addr a, int len, hcs_error_t *err);
/* Interfaces (with addresses) and routes, HCN/Get-NetRoute-like JSON arrays. */
HCS_INTERNAL json_t *hcs_nl_dump_interfaces(struct hcs_nl *nl, hcs_error_t *err);
HCS_INTERNAL json_t *hcs_nl_dump_routes(struct hcs_nl *nl, hcs_error_t *err);

/* --- netns.c ------------------------------------------------------------- */
HCS_INTERNAL int hcs_netns_create(const char *dir, const char *path, hcs_error_t *err);
/* mkdir of the last component, or of the whole path when a parent is missing. */
HCS_INTERNAL int hcs_net_mkdir(const char *path, hcs_error_t *err);
HCS_INTERNAL int hcs_netns_remove(const char *path, hcs_error_t *err);
/* Unmount the netns directory's own bind mount when it holds no netns. */
HCS_INTERNAL bool hcs_netns_dir_release(const char *dir);
HCS_INTERNAL int hcs_netns_open(const char *path, hcs_error_t *err);
HCS_INTERNAL int hcs_net_sysctl(const char *key, const char *value, hcs_error_t *err);
/* The netns file for an id or an absolute path. */
HCS_INTERNAL char *hcs_net_ns_resolve(hcs_net_t *net, const char *ns, hcs_error_t *err);

/* --- ipam.c -------------------------------------------------------------- */
HCS_INTERNAL int hcs_ipam_claim(hcs_net_t *net, const char *netid, struct in_addr a, const char *epid,
                                hcs_error_t *err);
HCS_INTERNAL int hcs_ipam_allocate(hcs_net_t *net, const char *netid, const struct hcs_prefix *subnet,
                                   struct in_addr gateway, const char *epid, struct in_addr *out, hcs_error_t *err);
HCS_INTERNAL int hcs_ipam_release(hcs_net_t *net, const char *netid, struct in_addr a, const char *epid);
HCS_INTERNAL int hcs_ipam_reconcile(hcs_net_t *net, const char *netid, json_t *reclaimed, hcs_error_t *err);
HCS_INTERNAL int hcs_ipam_drop(hcs_net_t *net, const char *netid, hcs_error_t *err);

/* --- nft.c: policies ----------------------------------------------------- */
#define HCS_NET_MAX_PORTMAPS 256
/* Ports of one Linux bridge: numbered in 10 bits, port 0 unused. */
#define HCS_NET_BRIDGE_MAX_PORTS 1023
struct hcs_portmap {
  int proto; /* IPPROTO_TCP / IPPROTO_UDP */
  int internal, external;
  bool has_vip;
  struct in_addr vip;
};

/* --- claims.c: endpoint names and host ports, one owner each -------------- */
/* Under the store lock.  Index a store from before the claims, once. */
HCS_INTERNAL int hcs_claims_ready(hcs_net_t *net, hcs_error_t *err);
/* 1 claimed for epid; 0 held by the live endpoint *holder; 2 unknown (a hash
 * collision with another name: check by a scan of the documents). */
HCS_INTERNAL int hcs_claim_name(hcs_net_t *net, const char *name, const char *epid, char **holder, hcs_error_t *err);
HCS_INTERNAL void hcs_release_name(hcs_net_t *net, const char *name, const char *epid);
/* The endpoint named `name` by its claim; *known false: look by a scan. */
HCS_INTERNAL json_t *hcs_claims_find_name(hcs_net_t *net, const char *name, bool *known);
/* Claim the host ports of pm for epid, or fail naming the endpoint holding
 * one (conflict_self: epid's own mappings count too, for a modify). */
HCS_INTERNAL int hcs_claim_ports(hcs_net_t *net, const struct hcs_portmap *pm, size_t n, const char *epid,
                                 bool conflict_self, const char *what, hcs_error_t *err);
HCS_INTERNAL void hcs_release_ports(hcs_net_t *net, const struct hcs_portmap *pm, size_t n, const char *epid);
/* The endpoints attached to the compartment at nspath (a superset: check
 * each), or every endpoint of a store not indexed yet. */
HCS_INTERNAL int hcs_claim_member(hcs_net_t *net, const char *nspath, const char *epid, hcs_error_t *err);
HCS_INTERNAL void hcs_release_member(hcs_net_t *net, const char *nspath, const char *epid);
HCS_INTERNAL json_t *hcs_members_load(hcs_net_t *net, const char *nspath, hcs_error_t *err);
/* The compartment at nspath is gone: its member list goes too. */
HCS_INTERNAL void hcs_drop_members(hcs_net_t *net, const char *nspath);
/* Claims whose endpoint is gone (left by a change cut short), at reconcile. */
HCS_INTERNAL void hcs_claims_prune(hcs_net_t *net);
/* hcs_nft_network_add unless the network's chains are there already. */
HCS_INTERNAL int hcs_nft_network_restore(hcs_net_t *net, json_t *network, hcs_error_t *err);
HCS_INTERNAL int hcs_nft_network_add(hcs_net_t *net, json_t *network, hcs_error_t *err);
HCS_INTERNAL int hcs_nft_network_del(hcs_net_t *net, json_t *network, hcs_error_t *err);
HCS_INTERNAL int hcs_nft_network_exceptions(hcs_net_t *net, json_t *network, json_t *add, json_t *del,
                                            hcs_error_t *err);
HCS_INTERNAL int hcs_nft_portmaps(hcs_net_t *net, struct in_addr target, const struct hcs_portmap *add, size_t n_add,
                                  const struct hcs_portmap *del, size_t n_del, hcs_error_t *err);
/* An endpoint's policies in one transaction: port mappings to `target`, and
 * OutBoundNAT exceptions (prefixes) for `target` as a source in network
 * `netid` (NULL: none). */
struct hcs_nft_ep {
  const char *netid;
  struct in_addr target;
  const struct hcs_portmap *add, *del;
  size_t n_add, n_del;
  json_t *exc_add, *exc_del;
};
HCS_INTERNAL int hcs_nft_endpoint(hcs_net_t *net, const struct hcs_nft_ep *c, hcs_error_t *err);
/* Delete the root's table (and its marker) when no bridge is left in it. */
HCS_INTERNAL int hcs_nft_cleanup_if_empty(hcs_net_t *net, hcs_error_t *err);
/* Take this root's rules out of the table all roots shared before (`ip
 * hcs`), or out of its own table under an earlier path, into its table. */
HCS_INTERNAL int hcs_nft_adopt(hcs_net_t *net, hcs_error_t *err);
HCS_INTERNAL void hcs_nft_free(hcs_net_t *net);
HCS_INTERNAL int hcs_net_parse_portmap(json_t *settings, struct hcs_portmap *pm, const char *where, hcs_error_t *err);

/* --- subnet.c: subnets picked for NAT networks given none ----------------- */
/* The host-wide lock held from the pick until the bridge holds the subnet. */
HCS_INTERNAL int hcs_net_subnet_lock(hcs_error_t *err);
/* The first pool subnet clear of the host's routes and addresses and of
 * `others` (network documents), as "a.b.c.d/len". */
HCS_INTERNAL char *hcs_net_subnet_pick(json_t *others, hcs_error_t *err);

/* --- dns.c --------------------------------------------------------------- */
/* Write <dir>/resolv.conf and <dir>/hosts for an endpoint. */
HCS_INTERNAL int hcs_dns_write(const char *dir, json_t *dns, const char *hostname, const char *ip, hcs_error_t *err);

/* --- network.c / endpoint.c shared --------------------------------------- */
/* Network facts derived from its document. */
struct hcs_netinfo {
  const char *id, *name, *type, *bridge;
  bool nat, has_subnet, has_gateway;
  struct hcs_prefix subnet;
  struct in_addr gateway;
};
HCS_INTERNAL int hcs_net_network_info(json_t *doc, struct hcs_netinfo *info, hcs_error_t *err);
/* The bridge's ifindex; a network whose own bridge is gone (after a reboot:
 * networks persist, kernel objects do not) is set up again first -- bridge,
 * gateway, forwarding, nftables -- as the CNI bridge plugin and netavark
 * make their bridge on demand.  Under the store lock. */
HCS_INTERNAL int hcs_net_network_ensure(hcs_net_t *net, json_t *network, struct hcs_nl *nl, hcs_error_t *err);
/* {RequestType: Add|Remove, ResourceType: Policy, Settings: {Policies: [...]}} */
HCS_INTERNAL int hcs_net_parse_modify(const char *request, const char *what, json_t **doc, bool *add, json_t **policies,
                                      hcs_error_t *err);
HCS_INTERNAL bool hcs_net_endpoint_attached(json_t *ep);
/* An endpoint's policies as an addition in *c (pm: HCS_NET_MAX_PORTMAPS
 * entries; *exc: a new reference to release); 1 when it has any. */
HCS_INTERNAL int hcs_net_endpoint_policies(json_t *ep, struct hcs_portmap *pm, struct hcs_nft_ep *c, json_t **exc);
HCS_INTERNAL int hcs_net_endpoint_delete_locked(hcs_net_t *net, json_t *ep, hcs_error_t *err);
HCS_INTERNAL int hcs_net_endpoint_detach_locked(hcs_net_t *net, json_t *ep, hcs_error_t *err);

#endif
