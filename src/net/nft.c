/* Policies with nftables (libnftables): one table per state root, `ip
 * hcs<8 hex digits of a hash of its canonical path>` (roots never touch each
 * other's rules), one batched transaction per change.  Port mappings are elements of two maps read by
 * one DNAT rule per hook, so adding a mapping adds no rule (Docker's
 * per-port rule growth is the known scaling problem).  Per network: an
 * isolation chain n_<id> (forwarding to another hcs bridge is dropped) jumped
 * to through the fwd_in verdict map, and for NAT a masquerade chain p_<id>
 * with an exceptions set x_<id>, jumped to through nat_src by source subnet. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <string.h>

#include "net/internal.h"

/* The base of a root's table: (command, rest) pairs, the table's family
 * and name go between them. */
static const char *const base_ruleset[][2] = {
    {"add table", ""},
    {"add map", "portmap { type inet_proto . inet_service : ipv4_addr . inet_service; }"},
    {"add map", "portmap_addr { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }"},
    {"add set", "bridges { type ifname; }"},
    {"add map", "fwd_in { type ifname : verdict; }"},
    {"add map", "nat_src { type ipv4_addr : verdict; flags interval; }"},
    {"add chain", "prerouting { type nat hook prerouting priority dstnat; policy accept; }"},
    {"add rule", "prerouting fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @portmap_addr"},
    {"add rule", "prerouting fib daddr type local dnat ip to meta l4proto . th dport map @portmap"},
    {"add chain", "output { type nat hook output priority -100; policy accept; }"},
    {"add rule", "output fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @portmap_addr"},
    {"add rule", "output fib daddr type local dnat ip to meta l4proto . th dport map @portmap"},
    {"add chain", "postrouting { type nat hook postrouting priority srcnat; policy accept; }"},
    /* A mapping used from the host as 127.0.0.1:port leaves with a loopback
     * source: rewrite it (the bridge has route_localnet). */
    {"add rule", "postrouting ct status dnat ip saddr 127.0.0.0/8 masquerade"},
    {"add rule", "postrouting ip saddr vmap @nat_src"},
    {"add chain", "forward { type filter hook forward priority filter; policy accept; }"},
    {"add rule", "forward iifname vmap @fwd_in"},
    /* route_localnet on NAT bridges (for 127.0.0.1:port mappings) would let
     * a container reach what the host binds to loopback only, by sending to
     * 127.0.0.1 through its gateway (CVE-2020-8558).  As kube-proxy's fix:
     * drop what arrives for 127.0.0.0/8 from outside lo unless it belongs to
     * a DNATed connection (the replies of a mapping used from the host). */
    {"add chain", "input { type filter hook input priority filter; policy accept; }"},
    {"add rule", "input iifname != \"lo\" ip daddr 127.0.0.0/8 ct status ! dnat drop"},
};

static int run(const char *cmds, const char *what, hcs_error_t *err) {
  struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (ctx == NULL) return hcs_error_make(err, ENOMEM, "%s: create nftables context", what);
  nft_ctx_buffer_output(ctx);
  nft_ctx_buffer_error(ctx);
  int rc = nft_run_cmd_from_buffer(ctx, cmds);
  if (rc != 0) {
    const char *msg = nft_ctx_get_error_buffer(ctx);
    cleanup_free char *first = hcs_xstrdup(msg ? msg : "");
    first[strcspn(first, "\n")] = '\0';
    hcs_debug("nftables batch failed:\n%s\n%s", cmds, msg ? msg : "");
    hcs_error_make(err, 0, "%s: nftables: %s", what, *first ? first : "transaction failed");
  }
  nft_ctx_free(ctx);
  return rc != 0 ? -1 : 0;
}

/* Does the `list ...` command succeed (the object exists)?  Quietly. */
static bool listed(const char *cmd) {
  struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (ctx == NULL) return false;
  nft_ctx_buffer_output(ctx);
  nft_ctx_buffer_error(ctx);
  int rc = nft_run_cmd_from_buffer(ctx, cmd);
  nft_ctx_free(ctx);
  return rc == 0;
}

static bool table_ready(const char *t) {
  cleanup_free char *cmd = hcs_xasprintf("list chain %s forward", t);
  return listed(cmd);
}

static bool set_empty(const char *t, const char *name);

