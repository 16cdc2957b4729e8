/* HostComputeNetwork: validation of the HCN document, the Linux bridge
 * (created, or an existing one / an enslaved host adapter for
 * Transparent/L2Bridge), the gateway address, forwarding, and the network's
 * nftables policies.  Create rolls back everything it made on failure. */
#include <arpa/inet.h>
#include <string.h>

#include "core/crash.h"
#include "net/internal.h"

static const char *const types[] = {"NAT", "Transparent", "L2Bridge", "None"};

static const char *canonical_type(const char *t) {
  for (size_t i = 0; i < HCS_ARRAY_SIZE(types); i++)
    if (t && strcasecmp(t, types[i]) == 0) return types[i];
  return NULL;
}

static json_t *first_subnet(json_t *doc) {
  return json_array_get(json_object_get(json_array_get(json_object_get(doc, "Ipams"), 0), "Subnets"), 0);
}

int hcs_net_network_info(json_t *doc, struct hcs_netinfo *ni, hcs_error_t *err) {
  memset(ni, 0, sizeof *ni);
  ni->id = json_string_value(json_object_get(doc, "Id"));
  ni->name = json_string_value(json_object_get(doc, "Name"));
  ni->type = json_string_value(json_object_get(doc, "Type"));
  json_t *lnx = json_object_get(doc, "Linux");
  ni->bridge = json_string_value(json_object_get(lnx, "Bridge"));
  ni->nat = ni->type && strcmp(ni->type, "NAT") == 0;
  if (ni->id == NULL || ni->name == NULL || ni->type == NULL)
    return hcs_error_make(err, 0, "network document lacks Id, Name or Type");
  json_t *subnet = first_subnet(doc);
  if (subnet) {
    if (hcs_net_parse_prefix(json_string_value(json_object_get(subnet, "IpAddressPrefix")), &ni->subnet,
                             "network subnet", err) < 0)
      return -1;
    ni->has_subnet = true;
  }
  const char *gw = json_string_value(json_object_get(lnx, "Gateway"));
  if (gw) {
    if (hcs_net_parse_ip(gw, &ni->gateway, "network gateway", err) < 0) return -1;
    ni->has_gateway = true;
  }
  return 0;
}

/* Checks the spec and fills the derived Linux section {Bridge, OwnsBridge,
 * Adapter, Gateway}; a NAT network without a subnet gets one picked (with
 * *subnet_lock held, to keep until its bridge exists).  Every message says
 * which field and why. */
