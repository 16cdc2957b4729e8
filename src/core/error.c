/* Error values for libhcs (see hcs/error.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "hcs/error.h"

int hcs_error_makev(hcs_error_t *err, int status, const char *fmt, va_list ap) {
  if (err == NULL) return -1;
  hcs_error_release(err);
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  if (msg && status) {
    char *full = NULL;
    if (asprintf(&full, "%s: %s", msg, strerror(status)) >= 0) {
      free(msg);
      msg = full;
    }
  }
  struct hcs_error_s *e = calloc(1, sizeof(*e));
  if (e == NULL) { /* out of memory while reporting: keep what we can */
    free(msg);
    return -1;
  }
  e->status = status;
  e->msg = msg ? msg : strdup("out of memory");
  *err = e;
  return -1;
}

int hcs_error_make(hcs_error_t *err, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  hcs_error_makev(err, status, fmt, ap);
  va_end(ap);
  return -1;
}

int hcs_error_wrap(hcs_error_t *err, const char *fmt, ...) {
  if (err == NULL || *err == NULL) return -1;
  char *ctx = NULL;
  va_list ap;
  va_start(ap, fmt);
  int r = vasprintf(&ctx, fmt, ap);
  va_end(ap);
  if (r < 0) return -1;
  char *full = NULL;
  if (asprintf(&full, "%s: %s", ctx, (*err)->msg ? (*err)->msg : "") >= 0) {
    free((*err)->msg);
    (*err)->msg = full;
  }
  free(ctx);
  return -1;
}

void hcs_error_release(hcs_error_t *err) {
  if (err == NULL || *err == NULL) return;
  free((*err)->msg);
  free(*err);
  *err = NULL;
}

const char *hcs_error_message(hcs_error_t err) { return err && err->msg ? err->msg : ""; }

int hcs_error_status(hcs_error_t err) { return err ? err->status : 0; }
