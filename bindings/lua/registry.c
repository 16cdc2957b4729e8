/* hcs.core.registry: images from and to OCI registries.
 *   pull(store, ref [, opts]) -> summary        push(store, image, ref [, opts]) -> digest
 *   download(ref, path [, opts]) -> true        find(pattern [, opts]) -> {{Name, Registry, Tags}}
 *   inspect(ref [, opts]) -> {Digest, MediaType, Manifest, Config, Platforms}
 *   login(registry, user, password [, opts]) -> true    logout(registry [, opts]) -> true
 * opts: username, password, auth_file, tls_verify (boolean), certs_dir,
 * registries_conf, platform, parallel, timeout, max_rate, compression,
 * name, tag, progress (function(layers) with layers[i] = {digest, done,
 * total, state}). */
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "hcs/registry.h"

typedef struct {
  lua_State *L;
  int ref;
  bool failed;
} progress_ctx;

static const char *const state_names[] = {"waiting", "transferring", "done", "present"};

/* A callback that raises (Ctrl-C's "interrupted!" lands here, in Lua
 * code) cancels the transfer: the pull rolls back. */
static int progress_cb(const hcs_registry_progress_t *p, void *ud) {
  progress_ctx *c = ud;
  if (c->failed) return 1;
  lua_State *L = c->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
  lua_createtable(L, (int)p->nlayers, 0);
  for (size_t i = 0; i < p->nlayers; i++) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, p->digests[i]);
    lua_setfield(L, -2, "digest");
    lua_pushinteger(L, (lua_Integer)p->done[i]);
    lua_setfield(L, -2, "done");
    lua_pushinteger(L, (lua_Integer)p->total[i]);
    lua_setfield(L, -2, "total");
    lua_pushstring(L, state_names[p->state[i] & 3]);
    lua_setfield(L, -2, "state");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    c->failed = true;
    hcs_log(HCS_LOG_WARNING, "progress callback failed, cancelling: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  return 0;
}

static const char *opt_string(lua_State *L, int t, const char *key) {
  if (!lua_istable(L, t)) return NULL;
  lua_getfield(L, t, key);
  const char *s = NULL;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "option '%s' must be a string", key);
    s = hcs_lua_to_name(L, -1, key);
  }
  lua_pop(L, 1); /* the string stays alive: the table references it */
  return s;
}

static lua_Integer opt_int(lua_State *L, int t, const char *key, lua_Integer def) {
  if (!lua_istable(L, t)) return def;
  lua_getfield(L, t, key);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    int ok = 0;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 0) luaL_error(L, "option '%s' must be a non-negative integer", key);
  }
  lua_pop(L, 1);
  return v;
}

/* Fill opts from the table at t; the progress function goes to the registry. */
static void check_opts(lua_State *L, int t, hcs_registry_opts_t *o, progress_ctx *p) {
  hcs_registry_opts_init(o);
  p->L = L;
  p->ref = LUA_NOREF;
  p->failed = false;
  if (lua_isnoneornil(L, t)) return;
  luaL_checktype(L, t, LUA_TTABLE);
  o->username = opt_string(L, t, "username");
  o->password = opt_string(L, t, "password");
  o->auth_file = opt_string(L, t, "auth_file");
  o->certs_dir = opt_string(L, t, "certs_dir");
  o->registries_conf = opt_string(L, t, "registries_conf");
  o->platform = opt_string(L, t, "platform");
  o->name = opt_string(L, t, "name");
  o->tag = opt_string(L, t, "tag");
  o->parallel = (int)opt_int(L, t, "parallel", 0);
  o->timeout = (long)opt_int(L, t, "timeout", 0);
  o->max_rate = (uint64_t)opt_int(L, t, "max_rate", 0);
  lua_getfield(L, t, "tls_verify");
  if (!lua_isnil(L, -1)) {
    luaL_argexpected(L, lua_isboolean(L, -1), t, "tls_verify must be a boolean");
    o->tls_verify = lua_toboolean(L, -1) ? 1 : -1; /* unset: verify, loopback may use plain HTTP */
  }
  lua_pop(L, 1);
  const char *comp = opt_string(L, t, "compression");
  if (comp) {
    int c = hcs_layer_compression_from_string(comp);
    luaL_argcheck(L, c == HCS_LAYER_COMPRESSION_GZIP || c == HCS_LAYER_COMPRESSION_ZSTD, t,
                  "compression must be gzip or zstd");
    o->compression = (hcs_layer_compression_t)c;
  }
  lua_getfield(L, t, "progress");
  if (!lua_isnil(L, -1)) {
    luaL_argexpected(L, lua_isfunction(L, -1), t, "progress must be a function");
    p->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    o->progress = progress_cb;
    o->progress_data = p;
  } else {
    lua_pop(L, 1);
  }
}

