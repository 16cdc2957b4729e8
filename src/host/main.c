/* The `hcs` host: embeds Lua 5.4 with the hcs module preloaded.
 *
 *   hcs script.lua [args]   run a workflow or any Lua script (arg table as lua)
 *   hcs -e CODE / -l MOD / -i / -v / -   the stock lua(1) flags
 *   hcs COMMAND [args]      a CLI command written in Lua (lua/hcs/cli/COMMAND.lua)
 *   hcs                     the REPL on a terminal, else run stdin
 *
 * Modelled on lua.c: main() only creates the state; all work runs in pmain
 * under lua_pcall with a traceback handler, so busted --lua=hcs works. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "hcs/hcs.h"
#include "host.h"
#include "host_config.h"

int luaopen_hcs_core(lua_State *L);

const char *hcs_progname = "hcs";
static lua_State *globalL;
/* Set by Ctrl-C while Lua runs; published in the registry (HCS_INTERRUPT_KEY)
 * so a binding blocked in poll() gives up on EINTR instead of polling again
 * and the hook below can raise. */
volatile sig_atomic_t hcs_host_interrupted;

/* SIGINT, SIGTERM and SIGHUP raise a Lua error at the next instruction
 * (lua.c's hook), so `<close>` handlers and workflow rollbacks run before
 * the process ends; the handler resets the signal to its default, so a
 * second one kills. */
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
static bool hup_ignored; /* at start (nohup): it stays ignored */
static volatile sig_atomic_t last_signal;
static volatile sig_atomic_t in_wait; /* in hcs.interrupt.wait: Lua runs again at once */

static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  hcs_host_interrupted = 0;
  /* No position: where the signal landed says nothing to the user. */
  if (last_signal == SIGINT)
    lua_pushliteral(L, "interrupted!");
  else
    lua_pushstring(L, last_signal == SIGTERM ? "interrupted by SIGTERM" : "interrupted by SIGHUP");
  lua_error(L);
}

#define STOP_HOOK_MASK (LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT)

static void laction(int sig) {
  /* A second Ctrl-C kills a process stuck in C; not one in
   * hcs.interrupt.wait, whose poll returns at once to raise the error (two
   * quick Ctrl-C must not kill `run --rm` before its clean-up). */
  if (!in_wait) signal(sig, SIG_DFL);
  last_signal = sig;
  hcs_host_interrupted = 1;
  lua_sethook(globalL, lstop, STOP_HOOK_MASK, 1);
}

static void set_stop_handlers(void (*handler)(int)) {
  for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
    if (stop_signals[i] != SIGHUP || !hup_ignored) signal(stop_signals[i], handler);
}

/* SIGHUP ignored at start (nohup) stays ignored.  SIGINT is taken over
 * even when ignored (a background job of a shell), as lua.c does. */
