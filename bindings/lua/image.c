/* hcs.core.image: the image store handle.
 *   local s = hcs.core.image.open([root])
 *   s:list() s:inspect(ref) s:import(path [, {name, tag, publisher, progress}])
 *   s:install_os(tar, {name, version, publisher, config}) s:create{...} s:capture(scratch, {...})
 *   s:save({refs}, path|file [, {compression, progress}]) s:tag(ref, new) s:untag(ref)
 *   s:remove(ref [, force]) s:prune([{dry_run}]) s:acquire(ref, user [, runtime]) s:release(ref, user) s:resolve(ref)
 *   s:close()  -- also __gc / __close */
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "hcs/image.h"

#define STORE_MT "hcs.image.store"

typedef struct {
  hcs_image_store_t *store;
} store_box;

static hcs_image_store_t *check_store(lua_State *L) {
  store_box *b = luaL_checkudata(L, 1, STORE_MT);
  if (b->store == NULL) luaL_error(L, "attempt to use a closed image store");
  return b->store;
}

hcs_image_store_t *hcs_lua_check_image_store(lua_State *L, int idx) {
  store_box *b = luaL_checkudata(L, idx, STORE_MT);
  if (b->store == NULL) luaL_error(L, "attempt to use a closed image store");
  return b->store;
}

static int store_close(lua_State *L) {
  store_box *b = luaL_checkudata(L, 1, STORE_MT);
  if (b->store) hcs_image_store_close(b->store);
  b->store = NULL;
  return 0;
}

static int store_tostring(lua_State *L) {
  store_box *b = luaL_checkudata(L, 1, STORE_MT);
  if (b->store == NULL)
    lua_pushliteral(L, "hcs.image.store (closed)");
  else
    lua_pushfstring(L, "hcs.image.store (%p)", (void *)b->store);
  return 1;
}

static int l_open(lua_State *L) {
  const char *root = hcs_lua_opt_name(L, 1, NULL);
  store_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->store = NULL; /* closed until opened, so an error leaves it consistent */
  luaL_setmetatable(L, STORE_MT);
  hcs_error_t err = NULL;
  b->store = hcs_image_store_open(root, &err);
  if (b->store == NULL) return hcs_lua_fail(L, &err);
  return 1;
}

/* Progress callbacks call a Lua function under pcall: libhcs is C and must
 * never be unwound by a Lua error; a failing callback is reported once. */
typedef struct {
  lua_State *L;
  int ref;
  bool failed;
} progress_ctx;

static void progress_cb(uint64_t done, uint64_t total, void *ud) {
  progress_ctx *p = ud;
  if (p->failed) return;
  lua_rawgeti(p->L, LUA_REGISTRYINDEX, p->ref);
  lua_pushinteger(p->L, (lua_Integer)done);
  lua_pushinteger(p->L, (lua_Integer)total);
  if (lua_pcall(p->L, 2, 0, 0) != LUA_OK) {
    p->failed = true;
    hcs_log(HCS_LOG_WARNING, "progress callback failed: %s", lua_tostring(p->L, -1));
    lua_pop(p->L, 1);
  }
}

static void progress_from(lua_State *L, int opts, progress_ctx *p) {
  p->L = L;
  p->ref = LUA_NOREF;
  p->failed = false;
  if (lua_istable(L, opts)) {
    lua_getfield(L, opts, "progress");
    if (!lua_isnil(L, -1)) {
      luaL_argexpected(L, lua_isfunction(L, -1), opts, "progress must be a function");
      p->ref = luaL_ref(L, LUA_REGISTRYINDEX);
      return;
    }
    lua_pop(L, 1);
  }
}

static void progress_done(lua_State *L, progress_ctx *p) { luaL_unref(L, LUA_REGISTRYINDEX, p->ref); }

static const char *opt_string(lua_State *L, int t, const char *key) {
  if (!lua_istable(L, t)) return NULL;
  lua_getfield(L, t, key);
  const char *s = NULL;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "option '%s' must be a string", key);
    s = hcs_lua_to_name(L, -1, key);
  }
  lua_pop(L, 1); /* the string stays alive: it is referenced by the table */
  return s;
}

/* A table option holding a document: returns a malloc'd JSON string. */
static char *opt_json(lua_State *L, int t, const char *key) {
  if (!lua_istable(L, t)) return NULL;
  lua_getfield(L, t, key);
  char *s = lua_isnil(L, -1) ? NULL : hcs_lua_check_doc(L, lua_gettop(L));
  lua_pop(L, 1);
  return s;
}

