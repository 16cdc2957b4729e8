/* Logging for libhcs.  The library never writes to stderr on its own: the
 * embedding program sets a sink (the hcs host prints to stderr, a daemon might
 * send to syslog).  Without a sink, messages at or above the level go to
 * stderr, as most users of a C library expect. */
#ifndef HCS_LOG_H
#define HCS_LOG_H

#include "hcs/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  HCS_LOG_DEBUG = 0,
  HCS_LOG_INFO = 1,
  HCS_LOG_WARNING = 2,
  HCS_LOG_ERROR = 3,
  HCS_LOG_NONE = 4,
} hcs_log_level_t;

typedef void (*hcs_log_sink_t)(hcs_log_level_t level, const char *msg, void *userdata);

/* Set the sink; NULL restores the default (stderr). */
HCS_EXPORT void hcs_log_set_sink(hcs_log_sink_t sink, void *userdata);
HCS_EXPORT void hcs_log_set_level(hcs_log_level_t level);
HCS_EXPORT hcs_log_level_t hcs_log_get_level(void);
/* Parse "debug", "info", "warning", "error", "none"; -1 if unknown. */
HCS_EXPORT int hcs_log_level_from_string(const char *name);
HCS_EXPORT const char *hcs_log_level_name(hcs_log_level_t level);

HCS_EXPORT void hcs_log(hcs_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define hcs_debug(...) hcs_log(HCS_LOG_DEBUG, __VA_ARGS__)
#define hcs_info(...) hcs_log(HCS_LOG_INFO, __VA_ARGS__)
#define hcs_warning(...) hcs_log(HCS_LOG_WARNING, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
