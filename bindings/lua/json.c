/* Lua <-> JSON conversion over jansson, and the `hcs.core.json` table.
 * Done in C rather than through lua-cjson so that empty arrays, integers
 * and key order survive a round trip through Lua exactly. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binding.h"

#define ARRAY_MT "hcs.json.array"
#define MAX_DEPTH 200

static void push_array_mt(lua_State *L) {
  if (luaL_newmetatable(L, ARRAY_MT)) {
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
  }
}

static void push_null(lua_State *L) { lua_pushlightuserdata(L, NULL); }

void hcs_lua_push_json(lua_State *L, json_t *j) {
  luaL_checkstack(L, 4, "JSON document too deep");
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    lua_createtable(L, 0, (int)json_object_size(j));
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
      hcs_lua_push_json(L, v);
      lua_setfield(L, -2, k);
    }
    break;
  }
  case JSON_ARRAY: {
    lua_createtable(L, (int)json_array_size(j), 0);
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v) {
      hcs_lua_push_json(L, v);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    push_array_mt(L);
    lua_setmetatable(L, -2);
    break;
  }
  case JSON_STRING: lua_pushlstring(L, json_string_value(j), json_string_length(j)); break;
  case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(j)); break;
  case JSON_REAL: lua_pushnumber(L, json_real_value(j)); break;
  case JSON_TRUE: lua_pushboolean(L, 1); break;
  case JSON_FALSE: lua_pushboolean(L, 0); break;
  default: push_null(L); break;
  }
}

void hcs_lua_push_json_string(lua_State *L, char *text) {
  json_error_t je;
  json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
  free(text);
  if (j == NULL) luaL_error(L, "internal error: library returned invalid JSON: %s", je.text);
  hcs_lua_push_json(L, j);
  json_decref(j);
}

static void fill(lua_State *L, int idx, json_t *container, char *path, size_t plen, int depth);

static void path_push(char *path, size_t *plen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void path_push(char *path, size_t *plen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (*plen < 480) {
    int n = vsnprintf(path + *plen, 512 - *plen, fmt, ap);
    if (n > 0) *plen += (size_t)n < 512 - *plen ? (size_t)n : 511 - *plen;
  }
  va_end(ap);
}

static bool is_array(lua_State *L, int idx, lua_Integer *n) {
  if (lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, ARRAY_MT);
    bool marked = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (marked) {
      *n = (lua_Integer)lua_rawlen(L, idx);
      return true;
    }
  }
  lua_Integer count = 0, max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
      lua_pop(L, 1);
      return false;
    }
    lua_Integer k = lua_tointeger(L, -1);
    if (k > max) max = k;
    count++;
  }
  *n = max;
  return count > 0 && count == max;
}

/* A new value for the Lua value at idx; tables come back as empty
 * containers that the caller attaches to the tree before filling them, so
 * that a Lua error raised mid-way (longjmp) never leaks a detached part:
 * everything built so far is reachable from the guarded root. */
static json_t *new_value(lua_State *L, int idx, const char *path, size_t plen) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return json_null();
  case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) return json_integer((json_int_t)lua_tointeger(L, idx));
    if (!isfinite(lua_tonumber(L, idx))) luaL_error(L, "cannot encode %s: number is not finite", plen ? path : "value");
    return json_real(lua_tonumber(L, idx));
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    /* As json_loads without JSON_ALLOW_NUL: libhcs reads C strings. */
    if (memchr(s, '\0', len)) luaL_error(L, "cannot encode %s: string contains a NUL byte", plen ? path : "value");
    json_t *j = json_stringn(s, len);
    if (j == NULL) luaL_error(L, "cannot encode %s: string is not valid UTF-8", plen ? path : "value");
    return j;
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) return json_null();
    break;
  case LUA_TTABLE: {
    lua_Integer n;
    return is_array(L, idx, &n) ? json_array() : json_object();
  }
  default: break;
  }
  luaL_error(L, "cannot encode %s: %s is not representable in JSON", plen ? path : "value", luaL_typename(L, idx));
  return NULL;
}

static void add_child(lua_State *L, json_t *child, char *path, size_t plen, int depth) {
  if (json_is_object(child) || json_is_array(child)) fill(L, -1, child, path, plen, depth + 1);
}

/* jansson's own rule for keys (json_stringn refuses what
 * json_object_set_new would). */
static bool key_is_utf8(const char *k, size_t len) {
  json_t *probe = json_stringn(k, len);
  json_decref(probe);
  return probe != NULL;
}

