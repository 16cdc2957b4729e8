/* hcs.core.fs: copy_in(root, src, dst) (host files into a container root),
 * write_atomic(path, data [, mode [, durable]]), mkdir_p(path [, mode]), run_root([root]). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#include "binding.h"
#include "hcs/fs.h"

static int l_copy_in(lua_State *L) {
  const char *root = hcs_lua_check_name(L, 1), *src = hcs_lua_check_name(L, 2), *dst = hcs_lua_check_name(L, 3);
  hcs_error_t err = NULL;
  if (hcs_fs_copy_in(root, src, dst, &err) < 0) return hcs_lua_fail(L, &err);
  return hcs_lua_ok(L);
}

/* write_atomic(path, data [, mode [, durable]]): durable = false skips the
 * fsyncs (runtime state, see hcs_fs_write_replace). */
static int l_write_atomic(lua_State *L) {
  const char *path = hcs_lua_check_name(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  lua_Integer mode = luaL_optinteger(L, 3, 0644);
  luaL_argcheck(L, mode >= 0 && mode <= 07777, 3, "mode out of range");
  hcs_error_t err = NULL;
  bool durable = lua_isnoneornil(L, 4) || lua_toboolean(L, 4);
  int rc = durable ? hcs_fs_write_atomic(path, data, len, (unsigned)mode, &err)
                   : hcs_fs_write_replace(path, data, len, (unsigned)mode, &err);
  if (rc < 0) return hcs_lua_fail(L, &err);
  return hcs_lua_ok(L);
}

/* run_root([root]): the runtime root (tmpfs in production) of a state root. */
static int l_run_root(lua_State *L) {
  char *p = hcs_fs_run_root(luaL_optstring(L, 1, NULL));
  lua_pushstring(L, p);
  free(p);
  return 1;
}

static int l_mkdir_p(lua_State *L) {
  const char *path = hcs_lua_check_name(L, 1);
  lua_Integer mode = luaL_optinteger(L, 2, 0755);
  hcs_error_t err = NULL;
  if (hcs_fs_mkdir_p(path, (unsigned)mode, &err) < 0) return hcs_lua_fail(L, &err);
  return hcs_lua_ok(L);
}

/* read_all(f1, f2, ...) -> s1, s2, ...: read several Lua files (pipes) to
 * their ends at once, so a child writing a lot to one of them can never
 * block on it while the caller waits on another. */
static int l_read_all(lua_State *L) {
  int n = lua_gettop(L);
  luaL_argcheck(L, n >= 1 && n <= 8, 1, "expected 1 to 8 files");
  struct pollfd fds[8];
  int open = 0;
  for (int i = 0; i < n; i++) {
    luaL_Stream *st = luaL_checkudata(L, i + 1, LUA_FILEHANDLE);
    if (st->closef == NULL || st->f == NULL) luaL_argerror(L, i + 1, "attempt to use a closed file");
    fflush(st->f);
    fds[i].fd = fileno(st->f);
    fds[i].events = POLLIN;
    open++;
  }
  /* Chunks go to one Lua table per file (luaL_Buffers cannot interleave). */
  lua_createtable(L, n, 0);
  int acc = lua_gettop(L);
  for (int i = 0; i < n; i++) {
    lua_newtable(L);
    lua_rawseti(L, acc, i + 1);
  }
  char chunk[16384];
  while (open > 0) {
    int r = poll(fds, (nfds_t)n, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return luaL_fileresult(L, 0, "poll");
    for (int i = 0; i < n; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = read(fds[i].fd, chunk, sizeof chunk);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        fds[i].fd = -1;
        open--;
        continue;
      }
      lua_rawgeti(L, acc, i + 1);
      lua_pushlstring(L, chunk, (size_t)got);
      lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
      lua_pop(L, 1);
    }
  }
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, acc, i + 1);
    int t = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_Integer parts = (lua_Integer)lua_rawlen(L, t);
    for (lua_Integer k = 1; k <= parts; k++) {
      lua_rawgeti(L, t, k);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_remove(L, t);
  }
  return n;
}

int hcs_lua_open_fs(lua_State *L) {
  static const luaL_Reg funcs[] = {{"copy_in", l_copy_in},   {"write_atomic", l_write_atomic}, {"mkdir_p", l_mkdir_p},
                                   {"run_root", l_run_root}, {"read_all", l_read_all},         {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
