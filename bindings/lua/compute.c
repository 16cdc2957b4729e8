/* hcs.core.compute: compute systems.  A handle is a `hcs.compute.system`
 * userdata; closing it (or collecting it) never stops the system. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "binding.h"
#include "hcs/operation.h"
#include "hcs/vm.h"

#define SYSTEM_MT "hcs.compute.system"

typedef struct {
  hcs_system_t *cs;
} lsystem_t;

static int io_fclose(lua_State *L) {
  luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  int ok = fclose(p->f) == 0;
  return luaL_fileresult(L, ok, NULL);
}

/* A real Lua file (io library metatable) over a pipe or pty fd; takes
 * ownership of fd.  Pushes nil when fd < 0. */
void hcs_lua_push_fd_file(lua_State *L, int fd, const char *mode) {
  if (fd < 0) {
    lua_pushnil(L);
    return;
  }
  luaL_Stream *p = (luaL_Stream *)lua_newuserdatauv(L, sizeof(luaL_Stream), 0);
  p->closef = NULL; /* "closed" until fully made */
  luaL_setmetatable(L, LUA_FILEHANDLE);
  p->f = fdopen(fd, mode);
  if (p->f == NULL) {
    close(fd);
    luaL_error(L, "fdopen: %s", strerror(errno));
  }
  if (mode[0] == 'w') setvbuf(p->f, NULL, _IOLBF, 0);
  p->closef = io_fclose;
}

hcs_system_t *hcs_lua_check_system(lua_State *L, int idx) {
  lsystem_t *s = (lsystem_t *)luaL_checkudata(L, idx, SYSTEM_MT);
  if (s->cs == NULL) luaL_error(L, "attempt to use a closed compute system handle");
  return s->cs;
}

static lsystem_t *new_handle(lua_State *L) {
  lsystem_t *s = (lsystem_t *)lua_newuserdatauv(L, sizeof *s, 0);
  s->cs = NULL;
  luaL_setmetatable(L, SYSTEM_MT);
  return s;
}

static const char *opt_root(lua_State *L, int idx) {
  if (!lua_istable(L, idx)) return NULL;
  lua_getfield(L, idx, "root");
  const char *r = hcs_lua_to_name(L, -1, "option 'root'");
  lua_pop(L, 1);
  return r;
}

/* create(id, config [, {root=, stdio="inherit"|"null"|"log"}]) */
static int l_create(lua_State *L) {
  const char *id = hcs_lua_check_name(L, 1);
  json_t *doc = hcs_lua_check_json(L, 2);
  char *text = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  const char *root = opt_root(L, 3);
  hcs_compute_stdio_t inherit = {0, 1, 2}, *stdio = NULL;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "stdio");
    const char *mode = luaL_optstring(L, -1, "null");
    if (strcmp(mode, "inherit") == 0)
      stdio = &inherit;
    else if (strcmp(mode, "log") == 0) /* stdin /dev/null (or attachable: stdin=true), output to the log */
      inherit = (hcs_compute_stdio_t){-1, HCS_STDIO_LOG, HCS_STDIO_LOG}, stdio = &inherit;
    else if (strcmp(mode, "null") != 0) {
      free(text);
      return luaL_argerror(L, 3, "stdio must be \"inherit\", \"null\" or \"log\"");
    }
    lua_pop(L, 1);
    lua_getfield(L, 3, "stdin");
    if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) inherit.in = -1; /* stdin=false: /dev/null */
    if (lua_toboolean(L, -1) && inherit.out == HCS_STDIO_LOG) inherit.in = HCS_STDIO_ATTACH;
    lua_pop(L, 1);
  }
  lsystem_t *s = new_handle(L);
  hcs_error_t err = NULL;
  s->cs = hcs_compute_create(root, id, text, stdio, &err);
  free(text);
  if (s->cs == NULL) return hcs_lua_fail(L, &err);
  return 1;
}

