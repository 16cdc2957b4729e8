/* A tiny TAP producer for the C unit tests (ctest runs each executable;
 * the exit status is non-zero when any check failed), and where a test
 * finds the source tree. */
#ifndef HCS_TESTS_TAP_H
#define HCS_TESTS_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_count, tap_failed;

#define ok(cond, ...)                                                                                                  \
  do {                                                                                                                 \
    int ok_ = !!(cond);                                                                                                \
    tap_count++;                                                                                                       \
    if (!ok_) tap_failed++;                                                                                            \
    printf("%sok %d - ", ok_ ? "" : "not ", tap_count);                                                                \
    printf(__VA_ARGS__);                                                                                               \
    printf("\n");                                                                                                      \
    if (!ok_) printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                                          \
  } while (0)

#define is_int(got, want, ...)                                                                                         \
  do {                                                                                                                 \
    long long g_ = (long long)(got), w_ = (long long)(want);                                                           \
    ok(g_ == w_, __VA_ARGS__);                                                                                         \
    if (g_ != w_) printf("#   got %lld, want %lld\n", g_, w_);                                                         \
  } while (0)

#define is_str(got, want, ...)                                                                                         \
  do {                                                                                                                 \
    const char *g_ = (got), *w_ = (want);                                                                              \
    int same_ = g_ && w_ && strcmp(g_, w_) == 0;                                                                       \
    ok(same_, __VA_ARGS__);                                                                                            \
    if (!same_) printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)");                       \
  } while (0)

#define has_substr(hay, needle, ...)                                                                                   \
  do {                                                                                                                 \
    const char *h_ = (hay), *n_ = (needle);                                                                            \
    int found_ = h_ && n_ && strstr(h_, n_) != NULL;                                                                   \
    ok(found_, __VA_ARGS__);                                                                                           \
    if (!found_) printf("#   \"%s\" does not contain \"%s\"\n", h_ ? h_ : "(null)", n_ ? n_ : "(null)");               \
  } while (0)

static inline int tap_done(void) {
  printf("1..%d\n", tap_count);
  if (tap_failed) printf("# %d of %d checks failed\n", tap_failed, tap_count);
  return tap_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* The source tree (malloc'd): $HCS_SOURCE_DIR as ctest sets it, else the
 * tree this test was compiled from, for a test binary run by hand. */
static inline char *tap_source_dir(void) {
  const char *env = getenv("HCS_SOURCE_DIR");
  /* Else __FILE__, this header's path, up to its tests/c/. */
  char *s = strdup(env && *env ? env : __FILE__), *p;
  if (s == NULL) abort();
  if (!(env && *env) && (p = strstr(s, "/tests/c/"))) *p = '\0';
  return s;
}

#endif
