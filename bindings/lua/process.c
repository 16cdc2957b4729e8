/* hcs.core.process: processes inside a compute system.  A handle is a
 * `hcs.process` userdata whose stdin/stdout/stderr fields are real Lua
 * files over the pipes (or the pty).  Closing the handle does not kill the
 * process. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "binding.h"

#define PROCESS_MT "hcs.process"

typedef struct {
  hcs_process_t *p;
} lprocess_t;

static hcs_process_t *check_process(lua_State *L, int idx) {
  lprocess_t *p = (lprocess_t *)luaL_checkudata(L, idx, PROCESS_MT);
  if (p->p == NULL) luaL_error(L, "attempt to use a closed process handle");
  return p->p;
}

/* create(system, params [, {stdio="inherit"|"null"|"log", detach=bool}]); detach: reaped by
 * a reaper that records its exit (hcs_process_create_detached) */
int hcs_lua_process_create(lua_State *L) {
  hcs_system_t *cs = hcs_lua_check_system(L, 1);
  json_t *doc = hcs_lua_check_json(L, 2);
  char *text = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  hcs_compute_stdio_t inherit = {0, 1, 2}, *stdio = NULL;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "stdio");
    const char *mode = luaL_optstring(L, -1, "null");
    if (strcmp(mode, "inherit") == 0)
      stdio = &inherit;
    else if (strcmp(mode, "log") == 0) /* stdin /dev/null, output to the system log */
      inherit = (hcs_compute_stdio_t){-1, HCS_STDIO_LOG, HCS_STDIO_LOG}, stdio = &inherit;
    else if (strcmp(mode, "null") != 0) {
      free(text);
      return luaL_argerror(L, 3, "stdio must be \"inherit\", \"null\" or \"log\"");
    }
    lua_pop(L, 1);
    lua_getfield(L, 3, "stdin");
    if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) inherit.in = -1; /* stdin=false: /dev/null */
    lua_pop(L, 1);
  }
  lprocess_t *p = (lprocess_t *)lua_newuserdatauv(L, sizeof *p, 1);
  p->p = NULL;
  luaL_setmetatable(L, PROCESS_MT);
  hcs_error_t err = NULL;
  bool detach = false;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "detach");
    detach = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  p->p = detach ? hcs_process_create_detached(cs, text, stdio, &err) : hcs_process_create_ex(cs, text, stdio, &err);
  free(text);
  if (p->p == NULL) return hcs_lua_fail(L, &err);
  int in, out, er;
  hcs_process_take_stdio(p->p, &in, &out, &er);
  lua_createtable(L, 0, 3);
  if (in >= 0 && in == out) { /* a console: one fd both ways */
    hcs_lua_push_fd_file(L, dup(in), "w");
    lua_setfield(L, -2, "stdin");
    hcs_lua_push_fd_file(L, out, "r");
    lua_setfield(L, -2, "stdout");
  } else {
    hcs_lua_push_fd_file(L, in, "w");
    lua_setfield(L, -2, "stdin");
    hcs_lua_push_fd_file(L, out, "r");
    lua_setfield(L, -2, "stdout");
    hcs_lua_push_fd_file(L, er, "r");
    lua_setfield(L, -2, "stderr");
  }
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static int close_handle(lua_State *L) {
  lprocess_t *p = (lprocess_t *)luaL_checkudata(L, 1, PROCESS_MT);
  hcs_process_close(p->p);
  p->p = NULL;
  return 0;
}

static int m_tostring(lua_State *L) {
  lprocess_t *p = (lprocess_t *)luaL_checkudata(L, 1, PROCESS_MT);
  if (p->p)
    lua_pushfstring(L, "hcs.process (pid %d)", hcs_process_pid(p->p));
  else
    lua_pushliteral(L, "hcs.process (closed)");
  return 1;
}

static int m_pid(lua_State *L) {
  lua_pushinteger(L, hcs_process_pid(check_process(L, 1)));
  return 1;
}

static const struct {
  const char *name;
  int sig;
} signals[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL}, {"USR1", SIGUSR1},
               {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"WINCH", SIGWINCH}};

static int check_signal(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, idx);
    luaL_argcheck(L, n > 0 && n < NSIG, idx, "signal number out of range");
    return (int)n;
  }
  const char *name = hcs_lua_opt_name(L, idx, "TERM");
  if (strncmp(name, "SIG", 3) == 0) name += 3;
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
    if (strcmp(signals[i].name, name) == 0) return signals[i].sig;
  return luaL_argerror(L, idx, "unknown signal name");
}

static int m_signal(lua_State *L) {
  hcs_process_t *p = check_process(L, 1);
  int sig = check_signal(L, 2);
  hcs_error_t err = NULL;
  if (hcs_process_signal(p, sig, &err) < 0) return hcs_lua_fail(L, &err);
  return hcs_lua_ok(L);
}

