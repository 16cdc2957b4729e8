/* Shared helpers for the `hcs.core` Lua binding.
 *
 * Conventions (Lua's liolib/lauxlib, LuaFileSystem):
 *  - misuse (wrong argument types, a closed handle) raises;
 *  - environmental failures return `nil, message, errno` (hcs_lua_fail);
 *  - handle types are three luaL_Reg arrays (functions, methods, metamethods),
 *    with __gc and __close sharing one idempotent closer. */
#ifndef HCS_LUA_BINDING_H
#define HCS_LUA_BINDING_H

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>

#include "hcs/hcs.h"

/* Push nil, message, status (errno or 0) and release *err; returns 3. */
int hcs_lua_fail(lua_State *L, hcs_error_t *err);
/* Push true -- for `return hcs_lua_ok(L)` after a successful void call. */
int hcs_lua_ok(lua_State *L);

/* Results of libhcs calls, each releasing what it is given:
 *  push_doc:    a malloc'd JSON document -> table, NULL -> nil, msg, errno
 *  push_status: rc >= 0 -> true, < 0 -> nil, msg, errno
 *  push_string: a malloc'd string -> Lua string, NULL -> nil, msg, errno */
int hcs_lua_push_doc(lua_State *L, char *doc, hcs_error_t *err);
int hcs_lua_push_status(lua_State *L, int rc, hcs_error_t *err);
int hcs_lua_push_string(lua_State *L, char *s, hcs_error_t *err);
/* A string that names something (an id, a name, a path) on its way to C:
 * raises when it holds a NUL byte, where C would silently cut it (and name
 * another object).  check/opt are for arguments (luaL_checkstring,
 * luaL_optstring); to_name for a string already on the stack (a table
 * field or element), `what` naming it in the error. */
const char *hcs_lua_check_name(lua_State *L, int arg);
const char *hcs_lua_opt_name(lua_State *L, int arg, const char *def);
const char *hcs_lua_to_name(lua_State *L, int idx, const char *what);

/* The document at idx (a table or a JSON string) as a malloc'd compact JSON
 * string for a libhcs call; raises on misuse. */
char *hcs_lua_check_doc(lua_State *L, int idx);

/* Convert a jansson value to Lua (objects -> tables, arrays -> sequences
 * carrying the `hcs.json.array` metatable so an empty array stays an array
 * on the way back, null -> hcs.core.json.null lightuserdata). */
void hcs_lua_push_json(lua_State *L, json_t *j);
/* Push the result of a C call that returns a malloc'd JSON string: decoded to
 * a table, and the string freed. */
void hcs_lua_push_json_string(lua_State *L, char *text);
/* Convert the value at idx (a table or a JSON string) to jansson; raises
 * with the offending key path on misuse. New reference. */
json_t *hcs_lua_check_json(lua_State *L, int idx);
/* Same, but for any Lua value (numbers, strings, booleans, tables). */
json_t *hcs_lua_to_json(lua_State *L, int idx);

/* The `hcs.core.json` table: encode/decode/null/array. */
int hcs_lua_open_json(lua_State *L);

/* Subsystem openers: each pushes one table that becomes hcs.core.<name>. */
int hcs_lua_open_host(lua_State *L);
int hcs_lua_open_layer(lua_State *L);
int hcs_lua_open_net(lua_State *L);
int hcs_lua_open_image(lua_State *L);
int hcs_lua_open_fs(lua_State *L);
int hcs_lua_open_compute(lua_State *L);
int hcs_lua_open_process(lua_State *L);
int hcs_lua_open_events(lua_State *L);
int hcs_lua_open_operation(lua_State *L);
int hcs_lua_open_vm_initrd(lua_State *L);
int hcs_lua_open_disk(lua_State *L);
/* operation.c: push a new operation handle that keeps the value at owner
 * alive; the operation to pass to an _async verb. */
struct hcs_operation_s *hcs_lua_new_operation(lua_State *L, int owner);
int hcs_lua_open_registry(lua_State *L);

/* image.c: the store behind a `hcs.image.store` userdata (raises on a
 * closed handle). */
hcs_image_store_t *hcs_lua_check_image_store(lua_State *L, int idx);

/* compute.c: the system handle behind a `hcs.compute.system` userdata
 * (raises on a closed handle), and a real Lua file over an fd (owned). */
hcs_system_t *hcs_lua_check_system(lua_State *L, int idx);
void hcs_lua_push_fd_file(lua_State *L, int fd, const char *mode);
/* process.c: create(system, params [, opts]) -> process (also cs:create_process). */
int hcs_lua_process_create(lua_State *L);

#endif
