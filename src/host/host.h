/* Internals of the `hcs` host program. */
#ifndef HCS_HOST_HOST_H
#define HCS_HOST_HOST_H

#include <lua.h>

/* Run `chunk` (already on the stack with nargs arguments above it) under a
 * traceback message handler with SIGINT turned into a Lua error. */
int hcs_host_docall(lua_State *L, int nargs, int nres);
/* Print the error message on top of the stack (if any) to stderr. */
int hcs_host_report(lua_State *L, int status);
/* The interactive loop (readline, history, completion of hcs.* names). */
void hcs_host_repl(lua_State *L);

extern const char *hcs_progname;
/* 1 from a Ctrl-C until the Lua error it raises (see main.c). */
#include <signal.h>
extern volatile sig_atomic_t hcs_host_interrupted;

#endif