static void record_ignored_signals(void) {
  struct sigaction sa;
  hup_ignored = sigaction(SIGHUP, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
}

static void block_stop_signals(sigset_t *old) {
  sigset_t block;
  sigemptyset(&block);
  for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
    sigaddset(&block, stop_signals[i]);
  sigprocmask(SIG_BLOCK, &block, old);
}

/* Take a pending "interrupted" hook off (it fires again after the clean-up). */
static bool defer_hook(void) {
  bool deferred = globalL && lua_gethook(globalL) == lstop;
  if (deferred) lua_sethook(globalL, NULL, 0, 0);
  return deferred;
}

static void restore_hook(bool deferred, const sigset_t *old) {
  if (deferred) lua_sethook(globalL, lstop, STOP_HOOK_MASK, 1);
  sigprocmask(SIG_SETMASK, old, NULL); /* a signal that came meanwhile is delivered here */
}

/* hcs.interrupt.protect(fn, ...): pcall(fn, ...) with SIGINT, SIGTERM and
 * SIGHUP held back, for clean-ups that must not stop half-way (a rollback,
 * a destroy).  A signal that came before (the hook already set) or during
 * fn takes effect once fn returned. */
static int l_protect(lua_State *L) {
  luaL_checkany(L, 1);
  sigset_t old;
  block_stop_signals(&old);
  bool deferred = defer_hook();
  int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  lua_pushboolean(L, status == LUA_OK);
  lua_insert(L, 1);
  restore_hook(deferred, &old);
  return lua_gettop(L);
}

/* hcs.interrupt.guard(body, cleanup): body(); then cleanup(ok, err) with the
 * signals held back, whether body returned or raised (an interrupt
 * included): no Lua code runs between the two, so no signal can skip the
 * clean-up.  Returns body's results, or raises its error (or cleanup's). */
static int l_guard(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_pushvalue(L, 1);
  int status = lua_pcall(L, 0, LUA_MULTRET, 0);
  sigset_t old;
  block_stop_signals(&old);
  bool deferred = defer_hook();
  int nres = lua_gettop(L) - 2;
  lua_pushvalue(L, 2);
  lua_pushboolean(L, status == LUA_OK);
  if (status == LUA_OK)
    lua_pushnil(L);
  else
    lua_pushvalue(L, 3);
  int cstatus = lua_pcall(L, 2, 0, 0);
  restore_hook(deferred, &old);
  if (status != LUA_OK) {
    if (cstatus != LUA_OK) {
      luaL_tolstring(L, 3, NULL);
      lua_pushliteral(L, "\n(clean-up: ");
      luaL_tolstring(L, -3, NULL);
      lua_pushliteral(L, ")");
      lua_concat(L, 4);
    } else {
      lua_settop(L, 3);
    }
    return lua_error(L);
  }
  if (cstatus != LUA_OK) return lua_error(L);
  return nres;
}

/* hcs.interrupt.wait(fd [, ms]): poll fd readable; true, or false on a
 * timeout or a signal (whose error is raised right after).
 * hcs.interrupt.wait({fd, ...} [, ms]): the same over many fds (the event
 * loop, hcs.loop): a list of the readable ones (hang-ups count), or false. */
static int l_wait(lua_State *L) {
  bool many = lua_istable(L, 1);
  struct pollfd one, *p = &one;
  nfds_t n = 1;
  if (many) {
    n = (nfds_t)lua_rawlen(L, 1);
    p = lua_newuserdatauv(L, (n ? n : 1) * sizeof *p, 0); /* freed by the GC */
    for (nfds_t i = 0; i < n; i++) {
      lua_rawgeti(L, 1, (lua_Integer)i + 1);
      p[i] = (struct pollfd){(int)luaL_checkinteger(L, -1), POLLIN, 0};
      lua_pop(L, 1);
    }
  } else {
    one = (struct pollfd){(int)luaL_checkinteger(L, 1), POLLIN, 0};
  }
  lua_Integer ms = luaL_optinteger(L, 2, -1);
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  /* Signals are blocked until ppoll unblocks them atomically: one that
   * comes after the hook check still interrupts the poll. */
  sigset_t old;
  block_stop_signals(&old);
  in_wait = 1;
  int r = globalL && lua_gethook(globalL) == lstop ? 0 : ppoll(p, n, ms < 0 ? NULL : &ts, &old);
  int saved = errno;
  in_wait = 0;
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (r < 0 && saved != EINTR) return luaL_fileresult(L, 0, "poll");
  if (!many || r <= 0) {
    lua_pushboolean(L, r > 0);
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

static int luaopen_hcs_interrupt(lua_State *L) {
  static const luaL_Reg funcs[] = {{"protect", l_protect}, {"guard", l_guard}, {"wait", l_wait}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int hcs_host_docall(lua_State *L, int nargs, int nres) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  globalL = L;
  hcs_host_interrupted = 0;
  set_stop_handlers(laction);
  int status = lua_pcall(L, nargs, nres, base);
  set_stop_handlers(SIG_DFL);
  lua_remove(L, base);
  return status;
}

int hcs_host_report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "%s: %s\n", hcs_progname, msg ? msg : "(error object is not a string)");
    fflush(stderr);
    lua_pop(L, 1);
  }
  return status;
}

static void print_usage(const char *badoption) {
  if (badoption) {
    if (badoption[1] == 'e' || badoption[1] == 'l')
      fprintf(stderr, "%s: '%s' needs argument\n", hcs_progname, badoption);
    else
      fprintf(stderr, "%s: unrecognized option '%s'\n", hcs_progname, badoption);
  }
  fprintf(stderr,
          "usage: %s [options] [script [args]]\n"
          "       %s COMMAND [args]     (see '%s help')\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter interactive mode after executing 'script'\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -l g=mod  require library 'mod' into global 'g'\n"
          "  -v        show version information\n"
          "  -E        ignore environment variables (LUA_INIT, LUA_PATH)\n"
          "  -W        turn warnings on\n"
          "  --root DIR       state root (default $HCS_ROOT or /var/lib/hcs)\n"
          "  --log-level LVL  debug, info, warning, error, none\n"
          "  --        stop handling options\n"
          "  -         stop handling options and execute stdin\n",
          hcs_progname, hcs_progname, hcs_progname);
}

/* Where the hcs Lua sources live: $HCS_LUA_DIR, the source tree when running
 * from the build tree, else the install directory. */
static const char *lua_dir(void) {
  const char *env = getenv("HCS_LUA_DIR");
  if (env && *env) return env;
  static const char *dir; /* asked twice at start: one readlink */
  if (dir) return dir;
  static char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  dir = HCS_INSTALL_LUA_DIR;
  if (n > 0) {
    exe[n] = '\0';
    size_t blen = strlen(HCS_BUILD_DIR);
    if (strncmp(exe, HCS_BUILD_DIR, blen) == 0 && exe[blen] == '/') dir = HCS_SOURCE_LUA_DIR;
  }
  return dir;
}

/* The precompiled modules that go with lua_dir(): $HCS_LUA_BYTECODE_DIR,
 * none when $HCS_LUA_DIR points elsewhere, else the build or install tree's. */
static const char *bytecode_dir(void) {
  const char *bc = getenv("HCS_LUA_BYTECODE_DIR");
  if (bc && *bc) return bc;
  const char *env = getenv("HCS_LUA_DIR");
  if (env && *env) return NULL;
  return strcmp(lua_dir(), HCS_SOURCE_LUA_DIR) == 0 ? HCS_BUILD_BYTECODE_DIR : HCS_INSTALL_BYTECODE_DIR;
}

static bool older(const struct stat *a, const struct stat *b) {
  return a->st_mtim.tv_sec < b->st_mtim.tv_sec ||
         (a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec < b->st_mtim.tv_nsec);
}

/* A package searcher ahead of Lua's own: the bytecode of an hcs module when
 * it is at least as new as the source next to package.path's hcs entry, so
 * an edited source is never shadowed by stale bytecode. */
static int search_bytecode(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (strncmp(name, "hcs.", 4) != 0 && strcmp(name, "hcs") != 0) {
    lua_pushliteral(L, "no hcs bytecode (not an hcs module)");
    return 1;
  }
  const char *rel = luaL_gsub(L, name, ".", "/");
  static const char *const forms[] = {"%s/%s.lua", "%s/%s/init.lua"};
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    const char *bc = lua_pushfstring(L, forms[i], lua_tostring(L, lua_upvalueindex(1)), rel);
    const char *src = lua_pushfstring(L, forms[i], lua_tostring(L, lua_upvalueindex(2)), rel);
    struct stat sb, ss;
    int fd = open(bc, O_RDONLY | O_CLOEXEC);
    bool fresh = fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && !(stat(src, &ss) == 0 && older(&sb, &ss));
    lua_pop(L, 1);
    if (!fresh) {
      if (fd >= 0) close(fd);
      lua_pop(L, 1);
      continue;
    }
    /* One read of the whole file: luaL_loadfilex reopens a binary chunk
     * and reads it through stdio, three times the system calls, on the
     * start-up path of every command. */
    size_t size = (size_t)sb.st_size, got = 0;
    char *buf = malloc(size ? size : 1);
    while (buf && got < size) {
      ssize_t n = read(fd, buf + got, size - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += (size_t)n;
    }
    int e = errno;
    close(fd);
    if (buf == NULL || got < size) {
      free(buf);
      return luaL_error(L, "error loading module '%s' from file '%s':\n\tread: %s", name, bc,
                        buf ? (got < size ? "short read" : strerror(e)) : "out of memory");
    }
    lua_pushfstring(L, "@%s", bc);
    int rc = luaL_loadbufferx(L, buf, size, lua_tostring(L, -1), "b");
    free(buf);
    lua_remove(L, -2); /* the chunk name */
    if (rc != LUA_OK)
      return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, bc, lua_tostring(L, -1));
    lua_insert(L, -2); /* loader, then its file name */
    return 2;
  }
  lua_pushfstring(L, "no fresh hcs bytecode for '%s'", name);
  return 1;
}