static int l_list(lua_State *L) {
  hcs_image_store_t *s = check_store(L);
  hcs_error_t err = NULL;
  return hcs_lua_push_doc(L, hcs_image_list(s, &err), &err);
}

static int l_inspect(lua_State *L) {
  hcs_image_store_t *s = check_store(L);
  hcs_error_t err = NULL;
  return hcs_lua_push_doc(L, hcs_image_inspect(s, hcs_lua_check_name(L, 2), &err), &err);
}

static int l_resolve(lua_State *L) {
  hcs_image_store_t *s = check_store(L);
  hcs_error_t err = NULL;
  return hcs_lua_push_string(L, hcs_image_resolve(s, hcs_lua_check_name(L, 2), &err), &err);
}

static int l_import(lua_State *L) {
  hcs_image_store_t *s = check_store(L);
  const char *path = hcs_lua_check_name(L, 2);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  progress_ctx p;
  progress_from(L, 3, &p);
  hcs_image_import_opts_t o = {.name = opt_string(L, 3, "name"),
                               .tag = opt_string(L, 3, "tag"),
                               .publisher = opt_string(L, 3, "publisher"),
                               .progress = p.ref != LUA_NOREF ? progress_cb : NULL,
                               .progress_data = &p};
  hcs_error_t err = NULL;
  char *r = hcs_image_import(s, path, &o, &err);
  progress_done(L, &p);
  return hcs_lua_push_doc(L, r, &err);
}

static int l_install_os(lua_State *L) {
  hcs_image_store_t *s = check_store(L);
  const char *tar = hcs_lua_check_name(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  progress_ctx p;
  progress_from(L, 3, &p);
  char *config = opt_json(L, 3, "config");
  hcs_image_install_opts_t o = {.name = opt_string(L, 3, "name"),
                                .version = opt_string(L, 3, "version"),
                                .publisher = opt_string(L, 3, "publisher"),
                                .config = config,
                                .progress = p.ref != LUA_NOREF ? progress_cb : NULL,
                                .progress_data = &p};
  hcs_error_t err = NULL;
  char *id = hcs_image_install_os(s, tar, &o, &err);
  free(config);
  progress_done(L, &p);
  return hcs_lua_push_string(L, id, &err);
}

static int l_create(lua_State *L) {
  hcs_image_store_t *s = check_store(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  char *config = opt_json(L, 2, "config");
  hcs_image_create_opts_t o = {.parent = opt_string(L, 2, "parent"),
                               .layer_id = opt_string(L, 2, "layer"),
                               .name = opt_string(L, 2, "name"),
                               .version = opt_string(L, 2, "version"),
                               .publisher = opt_string(L, 2, "publisher"),
                               .config = config,
                               .created_by = opt_string(L, 2, "created_by"),
                               .comment = opt_string(L, 2, "comment")};
  hcs_error_t err = NULL;
  char *id = hcs_image_create(s, &o, &err);
  free(config);
  return hcs_lua_push_string(L, id, &err);
}

/* `pause = system`: the capture pauses it (the freezer) for its pass over the changes only. */
static int pause_system(void *data, bool pause, hcs_error_t *err) {
  return pause ? hcs_compute_pause(data, err) : hcs_compute_resume(data, err);
}

/* s:capture(scratch_layer_id, {parent, name, version, publisher, config, created_by, comment, move, progress,
 *                              pause}) */
static int l_capture(lua_State *L) {
  hcs_image_store_t *s = check_store(L);
  const char *scratch = hcs_lua_check_name(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  progress_ctx p;
  progress_from(L, 3, &p);
  char *config = opt_json(L, 3, "config");
  hcs_image_create_opts_t o = {.parent = opt_string(L, 3, "parent"),
                               .name = opt_string(L, 3, "name"),
                               .version = opt_string(L, 3, "version"),
                               .publisher = opt_string(L, 3, "publisher"),
                               .config = config,
                               .created_by = opt_string(L, 3, "created_by"),
                               .comment = opt_string(L, 3, "comment"),
                               .progress = p.ref != LUA_NOREF ? progress_cb : NULL,
                               .progress_data = &p};
  lua_getfield(L, 3, "move");
  o.move_scratch = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, 3, "pause") != LUA_TNIL) {
    o.pause = pause_system;
    o.pause_data = hcs_lua_check_system(L, -1); /* the table keeps the handle alive */
  }
  lua_pop(L, 1);
  hcs_error_t err = NULL;
  char *id = hcs_image_capture(s, scratch, &o, &err);
  free(config);
  progress_done(L, &p);
  return hcs_lua_push_string(L, id, &err);
}

static int l_save(lua_State *L) {
  hcs_image_store_t *s = check_store(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  /* A path (written atomically) or an open Lua file (io.stdout: a stream). */
  luaL_Stream *stream = luaL_testudata(L, 3, LUA_FILEHANDLE);
  const char *path = NULL;
  if (stream == NULL)
    path = hcs_lua_check_name(L, 3);
  else
    luaL_argcheck(L, stream->closef != NULL && stream->f != NULL, 3, "the file is closed");
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  lua_Integer n = (lua_Integer)luaL_len(L, 2);
  luaL_argcheck(L, n > 0, 2, "expected a non-empty list of image references");
  const char **refs = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0); /* freed by the GC */
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, 2, "image references must be strings");
    refs[i - 1] = hcs_lua_to_name(L, -1, "an image reference");
    lua_pop(L, 1);
  }
  refs[n] = NULL;
  hcs_image_save_opts_t o = {.compression = HCS_LAYER_COMPRESSION_GZIP};
  const char *comp = opt_string(L, 4, "compression");
  if (comp) {
    int c = hcs_layer_compression_from_string(comp);
    luaL_argcheck(L, c >= 0, 4, "compression must be one of none, gzip, zstd");
    o.compression = (hcs_layer_compression_t)c;
  }
  progress_ctx p;
  progress_from(L, 4, &p);
  o.progress = p.ref != LUA_NOREF ? progress_cb : NULL;
  o.progress_data = &p;
  hcs_error_t err = NULL;
  int r;
  if (stream) {
    fflush(stream->f);
    r = hcs_image_save_fd(s, refs, fileno(stream->f), &o, &err);
  } else {
    r = hcs_image_save(s, refs, path, &o, &err);
  }
  progress_done(L, &p);
  return hcs_lua_push_status(L, r, &err);
}