static int l_open(lua_State *L) {
  const char *id = hcs_lua_check_name(L, 1);
  const char *root = lua_isstring(L, 2) ? hcs_lua_check_name(L, 2) : opt_root(L, 2);
  lsystem_t *s = new_handle(L);
  hcs_error_t err = NULL;
  s->cs = hcs_compute_open(root, id, &err);
  if (s->cs == NULL) return hcs_lua_fail(L, &err);
  return 1;
}

static int l_validate(lua_State *L) {
  json_t *doc = hcs_lua_check_json(L, 1);
  char *text = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  hcs_error_t err = NULL;
  int r = hcs_compute_validate(text, &err);
  free(text);
  return r < 0 ? hcs_lua_fail(L, &err) : hcs_lua_ok(L);
}

/* enumerate([filter [, root]]) */
static int l_enumerate(lua_State *L) {
  char *filter = NULL;
  if (!lua_isnoneornil(L, 1)) {
    json_t *f = hcs_lua_check_json(L, 1);
    filter = json_dumps(f, JSON_COMPACT);
    json_decref(f);
  }
  const char *root = hcs_lua_opt_name(L, 2, NULL);
  hcs_error_t err = NULL;
  char *out = hcs_compute_enumerate(root, filter, &err);
  free(filter);
  return hcs_lua_push_doc(L, out, &err);
}

static int close_handle(lua_State *L) {
  lsystem_t *s = (lsystem_t *)luaL_checkudata(L, 1, SYSTEM_MT);
  hcs_compute_close(s->cs);
  s->cs = NULL;
  return 0;
}

static int m_tostring(lua_State *L) {
  lsystem_t *s = (lsystem_t *)luaL_checkudata(L, 1, SYSTEM_MT);
  if (s->cs)
    lua_pushfstring(L, "hcs.compute.system (%s)", hcs_compute_id(s->cs));
  else
    lua_pushliteral(L, "hcs.compute.system (closed)");
  return 1;
}

static int m_id(lua_State *L) {
  lua_pushstring(L, hcs_compute_id(hcs_lua_check_system(L, 1)));
  return 1;
}

static int m_start(lua_State *L) {
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_compute_start(hcs_lua_check_system(L, 1), &err), &err);
}

static int m_shutdown(lua_State *L) {
  hcs_system_t *cs = hcs_lua_check_system(L, 1);
  int timeout = (int)luaL_optinteger(L, 2, 10000);
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_compute_shutdown(cs, timeout, &err), &err);
}

static int m_terminate(lua_State *L) {
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_compute_terminate(hcs_lua_check_system(L, 1), &err), &err);
}

static int m_pause(lua_State *L) {
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_compute_pause(hcs_lua_check_system(L, 1), &err), &err);
}

/* cs:save(path): a VM's memory and device state to a file (docs/vm.md). */
static int m_save(lua_State *L) {
  hcs_system_t *cs = hcs_lua_check_system(L, 1);
  const char *path = luaL_checkstring(L, 2);
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_vm_save(cs, path, &err), &err);
}

/* restore(id, path [, {root=}]): a new system from a saved VM state. */
static int l_restore(lua_State *L) {
  const char *id = hcs_lua_check_name(L, 1);
  const char *path = luaL_checkstring(L, 2);
  const char *root = opt_root(L, 3);
  lsystem_t *s = new_handle(L);
  hcs_error_t err = NULL;
  s->cs = hcs_vm_restore(root, id, path, &err);
  if (s->cs == NULL) return hcs_lua_fail(L, &err);
  return 1;
}

/* accelerator([root]) -> {Accelerator=, Reason=} (no probe is run). */
static int l_accelerator(lua_State *L) {
  hcs_error_t err = NULL;
  char *out = hcs_vm_accelerator(hcs_lua_opt_name(L, 1, NULL), &err);
  if (out == NULL) return hcs_lua_fail(L, &err);
  hcs_lua_push_json_string(L, out);
  return 1;
}

static int m_resume(lua_State *L) {
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_compute_resume(hcs_lua_check_system(L, 1), &err), &err);
}

/* properties([types]) : types is a list like {"Statistics", "ProcessList"}
 * or a full query table {PropertyTypes = {...}}. */
