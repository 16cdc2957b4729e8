/* Internal helpers shared by every libhcs subsystem: cleanup attributes,
 * ownership hand-off, and small fs/json utilities.  Not installed. */
#ifndef HCS_CORE_UTIL_H
#define HCS_CORE_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

#include "hcs/error.h"
#include "hcs/log.h"

#define HCS_INTERNAL __attribute__((visibility("hidden")))

/* --- cleanup attributes (crun style) ------------------------------------ */
static inline void hcs_cleanup_freep(void *p) {
  void **pp = (void **)p;
  free(*pp);
}
static inline void hcs_cleanup_closep(int *fd) {
  if (*fd >= 0) {
    int saved = errno;
    close(*fd);
    errno = saved;
  }
}
static inline void hcs_cleanup_filep(FILE **f) {
  if (*f) fclose(*f);
}
static inline void hcs_cleanup_dirp(DIR **d) {
  if (*d) closedir(*d);
}
static inline void hcs_cleanup_jsonp(json_t **j) {
  if (*j) json_decref(*j);
}
static inline void hcs_cleanup_errorp(hcs_error_t *e) { hcs_error_release(e); }

#define cleanup_free __attribute__((cleanup(hcs_cleanup_freep)))
#define cleanup_close __attribute__((cleanup(hcs_cleanup_closep)))
#define cleanup_file __attribute__((cleanup(hcs_cleanup_filep)))
#define cleanup_dir __attribute__((cleanup(hcs_cleanup_dirp)))
#define cleanup_json __attribute__((cleanup(hcs_cleanup_jsonp)))
#define cleanup_error __attribute__((cleanup(hcs_cleanup_errorp)))

/* Hand ownership out of a cleanup variable. */
static inline void *hcs_steal_ptr(void *pp) {
  void **p = (void **)pp;
  void *v = *p;
  *p = NULL;
  return v;
}
static inline int hcs_steal_fd(int *fd) {
  int v = *fd;
  *fd = -1;
  return v;
}
#define steal_ptr(p) hcs_steal_ptr(&(p))
#define steal_fd(fd) hcs_steal_fd(&(fd))

#define HCS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* --- memory / strings ---------------------------------------------------- */
HCS_INTERNAL void *hcs_xmalloc(size_t n);
HCS_INTERNAL void *hcs_xcalloc(size_t n, size_t size);
HCS_INTERNAL void *hcs_xrealloc(void *p, size_t n);
HCS_INTERNAL char *hcs_xstrdup(const char *s);
HCS_INTERNAL char *hcs_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- files --------------------------------------------------------------- */
/* Read a whole file (NUL-terminated; *len excludes the NUL). */
HCS_INTERNAL int hcs_read_file(const char *path, char **out, size_t *len, hcs_error_t *err);
HCS_INTERNAL int hcs_read_file_at(int dirfd, const char *path, char **out, size_t *len, hcs_error_t *err);
/* Crash-safe replace: write `path.tmp.PID`, fsync, rename over `path`, fsync
 * the directory.  Readers see the old or the new content, never a mix. */
HCS_INTERNAL int hcs_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, hcs_error_t *err);
/* The same without the fsyncs: atomic for readers and against a killed
 * writer, for runtime state that dies with the machine anyway. */
HCS_INTERNAL int hcs_write_file_replace(const char *path, const void *data, size_t len, mode_t mode, hcs_error_t *err);
/* Plain write of a small file (e.g. cgroup and /proc knobs). */
HCS_INTERNAL int hcs_write_file(const char *path, const char *data, size_t len, hcs_error_t *err);
HCS_INTERNAL int hcs_mkdir_p(const char *path, mode_t mode, hcs_error_t *err);
/* Remove a tree without following symlinks and without crossing mount
 * points (a mounted directory inside is an error, never emptied). ENOENT is
 * not an error. */
HCS_INTERNAL int hcs_rm_rf(const char *path, hcs_error_t *err);
HCS_INTERNAL int hcs_rm_rf_at(int dirfd, const char *name, hcs_error_t *err);
HCS_INTERNAL int hcs_fsync_dir(const char *path, hcs_error_t *err);
/* The directory of `path` ("." for a bare name, "/" for one under the root), malloc'd. */
HCS_INTERNAL char *hcs_dir_of(const char *path);
HCS_INTERNAL bool hcs_path_exists(const char *path);

/* Exclusive advisory lock on `path` (created if missing); returns the fd
 * holding the lock.  shared=true takes a shared lock. */
HCS_INTERNAL int hcs_lock_file(const char *path, bool shared, hcs_error_t *err);

/* FNV-1a, 64 bits: start from HCS_FNV1A_INIT and feed bytes; for names
 * derived from content (cache files, pins, interface names), not security. */
#define HCS_FNV1A_INIT 0xcbf29ce484222325ull
HCS_INTERNAL uint64_t hcs_fnv1a(uint64_t h, const void *data, size_t len);

/* Validate an id used as a file name in a store: 1..128 chars of
 * [A-Za-z0-9_.-], not starting with '.' or '-'. */
HCS_INTERNAL int hcs_validate_id(const char *what, const char *id, hcs_error_t *err);

/* --- JSON ---------------------------------------------------------------- */
HCS_INTERNAL json_t *hcs_json_load_file(const char *path, hcs_error_t *err);
HCS_INTERNAL json_t *hcs_json_parse(const char *text, const char *what, hcs_error_t *err);
HCS_INTERNAL int hcs_json_write_atomic(const char *path, json_t *doc, hcs_error_t *err);
/* hcs_write_file_replace of the document: runtime state only. */
HCS_INTERNAL int hcs_json_write_replace(const char *path, json_t *doc, hcs_error_t *err);
/* Serialize compactly with sorted keys; malloc'd. */
HCS_INTERNAL char *hcs_json_dumps(json_t *doc);
/* Current UTC time as RFC 3339 (e.g. 2026-11-25T14:31:48.123456789Z). */
HCS_INTERNAL char *hcs_now_rfc3339(void);

/* --- the hcs root -------------------------------------------------------- */
/* State root: explicit value, else $HCS_ROOT, else /var/lib/hcs.  Runtime
 * root: $HCS_RUN_ROOT, else /run/hcs, or `<root>/run` when the state root was
 * overridden (so tests and side-by-side hosts never share runtime state). */
HCS_INTERNAL char *hcs_root_resolve(const char *root);
HCS_INTERNAL char *hcs_run_root_resolve(const char *root);
/* Append an event record to <run_root>/events/events.log (events.c; see
 * hcs/events.h).  attrs (may be NULL) is stolen.  Best effort: a journal
 * that cannot be written loses the record, never fails the verb. */
/* The operation running on this thread (operation.c): has it been
 * cancelled?  Verbs that can stop safely check it (imports per entry) or
 * poll the fd (-1 outside an operation) in their waits (shutdown). */
HCS_INTERNAL bool hcs_operation_cancelled(void);
HCS_INTERNAL int hcs_operation_cancel_fd(void);
HCS_INTERNAL void hcs_event_emit(const char *run_root, const char *type, const char *action, const char *id,
                                 const char *owner, json_t *attrs);

#endif
