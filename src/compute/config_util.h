/* Helpers shared by the configuration parsers (config.c, config_process.c,
 * and the VirtualMachine section's src/vm/config.c): typed field getters
 * whose errors name the JSON path, what was expected and what was found. */
#ifndef HCS_COMPUTE_CONFIG_UTIL_H
#define HCS_COMPUTE_CONFIG_UTIL_H

#include <limits.h>
#include <string.h>

#include "compute/compute.h"

static const char *json_kind(json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT: return "object";
  case JSON_ARRAY: return "array";
  case JSON_STRING: return "string";
  case JSON_INTEGER: return "integer";
  case JSON_REAL: return "number";
  case JSON_TRUE:
  case JSON_FALSE: return "boolean";
  default: return "null";
  }
}

static inline int bad(hcs_error_t *err, const char *path, const char *expected, json_t *got) {
  if (got == NULL) return hcs_error_make(err, 0, "invalid configuration: `%s`: expected %s, missing", path, expected);
  if (json_is_string(got))
    return hcs_error_make(err, 0, "invalid configuration: `%s`: expected %s, got string \"%s\"", path, expected,
                          json_string_value(got));
  if (json_is_integer(got))
    return hcs_error_make(err, 0, "invalid configuration: `%s`: expected %s, got integer %lld", path, expected,
                          (long long)json_integer_value(got));
  return hcs_error_make(err, 0, "invalid configuration: `%s`: expected %s, got %s", path, expected, json_kind(got));
}

/* A path inside the container: absolute, no `.` or `..` component (every
 * such path is resolved inside the root, but a document that climbs is a
 * mistake or an attack either way), shorter than PATH_MAX. */
static inline int check_ctr_path(const char *s, const char *path, json_t *v, hcs_error_t *err) {
  if (s == NULL || s[0] != '/') return bad(err, path, "an absolute path", v);
  if (strlen(s) >= PATH_MAX) return bad(err, path, "a path shorter than PATH_MAX", v);
  for (const char *c = s; *c; c++) {
    if (*c != '.' || c[-1] != '/') continue;
    size_t n = c[1] == '.' ? 2 : 1;
    if (c[n] == '/' || c[n] == '\0') return bad(err, path, "an absolute path without `.` or `..` components", v);
  }
  return 0;
}

static inline int check_ctr_paths(char **list, const char *path, json_t *arr, hcs_error_t *err) {
  for (size_t i = 0; list && list[i]; i++) {
    cleanup_free char *p = hcs_xasprintf("%s[%zu]", path, i);
    if (check_ctr_path(list[i], p, json_array_get(arr, i), err) < 0) return -1;
  }
  return 0;
}

/* Reject keys not in `known` (NULL-terminated): a typo must not be ignored. */
/* Every key of `obj` is one of `known` (NULL-terminated); `what` opens the
 * message ("invalid configuration", "invalid modify request"). */
static inline int check_fields(json_t *obj, const char *what, const char *path, const char *const *known,
                               hcs_error_t *err) {
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    bool found = false;
    for (size_t i = 0; known[i]; i++)
      if (strcmp(known[i], key) == 0) found = true;
    if (!found) {
      cleanup_free char *list = NULL;
      size_t len = 0;
      for (size_t i = 0; known[i]; i++)
        len += strlen(known[i]) + 2;
      list = hcs_xcalloc(1, len + 1);
      for (size_t i = 0; known[i]; i++) {
        if (i) strcat(list, ", ");
        strcat(list, known[i]);
      }
      return hcs_error_make(err, 0, "%s: `%s%s%s`: unknown field (expected one of %s)", what, path, *path ? "." : "",
                            key, list);
    }
  }
  return 0;
}

static inline int check_keys(json_t *obj, const char *path, const char *const *known, hcs_error_t *err) {
  return check_fields(obj, "invalid configuration", path, known, err);
}

#define P(...) cleanup_free char *p_ = hcs_xasprintf(__VA_ARGS__)

/* An optional member of an object: NULL when absent or null. */
static inline json_t *json_member(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  return json_is_null(v) ? NULL : v;
}

static inline int get_obj(json_t *parent, const char *path, const char *key, json_t **out, hcs_error_t *err) {
  json_t *v = json_object_get(parent, key);
  *out = NULL;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_object(v)) {
    P("%s%s%s", path, *path ? "." : "", key);
    return bad(err, p_, "object", v);
  }
  *out = v;
  return 0;
}

/* The same, its keys checked against `known` (NULL-terminated). */
static inline int get_obj_known(json_t *parent, const char *path, const char *key, json_t **out,
                                const char *const *known, hcs_error_t *err) {
  if (get_obj(parent, path, key, out, err) < 0) return -1;
  if (*out == NULL) return 0;
  P("%s%s%s", path, *path ? "." : "", key);
  return check_keys(*out, p_, known, err);
}

