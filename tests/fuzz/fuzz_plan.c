/* libFuzzer harness: the plan document (lua/hcs/workflow/plan.lua, a
 * persisted PlannedSystem) as the workflows read it: the input is written
 * as a plan file, loaded with plans.load and validated with the validate
 * step, in a real Lua 5.4 state with hcs.core preloaded and the Lua sources
 * of this tree.  A hostile document must give `nil, message` (load) or a
 * list of problems (validate); a Lua runtime error escaping either ("attempt
 * to index a number value") is a bug and aborts, as does any sanitizer
 * report.  State root on a private tmpfs, wiped after each run. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "fuzz_util.h"

int luaopen_hcs_core(lua_State *L);

static lua_State *L;
static char root[4200];
static int chunk_ref;

static const char chunk[] = "local text, root = ...\n"
                            "local plans = require 'hcs.workflow.plan'\n"
                            "local steps = require 'hcs.workflow.steps'\n"
                            "assert(require('hcs.core').fs.mkdir_p(root .. '/plans', 448))\n"
                            "local f = assert(io.open(plans.path('fz', root), 'w'))\n"
                            "f:write(text)\n"
                            "f:close()\n"
                            "local plan, err = plans.load('fz', root)\n"
                            "if plan == nil then assert(type(err) == 'string', 'load: no message') return end\n"
                            "plan._root = root\n"
                            "local ok, problems = steps.validate(plan)\n"
                            "assert(ok or type(problems) == 'table', 'validate: no problems listed')\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fz_sandbox(false, 64);
  snprintf(root, sizeof root, "%s/root", fz_dir);
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_hcs_core);
  lua_setfield(L, -2, "hcs.core");
  lua_pop(L, 1);
  lua_getglobal(L, "package");
  lua_pushstring(L, HCS_SOURCE_DIR "/lua/?.lua;" HCS_SOURCE_DIR "/lua/?/init.lua");
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  if (luaL_loadbuffer(L, chunk, sizeof chunk - 1, "=fuzz_plan") != LUA_OK) abort();
  chunk_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, chunk_ref);
  lua_pushlstring(L, (const char *)data, size);
  lua_pushstring(L, root);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "plan document raised a Lua error: %s\n", luaL_tolstring(L, -1, NULL));
    abort();
  }
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT);
  fz_wipe(fz_dir);
  return 0;
}