static int l_tag(lua_State *L) {
  hcs_image_store_t *s = check_store(L);
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_image_tag(s, hcs_lua_check_name(L, 2), hcs_lua_check_name(L, 3), &err), &err);
}

static int l_untag(lua_State *L) {
  hcs_image_store_t *s = check_store(L);
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_image_untag(s, hcs_lua_check_name(L, 2), &err), &err);
}

/* s:prune([{dry_run = bool}]) -> {Layers = {ids}} */
static int l_prune(lua_State *L) {
  hcs_image_store_t *s = check_store(L);
  bool dry_run = false;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "dry_run");
    dry_run = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  hcs_error_t err = NULL;
  return hcs_lua_push_doc(L, hcs_image_prune(s, dry_run, &err), &err);
}

static int l_remove(lua_State *L) {
  hcs_image_store_t *s = check_store(L);
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_image_remove(s, hcs_lua_check_name(L, 2), lua_toboolean(L, 3), &err), &err);
}

static int l_acquire(lua_State *L) {
  hcs_image_store_t *s = check_store(L);
  hcs_error_t err = NULL;
  const char *ref = hcs_lua_check_name(L, 2), *user = hcs_lua_check_name(L, 3);
  bool runtime = lua_toboolean(L, 4); /* a reference that ends with the boot (see image.h) */
  return hcs_lua_push_status(
      L, runtime ? hcs_image_acquire_runtime(s, ref, user, &err) : hcs_image_acquire(s, ref, user, &err), &err);
}

static int l_release(lua_State *L) {
  hcs_image_store_t *s = check_store(L);
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_image_release(s, hcs_lua_check_name(L, 2), hcs_lua_check_name(L, 3), &err), &err);
}

int hcs_lua_open_image(lua_State *L) {
  static const luaL_Reg funcs[] = {{"open", l_open}, {NULL, NULL}};
  static const luaL_Reg methods[] = {{"list", l_list},
                                     {"inspect", l_inspect},
                                     {"resolve", l_resolve},
                                     {"import", l_import},
                                     {"install_os", l_install_os},
                                     {"create", l_create},
                                     {"capture", l_capture},
                                     {"save", l_save},
                                     {"tag", l_tag},
                                     {"untag", l_untag},
                                     {"remove", l_remove},
                                     {"prune", l_prune},
                                     {"acquire", l_acquire},
                                     {"release", l_release},
                                     {"close", store_close},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {
      {"__gc", store_close}, {"__close", store_close}, {"__tostring", store_tostring}, {"__index", NULL}, {NULL, NULL}};
  luaL_newmetatable(L, STORE_MT);
  luaL_setfuncs(L, meta, 0);
  luaL_newlibtable(L, methods);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