static int validate(hcs_net_t *net, json_t *doc, json_t *others, int *subnet_lock, hcs_error_t *err) {
  json_t *name = json_object_get(doc, "Name");
  if (!json_is_string(name) || json_string_length(name) == 0 || json_string_length(name) > 128)
    return hcs_error_make(err, 0, "HostComputeNetwork.Name: required, a string of 1..128 characters");
  const char *n = json_string_value(name);
  const char *type = canonical_type(json_string_value(json_object_get(doc, "Type")) ?: "NAT");
  if (type == NULL)
    return hcs_error_make(err, 0,
                          "network `%s`: Type `%s` is not supported (expected NAT, Transparent, L2Bridge or None)", n,
                          json_string_value(json_object_get(doc, "Type")) ?: "?");
  json_object_set_new(doc, "Type", json_string(type));
  const char *id = json_string_value(json_object_get(doc, "Id"));
  if (id && hcs_validate_id("HostComputeNetwork.Id", id, err) < 0) return -1;

  json_t *ipams = json_object_get(doc, "Ipams");
  if (ipams && !json_is_array(ipams)) return hcs_error_make(err, 0, "network `%s`: Ipams must be an array", n);
  size_t nsub = 0, i;
  json_t *ipam;
  json_array_foreach(ipams, i, ipam) {
    json_t *subnets = json_object_get(ipam, "Subnets");
    if (subnets && !json_is_array(subnets))
      return hcs_error_make(err, 0, "network `%s`: Ipams[%zu].Subnets must be an array", n, i);
    const char *it = json_string_value(json_object_get(ipam, "Type"));
    if (it && strcasecmp(it, "Static") != 0 && strcasecmp(it, "DHCP") != 0)
      return hcs_error_make(err, 0, "network `%s`: Ipams[%zu].Type `%s` is not supported (expected Static)", n, i, it);
    nsub += json_array_size(subnets);
  }
  if (nsub > 1 || json_array_size(ipams) > 1)
    return hcs_error_make(err, 0, "network `%s`: only one Ipams entry with one subnet is supported, got %zu subnets", n,
                          nsub);
  if (nsub == 0 && strcmp(type, "NAT") == 0) {
    /* Picked from a pool, clear of the host's routes and the other
     * networks; the lock keeps a concurrent pick (another root) from
     * choosing the same subnet before this bridge holds it. */
    *subnet_lock = hcs_net_subnet_lock(err);
    if (*subnet_lock < 0) return hcs_error_wrap(err, "network `%s`", n);
    cleanup_free char *picked = hcs_net_subnet_pick(others, err);
    if (picked == NULL) return hcs_error_wrap(err, "network `%s`", n);
    hcs_info("network `%s`: picked subnet `%s`", n, picked);
    json_t *sub = json_pack("[{s:s}]", "IpAddressPrefix", picked);
    if (json_array_size(ipams) == 0)
      json_object_set_new(doc, "Ipams", json_pack("[{s:s,s:o}]", "Type", "Static", "Subnets", sub));
    else
      json_object_set_new(json_array_get(ipams, 0), "Subnets", sub);
  }

  json_t *lnx = json_object();
  json_object_set_new(doc, "Linux", lnx);
  json_t *subnet = first_subnet(doc);
  if (subnet) {
    struct hcs_prefix p;
    const char *where = "Ipams[0].Subnets[0].IpAddressPrefix";
    if (hcs_net_parse_prefix(json_string_value(json_object_get(subnet, "IpAddressPrefix")), &p, where, err) < 0)
      return hcs_error_wrap(err, "network `%s`", n);
    if (p.len > 30 || p.len < 8)
      return hcs_error_make(err, 0, "network `%s`: %s: prefix length %d is out of range (8..30)", n, where, p.len);
    struct in_addr gw = {htonl(ntohl(p.addr.s_addr) + 1)};
    json_t *route;
    json_array_foreach(json_object_get(subnet, "Routes"), i, route) {
      cleanup_free char *w = hcs_xasprintf("network `%s`: Ipams[0].Subnets[0].Routes[%zu]", n, i);
      struct hcs_prefix dst;
      struct in_addr hop;
      if (hcs_net_parse_prefix(json_string_value(json_object_get(route, "DestinationPrefix")), &dst, w, err) < 0)
        return -1;
      if (hcs_net_parse_ip(json_string_value(json_object_get(route, "NextHop")), &hop, w, err) < 0) return -1;
      if (!hcs_net_in_prefix(&p, hop))
        return hcs_error_make(err, 0, "%s: NextHop `%s` is outside the subnet `%s`", w,
                              json_string_value(json_object_get(route, "NextHop")),
                              json_string_value(json_object_get(subnet, "IpAddressPrefix")));
      if (dst.len == 0) gw = hop;
    }
    uint32_t host = ntohl(gw.s_addr) & ~hcs_net_mask(p.len);
    if (host == 0 || host == ~hcs_net_mask(p.len)) {
      cleanup_free char *g = hcs_net_format_ip(gw);
      return hcs_error_make(err, 0, "network `%s`: gateway `%s` is the network or broadcast address of the subnet", n,
                            g);
    }
    cleanup_free char *g = hcs_net_format_ip(gw);
    json_object_set_new(lnx, "Gateway", json_string(g));
    /* Overlap with any other network is refused: routing would be ambiguous. */
    json_t *o;
    json_array_foreach(others, i, o) {
      json_t *os = first_subnet(o);
      struct hcs_prefix q;
      if (os == NULL ||
          hcs_net_parse_prefix(json_string_value(json_object_get(os, "IpAddressPrefix")), &q, "subnet", NULL) < 0)
        continue;
      if (hcs_net_prefix_overlap(&p, &q))
        return hcs_error_make(err, 0, "network `%s`: subnet `%s` overlaps `%s` of network `%s` (%s)", n,
                              json_string_value(json_object_get(subnet, "IpAddressPrefix")),
                              json_string_value(json_object_get(os, "IpAddressPrefix")),
                              json_string_value(json_object_get(o, "Name")),
                              json_string_value(json_object_get(o, "Id")));
    }
  }
  json_t *o;
  json_array_foreach(others, i, o) {
    if (strcmp(json_string_value(json_object_get(o, "Name")) ?: "", n) == 0)
      return hcs_error_make(err, 0, "network `%s`: the name is already used by network `%s`", n,
                            json_string_value(json_object_get(o, "Id")));
    if (id && strcmp(json_string_value(json_object_get(o, "Id")) ?: "", id) == 0)
      return hcs_error_make(err, 0, "network `%s`: Id `%s` is already used by network `%s`", n, id,
                            json_string_value(json_object_get(o, "Name")));
  }

  json_t *policies = json_object_get(doc, "Policies");
  if (policies && !json_is_array(policies)) return hcs_error_make(err, 0, "network `%s`: Policies must be an array", n);
  json_t *pol;
  json_array_foreach(policies, i, pol) {
    const char *pt = json_string_value(json_object_get(pol, "Type"));
    json_t *s = json_object_get(pol, "Settings");
    if (pt && strcmp(pt, "NetAdapterName") == 0 && strcmp(type, "NAT") != 0 && strcmp(type, "None") != 0) {
      const char *adapter = json_string_value(json_object_get(s, "NetworkAdapterName"));
      if (adapter == NULL || *adapter == '\0' || strlen(adapter) >= 16)
        return hcs_error_make(err, 0, "network `%s`: Policies[%zu].Settings.NetworkAdapterName: an interface name", n,
                              i);
      json_object_set_new(lnx, "Adapter", json_string(adapter));
    } else if (pt && strcmp(pt, "OutBoundNAT") == 0 && strcmp(type, "NAT") == 0) {
      json_t *exc = json_object_get(s, "Exceptions"), *e;
      size_t j;
      if (exc && !json_is_array(exc))
        return hcs_error_make(err, 0, "network `%s`: Policies[%zu].Settings.Exceptions must be an array", n, i);
      json_array_foreach(exc, j, e) {
        cleanup_free char *w = hcs_xasprintf("network `%s`: Policies[%zu].Settings.Exceptions[%zu]", n, i, j);
        struct hcs_prefix ep;
        if (hcs_net_parse_prefix(json_string_value(e), &ep, w, err) < 0) return -1;
      }
    } else {
      return hcs_error_make(err, 0,
                            "network `%s`: Policies[%zu]: Type `%s` is not supported on a %s network (expected "
                            "OutBoundNAT on NAT, NetAdapterName on Transparent/L2Bridge)",
                            n, i, pt ?: "?", type);
    }
  }
  return 0;
}

