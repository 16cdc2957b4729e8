/* hcs error values: one small struct passed last to every fallible call.
 *
 * A failing function fills `*err` and returns a negative value (or NULL);
 * callers add context with hcs_error_wrap() and free with hcs_error_release().
 * Messages read "verb `operand`: strerror", lowercase, no final period. */
#ifndef HCS_ERROR_H
#define HCS_ERROR_H

#include <stdarg.h>

#include "hcs/export.h"

#ifdef __cplusplus
extern "C" {
#endif

struct hcs_error_s {
  int status; /* errno value, or 0 for logical errors (bad input) */
  char *msg;  /* full message, including the strerror suffix */
};
typedef struct hcs_error_s *hcs_error_t;

/* Fill *err (if err is not NULL) and return -1.  When status != 0 the
 * message gets ": strerror(status)" appended.  If *err is already set the
 * old error is released first: the newest failure wins. */
HCS_EXPORT int hcs_error_make(hcs_error_t *err, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
HCS_EXPORT int hcs_error_makev(hcs_error_t *err, int status, const char *fmt, va_list ap);

/* Prefix the existing error message with more context: "ctx: old message".
 * Returns -1 so it can be used in a return statement. */
HCS_EXPORT int hcs_error_wrap(hcs_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Free *err and reset it to NULL.  Safe on NULL and on an unset error. */
HCS_EXPORT void hcs_error_release(hcs_error_t *err);

/* Message and status, safe on an unset error ("" and 0). */
HCS_EXPORT const char *hcs_error_message(hcs_error_t err);
HCS_EXPORT int hcs_error_status(hcs_error_t err);

#ifdef __cplusplus
}
#endif
#endif
