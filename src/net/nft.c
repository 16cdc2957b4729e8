/* Policies with nftables (libnftables): one table `ip hcs`, one batched
 * transaction per change.  Port mappings are elements of two maps read by
 * one DNAT rule per hook, so adding a mapping adds no rule (Docker's
 * per-port rule growth is the known scaling problem).  Per network: an
 * isolation chain n_<id> (forwarding to another hcs bridge is dropped) jumped
 * to through the fwd_in verdict map, and for NAT a masquerade chain p_<id>
 * with an exceptions set x_<id>, jumped to through nat_src by source subnet. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <string.h>

#include "net/internal.h"

#define T "ip hcs"

static const char base_ruleset[] =
    "add table " T "\n"
    "add map " T " portmap { type inet_proto . inet_service : ipv4_addr . inet_service; }\n"
    "add map " T " portmap_addr { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }\n"
    "add set " T " bridges { type ifname; }\n"
    "add map " T " fwd_in { type ifname : verdict; }\n"
    "add map " T " nat_src { type ipv4_addr : verdict; flags interval; }\n"
    "add chain " T " prerouting { type nat hook prerouting priority dstnat; policy accept; }\n"
    "add rule " T " prerouting fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @portmap_addr\n"
    "add rule " T " prerouting fib daddr type local dnat ip to meta l4proto . th dport map @portmap\n"
    "add chain " T " output { type nat hook output priority -100; policy accept; }\n"
    "add rule " T " output fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @portmap_addr\n"
    "add rule " T " output fib daddr type local dnat ip to meta l4proto . th dport map @portmap\n"
    "add chain " T " postrouting { type nat hook postrouting priority srcnat; policy accept; }\n"
    /* A mapping used from the host as 127.0.0.1:port leaves with a loopback
     * source: rewrite it (the bridge has route_localnet). */
    "add rule " T " postrouting ct status dnat ip saddr 127.0.0.0/8 masquerade\n"
    "add rule " T " postrouting ip saddr vmap @nat_src\n"
    "add chain " T " forward { type filter hook forward priority filter; policy accept; }\n"
    "add rule " T " forward iifname vmap @fwd_in\n";

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

static bool table_ready(void) { return listed("list chain " T " forward"); }

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

