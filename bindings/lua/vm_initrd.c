/* hcs.core.vm_initrd: build{modules_dir, kernel_version, agent, busybox,
 * output} -> summary table (hcs/vm_initrd.h, `hcs vm initrd`).  Kept apart
 * from the VM compute system's binding (vm.c) so each side stays small. */
#include "binding.h"
#include "hcs/vm_initrd.h"

static const char *opt_field(lua_State *L, const char *key) {
  lua_getfield(L, 1, key);
  const char *v = NULL;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "bad argument #1 to 'build' (field '%s': string expected)", key);
    v = lua_tostring(L, -1);
  }
  lua_pop(L, 1); /* the string stays referenced by the table */
  return v;
}

static int l_build(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  hcs_vm_initrd_options_t o = {
      .modules_dir = opt_field(L, "modules_dir"),
      .kernel_version = opt_field(L, "kernel_version"),
      .agent = opt_field(L, "agent"),
      .busybox = opt_field(L, "busybox"),
  };
  const char *output = opt_field(L, "output");
  luaL_argcheck(L, o.modules_dir != NULL, 1, "field 'modules_dir' is required");
  luaL_argcheck(L, output != NULL, 1, "field 'output' is required");
  hcs_error_t err = NULL;
  char *sum = hcs_vm_initrd_build(&o, output, &err);
  return hcs_lua_push_doc(L, sum, &err);
}

int hcs_lua_open_vm_initrd(lua_State *L) {
  static const luaL_Reg fns[] = {{"build", l_build}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
