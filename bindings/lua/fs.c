/* hcs.core.fs: copy_in(root, src, dst) -- host files into a container root. */
#include "binding.h"
#include "hcs/fs.h"

static int l_copy_in(lua_State *L) {
  const char *root = luaL_checkstring(L, 1), *src = luaL_checkstring(L, 2), *dst = luaL_checkstring(L, 3);
  hcs_error_t err = NULL;
  if (hcs_fs_copy_in(root, src, dst, &err) < 0) return hcs_lua_fail(L, &err);
  return hcs_lua_ok(L);
}

int hcs_lua_open_fs(lua_State *L) {
  static const luaL_Reg funcs[] = {{"copy_in", l_copy_in}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
