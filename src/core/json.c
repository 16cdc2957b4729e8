/* JSON helpers over jansson: load with located errors, atomic save. */
#include <string.h>
#include <time.h>

#include "core/util.h"

json_t *hcs_json_parse(const char *text, const char *what, hcs_error_t *err) {
  json_error_t je;
  json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
  if (j == NULL) {
    hcs_error_make(err, 0, "parse %s: line %d column %d: %s", what, je.line, je.column, je.text);
    return NULL;
  }
  return j;
}

json_t *hcs_json_load_file(const char *path, hcs_error_t *err) {
  cleanup_free char *text = NULL;
  if (hcs_read_file(path, &text, NULL, err) < 0) return NULL;
  cleanup_free char *what = hcs_xasprintf("`%s`", path);
  return hcs_json_parse(text, what, err);
}

char *hcs_json_dumps(json_t *doc) {
  char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
  if (s == NULL) abort();
  return s;
}

static int write_doc(const char *path, json_t *doc, bool durable, hcs_error_t *err) {
  cleanup_free char *s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (s == NULL) return hcs_error_make(err, ENOMEM, "serialize `%s`", path);
  size_t n = strlen(s);
  s = hcs_xrealloc(s, n + 2);
  s[n++] = '\n';
  s[n] = '\0';
  return durable ? hcs_write_file_atomic(path, s, n, 0644, err) : hcs_write_file_replace(path, s, n, 0644, err);
}

int hcs_json_write_atomic(const char *path, json_t *doc, hcs_error_t *err) { return write_doc(path, doc, true, err); }

int hcs_json_write_replace(const char *path, json_t *doc, hcs_error_t *err) { return write_doc(path, doc, false, err); }

char *hcs_now_rfc3339(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return hcs_xasprintf("%s.%09ldZ", buf, ts.tv_nsec);
}