static void short_id(const char *id, char out[9]) { hcs_net_short_hash(id, out, 8); }

static char *append(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *append(char *buf, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *more = NULL;
  if (vasprintf(&more, fmt, ap) < 0) abort();
  va_end(ap);
  char *s = hcs_xasprintf("%s%s", buf ? buf : "", more);
  free(buf);
  free(more);
  return s;
}

/* The marker `<run root>/net/nftables` names the table that holds this
 * root's rules; it lives and dies with the table (both go at a reboot). */
static char *marker_path(hcs_net_t *net) { return hcs_xasprintf("%s/nftables", net->runstate); }

static int create_table(hcs_net_t *net, hcs_error_t *err) {
  cleanup_free char *cmds = NULL;
  for (size_t i = 0; i < HCS_ARRAY_SIZE(base_ruleset); i++)
    cmds = append(cmds, "%s %s %s\n", base_ruleset[i][0], net->table, base_ruleset[i][1]);
  cleanup_free char *what = hcs_xasprintf("create table `%s`", net->table);
  if (run(cmds, what, err) < 0) return -1;
  cleanup_free char *marker = marker_path(net);
  return hcs_write_file_replace(marker, net->table, strlen(net->table), 0644, err);
}

static char *exceptions_cmd(const char *t, const char *verb, const char *sid, json_t *list) {
  char *s = NULL;
  size_t i;
  json_t *e;
  json_array_foreach(list, i, e) s = append(s, "%s element %s x_%s { %s }\n", verb, t, sid, json_string_value(e));
  return s;
}

static json_t *exceptions_of(json_t *network) {
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(network, "Policies"), i, p) {
    const char *type = json_string_value(json_object_get(p, "Type"));
    if (type && strcmp(type, "OutBoundNAT") == 0) return json_object_get(json_object_get(p, "Settings"), "Exceptions");
  }
  return NULL;
}

/* A network's chains, sets and elements in table `t` (which exists). */
static int network_add(const char *t, json_t *network, const struct hcs_netinfo *ni, hcs_error_t *err) {
  char sid[9];
  short_id(ni->id, sid);
  cleanup_free char *cmds = hcs_xasprintf("add chain %1$s n_%2$s\n"
                                          "add rule %1$s n_%2$s oifname @bridges oifname != \"%3$s\" drop\n"
                                          "add element %1$s bridges { \"%3$s\" }\n"
                                          "add element %1$s fwd_in { \"%3$s\" : jump n_%2$s }\n",
                                          t, sid, ni->bridge);
  if (ni->nat) {
    cleanup_free char *subnet = hcs_net_format_ip(ni->subnet.addr);
    cleanup_free char *exc = exceptions_cmd(t, "add", sid, exceptions_of(network));
    cmds = append(cmds,
                  "add set %1$s x_%2$s { type ipv4_addr; flags interval; }\n%3$s"
                  "add set %1$s xe_%2$s { type ipv4_addr . ipv4_addr; flags interval; }\n"
                  "add chain %1$s p_%2$s\n"
                  "add rule %1$s p_%2$s ip daddr @x_%2$s return\n"
                  "add rule %1$s p_%2$s ip saddr . ip daddr @xe_%2$s return\n"
                  /* hairpin: a container reaching a neighbour through a host
                   * port must see the reply come back from the host */
                  "add rule %1$s p_%2$s ct status dnat oifname \"%4$s\" masquerade\n"
                  "add rule %1$s p_%2$s oifname != \"%4$s\" masquerade\n"
                  "add element %1$s nat_src { %5$s/%6$d : jump p_%2$s }\n",
                  t, sid, exc ? exc : "", ni->bridge, subnet, ni->subnet.len);
  }
  cleanup_free char *what = hcs_xasprintf("add policies of network `%s`", ni->name);
  return run(cmds, what, err);
}

int hcs_nft_network_add(hcs_net_t *net, json_t *network, hcs_error_t *err) {
  struct hcs_netinfo ni;
  if (hcs_net_network_info(network, &ni, err) < 0) return -1;
  if (ni.bridge == NULL) return 0;
  if (!table_ready(net->table) && create_table(net, err) < 0) return -1;
  return network_add(net->table, network, &ni, err);
}

