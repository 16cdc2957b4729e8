/* luaopen_hcs_core: the `hcs.core` module, one sub-table per libhcs
 * subsystem.  The Lua facade (lua/hcs/init.lua) builds the user API on it. */
#include "binding.h"

#define HCS_LUA_EXPORT __attribute__((visibility("default")))

static const struct {
  const char *name;
  lua_CFunction open;
} subsystems[] = {
    {"json", hcs_lua_open_json},       {"host", hcs_lua_open_host},           {"layer", hcs_lua_open_layer},
    {"net", hcs_lua_open_net},         {"image", hcs_lua_open_image},         {"fs", hcs_lua_open_fs},
    {"compute", hcs_lua_open_compute}, {"process", hcs_lua_open_process},     {"registry", hcs_lua_open_registry},
    {"events", hcs_lua_open_events},   {"operation", hcs_lua_open_operation}, {"vm_initrd", hcs_lua_open_vm_initrd},
    {"disk", hcs_lua_open_disk},
};

HCS_LUA_EXPORT int luaopen_hcs_core(lua_State *L) {
  lua_createtable(L, 0, 8);
  lua_pushstring(L, hcs_version());
  lua_setfield(L, -2, "version");
  for (size_t i = 0; i < sizeof subsystems / sizeof subsystems[0]; i++) {
    lua_pushcfunction(L, subsystems[i].open);
    lua_call(L, 0, 1);
    lua_setfield(L, -2, subsystems[i].name);
  }
  return 1;
}
