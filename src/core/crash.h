/* Crash injection for the crash-consistency tests: every persistence point
 * (an atomic write's rename, an fsync of a directory, a directory renamed
 * into or out of a store, a journal step) calls hcs_crash_point(label).
 * With HCS_CRASH_AT=N in the environment (read once, when libhcs loads),
 * the Nth point reached by the process prints its label to stderr and the
 * process kills itself with SIGKILL, as a power cut or an OOM kill would
 * stop it.  Unset, a point costs one predictable branch.  HCS_CRASH_TRACE=1
 * prints every point reached (to count them).  See tests/lua/crash.lua.
 *
 * Race windows: hcs_pause_point(label) stops the process (SIGSTOP) when
 * HCS_PAUSE_AT=label is set, so a test can let other processes run inside
 * a window that only load opens in production, then resume it (SIGCONT):
 * the race is reproduced deterministically, without a sleep. */
#ifndef HCS_CORE_CRASH_H
#define HCS_CORE_CRASH_H

#include "core/util.h"

HCS_INTERNAL extern int hcs_crash_armed; /* nonzero when HCS_CRASH_AT or HCS_CRASH_TRACE is set */
HCS_INTERNAL void hcs_crash_hit(const char *label);

static inline void hcs_crash_point(const char *label) {
  if (__builtin_expect(hcs_crash_armed, 0)) hcs_crash_hit(label);
}

HCS_INTERNAL extern const char *hcs_pause_at; /* HCS_PAUSE_AT, or NULL */
HCS_INTERNAL void hcs_pause_hit(const char *label);

static inline void hcs_pause_point(const char *label) {
  if (__builtin_expect(hcs_pause_at != NULL, 0)) hcs_pause_hit(label);
}

#endif
