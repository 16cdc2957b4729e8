/* hcs.core.disk: virtual disks over qemu-img (create, resize, inspect). */
#include <stdlib.h>

#include "binding.h"
#include "hcs/disk.h"

/* create(path, {format="qcow2"|"raw", size=BYTES, backing=PATH}) */
static int l_create(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "format");
  const char *format = luaL_optstring(L, -1, "qcow2");
  lua_getfield(L, 2, "size");
  lua_Integer size = luaL_optinteger(L, -1, 0);
  lua_getfield(L, 2, "backing");
  const char *backing = luaL_optstring(L, -1, NULL);
  luaL_argcheck(L, size >= 0, 2, "size must be >= 0");
  hcs_error_t err = NULL;
  int r = hcs_disk_create(path, format, (uint64_t)size, backing, &err);
  lua_pop(L, 3);
  return hcs_lua_push_status(L, r, &err);
}

/* resize(path, size [, shrink]) */
static int l_resize(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer size = luaL_checkinteger(L, 2);
  luaL_argcheck(L, size > 0, 2, "size must be > 0");
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_disk_resize(path, (uint64_t)size, lua_toboolean(L, 3), &err), &err);
}

static int l_inspect(lua_State *L) {
  hcs_error_t err = NULL;
  char *out = hcs_disk_inspect(luaL_checkstring(L, 1), &err);
  if (out == NULL) return hcs_lua_fail(L, &err);
  hcs_lua_push_json_string(L, out);
  return 1;
}

int hcs_lua_open_disk(lua_State *L) {
  static const luaL_Reg funcs[] = {{"create", l_create}, {"resize", l_resize}, {"inspect", l_inspect}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