static void setup_paths(lua_State *L) {
  const char *dir = lua_dir();
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 1);
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_hcs_core);
  lua_setfield(L, -2, "hcs.core");
  lua_pushcfunction(L, luaopen_hcs_interrupt);
  lua_setfield(L, -2, "hcs.interrupt");
  lua_pop(L, 1);
  const char *bc = bytecode_dir();
  if (bc) { /* package.searchers: preload, bytecode, Lua, C, Croot */
    lua_getfield(L, -1, "searchers");
    for (lua_Integer i = (lua_Integer)luaL_len(L, -1); i >= 2; i--) {
      lua_rawgeti(L, -1, i);
      lua_rawseti(L, -2, i + 1);
    }
    lua_pushstring(L, bc);
    lua_pushstring(L, dir);
    lua_pushcclosure(L, search_bytecode, 2);
    lua_rawseti(L, -2, 2);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void log_sink(hcs_log_level_t level, const char *msg, void *ud) {
  (void)ud;
  fprintf(stderr, "%s: %s: %s\n", hcs_progname, hcs_log_level_name(level), msg);
}

static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc - script - 1, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = hcs_host_docall(L, 0, 0);
  return hcs_host_report(L, status);
}

static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

static int dolibrary(lua_State *L, char *globname) {
  char *modname = strchr(globname, '=');
  if (modname == NULL)
    modname = globname;
  else
    *modname++ = '\0';
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  int status = hcs_host_docall(L, 1, 1);
  if (status == LUA_OK) lua_setglobal(L, globname);
  return hcs_host_report(L, status);
}