static int m_properties(lua_State *L) {
  hcs_system_t *cs = hcs_lua_check_system(L, 1);
  char *query = NULL;
  if (lua_istable(L, 2)) {
    json_t *q = hcs_lua_check_json(L, 2);
    if (json_is_array(q)) q = json_pack("{s:o}", "PropertyTypes", q);
    query = json_dumps(q, JSON_COMPACT);
    json_decref(q);
  } else if (!lua_isnoneornil(L, 2)) {
    luaL_argerror(L, 2, "expected a list of property types");
  }
  hcs_error_t err = NULL;
  char *out = hcs_compute_properties(cs, query, &err);
  free(query);
  return hcs_lua_push_doc(L, out, &err);
}

static int m_modify(lua_State *L) {
  hcs_system_t *cs = hcs_lua_check_system(L, 1);
  json_t *req = hcs_lua_check_json(L, 2);
  char *text = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  hcs_error_t err = NULL;
  int r = hcs_compute_modify(cs, text, &err);
  free(text);
  return hcs_lua_push_status(L, r, &err);
}

/* Has the embedding host seen a Ctrl-C?  The `hcs` host publishes a
 * sig_atomic_t flag under "hcs.interrupted" in the registry; elsewhere a
 * signal only restarts the wait. */
static bool host_interrupted(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "hcs.interrupted");
  volatile sig_atomic_t *flag = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return flag && *flag;
}

/* wait([timeout_ms]) -> true (stopped) | false (timed out).  Ctrl-C in the
 * host interrupts it: the poll is ours so EINTR can end it. */
static int m_wait(lua_State *L) {
  hcs_system_t *cs = hcs_lua_check_system(L, 1);
  int timeout = (int)luaL_optinteger(L, 2, -1);
  hcs_error_t err = NULL;
  int fd = hcs_compute_event_fd(cs, &err);
  if (fd >= 0) {
    struct pollfd p = {fd, POLLIN, 0};
    int r;
    while ((r = poll(&p, 1, timeout)) < 0 && errno == EINTR)
      if (host_interrupted(L)) { /* the host's hook raises "interrupted!" next */
        hcs_error_make(&err, EINTR, "wait for `%s`", hcs_compute_id(cs));
        return hcs_lua_fail(L, &err);
      }
    if (r == 0) {
      lua_pushboolean(L, 0);
      return 1;
    }
    timeout = 0;
  }
  hcs_error_release(&err);
  int r = hcs_compute_wait(cs, timeout, &err);
  if (r < 0) return hcs_lua_fail(L, &err);
  lua_pushboolean(L, r);
  return 1;
}

static int m_event_fd(lua_State *L) {
  hcs_error_t err = NULL;
  int fd = hcs_compute_event_fd(hcs_lua_check_system(L, 1), &err);
  if (fd < 0) return hcs_lua_fail(L, &err);
  lua_pushinteger(L, fd);
  return 1;
}

/* seccomp_listener() -> the fd of init's seccomp user-notification
 * listener (Linux.Seccomp.Listener), owned by the caller, for an agent. */
static int m_seccomp_listener(lua_State *L) {
  hcs_error_t err = NULL;
  int fd = hcs_compute_seccomp_listener(hcs_lua_check_system(L, 1), &err);
  if (fd < 0) return hcs_lua_fail(L, &err);
  lua_pushinteger(L, fd);
  return 1;
}

/* stdio() -> stdin (writable), stdout, stderr files of init, once. */
static int m_stdio(lua_State *L) {
  hcs_system_t *cs = hcs_lua_check_system(L, 1);
  int in, out, er;
  hcs_compute_take_stdio(cs, &in, &out, &er);
  if (in >= 0 && in == out) {
    int d = dup(in);
    hcs_lua_push_fd_file(L, d, "w");
    hcs_lua_push_fd_file(L, out, "r");
    lua_pushnil(L);
    return 3;
  }
  hcs_lua_push_fd_file(L, in, "w");
  hcs_lua_push_fd_file(L, out, "r");
  hcs_lua_push_fd_file(L, er, "r");
  return 3;
}

