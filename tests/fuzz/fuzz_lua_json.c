/* libFuzzer harness: the Lua <-> JSON converter of the bindings
 * (bindings/lua/json.c) in a real Lua 5.4 state.  The input is used twice:
 * as JSON text (decode, encode, decode, encode: the two encodings must be
 * equal, or the round trip is not stable), and as a recipe for a Lua value
 * (tables with arbitrary byte-string keys -- not UTF-8, with NULs --,
 * arrays with holes, integers, NaN and infinities, null) that is encoded.
 * Errors raised to Lua are expected for bad input; a crash, a sanitizer
 * report or an unstable round trip is a bug. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "binding.h"
#include "fuzz_util.h"

static lua_State *L;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  L = luaL_newstate();
  luaL_openlibs(L);
  hcs_lua_open_json(L); /* the hcs.core.json table */
  lua_setglobal(L, "json");
  return 0;
}

struct cursor {
  const uint8_t *p, *end;
};

static unsigned byte(struct cursor *c) { return c->p < c->end ? *c->p++ : 0; }

/* Push one value built from the recipe. */
static void build(struct cursor *c, int depth) {
  luaL_checkstack(L, 8, "fuzz");
  unsigned op = byte(c);
  switch (depth > 12 ? op % 4 : op % 9) {
  case 0: {
    lua_Integer v = 0;
    for (int i = 0; i < 8; i++)
      v = (lua_Integer)((uint64_t)v << 8 | byte(c));
    lua_pushinteger(L, v);
    break;
  }
  case 1: {
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
      bits = bits << 8 | byte(c);
    double d;
    memcpy(&d, &bits, sizeof d);
    lua_pushnumber(L, d);
    break;
  }
  case 2: {
    size_t n = byte(c) % 32;
    if (n > (size_t)(c->end - c->p)) n = (size_t)(c->end - c->p);
    lua_pushlstring(L, (const char *)c->p, n);
    c->p += n;
    break;
  }
  case 3: lua_pushboolean(L, (int)(byte(c) & 1)); break;
  case 4:
  case 7: { /* a table with byte-string keys */
    lua_newtable(L);
    unsigned n = byte(c) % 6;
    for (unsigned i = 0; i < n; i++) {
      size_t k = byte(c) % 16;
      if (k > (size_t)(c->end - c->p)) k = (size_t)(c->end - c->p);
      lua_pushlstring(L, (const char *)c->p, k);
      c->p += k;
      build(c, depth + 1);
      lua_settable(L, -3);
    }
    break;
  }
  case 5: { /* an array, maybe with holes or an integer key added */
    lua_newtable(L);
    unsigned n = byte(c) % 6;
    for (unsigned i = 1; i <= n; i++) {
      build(c, depth + 1);
      lua_rawseti(L, -2, (lua_Integer)(i + (byte(c) % 7 == 0)));
    }
    break;
  }
  case 6: lua_pushlightuserdata(L, NULL); break; /* json.null */
  case 8:                                        /* an empty array, with the array metatable */
    lua_getglobal(L, "json");
    lua_getfield(L, -1, "array");
    lua_remove(L, -2);
    lua_newtable(L);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) abort();
    break;
  }
}

/* json.encode(value at top) -> string or NULL (pops the value) */
static char *encode_top(void) {
  lua_getglobal(L, "json");
  lua_getfield(L, -1, "encode");
  lua_remove(L, -2);
  lua_insert(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  char *s = strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  return s;
}

/* json.decode(text) pushed, or false */
static bool decode(const char *text, size_t n) {
  lua_getglobal(L, "json");
  lua_getfield(L, -1, "decode");
  lua_remove(L, -2);
  lua_pushlstring(L, text, n);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return false;
  }
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int top = lua_gettop(L);
  if (decode((const char *)data, size)) {
    char *once = encode_top();
    if (once && decode(once, strlen(once))) {
      char *twice = encode_top();
      if (twice == NULL || strcmp(once, twice) != 0) {
        fprintf(stderr, "unstable round trip:\n%s\n%s\n", once, twice ? twice : "(encode failed)");
        abort();
      }
      free(twice);
    }
    free(once);
  }
  struct cursor c = {data, data + size};
  build(&c, 0);
  free(encode_top());
  if (lua_gettop(L) != top) abort();
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
