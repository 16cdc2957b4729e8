/* hcs.core.layer: the layer store handle (userdata "hcs.layer.store") with
 * the windowsfilter verbs as methods, and `open(root)`. */
#include <string.h>
#include <time.h>

#include "binding.h"

#define STORE_MT "hcs.layer.store"

typedef struct {
  hcs_layer_store_t *s;
} store_ud;

static hcs_layer_store_t *check_store(lua_State *L) {
  store_ud *u = luaL_checkudata(L, 1, STORE_MT);
  if (u->s == NULL) luaL_error(L, "attempt to use a closed layer store");
  return u->s;
}

/* An import cap option of the table at t: bytes (0 or nil: the default),
 * or "none" for no cap. */
static uint64_t opt_limit(lua_State *L, int t, const char *key) {
  if (lua_type(L, t) != LUA_TTABLE) return 0;
  lua_getfield(L, t, key);
  uint64_t v = 0;
  int isnum = 0;
  lua_Integer n = lua_tointegerx(L, -1, &isnum);
  if (lua_isnil(L, -1))
    v = 0;
  else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "none") == 0)
    v = UINT64_MAX;
  else if (isnum && n >= 0)
    v = (uint64_t)n;
  else
    luaL_error(L, "option '%s': expected a size in bytes or \"none\"", key);
  lua_pop(L, 1);
  return v;
}

/* open(root [, {max_size=, max_file_size=}]) */
static int l_open(lua_State *L) {
  const char *root = hcs_lua_opt_name(L, 1, NULL);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  uint64_t max_size = opt_limit(L, 2, "max_size"), max_file_size = opt_limit(L, 2, "max_file_size");
  store_ud *u = lua_newuserdatauv(L, sizeof *u, 0); /* closed until opened */
  u->s = NULL;
  luaL_setmetatable(L, STORE_MT);
  hcs_error_t err = NULL;
  u->s = hcs_layer_store_open(root, &err);
  if (u->s == NULL) return hcs_lua_fail(L, &err);
  hcs_layer_store_set_limits(u->s, max_size, max_file_size);
  return 1;
}

/* store:set_limits{max_size=, max_file_size=}: the import caps (nil or 0:
 * the defaults, "none": no cap) */
static int l_set_limits(lua_State *L) {
  hcs_layer_store_t *s = check_store(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  hcs_layer_store_set_limits(s, opt_limit(L, 2, "max_size"), opt_limit(L, 2, "max_file_size"));
  return 0;
}

static int l_close(lua_State *L) {
  store_ud *u = luaL_checkudata(L, 1, STORE_MT);
  if (u->s) hcs_layer_store_close(u->s);
  u->s = NULL;
  return 0;
}

static int l_tostring(lua_State *L) {
  store_ud *u = luaL_checkudata(L, 1, STORE_MT);
  if (u->s)
    lua_pushfstring(L, "hcs.layer.store (%s)", hcs_layer_store_path(u->s));
  else
    lua_pushliteral(L, "hcs.layer.store (closed)");
  return 1;
}

/* A NULL-terminated id list from a Lua sequence (or a single string);
 * stored in a userdata-free buffer on the Lua stack's memory via
 * lua_newuserdatauv so a raise frees it. */
static const char **check_ids(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return NULL;
  if (lua_type(L, idx) == LUA_TSTRING) {
    const char **v = lua_newuserdatauv(L, 2 * sizeof *v, 0);
    v[0] = hcs_lua_to_name(L, idx, "a layer id");
    v[1] = NULL;
    return v;
  }
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_Integer n = luaL_len(L, idx);
  const char **v = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *v, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, idx, i);
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "bad parent #%d: expected a layer id string", (int)i);
    v[i - 1] = hcs_lua_to_name(L, -1, "a layer id"); /* kept alive by the table */
    lua_pop(L, 1);
  }
  v[n] = NULL;
  return v;
}

struct progress_ctx {
  lua_State *L;
  int fn; /* stack index of the callback, 0 if none */
};

static void progress_cb(uint64_t done, uint64_t total, void *data) {
  struct progress_ctx *c = data;
  lua_State *L = c->L;
  lua_pushvalue(L, c->fn);
  lua_pushinteger(L, (lua_Integer)done);
  lua_pushinteger(L, (lua_Integer)total);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_pop(L, 1); /* a progress display must not break the import */
}