static int m_resize(lua_State *L) {
  hcs_system_t *cs = hcs_lua_check_system(L, 1);
  lua_Integer rows = luaL_checkinteger(L, 2), cols = luaL_checkinteger(L, 3);
  luaL_argcheck(L, rows >= 0 && rows <= 65535, 2, "rows out of range");
  luaL_argcheck(L, cols >= 0 && cols <= 65535, 3, "columns out of range");
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_compute_resize_console(cs, (unsigned short)rows, (unsigned short)cols, &err), &err);
}

/* Seconds since the epoch -> ns, saturated (the year 2999 does not fit). */
static long long seconds_to_ns(lua_Number s) {
  if (s <= 0) return 0;
  if (s >= 9.2e9) return LLONG_MAX;
  return (long long)(s * 1e9);
}

/* logs([{follow=, timestamps=, since=, ["until"]=, tail=, stdout=, stderr=}]):
 * the system log to fds 1 and 2 (or the files given); since/until in
 * seconds since the epoch. */
static int m_logs(lua_State *L) {
  hcs_system_t *cs = hcs_lua_check_system(L, 1);
  hcs_compute_log_options_t o = {.tail = -1, .out_fd = 1, .err_fd = 2};
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "follow");
    o.follow = lua_toboolean(L, -1);
    lua_getfield(L, 2, "timestamps");
    o.timestamps = lua_toboolean(L, -1);
    lua_getfield(L, 2, "since");
    o.since_ns = seconds_to_ns(luaL_optnumber(L, -1, 0));
    lua_getfield(L, 2, "until");
    o.until_ns = seconds_to_ns(luaL_optnumber(L, -1, 0));
    lua_getfield(L, 2, "tail");
    o.tail = (long)luaL_optinteger(L, -1, -1);
    lua_pop(L, 5);
    /* stdout=, stderr=: Lua files to write to instead of fds 1 and 2. */
    const char *names[2] = {"stdout", "stderr"};
    int *fds[2] = {&o.out_fd, &o.err_fd};
    for (int i = 0; i < 2; i++) {
      lua_getfield(L, 2, names[i]);
      if (!lua_isnil(L, -1)) {
        luaL_Stream *f = (luaL_Stream *)luaL_checkudata(L, -1, LUA_FILEHANDLE);
        luaL_argcheck(L, f->closef != NULL, 2, "closed file");
        fflush(f->f);
        *fds[i] = fileno(f->f);
      }
      lua_pop(L, 1);
    }
  }
  fflush(stdout);
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_compute_logs(cs, &o, &err), &err);
}

/* start_async() etc.: an hcs.operation; the verb runs on its own thread,
 * so the system handle must not be used until the operation is done. */
static int async_verb(lua_State *L, int verb) {
  hcs_system_t *cs = hcs_lua_check_system(L, 1);
  hcs_operation_t *op = hcs_lua_new_operation(L, 1);
  hcs_error_t err = NULL;
  int r = -1;
  switch (verb) {
  case 0: r = hcs_compute_start_async(cs, op, &err); break;
  case 1: r = hcs_compute_shutdown_async(cs, (int)luaL_optinteger(L, 2, -1), op, &err); break;
  case 2: r = hcs_compute_terminate_async(cs, op, &err); break;
  case 3: r = hcs_compute_pause_async(cs, op, &err); break;
  case 4: r = hcs_compute_resume_async(cs, op, &err); break;
  default: r = hcs_compute_delete_async(cs, lua_toboolean(L, 2), op, &err); break;
  }
  if (r < 0) return hcs_lua_fail(L, &err);
  return 1;
}
static int m_start_async(lua_State *L) { return async_verb(L, 0); }
static int m_shutdown_async(lua_State *L) { return async_verb(L, 1); }
static int m_terminate_async(lua_State *L) { return async_verb(L, 2); }
static int m_pause_async(lua_State *L) { return async_verb(L, 3); }
static int m_resume_async(lua_State *L) { return async_verb(L, 4); }
static int m_delete_async(lua_State *L) { return async_verb(L, 5); }

static int m_delete(lua_State *L) {
  hcs_system_t *cs = hcs_lua_check_system(L, 1);
  hcs_error_t err = NULL;
  return hcs_lua_push_status(L, hcs_compute_delete(cs, lua_toboolean(L, 2), &err), &err);
}

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