static void fill(lua_State *L, int idx, json_t *container, char *path, size_t plen, int depth) {
  idx = lua_absindex(L, idx);
  if (depth > MAX_DEPTH) luaL_error(L, "cannot encode %s: nested too deeply (cycle?)", plen ? path : "value");
  luaL_checkstack(L, 6, "JSON encode");
  if (json_is_array(container)) {
    lua_Integer n;
    is_array(L, idx, &n);
    for (lua_Integer i = 1; i <= n; i++) {
      size_t l = plen;
      path_push(path, &l, "[%lld]", (long long)i);
      lua_rawgeti(L, idx, i);
      json_t *child = new_value(L, -1, path, l);
      json_array_append_new(container, child);
      add_child(L, child, path, l, depth);
      lua_pop(L, 1);
      path[plen] = '\0';
    }
    return;
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "cannot encode %s: table mixes a non-string key (%s) with named keys", plen ? path : "table",
                 luaL_typename(L, -2));
    size_t klen;
    const char *k = lua_tolstring(L, -2, &klen);
    /* Checked before the child exists: json_object_set_new frees the value
     * when it refuses the key, and a refused child must never be filled. */
    if (strlen(k) != klen) luaL_error(L, "cannot encode %s: key contains a NUL byte", plen ? path : "table");
    if (!key_is_utf8(k, klen)) luaL_error(L, "cannot encode %s: key is not valid UTF-8", plen ? path : "table");
    size_t l = plen;
    path_push(path, &l, plen ? ".%s" : "%s", k);
    json_t *child = new_value(L, -1, path, l);
    if (json_object_set_new(container, k, child) < 0) luaL_error(L, "cannot encode %s: out of memory", path);
    add_child(L, child, path, l, depth);
    path[plen] = '\0';
    lua_pop(L, 1);
  }
}

static int guard_gc(lua_State *L) {
  json_t **box = lua_touserdata(L, 1);
  if (*box) json_decref(*box);
  *box = NULL;
  return 0;
}

json_t *hcs_lua_to_json(lua_State *L, int idx) {
  char path[512] = "";
  idx = lua_absindex(L, idx);
  json_t *root = new_value(L, idx, path, 0);
  if (!json_is_object(root) && !json_is_array(root)) return root;
  json_t **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = root;
  if (luaL_newmetatable(L, "hcs.json.guard")) {
    lua_pushcfunction(L, guard_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  fill(L, idx, root, path, 0, 0);
  *box = NULL; /* success: ownership goes to the caller */
  lua_pop(L, 1);
  return root;
}

json_t *hcs_lua_check_json(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    json_error_t je;
    json_t *j = json_loads(lua_tostring(L, idx), JSON_REJECT_DUPLICATES, &je);
    if (j == NULL) {
      luaL_argerror(L, idx, lua_pushfstring(L, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text));
    }
    return j;
  }
  luaL_argexpected(L, lua_type(L, idx) == LUA_TTABLE, idx, "table or JSON string");
  return hcs_lua_to_json(L, idx);
}

const char *hcs_lua_check_name(lua_State *L, int arg) {
  size_t len;
  const char *s = luaL_checklstring(L, arg, &len);
  if (strlen(s) != len) luaL_argerror(L, arg, "contains a NUL byte");
  return s;
}

const char *hcs_lua_opt_name(lua_State *L, int arg, const char *def) {
  return lua_isnoneornil(L, arg) ? def : hcs_lua_check_name(L, arg);
}

const char *hcs_lua_to_name(lua_State *L, int idx, const char *what) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (s && strlen(s) != len) luaL_error(L, "%s contains a NUL byte", what);
  return s;
}

int hcs_lua_fail(lua_State *L, hcs_error_t *err) {
  lua_pushnil(L);
  lua_pushstring(L, hcs_error_message(*err));
  lua_pushinteger(L, hcs_error_status(*err));
  hcs_error_release(err);
  return 3;
}

int hcs_lua_ok(lua_State *L) {
  lua_pushboolean(L, 1);
  return 1;
}

int hcs_lua_push_doc(lua_State *L, char *doc, hcs_error_t *err) {
  if (doc == NULL) return hcs_lua_fail(L, err);
  hcs_lua_push_json_string(L, doc);
  return 1;
}

int hcs_lua_push_status(lua_State *L, int rc, hcs_error_t *err) {
  return rc < 0 ? hcs_lua_fail(L, err) : hcs_lua_ok(L);
}

int hcs_lua_push_string(lua_State *L, char *s, hcs_error_t *err) {
  if (s == NULL) return hcs_lua_fail(L, err);
  lua_pushstring(L, s);
  free(s);
  return 1;
}

char *hcs_lua_check_doc(lua_State *L, int idx) {
  json_t *j = hcs_lua_check_json(L, idx);
  char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(j);
  if (s == NULL) luaL_error(L, "cannot serialize argument #%d", idx);
  return s;
}

/* json.encode(value [, {pretty=bool, sort=bool}]) */
static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  size_t flags = JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_COMPACT;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "pretty");
    if (lua_toboolean(L, -1)) flags = (flags & ~(size_t)JSON_COMPACT) | JSON_INDENT(2);
    lua_pop(L, 1);
  }
  json_t *j = hcs_lua_to_json(L, 1);
  char *s = json_dumps(j, flags);
  json_decref(j);
  if (s == NULL) return luaL_error(L, "json.encode: out of memory");
  lua_pushstring(L, s);
  free(s);
  return 1;
}

/* json.decode(text) -> value | nil, message */
static int l_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  json_error_t je;
  json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
  if (j == NULL) {
    lua_pushnil(L);
    lua_pushfstring(L, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
    return 2;
  }
  hcs_lua_push_json(L, j);
  json_decref(j);
  return 1;
}

/* json.array(t) marks t as an array (so {} encodes as []) and returns it. */
static int l_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) lua_newtable(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  push_array_mt(L);
  lua_setmetatable(L, 1);
  return 1;
}

int hcs_lua_open_json(lua_State *L) {
  static const luaL_Reg funcs[] = {{"encode", l_encode}, {"decode", l_decode}, {"array", l_array}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  push_null(L);
  lua_setfield(L, -2, "null");
  return 1;
}
