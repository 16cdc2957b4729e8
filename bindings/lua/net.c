/* hcs.core.net: the network store handle (networks, endpoints, namespaces).
 *   local net = hcs.core.net.open(root)     -- nil, msg, errno on failure
 *   net:network_create{...} / net:endpoint_attach(id, ns) / net:close()
 * Documents are tables or JSON strings in, tables out. */
#include <string.h>

#include "binding.h"

#define NET_MT "hcs.net"

typedef struct {
  hcs_net_t *net;
} lnet_t;

static hcs_net_t *check_net(lua_State *L) {
  lnet_t *h = luaL_checkudata(L, 1, NET_MT);
  if (h->net == NULL) luaL_error(L, "attempt to use a closed network store");
  return h->net;
}

static int net_close(lua_State *L) {
  lnet_t *h = luaL_checkudata(L, 1, NET_MT);
  hcs_net_close(h->net);
  h->net = NULL;
  return 0;
}

static int net_tostring(lua_State *L) {
  lnet_t *h = luaL_checkudata(L, 1, NET_MT);
  lua_pushfstring(L, "hcs.net (%s)", h->net ? "open" : "closed");
  return 1;
}

static int l_open(lua_State *L) {
  const char *root = hcs_lua_opt_name(L, 1, NULL);
  lnet_t *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->net = NULL; /* closed until the store is open: an error leaves it consistent */
  luaL_setmetatable(L, NET_MT);
  hcs_error_t err = NULL;
  h->net = hcs_net_open(root && *root ? root : NULL, &err);
  if (h->net == NULL) return hcs_lua_fail(L, &err);
  return 1;
}

typedef char *(*doc_fn)(hcs_net_t *, const char *, hcs_error_t *);

static int with_doc(lua_State *L, doc_fn fn) {
  hcs_net_t *net = check_net(L);
  char *settings = hcs_lua_check_doc(L, 2);
  hcs_error_t err = NULL;
  char *out = fn(net, settings, &err);
  free(settings);
  return hcs_lua_push_doc(L, out, &err);
}

static int with_ref(lua_State *L, doc_fn fn) {
  hcs_net_t *net = check_net(L);
  const char *ref = hcs_lua_check_name(L, 2);
  hcs_error_t err = NULL;
  return hcs_lua_push_doc(L, fn(net, ref, &err), &err);
}

typedef char *(*modify_fn)(hcs_net_t *, const char *, const char *, hcs_error_t *);

static int with_ref_doc(lua_State *L, modify_fn fn) {
  hcs_net_t *net = check_net(L);
  const char *ref = hcs_lua_check_name(L, 2);
  char *req = hcs_lua_check_doc(L, 3);
  hcs_error_t err = NULL;
  char *out = fn(net, ref, req, &err);
  free(req);
  return hcs_lua_push_doc(L, out, &err);
}

static int m_network_create(lua_State *L) { return with_doc(L, hcs_net_network_create); }
static int m_network_query(lua_State *L) { return with_ref(L, hcs_net_network_query); }
static int m_network_modify(lua_State *L) { return with_ref_doc(L, hcs_net_network_modify); }
static int m_network_list(lua_State *L) {
  hcs_net_t *net = check_net(L);
  hcs_error_t err = NULL;
  return hcs_lua_push_doc(L, hcs_net_network_list(net, &err), &err);
}
static int m_network_delete(lua_State *L) {
  hcs_net_t *net = check_net(L);
  const char *ref = hcs_lua_check_name(L, 2);
  bool force = lua_toboolean(L, 3);
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_net_network_delete(net, ref, force, &err), &err);
}