/* The size of our terminal (stdout's, else stdin's); false if neither is one. */
static bool terminal_size(struct winsize *ws) {
  return (ioctl(1, TIOCGWINSZ, ws) == 0 || ioctl(0, TIOCGWINSZ, ws) == 0) && ws->ws_row && ws->ws_col;
}

/* terminal_size() -> rows, columns of our terminal, or nil: the ConsoleSize
 * a `-t` process starts with. */
static int l_terminal_size(lua_State *L) {
  struct winsize ws;
  if (!terminal_size(&ws)) return 0;
  lua_pushinteger(L, ws.ws_row);
  lua_pushinteger(L, ws.ws_col);
  return 2;
}

static volatile sig_atomic_t winch;
static void on_winch(int sig) {
  (void)sig;
  winch = 1;
}

/* relay(console_file): copy our stdin to a console and the console
 * to our stdout until the console closes; the terminal is raw meanwhile
 * and its size follows ours: set on entry and on every SIGWINCH (on the
 * pty master, so the kernel signals the container's foreground group).
 * For `hcs run -t` / `hcs exec -t`. */
static int l_relay(lua_State *L) {
  luaL_Stream *stream = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  luaL_argcheck(L, stream->closef != NULL, 1, "closed file");
  int con = fileno(stream->f);
  struct termios saved, raw;
  int tty = isatty(0) && tcgetattr(0, &saved) == 0;
  if (tty) {
    raw = saved;
    cfmakeraw(&raw);
    tcsetattr(0, TCSANOW, &raw);
  }
  /* SIGWINCH is blocked but while we wait in ppoll, so none is missed. */
  struct sigaction sa, old_sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_winch;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGWINCH, &sa, &old_sa);
  sigset_t block, orig, waitmask;
  sigemptyset(&block);
  sigaddset(&block, SIGWINCH);
  sigprocmask(SIG_BLOCK, &block, &orig);
  waitmask = orig;
  sigdelset(&waitmask, SIGWINCH);
  winch = 1;
  char buf[8192];
  int in_open = 1;
  for (;;) {
    if (winch) {
      winch = 0;
      struct winsize ws;
      if (terminal_size(&ws)) ioctl(con, TIOCSWINSZ, &ws);
    }
    struct pollfd p[2] = {{con, POLLIN, 0}, {0, in_open ? POLLIN : 0, 0}};
    if (ppoll(p, 2, NULL, &waitmask) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[0].revents) {
      ssize_t n = read(con, buf, sizeof buf);
      if (n <= 0) break;
      if (write(1, buf, (size_t)n) < 0) break;
    }
    if (p[1].revents) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n <= 0) {
        in_open = 0;
        continue;
      }
      if (write(con, buf, (size_t)n) < 0) break;
    }
  }
  if (tty) tcsetattr(0, TCSANOW, &saved);
  sigaction(SIGWINCH, &old_sa, NULL);
  sigprocmask(SIG_SETMASK, &orig, NULL);
  return hcs_lua_ok(L);
}

