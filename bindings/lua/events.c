/* hcs.core.events: subscriptions to the event journal (hcs/events.h).
 * subscribe([filter [, root]]) -> subscription with next([timeout_ms]) ->
 * event table | nil (time-out or ended), fd(), ended(), close().  The Lua
 * event loop (lua/hcs/loop.lua) polls fd() among others. */
#include "binding.h"
#include "hcs/events.h"

#define EVENTS_MT "hcs.events.subscription"

typedef struct {
  hcs_events_t *sub;
} lsub_t;

static hcs_events_t *check_sub(lua_State *L) {
  lsub_t *s = (lsub_t *)luaL_checkudata(L, 1, EVENTS_MT);
  if (s->sub == NULL) luaL_error(L, "attempt to use a closed event subscription");
  return s->sub;
}

static int l_subscribe(lua_State *L) {
  char *filter = NULL;
  if (!lua_isnoneornil(L, 1)) {
    json_t *f = hcs_lua_check_json(L, 1);
    filter = json_dumps(f, JSON_COMPACT);
    json_decref(f);
  }
  const char *root = lua_isnoneornil(L, 2) ? NULL : hcs_lua_check_name(L, 2);
  /* Created closed first: an error below leaves a consistent userdata. */
  lsub_t *s = (lsub_t *)lua_newuserdatauv(L, sizeof *s, 0);
  s->sub = NULL;
  luaL_setmetatable(L, EVENTS_MT);
  hcs_error_t err = NULL;
  s->sub = hcs_events_subscribe(root, filter, &err);
  free(filter);
  if (s->sub == NULL) return hcs_lua_fail(L, &err);
  return 1;
}

static int m_next(lua_State *L) {
  hcs_events_t *sub = check_sub(L);
  int timeout = (int)luaL_optinteger(L, 2, -1);
  hcs_error_t err = NULL;
  char *e = hcs_events_next(sub, timeout, &err);
  if (e == NULL && err) return hcs_lua_fail(L, &err);
  if (e == NULL) {
    lua_pushnil(L);
    return 1;
  }
  hcs_lua_push_json_string(L, e);
  return 1;
}

static int m_fd(lua_State *L) {
  lua_pushinteger(L, hcs_events_fd(check_sub(L)));
  return 1;
}

static int m_ended(lua_State *L) {
  lua_pushboolean(L, hcs_events_ended(check_sub(L)));
  return 1;
}

static int m_close(lua_State *L) {
  lsub_t *s = (lsub_t *)luaL_checkudata(L, 1, EVENTS_MT);
  hcs_events_close(s->sub);
  s->sub = NULL;
  return 0;
}

static int m_tostring(lua_State *L) {
  lsub_t *s = (lsub_t *)luaL_checkudata(L, 1, EVENTS_MT);
  lua_pushfstring(L, "hcs.events.subscription (%s)", s->sub ? "open" : "closed");
  return 1;
}

int hcs_lua_open_events(lua_State *L) {
  static const luaL_Reg funcs[] = {{"subscribe", l_subscribe}, {NULL, NULL}};
  static const luaL_Reg methods[] = {
      {"next", m_next}, {"fd", m_fd}, {"ended", m_ended}, {"close", m_close}, {NULL, NULL}};
  static const luaL_Reg metamethods[] = {
      {"__gc", m_close}, {"__close", m_close}, {"__tostring", m_tostring}, {NULL, NULL}};
  luaL_newmetatable(L, EVENTS_MT);
  luaL_setfuncs(L, metamethods, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
