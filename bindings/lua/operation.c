/* hcs.operation: a libhcs operation (hcs/operation.h) as a Lua handle.
 * cs:start_async() (and shutdown/terminate/pause/resume/delete) -> op with
 * fd(), done(), result() -> true [, doc] | nil, msg, errno, cancel(),
 * close().  op:wait([ms]) is added by hcs.loop (it yields in a task).  The
 * op keeps its system handle alive (a user value) until it is closed;
 * closing waits for the verb. */
#include "binding.h"
#include "hcs/operation.h"

#define OPERATION_MT "hcs.operation"

typedef struct {
  hcs_operation_t *op;
} lop_t;

static hcs_operation_t *check_op(lua_State *L) {
  lop_t *o = (lop_t *)luaL_checkudata(L, 1, OPERATION_MT);
  if (o->op == NULL) luaL_error(L, "attempt to use a closed operation");
  return o->op;
}

/* Push a new operation handle owning the value at owner (kept alive). */
hcs_operation_t *hcs_lua_new_operation(lua_State *L, int owner) {
  owner = lua_absindex(L, owner);
  lop_t *o = (lop_t *)lua_newuserdatauv(L, sizeof *o, 1);
  o->op = NULL;
  luaL_setmetatable(L, OPERATION_MT);
  lua_pushvalue(L, owner);
  lua_setiuservalue(L, -2, 1);
  o->op = hcs_operation_create(NULL, NULL);
  if (o->op == NULL) luaL_error(L, "create an operation: out of resources");
  return o->op;
}

static int m_fd(lua_State *L) {
  lua_pushinteger(L, hcs_operation_fd(check_op(L)));
  return 1;
}

static int m_done(lua_State *L) {
  lua_pushboolean(L, hcs_operation_completed(check_op(L)));
  return 1;
}

static int m_result(lua_State *L) {
  hcs_operation_t *op = check_op(L);
  if (!hcs_operation_completed(op)) return luaL_error(L, "operation not completed (wait for it first)");
  char *doc = NULL;
  hcs_error_t err = NULL;
  if (hcs_operation_result(op, &doc, &err) < 0) return hcs_lua_fail(L, &err);
  lua_pushboolean(L, 1);
  if (doc == NULL) return 1;
  hcs_lua_push_json_string(L, doc);
  return 2;
}

static int m_cancel(lua_State *L) {
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_operation_cancel(check_op(L), &err), &err);
}

static int m_close(lua_State *L) {
  lop_t *o = (lop_t *)luaL_checkudata(L, 1, OPERATION_MT);
  hcs_operation_close(o->op);
  o->op = NULL;
  return 0;
}

int hcs_lua_open_operation(lua_State *L) {
  static const luaL_Reg methods[] = {{"fd", m_fd},         {"done", m_done},   {"result", m_result},
                                     {"cancel", m_cancel}, {"close", m_close}, {NULL, NULL}};
  static const luaL_Reg metamethods[] = {{"__gc", m_close}, {"__close", m_close}, {NULL, NULL}};
  luaL_newmetatable(L, OPERATION_MT);
  luaL_setfuncs(L, metamethods, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  /* The module table: the metatable's methods, for hcs.loop to extend. */
  luaL_getmetatable(L, OPERATION_MT);
  lua_getfield(L, -1, "__index");
  lua_remove(L, -2);
  return 1;
}
