/* hcs.core.fs: copy_in(root, src, dst) (host files into a container root),
 * write_atomic(path, data [, mode]), mkdir_p(path [, mode]). */
#include "binding.h"
#include "hcs/fs.h"

static int l_copy_in(lua_State *L) {
  const char *root = luaL_checkstring(L, 1), *src = luaL_checkstring(L, 2), *dst = luaL_checkstring(L, 3);
  hcs_error_t err = NULL;
  if (hcs_fs_copy_in(root, src, dst, &err) < 0) return hcs_lua_fail(L, &err);
  return hcs_lua_ok(L);
}

/* write_atomic(path, data [, mode]) */
static int l_write_atomic(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  lua_Integer mode = luaL_optinteger(L, 3, 0644);
  luaL_argcheck(L, mode >= 0 && mode <= 07777, 3, "mode out of range");
  hcs_error_t err = NULL;
  if (hcs_fs_write_atomic(path, data, len, (unsigned)mode, &err) < 0) return hcs_lua_fail(L, &err);
  return hcs_lua_ok(L);
}

static int l_mkdir_p(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer mode = luaL_optinteger(L, 2, 0755);
  hcs_error_t err = NULL;
  if (hcs_fs_mkdir_p(path, (unsigned)mode, &err) < 0) return hcs_lua_fail(L, &err);
  return hcs_lua_ok(L);
}

int hcs_lua_open_fs(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"copy_in", l_copy_in}, {"write_atomic", l_write_atomic}, {"mkdir_p", l_mkdir_p}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