int hcs_nft_network_restore(hcs_net_t *net, json_t *network, hcs_error_t *err) {
  struct hcs_netinfo ni;
  if (hcs_net_network_info(network, &ni, err) < 0) return -1;
  char sid[9];
  short_id(ni.id, sid);
  cleanup_free char *probe = hcs_xasprintf("list chain %s n_%s", net->table, sid);
  return listed(probe) ? 0 : hcs_nft_network_add(net, network, err);
}

/* Remove a network's objects from table `t`, what is left of them. */
static void network_del(const char *t, const struct hcs_netinfo *ni) {
  char sid[9];
  short_id(ni->id, sid);
  cleanup_free char *cmds = NULL;
  if (ni->nat) {
    cleanup_free char *subnet = hcs_net_format_ip(ni->subnet.addr);
    cmds = append(cmds, "delete element %s nat_src { %s/%d }\n", t, subnet, ni->subnet.len);
  }
  cmds = append(cmds, "delete element %1$s fwd_in { \"%2$s\" }\ndelete element %1$s bridges { \"%2$s\" }\n", t,
                ni->bridge);
  if (ni->nat)
    cmds = append(cmds, "delete chain %1$s p_%2$s\ndelete set %1$s x_%2$s\ndelete set %1$s xe_%2$s\n", t, sid);
  cmds = append(cmds, "delete chain %s n_%s\n", t, sid);
  cleanup_free char *what = hcs_xasprintf("remove policies of network `%s`", ni->name);
  if (run(cmds, what, NULL) == 0) return;
  /* Partly gone already (an earlier crash): remove what is left one by one. */
  for (char *save = NULL, *line = strtok_r(cmds, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
    run(line, what, NULL);
}

int hcs_nft_network_del(hcs_net_t *net, json_t *network, hcs_error_t *err) {
  struct hcs_netinfo ni;
  if (hcs_net_network_info(network, &ni, err) < 0) return -1;
  if (ni.bridge == NULL || !table_ready(net->table)) return 0;
  network_del(net->table, &ni);
  return 0;
}

int hcs_nft_cleanup_if_empty(hcs_net_t *net, hcs_error_t *err) {
  cleanup_free char *marker = marker_path(net);
  if (table_ready(net->table)) {
    if (!set_empty(net->table, "bridges")) return 0;
    cleanup_free char *cmd = hcs_xasprintf("delete table %s\n", net->table);
    cleanup_free char *what = hcs_xasprintf("delete table `%s`", net->table);
    if (run(cmd, what, err) < 0) return -1;
  }
  if (unlink(marker) < 0 && errno != ENOENT) return hcs_error_make(err, errno, "remove `%s`", marker);
  return 0;
}

int hcs_nft_network_exceptions(hcs_net_t *net, json_t *network, json_t *add, json_t *del, hcs_error_t *err) {
  struct hcs_netinfo ni;
  if (hcs_net_network_info(network, &ni, err) < 0) return -1;
  char sid[9];
  short_id(ni.id, sid);
  cleanup_free char *a = add ? exceptions_cmd(net->table, "add", sid, add) : NULL;
  cleanup_free char *d = del ? exceptions_cmd(net->table, "delete", sid, del) : NULL;
  if (a == NULL && d == NULL) return 0;
  cleanup_free char *cmds = hcs_xasprintf("%s%s", d ? d : "", a ? a : "");
  cleanup_free char *what = hcs_xasprintf("change OutBoundNAT exceptions of network `%s`", ni.name);
  return run(cmds, what, err);
}

static const char *proto_name(int p) { return p == IPPROTO_UDP ? "udp" : "tcp"; }

static char *portmap_cmds(char *cmds, const char *t, const char *verb, struct in_addr target,
                          const struct hcs_portmap *pm, size_t n) {
  char ip[INET_ADDRSTRLEN], vip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &target, ip, sizeof ip);
  bool add = strcmp(verb, "add") == 0;
  for (size_t i = 0; i < n; i++) {
    char value[64] = "";
    if (add) snprintf(value, sizeof value, " : %s . %d", ip, pm[i].internal);
    if (pm[i].has_vip) {
      inet_ntop(AF_INET, &pm[i].vip, vip, sizeof vip);
      cmds = append(cmds, "%s element %s portmap_addr { %s . %s . %d%s }\n", verb, t, vip, proto_name(pm[i].proto),
                    pm[i].external, value);
    } else {
      cmds = append(cmds, "%s element %s portmap { %s . %d%s }\n", verb, t, proto_name(pm[i].proto), pm[i].external,
                    value);
    }
  }
  return cmds;
}

static char *endpoint_exceptions(char *cmds, const char *t, const char *verb, const char *netid, struct in_addr source,
                                 json_t *list) {
  char sid[9], ip[INET_ADDRSTRLEN];
  short_id(netid, sid);
  inet_ntop(AF_INET, &source, ip, sizeof ip);
  size_t i;
  json_t *e;
  json_array_foreach(list, i, e) cmds =
      append(cmds, "%s element %s xe_%s { %s . %s }\n", verb, t, sid, ip, json_string_value(e));
  return cmds;
}

static char *endpoint_cmds(const char *t, const struct hcs_nft_ep *c) {
  char *cmds = portmap_cmds(NULL, t, "delete", c->target, c->del, c->n_del);
  if (c->netid) cmds = endpoint_exceptions(cmds, t, "delete", c->netid, c->target, c->exc_del);
  cmds = portmap_cmds(cmds, t, "add", c->target, c->add, c->n_add);
  if (c->netid) cmds = endpoint_exceptions(cmds, t, "add", c->netid, c->target, c->exc_add);
  return cmds;
}

int hcs_nft_endpoint(hcs_net_t *net, const struct hcs_nft_ep *c, hcs_error_t *err) {
  cleanup_free char *cmds = endpoint_cmds(net->table, c);
  if (cmds == NULL) return 0;
  return run(cmds, c->n_add || json_array_size(c->exc_add) ? "add endpoint policies" : "remove endpoint policies", err);
}

int hcs_nft_portmaps(hcs_net_t *net, struct in_addr target, const struct hcs_portmap *add, size_t n_add,
                     const struct hcs_portmap *del, size_t n_del, hcs_error_t *err) {
  struct hcs_nft_ep c = {.target = target, .add = add, .n_add = n_add, .del = del, .n_del = n_del};
  return hcs_nft_endpoint(net, &c, err);
}

/* Does the set `name` of table `t` list no element?  False when it cannot
 * be listed: a table is never deleted on a failed look. */
static bool set_empty(const char *t, const char *name) {
  struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (ctx == NULL) return false;
  nft_ctx_buffer_output(ctx);
  nft_ctx_buffer_error(ctx);
  cleanup_free char *cmd = hcs_xasprintf("list set %s %s", t, name);
  bool empty =
      nft_run_cmd_from_buffer(ctx, cmd) == 0 && strstr(nft_ctx_get_output_buffer(ctx) ?: "", "elements") == NULL;
  nft_ctx_free(ctx);
  return empty;
}

/* A table name read back from the marker: ours to trust only in this shape. */
static bool table_name_ok(const char *t) {
  if (strncmp(t, "ip hcs", 6) != 0 || strlen(t) != 14) return false;
  for (const char *c = t + 6; *c; c++)
    if (!strchr("0123456789abcdef", *c)) return false;
  return true;
}

static bool has_documents(const char *dir) {
  cleanup_dir DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL)
    if (strstr(de->d_name, ".json") && de->d_name[0] != '.') return true;
  return false;
}

