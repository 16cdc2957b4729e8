/* hcs.core.host: version, host capabilities and the library log level. */
#include <errno.h>
#include <poll.h>
#include <time.h>

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
/* poll({fd, ...} [, ms]) -> list of readable fds, or false (time-out or a
 * signal).  The event loop's wait outside the hcs host (inside it,
 * hcs.interrupt.wait, which Ctrl-C interrupts). */
static int l_poll(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  nfds_t n = (nfds_t)lua_rawlen(L, 1);
  struct pollfd *p = lua_newuserdatauv(L, (n ? n : 1) * sizeof *p, 0);
  for (nfds_t i = 0; i < n; i++) {
    lua_rawgeti(L, 1, (lua_Integer)i + 1);
    p[i] = (struct pollfd){(int)luaL_checkinteger(L, -1), POLLIN, 0};
    lua_pop(L, 1);
  }
  int r = poll(p, n, (int)luaL_optinteger(L, 2, -1));
  if (r < 0 && errno != EINTR) return luaL_fileresult(L, 0, "poll");
  if (r <= 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_createtable(L, r, 0);
  int k = 0;
  for (nfds_t i = 0; i < n; i++)
    if (p[i].revents) {
      lua_pushinteger(L, p[i].fd);
      lua_rawseti(L, -2, ++k);
    }
  return 1;
}

/* monotonic() -> milliseconds (CLOCK_MONOTONIC), for the loop's time-outs. */
static int l_monotonic(lua_State *L) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  lua_pushnumber(L, (lua_Number)t.tv_sec * 1e3 + (lua_Number)t.tv_nsec / 1e6);
  return 1;
}

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
  static const luaL_Reg funcs[] = {{"capabilities", l_capabilities}, {"cgroup_mode", l_cgroup_mode},
                                   {"log_level", l_log_level},       {"poll", l_poll},
                                   {"monotonic", l_monotonic},       {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
