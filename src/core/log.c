/* Logging sink and level for libhcs (see hcs/log.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hcs/log.h"

static hcs_log_sink_t log_sink;
static void *log_userdata;
static hcs_log_level_t log_level = HCS_LOG_WARNING;

static const char *const level_names[] = {"debug", "info", "warning", "error", "none"};

void hcs_log_set_sink(hcs_log_sink_t sink, void *userdata) {
  log_sink = sink;
  log_userdata = userdata;
}

void hcs_log_set_level(hcs_log_level_t level) {
  if (level >= HCS_LOG_DEBUG && level <= HCS_LOG_NONE) log_level = level;
}

hcs_log_level_t hcs_log_get_level(void) { return log_level; }

int hcs_log_level_from_string(const char *name) {
  for (int i = 0; i <= HCS_LOG_NONE; i++)
    if (name && strcmp(name, level_names[i]) == 0) return i;
  return -1;
}

const char *hcs_log_level_name(hcs_log_level_t level) {
  return level >= HCS_LOG_DEBUG && level <= HCS_LOG_NONE ? level_names[level] : "?";
}

void hcs_log(hcs_log_level_t level, const char *fmt, ...) {
  if (level < log_level || level >= HCS_LOG_NONE) return;
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (log_sink)
    log_sink(level, buf, log_userdata);
  else
    fprintf(stderr, "hcs: %s: %s\n", level_names[level], buf);
}