/* Move each network of this root found in table `old` (with its endpoints'
 * port mappings and exceptions) into this root's table; objects of other
 * roots in `old` are left alone, and `old` goes once no network is left in
 * it. */
static int move_from(hcs_net_t *net, const char *old, hcs_error_t *err) {
  cleanup_json json_t *nets = hcs_net_load_all(net, "networks", err);
  cleanup_json json_t *eps = nets ? hcs_net_load_all(net, "endpoints", err) : NULL;
  if (eps == NULL) return -1;
  size_t i, j;
  json_t *n, *ep;
  json_array_foreach(nets, i, n) {
    struct hcs_netinfo ni;
    if (hcs_net_network_info(n, &ni, NULL) < 0 || ni.bridge == NULL) continue;
    char sid[9];
    short_id(ni.id, sid);
    cleanup_free char *probe = hcs_xasprintf("list chain %s n_%s", old, sid);
    if (!listed(probe)) continue;
    hcs_info("network `%s`: moving its nftables rules from `%s` to `%s`", ni.name, old, net->table);
    cleanup_free char *add = NULL, *del = NULL;
    json_array_foreach(eps, j, ep) {
      if (strcmp(json_string_value(json_object_get(ep, "HostComputeNetwork")) ?: "", ni.id) != 0) continue;
      struct hcs_portmap pm[HCS_NET_MAX_PORTMAPS];
      struct hcs_nft_ep c, d;
      cleanup_json json_t *exc = NULL;
      if (hcs_net_endpoint_policies(ep, pm, &c, &exc) == 0) continue;
      d = (struct hcs_nft_ep){
          .netid = c.netid, .target = c.target, .del = c.add, .n_del = c.n_add, .exc_del = c.exc_add};
      cleanup_free char *a = endpoint_cmds(net->table, &c);
      cleanup_free char *r = endpoint_cmds(old, &d);
      add = append(add, "%s", a ? a : "");
      del = append(del, "%s", r ? r : "");
    }
    if (del) run(del, "remove endpoint policies from the shared table", NULL);
    network_del(old, &ni);
    if (!table_ready(net->table) && create_table(net, err) < 0) return -1;
    if (network_add(net->table, n, &ni, err) < 0) return -1;
    if (add && run(add, "add endpoint policies", err) < 0) return -1;
  }
  if (table_ready(old) && set_empty(old, "bridges")) {
    cleanup_free char *cmd = hcs_xasprintf("delete table %s\n", old);
    run(cmd, "delete the emptied table", NULL);
  }
  return 0;
}

