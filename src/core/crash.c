/* Crash injection points (see core/crash.h): the counter and the kill;
 * pause points for race windows. */
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "core/crash.h"

int hcs_crash_armed;
const char *hcs_pause_at;
static long crash_at;    /* the point to die at, 1-based; 0: never */
static bool crash_trace; /* print each point */
static atomic_long crash_count;

__attribute__((constructor)) static void crash_init(void) {
  const char *at = getenv("HCS_CRASH_AT");
  const char *trace = getenv("HCS_CRASH_TRACE");
  crash_at = at ? strtol(at, NULL, 10) : 0;
  crash_trace = trace && *trace && strcmp(trace, "0") != 0;
  hcs_crash_armed = crash_at > 0 || crash_trace;
  const char *pause = getenv("HCS_PAUSE_AT");
  hcs_pause_at = pause && *pause ? pause : NULL;
}

void hcs_pause_hit(const char *label) {
  if (strcmp(label, hcs_pause_at) != 0) return;
  char line[256];
  int len = snprintf(line, sizeof line, "hcs: paused at `%s`\n", label);
  if (len > 0) (void)!write(2, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
  raise(SIGSTOP);
}

void hcs_crash_hit(const char *label) {
  long n = atomic_fetch_add(&crash_count, 1) + 1;
  char line[256];
  if (crash_trace) {
    int len = snprintf(line, sizeof line, "hcs crash point %ld: %s\n", n, label);
    if (len > 0) (void)!write(2, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
  }
  if (n != crash_at) return;
  int len = snprintf(line, sizeof line, "hcs: killed at crash point %ld: %s\n", n, label);
  if (len > 0) (void)!write(2, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
  raise(SIGKILL);
}