/* The `progress` option of the table at t: leaves the function on the stack
 * (progress_cb calls it by index) and returns the callback, or NULL. */
static hcs_layer_progress_fn opt_progress(lua_State *L, int t, struct progress_ctx *pc) {
  if (lua_type(L, t) != LUA_TTABLE) return NULL;
  lua_getfield(L, t, "progress");
  if (lua_isnil(L, -1)) return NULL;
  luaL_checktype(L, -1, LUA_TFUNCTION);
  pc->fn = lua_gettop(L);
  return progress_cb;
}

static const char *opt_string(lua_State *L, int t, const char *key) {
  if (lua_type(L, t) != LUA_TTABLE) return NULL;
  lua_getfield(L, t, key);
  const char *s = lua_isnil(L, -1) ? NULL : hcs_lua_to_name(L, -1, key);
  if (!lua_isnil(L, -1) && s == NULL) luaL_error(L, "option '%s': expected a string", key);
  lua_pop(L, 1); /* strings stay alive through the options table */
  return s;
}

/* store:import(path, {id=, parents=, expect_diff_id=, threads=, max_size=, max_file_size=, progress=fn})
 * -> inspect table */
static int l_import(lua_State *L) {
  hcs_layer_store_t *s = check_store(L);
  const char *path = hcs_lua_check_name(L, 2);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  hcs_layer_import_opts_t o;
  memset(&o, 0, sizeof o);
  o.id = opt_string(L, 3, "id");
  o.expect_diff_id = opt_string(L, 3, "expect_diff_id");
  o.max_size = opt_limit(L, 3, "max_size");
  o.max_file_size = opt_limit(L, 3, "max_file_size");
  struct progress_ctx pc = {L, 0};
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "threads");
    o.threads = (int)luaL_optinteger(L, -1, 0);
    lua_pop(L, 1);
    lua_getfield(L, 3, "parents"); /* index 4 */
    o.parents = check_ids(L, 4);   /* index 5 if any */
  }
  o.progress = opt_progress(L, 3, &pc);
  o.progress_data = &pc;
  hcs_error_t err = NULL;
  char *id = strcmp(path, "-") == 0 ? hcs_layer_import(s, 0, &o, &err) : hcs_layer_import_file(s, path, &o, &err);
  if (id == NULL) return hcs_lua_fail(L, &err);
  char *doc = hcs_layer_inspect(s, id, &err);
  free(id);
  return hcs_lua_push_doc(L, doc, &err);
}

/* store:commit_scratch(id [, {progress=fn}]) -> new layer id: the scratch's
 * changes moved (not copied) into a read-only layer. */
static int l_commit_scratch(lua_State *L) {
  hcs_layer_store_t *s = check_store(L);
  const char *id = hcs_lua_check_name(L, 2);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  struct progress_ctx pc = {L, 0};
  hcs_layer_progress_fn cb = opt_progress(L, 3, &pc);
  hcs_error_t err = NULL;
  return hcs_lua_push_string(L, hcs_layer_commit_scratch(s, id, cb, &pc, &err), &err);
}

/* store:capture_scratch(id [, {threads=, progress=fn}]) -> new layer id: the
 * scratch's changes copied in one pass (the scratch may be in use). */
static int l_capture_scratch(lua_State *L) {
  hcs_layer_store_t *s = check_store(L);
  const char *id = hcs_lua_check_name(L, 2);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  int threads = 0;
  if (!lua_isnil(L, 3)) {
    lua_getfield(L, 3, "threads");
    threads = (int)luaL_optinteger(L, -1, 0);
    lua_pop(L, 1);
  }
  struct progress_ctx pc = {L, 0};
  hcs_layer_progress_fn cb = opt_progress(L, 3, &pc);
  hcs_error_t err = NULL;
  return hcs_lua_push_string(L, hcs_layer_capture_scratch(s, id, threads, cb, &pc, &err), &err);
}