/* Send one packet (kind byte + data) to the monitor; false once it is gone. */
static bool send_packet(int sock, char kind, const void *data, size_t len) {
  struct iovec v[2] = {{&kind, 1}, {(void *)data, len}};
  struct msghdr m = {.msg_iov = v, .msg_iovlen = 2};
  ssize_t r;
  do
    r = sendmsg(sock, &m, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r >= 0;
}

static void send_size(int sock) {
  struct winsize ws;
  if (!terminal_size(&ws)) return;
  uint16_t rc[2] = {ws.ws_row, ws.ws_col};
  send_packet(sock, HCS_ATTACH_RESIZE, rc, sizeof rc);
}

/* attach([{stdin=, detach_keys="\16\17", before=fn}]) -> "detached" |
 * "exited", {console=, stdin=, exit=}: our stdin to the system's (stdin nil: if it
 * has one; true: it must have one; false: not),
 * its output to our stdout and stderr, until the detach keys are typed
 * (then the system goes on) or its output ends (it stopped; exit: its exit
 * record, as the monitor sent it, so an auto-removed system's status is not
 * lost).  With a
 * console and a terminal: raw mode, and our size follows SIGWINCH.  A
 * signal (Ctrl-C without a console) returns nil, "interrupted", EINTR. */
static int m_attach(lua_State *L) {
  hcs_system_t *cs = hcs_lua_check_system(L, 1);
  bool want_stdin = true, need_stdin = false;
  size_t nkeys = 2;
  const char *keys = "\x10\x11"; /* ctrl-p, ctrl-q */
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "stdin");
    if (!lua_isnil(L, -1)) want_stdin = need_stdin = lua_toboolean(L, -1);
    lua_getfield(L, 2, "detach_keys");
    if (!lua_isnil(L, -1)) keys = luaL_checklstring(L, -1, &nkeys);
    lua_pop(L, 2);
  }
  hcs_error_t err = NULL;
  int flags = 0;
  int sock = hcs_compute_attach(cs, &flags, &err);
  if (sock < 0) return hcs_lua_fail(L, &err);
  bool console = flags & HCS_ATTACH_HAS_CONSOLE;
  bool in_open = want_stdin && (flags & HCS_ATTACH_HAS_STDIN);
  if (need_stdin && !(flags & HCS_ATTACH_HAS_STDIN)) {
    close(sock);
    luaL_pushfail(L);
    lua_pushfstring(L, "attach `%s`: the system has no attachable stdin (created without -i)", hcs_compute_id(cs));
    lua_pushinteger(L, EINVAL);
    return 3;
  }
  /* before(): called once connected, before any output is relayed (e.g.
   * start, so nothing of a starting system is missed). */
  if (lua_istable(L, 2) && lua_getfield(L, 2, "before") != LUA_TNIL) {
    if (lua_pcall(L, 0, 2, 0) != LUA_OK || lua_isnil(L, -2)) {
      close(sock);
      if (lua_isnil(L, -2)) return 2; /* nil, message from before() */
      return lua_error(L);
    }
  }
  struct termios saved, raw;
  bool tty = console && in_open && isatty(0) && tcgetattr(0, &saved) == 0;
  if (tty) {
    raw = saved;
    cfmakeraw(&raw);
    tcsetattr(0, TCSANOW, &raw);
  }
  struct sigaction sa, old_sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_winch;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGWINCH, &sa, &old_sa);
  sigset_t block, orig, waitmask;
  sigemptyset(&block);
  sigaddset(&block, SIGWINCH);
  sigprocmask(SIG_BLOCK, &block, &orig);
  waitmask = orig;
  sigdelset(&waitmask, SIGWINCH);
  winch = console;
  const char *result = "exited";
  bool interrupted = false;
  size_t matched = 0;         /* detach key bytes typed so far (held back) */
  json_t *exit_record = NULL; /* the monitor's EXIT packet */
  char buf[32 * 1024 + 1], out[sizeof buf];
  for (;;) {
    if (winch) {
      winch = 0;
      send_size(sock);
    }
    struct pollfd p[2] = {{sock, POLLIN, 0}, {0, in_open ? POLLIN : 0, 0}};
    if (ppoll(p, 2, NULL, &waitmask) < 0) {
      if (errno != EINTR) break;
      if (winch) continue;
      interrupted = true;
      break;
    }
    if (p[0].revents) {
      ssize_t n = recv(sock, buf, sizeof buf, 0);
      /* A monitor that closed with our packets unread (one from before
       * attach.c's close_client) reports ECONNRESET once, ahead of the
       * output still queued for us: read on. */
      if (n < 0 && (errno == ECONNRESET || errno == EINTR)) continue;
      if (n <= 0) break; /* the system stopped: its output is all here */
      if (buf[0] == HCS_ATTACH_EXIT) {
        json_decref(exit_record);
        exit_record = json_loadb(buf + 1, (size_t)n - 1, 0, NULL);
        continue;
      }
      if (buf[0] != HCS_ATTACH_STDOUT && buf[0] != HCS_ATTACH_STDERR) continue; /* newer monitors' kinds */
      int fd = buf[0] == HCS_ATTACH_STDERR ? 2 : 1;
      for (ssize_t off = 1; off < n;) {
        ssize_t w = write(fd, buf + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += w;
      }
    }
    if (p[1].revents) {
      ssize_t n = read(0, buf, sizeof buf - 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        in_open = false; /* a console gets its EOF character, pipes are closed */
        send_packet(sock, HCS_ATTACH_CLOSE_STDIN, "", 0);
        continue;
      }
      /* Detach keys: held back while they match, sent on if they stop matching. */
      size_t o = 0;
      bool detach = false;
      for (ssize_t i = 0; i < n && !detach; i++) {
        char c = buf[i];
        if (nkeys && c == keys[matched]) {
          if (++matched == nkeys) detach = true;
          continue;
        }
        if (matched) {
          if (o + matched > sizeof out) send_packet(sock, HCS_ATTACH_STDIN, out, o), o = 0;
          memcpy(out + o, keys, matched), o += matched, matched = 0;
          if (nkeys && c == keys[0]) {
            if (++matched == nkeys) detach = true;
            continue;
          }
        }
        if (o + 1 > sizeof out) send_packet(sock, HCS_ATTACH_STDIN, out, o), o = 0;
        out[o++] = c;
      }
      if (o) send_packet(sock, HCS_ATTACH_STDIN, out, o);
      if (detach) {
        result = "detached";
        break;
      }
    }
  }
  if (tty) tcsetattr(0, TCSANOW, &saved);
  sigaction(SIGWINCH, &old_sa, NULL);
  sigprocmask(SIG_SETMASK, &orig, NULL);
  close(sock);
  if (interrupted) {
    json_decref(exit_record);
    luaL_pushfail(L);
    lua_pushliteral(L, "interrupted");
    lua_pushinteger(L, EINTR);
    return 3;
  }
  lua_pushstring(L, result);
  lua_newtable(L);
  if (exit_record && json_is_object(exit_record)) {
    hcs_lua_push_json(L, exit_record);
    lua_setfield(L, -2, "exit");
  }
  json_decref(exit_record);
  lua_pushboolean(L, console);
  lua_setfield(L, -2, "console");
  lua_pushboolean(L, (flags & HCS_ATTACH_HAS_STDIN) != 0);
  lua_setfield(L, -2, "stdin");
  return 2;
}