static int pushargs(lua_State *L) {
  if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
  int n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (int i = 1; i <= n; i++)
    lua_rawgeti(L, -i, i);
  lua_remove(L, -n - 1);
  return n;
}

/* A script exits with its return value when that is an integer, so CLI
 * commands and workflows can report a status. */
static int exit_status_from_results(lua_State *L, int base) {
  int status = 0;
  if (lua_gettop(L) > base && lua_isinteger(L, base + 1))
    status = (int)lua_tointeger(L, base + 1);
  else if (lua_gettop(L) > base && lua_isboolean(L, base + 1) && !lua_toboolean(L, base + 1))
    status = 1;
  lua_settop(L, base);
  return status;
}

static int handle_script(lua_State *L, char **argv, int *exit_status) {
  const char *fname = argv[0];
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0) fname = NULL;
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int base = lua_gettop(L) - 1;
    int n = pushargs(L);
    status = hcs_host_docall(L, n, LUA_MULTRET);
    if (status == LUA_OK) *exit_status = exit_status_from_results(L, base);
  }
  return hcs_host_report(L, status);
}

/* `hcs COMMAND args...` -> require("hcs.cli").main(COMMAND, args...) */
static int handle_command(lua_State *L, char **argv, int argc, int *exit_status) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "hcs.cli");
  int status = hcs_host_docall(L, 1, 1);
  if (status != LUA_OK) return hcs_host_report(L, status);
  lua_getfield(L, -1, "main");
  lua_remove(L, -2);
  int base = lua_gettop(L) - 1;
  /* The C stack has room for LUA_MINSTACK values only: `hcs rm -f
   * $(hcs list -q)` with a hundred systems wrote past it. */
  luaL_checkstack(L, argc + 3, "too many arguments to the command");
  for (int i = 0; i < argc; i++)
    lua_pushstring(L, argv[i]);
  status = hcs_host_docall(L, argc, LUA_MULTRET);
  if (status == LUA_OK) *exit_status = exit_status_from_results(L, base);
  return hcs_host_report(L, status);
}

/* A path (a slash or .lua) or an existing regular file is a script; any
 * other word is a command, so a `build` directory never shadows `hcs build`. */
static bool looks_like_script(const char *a) {
  size_t n = strlen(a);
  if (strchr(a, '/') || (n > 4 && strcmp(a + n - 4, ".lua") == 0)) return true;
  struct stat st;
  return stat(a, &st) == 0 && S_ISREG(st.st_mode);
}

enum { HAS_ERROR = 1, HAS_I = 2, HAS_V = 4, HAS_E = 8, HAS_EXEC = 16, HAS_BIGE = 32, HAS_CLI = 64 };

/* Scan options; returns flags and sets *first to the script/command index. */
static int collectargs(char **argv, int *first) {
  int args = 0;
  int i;
  for (i = 1; argv[i] != NULL; i++) {
    *first = i;
    if (argv[i][0] != '-') return args;
    /* Words every command-line user tries first: the CLI answers them. */
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--version") == 0)
      return args | HAS_CLI;
    if (strcmp(argv[i], "--root") == 0 || strcmp(argv[i], "--log-level") == 0) {
      if (argv[++i] == NULL) return HAS_ERROR;
      continue;
    }
    switch (argv[i][1]) {
    case '-':
      if (argv[i][2] != '\0') return HAS_ERROR;
      *first = i + 1;
      return args;
    case '\0': return args;
    case 'E':
      if (argv[i][2] != '\0') return HAS_ERROR;
      args |= HAS_BIGE;
      break;
    case 'W':
      if (argv[i][2] != '\0') return HAS_ERROR;
      break;
    case 'i':
      args |= HAS_I; /* -i implies -v */
      __attribute__((fallthrough));
    case 'v':
      if (argv[i][2] != '\0') return HAS_ERROR;
      args |= HAS_V;
      break;
    case 'e': args |= HAS_E; __attribute__((fallthrough));
    case 'l':
      args |= HAS_EXEC;
      if (argv[i][2] == '\0') {
        i++;
        if (argv[i] == NULL || argv[i][0] == '-') return HAS_ERROR;
      }
      break;
    default: return HAS_ERROR;
    }
  }
  *first = i;
  return args;
}