/* store:export(id, path, {compression=, level=, mtime=, threads=, progress=fn}) -> result table */
static int l_export(lua_State *L) {
  hcs_layer_store_t *s = check_store(L);
  const char *id = hcs_lua_check_name(L, 2);
  const char *path = hcs_lua_check_name(L, 3);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  lua_settop(L, 4);
  hcs_layer_export_opts_t o;
  memset(&o, 0, sizeof o);
  o.compression = HCS_LAYER_COMPRESSION_GZIP;
  struct progress_ctx pc = {L, 0};
  if (lua_istable(L, 4)) {
    const char *c = opt_string(L, 4, "compression");
    if (c) {
      int v = hcs_layer_compression_from_string(c);
      if (v < 0) return luaL_error(L, "option 'compression': expected none, gzip or zstd, got '%s'", c);
      o.compression = (hcs_layer_compression_t)v;
    }
    lua_getfield(L, 4, "level");
    o.level = (int)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 4, "threads");
    o.threads = (int)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 4, "mtime");
    if (!lua_isnil(L, -1)) {
      o.fixed_mtime = true;
      o.mtime = (int64_t)luaL_checkinteger(L, -1);
    }
    lua_pop(L, 3);
  }
  o.progress = opt_progress(L, 4, &pc);
  o.progress_data = &pc;
  hcs_error_t err = NULL;
  hcs_layer_export_result_t r;
  int rc = strcmp(path, "-") == 0 ? hcs_layer_export(s, id, 1, &o, &r, &err)
                                  : hcs_layer_export_file(s, id, path, &o, &r, &err);
  if (rc < 0) return hcs_lua_fail(L, &err);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, r.diff_id);
  lua_setfield(L, -2, "DiffID");
  lua_pushstring(L, r.digest);
  lua_setfield(L, -2, "Digest");
  lua_pushinteger(L, (lua_Integer)r.size);
  lua_setfield(L, -2, "Size");
  lua_pushinteger(L, (lua_Integer)r.uncompressed_size);
  lua_setfield(L, -2, "UncompressedSize");
  lua_pushstring(L, hcs_layer_compression_name(o.compression));
  lua_setfield(L, -2, "Compression");
  return 1;
}

static int l_create_scratch(lua_State *L) {
  hcs_layer_store_t *s = check_store(L);
  const char *id = hcs_lua_check_name(L, 2);
  lua_settop(L, 4);
  bool volatile_ = lua_toboolean(L, 4); /* not kept across a reboot: no fsync (see layer.h) */
  const char **parents = check_ids(L, 3);
  hcs_error_t err = NULL;
  int rc = volatile_ ? hcs_layer_create_scratch_volatile(s, id, (const char *const *)parents, &err)
                     : hcs_layer_create_scratch(s, id, (const char *const *)parents, &err);
  if (rc < 0) return hcs_lua_fail(L, &err);
  return hcs_lua_push_doc(L, hcs_layer_inspect(s, id, &err), &err);
}

static int l_activate(lua_State *L) {
  hcs_layer_store_t *s = check_store(L);
  const char *id = hcs_lua_check_name(L, 2);
  const char *mp = hcs_lua_opt_name(L, 3, NULL);
  hcs_error_t err = NULL;
  if (hcs_layer_activate(s, id, mp, &err) < 0) return hcs_lua_fail(L, &err);
  char *path = hcs_layer_get_mount_path(s, id, &err);
  if (path == NULL) return hcs_lua_fail(L, &err);
  lua_pushstring(L, path);
  free(path);
  return 1;
}

static int l_mount_path(lua_State *L) {
  hcs_layer_store_t *s = check_store(L);
  hcs_error_t err = NULL;
  char *path = hcs_layer_get_mount_path(s, hcs_lua_check_name(L, 2), &err);
  if (path == NULL) return hcs_lua_fail(L, &err);
  lua_pushstring(L, path);
  free(path);
  return 1;
}

static int l_prepare(lua_State *L) {
  hcs_layer_store_t *s = check_store(L);
  const char *id = hcs_lua_check_name(L, 2);
  char *mapped = NULL;
  if (!lua_isnoneornil(L, 3)) {
    json_t *j = hcs_lua_check_json(L, 3);
    mapped = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
  }
  hcs_error_t err = NULL;
  int rc = hcs_layer_prepare(s, id, mapped, &err);
  free(mapped);
  if (rc < 0) return hcs_lua_fail(L, &err);
  return hcs_lua_ok(L);
}