static int m_terminate(lua_State *L) {
  hcs_error_t err = NULL;
  if (hcs_process_terminate(check_process(L, 1), &err) < 0) return hcs_lua_fail(L, &err);
  return hcs_lua_ok(L);
}

/* wait([timeout_ms]) -> true, exit_code | false (timed out) */
static int m_wait(lua_State *L) {
  hcs_process_t *p = check_process(L, 1);
  int timeout = (int)luaL_optinteger(L, 2, -1);
  hcs_error_t err = NULL;
  int r = hcs_process_wait(p, timeout, &err);
  if (r < 0) return hcs_lua_fail(L, &err);
  lua_pushboolean(L, r);
  if (r == 0) return 1;
  lua_pushinteger(L, hcs_process_exit_code(p, NULL));
  return 2;
}

static int m_exit_code(lua_State *L) {
  hcs_error_t err = NULL;
  int code = hcs_process_exit_code(check_process(L, 1), &err);
  if (code < 0) return hcs_lua_fail(L, &err);
  lua_pushinteger(L, code);
  return 1;
}

static int m_event_fd(lua_State *L) {
  lua_pushinteger(L, hcs_process_event_fd(check_process(L, 1)));
  return 1;
}

static int m_resize(lua_State *L) {
  hcs_process_t *p = check_process(L, 1);
  lua_Integer rows = luaL_checkinteger(L, 2), cols = luaL_checkinteger(L, 3);
  luaL_argcheck(L, rows >= 0 && rows <= 65535, 2, "rows out of range");
  luaL_argcheck(L, cols >= 0 && cols <= 65535, 3, "columns out of range");
  hcs_error_t err = NULL;
  if (hcs_process_resize_console(p, (unsigned short)rows, (unsigned short)cols, &err) < 0) return hcs_lua_fail(L, &err);
  return hcs_lua_ok(L);
}

/* close_stdin(): close the write end so the process sees EOF. */
static int m_close_stdin(lua_State *L) {
  check_process(L, 1);
  lua_getiuservalue(L, 1, 1);
  lua_getfield(L, -1, "stdin");
  if (!lua_isnil(L, -1)) {
    luaL_Stream *s = (luaL_Stream *)luaL_checkudata(L, -1, LUA_FILEHANDLE);
    if (s->closef) { /* f:close() through the io library: it resets closef */
      lua_getfield(L, -1, "close");
      lua_pushvalue(L, -2);
      lua_call(L, 1, 0);
    }
  }
  return hcs_lua_ok(L);
}

static int m_properties(lua_State *L) {
  hcs_error_t err = NULL;
  char *out = hcs_process_properties(check_process(L, 1), &err);
  return hcs_lua_push_doc(L, out, &err);
}

static const luaL_Reg methods[] = {{"pid", m_pid},
                                   {"signal", m_signal},
                                   {"kill", m_signal},
                                   {"terminate", m_terminate},
                                   {"wait", m_wait},
                                   {"exit_code", m_exit_code},
                                   {"event_fd", m_event_fd},
                                   {"resize", m_resize},
                                   {"close_stdin", m_close_stdin},
                                   {"properties", m_properties},
                                   {"close", close_handle},
                                   {NULL, NULL}};

/* Methods first, then the stdio files (p.stdin, p.stdout, p.stderr). */
static int m_index(lua_State *L) {
  luaL_checkudata(L, 1, PROCESS_MT);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  if (!lua_isnil(L, -1)) return 1;
  lua_getiuservalue(L, 1, 1);
  if (!lua_istable(L, -1)) return 0;
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

/* open(system, pid) -> a handle on a process of the system created elsewhere. */
static int l_open(lua_State *L) {
  hcs_system_t *cs = hcs_lua_check_system(L, 1);
  lua_Integer pid = luaL_checkinteger(L, 2);
  luaL_argcheck(L, pid > 0 && pid <= INT32_MAX, 2, "not a pid");
  lprocess_t *p = (lprocess_t *)lua_newuserdatauv(L, sizeof *p, 1);
  p->p = NULL;
  luaL_setmetatable(L, PROCESS_MT);
  hcs_error_t err = NULL;
  p->p = hcs_process_open(cs, (int)pid, &err);
  if (p->p == NULL) return hcs_lua_fail(L, &err);
  return 1;
}

int hcs_lua_open_process(lua_State *L) {
  static const luaL_Reg funcs[] = {{"create", hcs_lua_process_create}, {"open", l_open}, {NULL, NULL}};
  static const luaL_Reg metamethods[] = {
      {"__gc", close_handle}, {"__close", close_handle}, {"__tostring", m_tostring}, {NULL, NULL}};
  luaL_newmetatable(L, PROCESS_MT);
  luaL_setfuncs(L, metamethods, 0);
  luaL_newlib(L, methods);
  lua_pushcclosure(L, m_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