static char *exceptions_cmd(const char *verb, const char *sid, json_t *list) {
  char *s = NULL;
  size_t i;
  json_t *e;
  json_array_foreach(list, i, e) s = append(s, "%s element " T " x_%s { %s }\n", verb, sid, json_string_value(e));
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

int hcs_nft_network_add(hcs_net_t *net, json_t *network, hcs_error_t *err) {
  struct hcs_netinfo ni;
  if (hcs_net_network_info(network, &ni, err) < 0) return -1;
  if (ni.bridge == NULL) return 0;
  if (!table_ready() && run(base_ruleset, "create table `ip hcs`", err) < 0) return -1;
  char sid[9];
  short_id(ni.id, sid);
  cleanup_free char *cmds = hcs_xasprintf("add chain " T " n_%s\n"
                                          "add rule " T " n_%s oifname @bridges oifname != \"%s\" drop\n"
                                          "add element " T " bridges { \"%s\" }\n"
                                          "add element " T " fwd_in { \"%s\" : jump n_%s }\n",
                                          sid, sid, ni.bridge, ni.bridge, ni.bridge, sid);
  if (ni.nat) {
    cleanup_free char *subnet = hcs_net_format_ip(ni.subnet.addr);
    cleanup_free char *exc = exceptions_cmd("add", sid, exceptions_of(network));
    cmds = append(cmds,
                  "add set " T " x_%s { type ipv4_addr; flags interval; }\n%s"
                  "add set " T " xe_%s { type ipv4_addr . ipv4_addr; flags interval; }\n"
                  "add chain " T " p_%s\n"
                  "add rule " T " p_%s ip daddr @x_%s return\n"
                  "add rule " T " p_%s ip saddr . ip daddr @xe_%s return\n"
                  /* hairpin: a container reaching a neighbour through a host
                   * port must see the reply come back from the host */
                  "add rule " T " p_%s ct status dnat oifname \"%s\" masquerade\n"
                  "add rule " T " p_%s oifname != \"%s\" masquerade\n"
                  "add element " T " nat_src { %s/%d : jump p_%s }\n",
                  sid, exc ? exc : "", sid, sid, sid, sid, sid, sid, sid, ni.bridge, sid, ni.bridge, subnet,
                  ni.subnet.len, sid);
  }
  cleanup_free char *what = hcs_xasprintf("add policies of network `%s`", ni.name);
  return run(cmds, what, err);
}

int hcs_nft_network_restore(hcs_net_t *net, json_t *network, hcs_error_t *err) {
  struct hcs_netinfo ni;
  if (hcs_net_network_info(network, &ni, err) < 0) return -1;
  char sid[9];
  short_id(ni.id, sid);
  cleanup_free char *probe = hcs_xasprintf("list chain " T " n_%s", sid);
  return listed(probe) ? 0 : hcs_nft_network_add(net, network, err);
}

int hcs_nft_network_del(hcs_net_t *net, json_t *network, hcs_error_t *err) {
  struct hcs_netinfo ni;
  if (hcs_net_network_info(network, &ni, err) < 0) return -1;
  if (ni.bridge == NULL || !table_ready()) return 0;
  char sid[9];
  short_id(ni.id, sid);
  cleanup_free char *cmds = NULL;
  if (ni.nat) {
    cleanup_free char *subnet = hcs_net_format_ip(ni.subnet.addr);
    cmds = append(cmds, "delete element " T " nat_src { %s/%d }\n", subnet, ni.subnet.len);
  }
  cmds = append(cmds, "delete element " T " fwd_in { \"%s\" }\ndelete element " T " bridges { \"%s\" }\n", ni.bridge,
                ni.bridge);
  if (ni.nat)
    cmds = append(cmds, "delete chain " T " p_%s\ndelete set " T " x_%s\ndelete set " T " xe_%s\n", sid, sid, sid);
  cmds = append(cmds, "delete chain " T " n_%s\n", sid);
  cleanup_free char *what = hcs_xasprintf("remove policies of network `%s`", ni.name);
  if (run(cmds, what, NULL) == 0) return 0;
  /* Partly gone already (an earlier crash): remove what is left one by one. */
  for (char *save = NULL, *line = strtok_r(cmds, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
    run(line, what, NULL);
  return 0;
}

int hcs_nft_cleanup_if_empty(hcs_net_t *net, hcs_error_t *err) {
  if (!table_ready()) return 0;
  return run("delete table " T "\n", "delete table `ip hcs`", err);
}

int hcs_nft_network_exceptions(hcs_net_t *net, json_t *network, json_t *add, json_t *del, hcs_error_t *err) {
  struct hcs_netinfo ni;
  if (hcs_net_network_info(network, &ni, err) < 0) return -1;
  char sid[9];
  short_id(ni.id, sid);
  cleanup_free char *a = add ? exceptions_cmd("add", sid, add) : NULL;
  cleanup_free char *d = del ? exceptions_cmd("delete", sid, del) : NULL;
  if (a == NULL && d == NULL) return 0;
  cleanup_free char *cmds = hcs_xasprintf("%s%s", d ? d : "", a ? a : "");
  cleanup_free char *what = hcs_xasprintf("change OutBoundNAT exceptions of network `%s`", ni.name);
  return run(cmds, what, err);
}

static const char *proto_name(int p) { return p == IPPROTO_UDP ? "udp" : "tcp"; }

static char *portmap_cmds(char *cmds, const char *verb, struct in_addr target, const struct hcs_portmap *pm, size_t n) {
  char ip[INET_ADDRSTRLEN], vip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &target, ip, sizeof ip);
  bool add = strcmp(verb, "add") == 0;
  for (size_t i = 0; i < n; i++) {
    char value[64] = "";
    if (add) snprintf(value, sizeof value, " : %s . %d", ip, pm[i].internal);
    if (pm[i].has_vip) {
      inet_ntop(AF_INET, &pm[i].vip, vip, sizeof vip);
      cmds = append(cmds, "%s element " T " portmap_addr { %s . %s . %d%s }\n", verb, vip, proto_name(pm[i].proto),
                    pm[i].external, value);
    } else {
      cmds = append(cmds, "%s element " T " portmap { %s . %d%s }\n", verb, proto_name(pm[i].proto), pm[i].external,
                    value);
    }
  }
  return cmds;
}

static char *endpoint_exceptions(char *cmds, const char *verb, const char *netid, struct in_addr source, json_t *list) {
  char sid[9], ip[INET_ADDRSTRLEN];
  short_id(netid, sid);
  inet_ntop(AF_INET, &source, ip, sizeof ip);
  size_t i;
  json_t *e;
  json_array_foreach(list, i, e) cmds =
      append(cmds, "%s element " T " xe_%s { %s . %s }\n", verb, sid, ip, json_string_value(e));
  return cmds;
}

int hcs_nft_endpoint(hcs_net_t *net, const struct hcs_nft_ep *c, hcs_error_t *err) {
  cleanup_free char *cmds = portmap_cmds(NULL, "delete", c->target, c->del, c->n_del);
  if (c->netid) cmds = endpoint_exceptions(cmds, "delete", c->netid, c->target, c->exc_del);
  cmds = portmap_cmds(cmds, "add", c->target, c->add, c->n_add);
  if (c->netid) cmds = endpoint_exceptions(cmds, "add", c->netid, c->target, c->exc_add);
  if (cmds == NULL) return 0;
  return run(cmds, c->n_add || json_array_size(c->exc_add) ? "add endpoint policies" : "remove endpoint policies", err);
}

int hcs_nft_portmaps(hcs_net_t *net, struct in_addr target, const struct hcs_portmap *add, size_t n_add,
                     const struct hcs_portmap *del, size_t n_del, hcs_error_t *err) {
  struct hcs_nft_ep c = {.target = target, .add = add, .n_add = n_add, .del = del, .n_del = n_del};
  return hcs_nft_endpoint(net, &c, err);
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
