/* hcs.core.host: version, host capabilities and the library log level. */
#include "binding.h"

static int l_capabilities(lua_State *L) {
  hcs_error_t err = NULL;
  char *doc = hcs_host_capabilities(&err);
  return hcs_lua_push_doc(L, doc, &err);
}

static int l_cgroup_mode(lua_State *L) {
  lua_pushstring(L, hcs_cgroup_mode_name(hcs_host_cgroup_mode()));
  return 1;
}

/* log_level([name]) -> previous name; raises on an unknown name. */
static int l_log_level(lua_State *L) {
  lua_pushstring(L, hcs_log_level_name(hcs_log_get_level()));
  if (!lua_isnoneornil(L, 1)) {
    const char *name = hcs_lua_check_name(L, 1);
    int level = hcs_log_level_from_string(name);
    luaL_argcheck(L, level >= 0, 1, "expected one of debug, info, warning, error, none");
    hcs_log_set_level((hcs_log_level_t)level);
  }
  return 1;
}

int hcs_lua_open_host(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"capabilities", l_capabilities}, {"cgroup_mode", l_cgroup_mode}, {"log_level", l_log_level}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