/* The kernel side of a network hcs owns the bridge of: the bridge with the
 * gateway address, the host adapter enslaved, forwarding; *made says the
 * bridge was created (to roll it back). */
static int setup_bridge(struct hcs_nl *nl, const struct hcs_netinfo *ni, int adapter_index, bool existing_ok,
                        bool *made, hcs_error_t *err) {
  /* A fixed address, locally administered and derived from the network id
   * (the same after a reboot sets the network up again). */
  uint64_t h = hcs_fnv1a(HCS_FNV1A_INIT, ni->id, strlen(ni->id));
  uint8_t mac[6] = {0x02, (uint8_t)(h >> 32), (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h};
  int br = hcs_nl_link_index(nl, ni->bridge, err);
  if (br < 0) return -1;
  /* A new network's bridge must be new (the same Id in another root would
   * name the same bridge); a set-up takes over one a killed create or set-up
   * left. */
  if (br > 0 && !existing_ok) return hcs_error_make(err, EEXIST, "create bridge `%s`: it exists already", ni->bridge);
  if (br == 0) {
    if (hcs_nl_bridge_add(nl, ni->bridge, mac, err) < 0) return -1;
    *made = true;
    hcs_crash_point("network: bridge made");
    br = hcs_nl_link_index(nl, ni->bridge, err);
    if (br <= 0) return br == 0 ? hcs_error_make(err, ENODEV, "bridge `%s` vanished", ni->bridge) : -1;
  }
  if (ni->nat && hcs_nl_addr_add(nl, br, ni->gateway, ni->subnet.len, err) < 0) return -1;
  if (adapter_index > 0 && hcs_nl_link_set(nl, adapter_index, br, true, err) < 0) return -1;
  return br;
}

static int setup_forwarding(const struct hcs_netinfo *ni, hcs_error_t *err) {
  if (!ni->nat) return 0;
  cleanup_free char *key = hcs_xasprintf("ipv4/conf/%s/route_localnet", ni->bridge);
  if (hcs_net_sysctl("ipv4/ip_forward", "1", err) < 0 || hcs_net_sysctl(key, "1", err) < 0) return -1;
  return 0;
}

/* `<run root>/net/ready/<id>`: the kernel side of the network (bridge,
 * gateway address, forwarding, nftables) is complete in this boot.  Written
 * last by create and by a set-up, removed first by delete: a process killed
 * in between leaves no marker, and the next user sets the network up again
 * (each step is idempotent); a reboot takes the markers with the bridges. */
static char *ready_path(hcs_net_t *net, const char *id) { return hcs_xasprintf("%s/ready/%s", net->runstate, id); }

static int mark_ready(hcs_net_t *net, const char *id, hcs_error_t *err) {
  cleanup_free char *path = ready_path(net, id);
  return hcs_write_file_replace(path, "", 0, 0644, err);
}

int hcs_net_network_ensure(hcs_net_t *net, json_t *network, struct hcs_nl *nl, hcs_error_t *err) {
  struct hcs_netinfo ni;
  if (hcs_net_network_info(network, &ni, err) < 0) return -1;
  int br = hcs_nl_link_index(nl, ni.bridge, err);
  if (br < 0) return -1;
  cleanup_free char *ready = ready_path(net, ni.id);
  if (br > 0 && hcs_path_exists(ready)) return br;
  json_t *lnx = json_object_get(network, "Linux");
  bool owns = json_is_true(json_object_get(lnx, "OwnsBridge"));
  if (br == 0 && !owns)
    return hcs_error_make(err, ENODEV, "network `%s`: its bridge `%s` (not made by hcs) is missing", ni.name,
                          ni.bridge);
  if (br == 0)
    hcs_info("network `%s`: bridge `%s` is missing (the host rebooted?): setting the network up again", ni.name,
             ni.bridge);
  else
    hcs_info("network `%s`: its set-up was not finished in this boot: finishing it", ni.name);
  const char *adapter = json_string_value(json_object_get(lnx, "Adapter"));
  int adapter_index = 0;
  if (owns && adapter && (adapter_index = hcs_nl_link_index(nl, adapter, err)) <= 0) {
    if (adapter_index == 0) hcs_error_make(err, ENODEV, "network `%s`: NetworkAdapterName `%s`", ni.name, adapter);
    return hcs_error_wrap(err, "set network `%s` up again", ni.name);
  }
  bool made = false;
  if (owns) br = setup_bridge(nl, &ni, adapter_index, true, &made, err);
  if (br > 0 && (setup_forwarding(&ni, err) < 0 || hcs_nft_network_restore(net, network, err) < 0 ||
                 mark_ready(net, ni.id, err) < 0))
    br = -1;
  if (br < 0) {
    if (made) hcs_nl_link_del(nl, ni.bridge, NULL);
    return hcs_error_wrap(err, "set network `%s` up again", ni.name);
  }
  return br;
}

static char *network_create(hcs_net_t *net, const char *settings, hcs_error_t *err) {
  cleanup_json json_t *doc = hcs_json_parse(settings ? settings : "", "HostComputeNetwork", err);
  if (doc == NULL) return NULL;
  if (!json_is_object(doc)) {
    hcs_error_make(err, 0, "HostComputeNetwork: expected a JSON object");
    return NULL;
  }
  cleanup_net_change hcs_net_held_t lock = hcs_net_lock_change(net, err);
  if (lock.fd < 0) return NULL;
  cleanup_json json_t *others = hcs_net_load_all(net, "networks", err);
  cleanup_close int subnet_lock = -1;
  if (others == NULL || validate(net, doc, others, &subnet_lock, err) < 0) return NULL;
  if (json_object_get(doc, "Id") == NULL) {
    cleanup_free char *id = hcs_net_new_id();
    json_object_set_new(doc, "Id", json_string(id));
  }
  json_object_set_new(doc, "SchemaVersion", json_pack("{s:i,s:i}", "Major", 2, "Minor", 0));
  struct hcs_netinfo ni;
  if (hcs_net_network_info(doc, &ni, err) < 0) return NULL;
  json_t *lnx = json_object_get(doc, "Linux");
  const char *adapter = json_string_value(json_object_get(lnx, "Adapter"));
  if (strcmp(ni.type, "None") == 0)
    return hcs_net_save(net, "networks", ni.id, doc, err) < 0 ? NULL : hcs_json_dumps(doc);

  struct hcs_nl *nl = hcs_nl_open(-1, err);
  if (nl == NULL) return NULL;
  bool owns = true, made = false, nft_done = false, saved = false;
  char bridge[16];
  char sid[9];
  hcs_net_short_hash(ni.id, sid, 8);
  snprintf(bridge, sizeof bridge, "hcs%s", sid);
  int adapter_index = 0;
  if (adapter) {
    adapter_index = hcs_nl_link_index(nl, adapter, err);
    if (adapter_index <= 0) {
      if (adapter_index == 0) hcs_error_make(err, ENODEV, "network `%s`: NetworkAdapterName `%s`", ni.name, adapter);
      goto fail;
    }
    if (hcs_nl_link_is_bridge(nl, adapter)) { /* use the existing bridge as is */
      snprintf(bridge, sizeof bridge, "%s", adapter);
      owns = false;
    }
  }
  json_object_set_new(lnx, "Bridge", json_string(bridge));
  json_object_set_new(lnx, "OwnsBridge", json_boolean(owns));
  if (hcs_net_network_info(doc, &ni, err) < 0) goto fail;
  /* The document first: a create killed during the kernel work leaves a
   * network whose set-up its next user (or delete) finishes, never kernel
   * objects no document names. */
  if (hcs_net_save(net, "networks", ni.id, doc, err) < 0) goto fail;
  saved = true;
  if (owns && setup_bridge(nl, &ni, adapter_index, false, &made, err) < 0) goto fail;
  if (setup_forwarding(&ni, err) < 0) goto fail;
  if (hcs_nft_network_add(net, doc, err) < 0) goto fail;
  nft_done = true;
  hcs_crash_point("network create: policies added");
  if (mark_ready(net, ni.id, err) < 0) goto fail;
  hcs_nl_close(nl);
  return hcs_json_dumps(doc);
fail:
  hcs_error_wrap(err, "create network `%s`", ni.name);
  if (nft_done) hcs_nft_network_del(net, doc, NULL);
  if (made) hcs_nl_link_del(nl, bridge, NULL);
  hcs_nft_cleanup_if_empty(net, NULL);
  if (saved) hcs_net_remove(net, "networks", ni.id, NULL);
  hcs_nl_close(nl);
  return NULL;
}

char *hcs_net_network_query(hcs_net_t *net, const char *ref, hcs_error_t *err) {
  cleanup_close int lock = hcs_net_lock(net, true, err);
  if (lock < 0) return NULL;
  json_t *doc = hcs_net_find(net, "networks", ref, err);
  return doc ? hcs_net_dump_release(doc) : NULL;
}

char *hcs_net_network_list(hcs_net_t *net, hcs_error_t *err) {
  cleanup_close int lock = hcs_net_lock(net, true, err);
  if (lock < 0) return NULL;
  json_t *all = hcs_net_load_all(net, "networks", err);
  return all ? hcs_net_dump_release(all) : NULL;
}

/* The HCN service callback's NetworkCreate/NetworkDelete: events in the
 * run root's journal, written once the verb succeeded. */
static void emit_network(hcs_net_t *net, const char *action, const char *doc_text) {
  cleanup_json json_t *doc = doc_text ? json_loads(doc_text, 0, NULL) : NULL;
  const char *id = json_string_value(json_object_get(doc, "Id"));
  if (id == NULL) return;
  json_t *attrs = json_pack("{s:s?,s:s?}", "Name", json_string_value(json_object_get(doc, "Name")), "Type",
                            json_string_value(json_object_get(doc, "Type")));
  hcs_event_emit(net->run, "network", action, id, NULL, attrs);
}

char *hcs_net_network_create(hcs_net_t *net, const char *settings, hcs_error_t *err) {
  char *out = network_create(net, settings, err);
  if (out) emit_network(net, "created", out);
  return out;
}

static int network_delete(hcs_net_t *net, const char *ref, bool force, hcs_error_t *err);

int hcs_net_network_delete(hcs_net_t *net, const char *ref, bool force, hcs_error_t *err) {
  hcs_error_t e = NULL;
  cleanup_free char *before = hcs_net_network_query(net, ref, &e);
  hcs_error_release(&e);
  if (network_delete(net, ref, force, err) < 0) return -1;
  emit_network(net, "deleted", before);
  return 0;
}

static int network_delete(hcs_net_t *net, const char *ref, bool force, hcs_error_t *err) {
  cleanup_net_change hcs_net_held_t lock = hcs_net_lock_change(net, err);
  if (lock.fd < 0) return -1;
  cleanup_json json_t *doc = hcs_net_find(net, "networks", ref, err);
  if (doc == NULL) return -1;
  struct hcs_netinfo ni;
  if (hcs_net_network_info(doc, &ni, err) < 0) return -1;
  cleanup_json json_t *eps = hcs_net_load_all(net, "endpoints", err);
  if (eps == NULL) return -1;
  size_t i, count = 0;
  json_t *ep;
  json_array_foreach(eps, i,
                     ep) if (strcmp(json_string_value(json_object_get(ep, "HostComputeNetwork")) ?: "", ni.id) == 0) {
    if (!force) {
      count++;
      continue;
    }
    if (hcs_net_endpoint_delete_locked(net, ep, err) < 0) return hcs_error_wrap(err, "delete network `%s`", ni.name);
  }
  if (count)
    return hcs_error_make(err, EBUSY, "delete network `%s`: %zu endpoint%s still use it (delete them first, or force)",
                          ni.name, count, count == 1 ? "" : "s");
  /* The marker first, the document last: a delete killed in between leaves
   * a network that its next delete removes, or its next user sets up again. */
  cleanup_free char *ready = ready_path(net, ni.id);
  if (unlink(ready) < 0 && errno != ENOENT) return hcs_error_make(err, errno, "remove `%s`", ready);
  hcs_crash_point("network delete: marker removed");
  if (hcs_nft_network_del(net, doc, err) < 0) return -1;
  if (hcs_nft_cleanup_if_empty(net, err) < 0) return -1;
  hcs_crash_point("network delete: policies removed");
  if (ni.bridge && json_is_true(json_object_get(json_object_get(doc, "Linux"), "OwnsBridge"))) {
    struct hcs_nl *nl = hcs_nl_open(-1, err);
    if (nl == NULL) return -1;
    int rc = hcs_nl_link_del(nl, ni.bridge, err);
    hcs_nl_close(nl);
    if (rc < 0) return hcs_error_wrap(err, "delete network `%s`", ni.name);
    hcs_crash_point("network delete: bridge removed");
  }
  if (hcs_ipam_drop(net, ni.id, err) < 0) return -1;
  return hcs_net_remove(net, "networks", ni.id, err);
}

int hcs_net_parse_modify(const char *request, const char *what, json_t **doc, bool *add, json_t **policies,
                         hcs_error_t *err) {
  *doc = hcs_json_parse(request ? request : "", "modify request", err);
  if (*doc == NULL) return -1;
  const char *rt = json_string_value(json_object_get(*doc, "RequestType"));
  const char *res = json_string_value(json_object_get(*doc, "ResourceType"));
  if (rt == NULL || (strcasecmp(rt, "Add") != 0 && strcasecmp(rt, "Remove") != 0))
    return hcs_error_make(err, 0, "modify %s: RequestType must be Add or Remove", what);
  if (res && strcasecmp(res, "Policy") != 0)
    return hcs_error_make(err, 0, "modify %s: ResourceType `%s` is not supported (expected Policy)", what, res);
  *add = strcasecmp(rt, "Add") == 0;
  *policies = json_object_get(json_object_get(*doc, "Settings"), "Policies");
  if (!json_is_array(*policies)) return hcs_error_make(err, 0, "modify %s: Settings.Policies must be an array", what);
  return 0;
}

char *hcs_net_network_modify(hcs_net_t *net, const char *ref, const char *request, hcs_error_t *err) {
  cleanup_json json_t *req = NULL;
  json_t *policies;
  bool add;
  if (hcs_net_parse_modify(request, "network", &req, &add, &policies, err) < 0) return NULL;
  cleanup_net_change hcs_net_held_t lock = hcs_net_lock_change(net, err);
  if (lock.fd < 0) return NULL;
  cleanup_json json_t *doc = hcs_net_find(net, "networks", ref, err);
  if (doc == NULL) return NULL;
  struct hcs_netinfo ni;
  if (hcs_net_network_info(doc, &ni, err) < 0) return NULL;
  cleanup_json json_t *delta = json_array();
  size_t i, j;
  json_t *p, *e;
  json_array_foreach(policies, i, p) {
    const char *type = json_string_value(json_object_get(p, "Type"));
    if (!ni.nat || type == NULL || strcmp(type, "OutBoundNAT") != 0) {
      hcs_error_make(err, 0, "modify network `%s`: Policies[%zu]: only OutBoundNAT on a NAT network can be changed",
                     ni.name, i);
      return NULL;
    }
    json_array_foreach(json_object_get(json_object_get(p, "Settings"), "Exceptions"), j, e) {
      cleanup_free char *w =
          hcs_xasprintf("modify network `%s`: Policies[%zu].Settings.Exceptions[%zu]", ni.name, i, j);
      struct hcs_prefix x;
      if (hcs_net_parse_prefix(json_string_value(e), &x, w, err) < 0) return NULL;
      json_array_append(delta, e);
    }
  }
  /* The document keeps one OutBoundNAT policy holding the current list. */
  json_t *pols = json_object_get(doc, "Policies");
  if (!json_is_array(pols)) {
    pols = json_array();
    json_object_set_new(doc, "Policies", pols);
  }
  json_t *cur = NULL;
  json_array_foreach(pols, i, p) if (strcmp(json_string_value(json_object_get(p, "Type")) ?: "", "OutBoundNAT") == 0) {
    cur = json_object_get(json_object_get(p, "Settings"), "Exceptions");
    if (!json_is_array(cur)) {
      cur = json_array();
      json_object_set_new(json_object_get(p, "Settings"), "Exceptions", cur);
    }
  }
  if (cur == NULL) {
    cur = json_array();
    json_array_append_new(pols, json_pack("{s:s,s:{s:o}}", "Type", "OutBoundNAT", "Settings", "Exceptions", cur));
  }
  cleanup_json json_t *applied = json_array();
  json_array_foreach(delta, i, e) {
    size_t found = (size_t)-1;
    json_t *c;
    json_array_foreach(cur, j, c) if (json_equal(c, e)) found = j;
    if (add && found == (size_t)-1) {
      json_array_append(cur, e);
      json_array_append(applied, e);
    } else if (!add && found != (size_t)-1) {
      json_array_remove(cur, found);
      json_array_append(applied, e);
    }
  }
  if (hcs_nft_network_exceptions(net, doc, add ? applied : NULL, add ? NULL : applied, err) < 0) return NULL;
  if (hcs_net_save(net, "networks", ni.id, doc, err) < 0) return NULL;
  return hcs_json_dumps(doc);
}
