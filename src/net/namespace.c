/* HostComputeNamespace (network compartments): named, persisted network
 * namespaces with a description naming their container (`Container_<id>`),
 * listable with their interfaces and routes read by netlink inside the netns
 * (the Get-NetCompartment / Get-NetRoute -CompartmentId views). */
#include <string.h>
#include <sys/stat.h>

#include "core/crash.h"
#include "net/internal.h"

static bool endpoint_in(json_t *ep, const char *path) {
  const char *p = json_string_value(json_object_get(json_object_get(ep, "Linux"), "NamespacePath"));
  return p && strcmp(p, path) == 0 && hcs_net_endpoint_attached(ep);
}

char *hcs_net_namespace_create(hcs_net_t *net, const char *settings, hcs_error_t *err) {
  cleanup_json json_t *doc = hcs_json_parse(settings && *settings ? settings : "{}", "HostComputeNamespace", err);
  if (doc == NULL) return NULL;
  if (!json_is_object(doc)) {
    hcs_error_make(err, 0, "HostComputeNamespace: expected a JSON object");
    return NULL;
  }
  const char *given = json_string_value(json_object_get(doc, "Id"));
  if (given && hcs_validate_id("HostComputeNamespace.Id", given, err) < 0) return NULL;
  cleanup_free char *id = given ? hcs_xstrdup(given) : hcs_net_new_id();
  json_object_set_new(doc, "Id", json_string(id));
  const char *type = json_string_value(json_object_get(doc, "Type"));
  if (type && strcmp(type, "HostDefault") != 0 && strcmp(type, "Host") != 0) {
    hcs_error_make(err, 0, "namespace `%s`: Type `%s` is not supported (expected HostDefault or Host)", id, type);
    return NULL;
  }
  if (type == NULL) json_object_set_new(doc, "Type", json_string("HostDefault"));
  const char *container = json_string_value(json_object_get(doc, "ContainerId"));
  if (json_object_get(doc, "Description") == NULL) {
    cleanup_free char *d = hcs_xasprintf("Container_%s", container ? container : id);
    json_object_set_new(doc, "Description", json_string(d));
  }
  cleanup_free char *path = hcs_xasprintf("%s/%s", net->netns, id);
  json_object_set_new(doc, "Path", json_string(path));
  json_object_set_new(doc, "SchemaVersion", json_pack("{s:i,s:i}", "Major", 2, "Minor", 0));
  cleanup_net_change hcs_net_held_t lock = hcs_net_lock_change(net, err);
  if (lock.fd < 0) return NULL;
  cleanup_free char *state = hcs_net_path(net, "namespaces", id, ".json");
  if (hcs_path_exists(state) || hcs_path_exists(path)) {
    hcs_error_make(err, EEXIST, "create namespace `%s`: the id is already used", id);
    return NULL;
  }
  if (hcs_netns_create(net->netns, path, err) < 0) {
    hcs_error_wrap(err, "create namespace `%s`", id);
    return NULL;
  }
  hcs_crash_point("namespace create: netns mounted");
  if (hcs_net_save(net, "namespaces", id, doc, err) < 0) {
    hcs_netns_remove(path, NULL);
    return NULL;
  }
  return hcs_json_dumps(doc);
}

static json_t *describe(hcs_net_t *net, json_t *doc, json_t *eps, bool details, hcs_error_t *err) {
  const char *id = json_string_value(json_object_get(doc, "Id"));
  const char *path = json_string_value(json_object_get(doc, "Path"));
  json_t *out = json_deep_copy(doc);
  json_t *res = json_array();
  json_object_set_new(out, "Resources", res);
  size_t i;
  json_t *ep;
  json_array_foreach(eps, i, ep) if (path && endpoint_in(ep, path))
      json_array_append_new(res, json_pack("{s:s,s:O,s:O}", "Type", "Endpoint", "Id", json_object_get(ep, "Id"), "Name",
                                           json_object_get(ep, "Name")));
  struct stat st;
  bool alive = path && stat(path, &st) == 0 && st.st_ino != 0;
  json_object_set_new(out, "State", json_string(alive ? "Active" : "Missing"));
  if (alive) json_object_set_new(out, "CompartmentId", json_integer((json_int_t)st.st_ino));
  if (!details || !alive) return out;
  cleanup_close int fd = hcs_netns_open(path, err);
  struct hcs_nl *nl = fd >= 0 ? hcs_nl_open(fd, err) : NULL;
  json_t *ifs = nl ? hcs_nl_dump_interfaces(nl, err) : NULL;
  json_t *routes = ifs ? hcs_nl_dump_routes(nl, err) : NULL;
  hcs_nl_close(nl);
  if (routes == NULL) {
    json_decref(ifs);
    json_decref(out);
    hcs_error_wrap(err, "list compartment `%s`", id);
    return NULL;
  }
  /* Name the interface of each route, as Get-NetRoute's InterfaceAlias. */
  json_t *r, *l;
  size_t j;
  json_array_foreach(routes, i, r) json_array_foreach(
      ifs, j, l) if (json_equal(json_object_get(r, "InterfaceIndex"), json_object_get(l, "InterfaceIndex")))
      json_object_set(r, "InterfaceAlias", json_object_get(l, "InterfaceAlias"));
  json_object_set_new(out, "Interfaces", ifs);
  json_object_set_new(out, "Routes", routes);
  return out;
}