int hcs_lua_open_compute(lua_State *L) {
  static const luaL_Reg funcs[] = {{"create", l_create},
                                   {"open", l_open},
                                   {"validate", l_validate},
                                   {"enumerate", l_enumerate},
                                   {"relay", l_relay},
                                   {"terminal_size", l_terminal_size},
                                   {"restore", l_restore},
                                   {"accelerator", l_accelerator},
                                   {NULL, NULL}};
  static const luaL_Reg methods[] = {{"id", m_id},
                                     {"start", m_start},
                                     {"shutdown", m_shutdown},
                                     {"terminate", m_terminate},
                                     {"pause", m_pause},
                                     {"resume", m_resume},
                                     {"save", m_save},
                                     {"properties", m_properties},
                                     {"modify", m_modify},
                                     {"wait", m_wait},
                                     {"event_fd", m_event_fd},
                                     {"seccomp_listener", m_seccomp_listener},
                                     {"stdio", m_stdio},
                                     {"resize", m_resize},
                                     {"logs", m_logs},
                                     {"attach", m_attach},
                                     {"start_async", m_start_async},
                                     {"shutdown_async", m_shutdown_async},
                                     {"terminate_async", m_terminate_async},
                                     {"pause_async", m_pause_async},
                                     {"resume_async", m_resume_async},
                                     {"delete_async", m_delete_async},
                                     {"delete", m_delete},
                                     {"close", close_handle},
                                     {"create_process", hcs_lua_process_create},
                                     {NULL, NULL}};
  static const luaL_Reg metamethods[] = {
      {"__gc", close_handle}, {"__close", close_handle}, {"__tostring", m_tostring}, {NULL, NULL}};
  luaL_newmetatable(L, SYSTEM_MT);
  luaL_setfuncs(L, metamethods, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