static void done(lua_State *L, progress_ctx *p) { luaL_unref(L, LUA_REGISTRYINDEX, p->ref); }

static int l_pull(lua_State *L) {
  hcs_image_store_t *s = hcs_lua_check_image_store(L, 1);
  const char *ref = hcs_lua_check_name(L, 2);
  hcs_registry_opts_t o;
  progress_ctx p;
  check_opts(L, 3, &o, &p);
  hcs_error_t err = NULL;
  char *r = hcs_registry_pull(s, ref, &o, &err);
  done(L, &p);
  return hcs_lua_push_doc(L, r, &err);
}

static int l_push(lua_State *L) {
  hcs_image_store_t *s = hcs_lua_check_image_store(L, 1);
  const char *image = hcs_lua_check_name(L, 2);
  const char *ref = hcs_lua_check_name(L, 3);
  hcs_registry_opts_t o;
  progress_ctx p;
  check_opts(L, 4, &o, &p);
  hcs_error_t err = NULL;
  char *r = hcs_registry_push(s, image, ref, &o, &err);
  done(L, &p);
  return hcs_lua_push_string(L, r, &err);
}

static int l_download(lua_State *L) {
  const char *ref = hcs_lua_check_name(L, 1);
  const char *path = hcs_lua_check_name(L, 2);
  hcs_registry_opts_t o;
  progress_ctx p;
  check_opts(L, 3, &o, &p);
  hcs_error_t err = NULL;
  int r = hcs_registry_download(ref, path, &o, &err);
  done(L, &p);
  return hcs_lua_push_status(L, r, &err);
}

static int l_find(lua_State *L) {
  const char *pattern = hcs_lua_opt_name(L, 1, "");
  hcs_registry_opts_t o;
  progress_ctx p;
  check_opts(L, 2, &o, &p);
  hcs_error_t err = NULL;
  char *r = hcs_registry_find(pattern, &o, &err);
  done(L, &p);
  return hcs_lua_push_doc(L, r, &err);
}

static int l_inspect(lua_State *L) {
  const char *ref = hcs_lua_check_name(L, 1);
  hcs_registry_opts_t o;
  progress_ctx p;
  check_opts(L, 2, &o, &p);
  hcs_error_t err = NULL;
  char *r = hcs_registry_inspect(ref, &o, &err);
  done(L, &p);
  return hcs_lua_push_doc(L, r, &err);
}

static int l_login(lua_State *L) {
  const char *reg = hcs_lua_check_name(L, 1);
  const char *user = hcs_lua_check_name(L, 2);
  const char *pass = hcs_lua_check_name(L, 3);
  hcs_registry_opts_t o;
  progress_ctx p;
  check_opts(L, 4, &o, &p);
  hcs_error_t err = NULL;
  int r = hcs_registry_login(reg, user, pass, &o, &err);
  done(L, &p);
  return hcs_lua_push_status(L, r, &err);
}

static int l_logout(lua_State *L) {
  const char *reg = hcs_lua_check_name(L, 1);
  hcs_registry_opts_t o;
  progress_ctx p;
  check_opts(L, 2, &o, &p);
  hcs_error_t err = NULL;
  int r = hcs_registry_logout(reg, &o, &err);
  done(L, &p);
  return hcs_lua_push_status(L, r, &err);
}

int hcs_lua_open_registry(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"pull", l_pull},       {"push", l_push},   {"download", l_download}, {"find", l_find},
      {"inspect", l_inspect}, {"login", l_login}, {"logout", l_logout},     {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