#define SIMPLE(name, call)                                                                                             \
  static int name(lua_State *L) {                                                                                      \
    hcs_layer_store_t *s = check_store(L);                                                                             \
    const char *id = hcs_lua_check_name(L, 2);                                                                         \
    hcs_error_t err = NULL;                                                                                            \
    if (call < 0) return hcs_lua_fail(L, &err);                                                                        \
    return hcs_lua_ok(L);                                                                                              \
  }
SIMPLE(l_deactivate, hcs_layer_deactivate(s, id, &err))
SIMPLE(l_unprepare, hcs_layer_unprepare(s, id, &err))
SIMPLE(l_destroy, hcs_layer_destroy(s, id, lua_toboolean(L, 3), &err))

static int l_exists(lua_State *L) {
  hcs_layer_store_t *s = check_store(L);
  hcs_error_t err = NULL;
  int r = hcs_layer_exists(s, hcs_lua_check_name(L, 2), &err);
  if (r < 0) return hcs_lua_fail(L, &err);
  lua_pushboolean(L, r);
  return 1;
}

static int l_inspect(lua_State *L) {
  hcs_layer_store_t *s = check_store(L);
  hcs_error_t err = NULL;
  char *doc = hcs_layer_inspect(s, hcs_lua_check_name(L, 2), &err);
  return hcs_lua_push_doc(L, doc, &err);
}

static int l_list(lua_State *L) {
  hcs_layer_store_t *s = check_store(L);
  hcs_error_t err = NULL;
  char *doc = hcs_layer_list(s, &err);
  return hcs_lua_push_doc(L, doc, &err);
}

static int refcount(lua_State *L, int (*fn)(hcs_layer_store_t *, const char *, hcs_error_t *)) {
  hcs_layer_store_t *s = check_store(L);
  hcs_error_t err = NULL;
  int n = fn(s, hcs_lua_check_name(L, 2), &err);
  if (n < 0) return hcs_lua_fail(L, &err);
  lua_pushinteger(L, n);
  return 1;
}
static int l_acquire(lua_State *L) { return refcount(L, hcs_layer_acquire); }
static int l_release(lua_State *L) { return refcount(L, hcs_layer_release); }

static int l_path(lua_State *L) {
  lua_pushstring(L, hcs_layer_store_path(check_store(L)));
  return 1;
}

/* now() -> monotonic seconds, for progress rates (os.clock counts CPU time
 * of every thread, os.time has a 1 s resolution). */
static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/* chain_id(parent_chain_id|nil, diff_id) -> "sha256:..." */
static int l_chain_id(lua_State *L) {
  const char *parent = hcs_lua_opt_name(L, 1, NULL);
  const char *diff = hcs_lua_check_name(L, 2);
  char *c = hcs_layer_chain_id(parent, diff);
  lua_pushstring(L, c);
  free(c);
  return 1;
}

int hcs_lua_open_layer(lua_State *L) {
  static const luaL_Reg funcs[] = {{"open", l_open}, {"now", l_now}, {"chain_id", l_chain_id}, {NULL, NULL}};
  static const luaL_Reg methods[] = {{"import", l_import},
                                     {"export", l_export},
                                     {"create_scratch", l_create_scratch},
                                     {"activate", l_activate},
                                     {"deactivate", l_deactivate},
                                     {"mount_path", l_mount_path},
                                     {"prepare", l_prepare},
                                     {"unprepare", l_unprepare},
                                     {"destroy", l_destroy},
                                     {"exists", l_exists},
                                     {"commit_scratch", l_commit_scratch},
                                     {"capture_scratch", l_capture_scratch},
                                     {"inspect", l_inspect},
                                     {"list", l_list},
                                     {"acquire", l_acquire},
                                     {"release", l_release},
                                     {"path", l_path},
                                     {"set_limits", l_set_limits},
                                     {"close", l_close},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", l_close}, {"__close", l_close}, {"__tostring", l_tostring}, {NULL, NULL}};
  if (luaL_newmetatable(L, STORE_MT)) {
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