char *hcs_net_namespace_query(hcs_net_t *net, const char *id, bool details, hcs_error_t *err) {
  cleanup_close int lock = hcs_net_lock(net, true, err);
  if (lock < 0) return NULL;
  cleanup_json json_t *doc = hcs_net_load(net, "namespaces", id, err);
  if (doc == NULL) return NULL;
  cleanup_json json_t *eps = hcs_members_load(net, json_string_value(json_object_get(doc, "Path")), err);
  if (eps == NULL) return NULL;
  json_t *out = describe(net, doc, eps, details, err);
  return out ? hcs_net_dump_release(out) : NULL;
}

char *hcs_net_namespace_list(hcs_net_t *net, bool details, hcs_error_t *err) {
  cleanup_close int lock = hcs_net_lock(net, true, err);
  if (lock < 0) return NULL;
  cleanup_json json_t *all = hcs_net_load_all(net, "namespaces", err);
  cleanup_json json_t *eps = all ? hcs_net_load_all(net, "endpoints", err) : NULL;
  if (eps == NULL) return NULL;
  json_t *out = json_array();
  size_t i;
  json_t *doc;
  json_array_foreach(all, i, doc) {
    json_t *d = describe(net, doc, eps, details, err);
    if (d == NULL) {
      json_decref(out);
      return NULL;
    }
    json_array_append_new(out, d);
  }
  return hcs_net_dump_release(out);
}

/* The veths of attached endpoints die with the netns, reaped by the kernel
 * after the unmount (~3 ms here, where one synchronous RTM_DELLINK costs
 * 20-30 ms of RCU grace periods).  Their host ends are first set down in
 * one batch, so even a netns kept alive by a straggling process cannot put a
 * stale address on the network.  Endpoint documents are
 * untouched: they read as detached from then on. */
int hcs_net_namespace_delete(hcs_net_t *net, const char *id, hcs_error_t *err) {
  cleanup_net_change hcs_net_held_t lock = hcs_net_lock_change(net, err);
  if (lock.fd < 0) return -1;
  cleanup_json json_t *doc = hcs_net_load(net, "namespaces", id, err);
  if (doc == NULL) return -1;
  const char *path = json_string_value(json_object_get(doc, "Path"));
  cleanup_json json_t *eps = hcs_members_load(net, path, err);
  if (eps == NULL) return -1;
  const char *hosts[256];
  size_t n = 0, i;
  json_t *ep;
  json_array_foreach(eps, i, ep) if (path && n < HCS_ARRAY_SIZE(hosts) && endpoint_in(ep, path)) {
    const char *h = json_string_value(json_object_get(json_object_get(ep, "Linux"), "HostInterface"));
    if (h) hosts[n++] = h;
  }
  if (n) {
    struct hcs_nl *nl = hcs_nl_open(-1, err);
    int rc = nl ? hcs_nl_links_down(nl, hosts, n, err) : -1;
    hcs_nl_close(nl);
    if (rc < 0) return hcs_error_wrap(err, "delete namespace `%s`", id);
  }
  hcs_crash_point("namespace delete: links down");
  if (path && hcs_netns_remove(path, err) < 0) return -1;
  hcs_crash_point("namespace delete: netns removed");
  hcs_drop_members(net, path);
  return hcs_net_remove(net, "namespaces", id, err);
}

char *hcs_net_namespace_path(hcs_net_t *net, const char *id, hcs_error_t *err) {
  return hcs_net_ns_resolve(net, id, err);
}