static int m_endpoint_create(lua_State *L) { return with_doc(L, hcs_net_endpoint_create); }
static int m_endpoint_query(lua_State *L) { return with_ref(L, hcs_net_endpoint_query); }
static int m_endpoint_detach(lua_State *L) { return with_ref(L, hcs_net_endpoint_detach); }
static int m_endpoint_modify(lua_State *L) { return with_ref_doc(L, hcs_net_endpoint_modify); }
static int m_endpoint_list(lua_State *L) {
  hcs_net_t *net = check_net(L);
  const char *network = hcs_lua_opt_name(L, 2, NULL);
  hcs_error_t err = NULL;
  return hcs_lua_push_doc(L, hcs_net_endpoint_list(net, network, &err), &err);
}
static int m_endpoint_delete(lua_State *L) {
  hcs_net_t *net = check_net(L);
  const char *ref = hcs_lua_check_name(L, 2);
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_net_endpoint_delete(net, ref, &err), &err);
}
static int m_endpoint_attach(lua_State *L) {
  hcs_net_t *net = check_net(L);
  const char *ref = hcs_lua_check_name(L, 2);
  const char *ns = hcs_lua_check_name(L, 3);
  hcs_error_t err = NULL;
  return hcs_lua_push_doc(L, hcs_net_endpoint_attach(net, ref, ns, &err), &err);
}

static int m_namespace_create(lua_State *L) {
  hcs_net_t *net = check_net(L);
  char *settings = lua_isnoneornil(L, 2) ? NULL : hcs_lua_check_doc(L, 2);
  hcs_error_t err = NULL;
  char *out = hcs_net_namespace_create(net, settings, &err);
  free(settings);
  return hcs_lua_push_doc(L, out, &err);
}
static int m_namespace_query(lua_State *L) {
  hcs_net_t *net = check_net(L);
  const char *id = hcs_lua_check_name(L, 2);
  hcs_error_t err = NULL;
  return hcs_lua_push_doc(L, hcs_net_namespace_query(net, id, lua_toboolean(L, 3), &err), &err);
}
static int m_namespace_list(lua_State *L) {
  hcs_net_t *net = check_net(L);
  hcs_error_t err = NULL;
  return hcs_lua_push_doc(L, hcs_net_namespace_list(net, lua_toboolean(L, 2), &err), &err);
}
static int m_namespace_delete(lua_State *L) {
  hcs_net_t *net = check_net(L);
  const char *id = hcs_lua_check_name(L, 2);
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_net_namespace_delete(net, id, &err), &err);
}
static int m_namespace_path(lua_State *L) {
  hcs_net_t *net = check_net(L);
  const char *id = hcs_lua_check_name(L, 2);
  hcs_error_t err = NULL;
  char *path = hcs_net_namespace_path(net, id, &err);
  if (path == NULL) return hcs_lua_fail(L, &err);
  lua_pushstring(L, path);
  free(path);
  return 1;
}
static int m_reconcile(lua_State *L) {
  hcs_net_t *net = check_net(L);
  hcs_error_t err = NULL;
  return hcs_lua_push_doc(L, hcs_net_reconcile(net, &err), &err);
}

int hcs_lua_open_net(lua_State *L) {
  static const luaL_Reg funcs[] = {{"open", l_open}, {NULL, NULL}};
  static const luaL_Reg methods[] = {{"network_create", m_network_create},
                                     {"network_query", m_network_query},
                                     {"network_list", m_network_list},
                                     {"network_modify", m_network_modify},
                                     {"network_delete", m_network_delete},
                                     {"endpoint_create", m_endpoint_create},
                                     {"endpoint_query", m_endpoint_query},
                                     {"endpoint_list", m_endpoint_list},
                                     {"endpoint_modify", m_endpoint_modify},
                                     {"endpoint_delete", m_endpoint_delete},
                                     {"endpoint_attach", m_endpoint_attach},
                                     {"endpoint_detach", m_endpoint_detach},
                                     {"namespace_create", m_namespace_create},
                                     {"namespace_query", m_namespace_query},
                                     {"namespace_list", m_namespace_list},
                                     {"namespace_delete", m_namespace_delete},
                                     {"namespace_path", m_namespace_path},
                                     {"reconcile", m_reconcile},
                                     {"close", net_close},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {
      {"__gc", net_close}, {"__close", net_close}, {"__tostring", net_tostring}, {"__index", NULL}, {NULL, NULL}};
  luaL_newmetatable(L, NET_MT);
  luaL_setfuncs(L, meta, 0);
  luaL_newlibtable(L, methods);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