static int runargs(lua_State *L, char **argv, int n) {
  for (int i = 1; i < n; i++) {
    int option = argv[i][1];
    if (strcmp(argv[i], "--root") == 0 || strcmp(argv[i], "--log-level") == 0) {
      i++;
      continue;
    }
    switch (option) {
    case 'e':
    case 'l': {
      char *extra = argv[i] + 2;
      if (*extra == '\0') extra = argv[++i];
      int status = option == 'e' ? dostring(L, extra, "=(command line)") : dolibrary(L, extra);
      if (status != LUA_OK) return 0;
      break;
    }
    case 'W': lua_warning(L, "@on", 0); break;
    }
  }
  return 1;
}

static int handle_luainit(lua_State *L) {
  const char *name = "=LUA_INIT_5_4";
  const char *init = getenv(name + 1);
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (init == NULL) return LUA_OK;
  if (init[0] == '@') return dochunk(L, luaL_loadfile(L, init + 1));
  return dostring(L, init, name);
}

static void apply_global_options(char **argv, int first) {
  for (int i = 1; i < first; i++) {
    if (strcmp(argv[i], "--root") == 0 && argv[i + 1])
      setenv("HCS_ROOT", argv[++i], 1);
    else if (strcmp(argv[i], "--log-level") == 0 && argv[i + 1]) {
      int level = hcs_log_level_from_string(argv[++i]);
      if (level >= 0)
        hcs_log_set_level((hcs_log_level_t)level);
      else
        fprintf(stderr, "%s: unknown log level '%s' (ignored)\n", hcs_progname, argv[i]);
    }
  }
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int *exit_status = (int *)lua_touserdata(L, 3);
  int first = argc;
  int args = collectargs(argv, &first);
  if (args == HAS_ERROR) {
    print_usage(argv[first]);
    return 0;
  }
  if (args & HAS_BIGE) {
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  apply_global_options(argv, first);
  luaL_openlibs(L);
  lua_pushlightuserdata(L, (void *)&hcs_host_interrupted);
  lua_setfield(L, LUA_REGISTRYINDEX, "hcs.interrupted");
  setup_paths(L);
  create_arg_table(L, argv, argc, first < argc ? first : 0);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);
  if (args & HAS_V) printf("hcs %s (%s)\n", hcs_version(), LUA_RELEASE);
  if (!(args & HAS_BIGE) && handle_luainit(L) != LUA_OK) return 0;
  if (!runargs(L, argv, first)) return 0;
  if (first < argc) {
    bool dash = strcmp(argv[first - 1], "--") == 0 || strcmp(argv[first], "-") == 0;
    int status = !(args & HAS_CLI) && (dash || looks_like_script(argv[first]))
                     ? handle_script(L, argv + first, exit_status)
                     : handle_command(L, argv + first, argc - first, exit_status);
    if (status != LUA_OK) return 0;
  }
  if (args & HAS_I) {
    hcs_host_repl(L);
  } else if (first >= argc && !(args & (HAS_E | HAS_V))) {
    if (isatty(STDIN_FILENO)) {
      printf("hcs %s (%s)  type 'hcs.help()' for help, Ctrl-D to quit\n", hcs_version(), LUA_RELEASE);
      hcs_host_repl(L);
    } else if (dochunk(L, luaL_loadfile(L, NULL)) != LUA_OK) {
      return 0;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char **argv) {
  if (argv[0] && argv[0][0]) {
    const char *slash = strrchr(argv[0], '/');
    hcs_progname = slash ? slash + 1 : argv[0];
  }
  hcs_log_set_sink(log_sink, NULL);
  /* jansson seeds its hash tables from /dev/urandom (open, read, close) on
   * the first object; one getrandom does it on every command's path. */
  uint32_t seed;
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == sizeof seed) json_object_seed(seed);
  record_ignored_signals();
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", hcs_progname);
    return EXIT_FAILURE;
  }
  int exit_status = 0;
  lua_gc(L, LUA_GCSTOP);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  lua_pushlightuserdata(L, &exit_status);
  int status = lua_pcall(L, 3, 1, 0);
  int result = lua_toboolean(L, -1);
  hcs_host_report(L, status);
  lua_close(L);
  if (!(result && status == LUA_OK)) return EXIT_FAILURE;
  return exit_status;
}