static inline int get_str(json_t *parent, const char *path, const char *key, char **out, hcs_error_t *err) {
  json_t *v = json_object_get(parent, key);
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_string(v)) {
    P("%s%s%s", path, *path ? "." : "", key);
    return bad(err, p_, "string", v);
  }
  free(*out);
  *out = hcs_xstrdup(json_string_value(v));
  return 0;
}

/* A string that must not be empty (a path, a name, a command line). */
static inline int get_nonempty_str(json_t *parent, const char *path, const char *key, char **out, hcs_error_t *err) {
  json_t *v = json_member(parent, key);
  if (v == NULL) return 0;
  if (!json_is_string(v) || json_string_length(v) == 0) {
    P("%s%s%s", path, *path ? "." : "", key);
    return bad(err, p_, "a non-empty string", v);
  }
  free(*out);
  *out = hcs_xstrdup(json_string_value(v));
  return 0;
}

static inline int get_bool(json_t *parent, const char *path, const char *key, bool *out, hcs_error_t *err) {
  json_t *v = json_object_get(parent, key);
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_boolean(v)) {
    P("%s%s%s", path, *path ? "." : "", key);
    return bad(err, p_, "boolean", v);
  }
  *out = json_is_true(v);
  return 0;
}

static inline int get_int(json_t *parent, const char *path, const char *key, int64_t min, int64_t max, int64_t *out,
                          hcs_error_t *err) {
  json_t *v = json_object_get(parent, key);
  if (v == NULL || json_is_null(v)) return 0;
  P("%s%s%s", path, *path ? "." : "", key);
  if (!json_is_integer(v)) return bad(err, p_, "integer", v);
  int64_t n = json_integer_value(v);
  if (n < min || n > max)
    return hcs_error_make(err, 0, "invalid configuration: `%s`: expected an integer in [%lld, %lld], got %lld", p_,
                          (long long)min, (long long)max, (long long)n);
  *out = n;
  return 0;
}

static inline int get_strv(json_t *parent, const char *path, const char *key, char ***out, hcs_error_t *err) {
  json_t *v = json_object_get(parent, key), *e;
  size_t i;
  if (v == NULL || json_is_null(v)) return 0;
  P("%s%s%s", path, *path ? "." : "", key);
  if (!json_is_array(v)) return bad(err, p_, "array of strings", v);
  char **r = hcs_xcalloc(json_array_size(v) + 1, sizeof(char *));
  json_array_foreach(v, i, e) {
    if (!json_is_string(e)) {
      hcs_strv_free(r);
      cleanup_free char *ep = hcs_xasprintf("%s[%zu]", p_, i);
      return bad(err, ep, "string", e);
    }
    r[i] = hcs_xstrdup(json_string_value(e));
  }
  hcs_strv_free(*out);
  *out = r;
  return 0;
}

/* A list of capability names into a mask; *given when the key is there. */
static inline int parse_cap_list(json_t *o, const char *path, const char *key, uint64_t *mask, bool *given,
                                 hcs_error_t *err) {
  char **caps = NULL;
  if (get_strv(o, path, key, &caps, err) < 0) return -1;
  if (caps == NULL) return 0;
  *mask = 0;
  if (given) *given = true;
  for (size_t i = 0; caps[i]; i++) {
    int cap = hcs_cap_from_name(caps[i]);
    if (cap < 0) {
      cleanup_free char *p = hcs_xasprintf("%s%s%s[%zu]", path, *path ? "." : "", key, i);
      json_t *v = json_array_get(json_object_get(o, key), i);
      hcs_strv_free(caps);
      return bad(err, p, "a capability name (e.g. \"CAP_CHOWN\")", v);
    }
    *mask |= 1ULL << cap;
  }
  hcs_strv_free(caps);
  return 0;
}

/* CapabilitySets {Effective, Permitted, Inheritable, Ambient}. */
static inline int parse_cap_sets(json_t *sets, const char *path, uint64_t *eff, uint64_t *perm, uint64_t *inh,
                                 uint64_t *amb, hcs_error_t *err) {
  static const char *const names[] = {"Effective", "Permitted", "Inheritable", "Ambient", NULL};
  uint64_t *dst[] = {eff, perm, inh, amb};
  if (check_keys(sets, path, names, err) < 0) return -1;
  for (size_t k = 0; names[k]; k++)
    if (parse_cap_list(sets, path, names[k], dst[k], NULL, err) < 0) return -1;
  /* An ambient capability must be permitted and inheritable (capabilities(7)). */
  if (*amb & ~(*perm & *inh))
    return hcs_error_make(err, 0,
                          "invalid configuration: `%s.Ambient`: each ambient capability must also be Permitted and "
                          "Inheritable",
                          path);
  return 0;
}

#endif