int hcs_nft_adopt(hcs_net_t *net, hcs_error_t *err) {
  cleanup_free char *marker = marker_path(net);
  cleanup_free char *cur = NULL;
  if (hcs_read_file(marker, &cur, NULL, NULL) == 0) {
    cur[strcspn(cur, "\n")] = '\0';
    if (strcmp(cur, net->table) == 0) return 0;
  } else {
    /* Nothing to move, no nftables call (no library load): a store with
     * no network yet. */
    cleanup_free char *dir = hcs_xasprintf("%s/networks", net->root);
    if (!has_documents(dir)) return 0;
  }
  cleanup_net_change hcs_net_held_t lock = hcs_net_lock_change(net, err);
  if (lock.fd < 0) return -1;
  const char *old = cur && table_name_ok(cur) ? cur : "ip hcs";
  if (table_ready(old) && move_from(net, old, err) < 0) return hcs_error_wrap(err, "move rules from `%s`", old);
  /* Written even when nothing moved: the check runs once, and the table is
   * made on demand by the next network or endpoint that needs it. */
  return hcs_write_file_replace(marker, net->table, strlen(net->table), 0644, err);
}

/* PortMapping settings: {Protocol: TCP|UDP|6|17, InternalPort, ExternalPort, VIP?}. */
int hcs_net_parse_portmap(json_t *s, struct hcs_portmap *pm, const char *where, hcs_error_t *err) {
  if (!json_is_object(s)) return hcs_error_make(err, 0, "%s: Settings must be an object", where);
  memset(pm, 0, sizeof *pm);
  json_t *proto = json_object_get(s, "Protocol");
  const char *ps = json_string_value(proto);
  if (proto == NULL || (ps && strcasecmp(ps, "TCP") == 0) || json_integer_value(proto) == IPPROTO_TCP)
    pm->proto = IPPROTO_TCP;
  else if ((ps && strcasecmp(ps, "UDP") == 0) || json_integer_value(proto) == IPPROTO_UDP)
    pm->proto = IPPROTO_UDP;
  else
    return hcs_error_make(err, 0, "%s: Protocol must be TCP or UDP (or 6 or 17)", where);
  const char *keys[] = {"InternalPort", "ExternalPort"};
  int *vals[] = {&pm->internal, &pm->external};
  for (int i = 0; i < 2; i++) {
    json_t *v = json_object_get(s, keys[i]);
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
      return hcs_error_make(err, 0, "%s: %s must be a port number 1..65535", where, keys[i]);
    *vals[i] = (int)json_integer_value(v);
  }
  const char *vip = json_string_value(json_object_get(s, "VIP"));
  if (vip && *vip) {
    cleanup_free char *w = hcs_xasprintf("%s.VIP", where);
    if (hcs_net_parse_ip(vip, &pm->vip, w, err) < 0) return -1;
    pm->has_vip = pm->vip.s_addr != 0;
  }
  return 0;
}
