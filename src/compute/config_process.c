/* ProcessParameters (init's Linux.Init and create_process): the command
 * line, environment, user, console and pipes, umask and groups, preserved
 * fds and a process's own capability sets, parsed into hcs_proc_spec_t. */
#include <ctype.h>
#include <string.h>

#include "compute/compute.h"
#include "compute/config_util.h"

void hcs_strv_free(char **v) {
  if (v == NULL) return;
  for (char **p = v; *p; p++)
    free(*p);
  free(v);
}

/* Split a CommandLine into words: whitespace separates, single quotes are
 * literal, double quotes allow \" and \\, a backslash escapes outside quotes.
 * No expansion of any kind: this is not a shell. */
char **hcs_split_command_line(const char *line, hcs_error_t *err) {
  size_t cap = 8, n = 0, len = strlen(line);
  char **argv = hcs_xcalloc(cap, sizeof(char *));
  cleanup_free char *word = hcs_xmalloc(len + 1);
  const char *s = line;
  for (;;) {
    while (*s && isspace((unsigned char)*s))
      s++;
    if (!*s) break;
    size_t w = 0;
    while (*s && !isspace((unsigned char)*s)) {
      if (*s == '\'') {
        const char *e = strchr(s + 1, '\'');
        if (!e) goto unterminated;
        memcpy(word + w, s + 1, (size_t)(e - s - 1));
        w += (size_t)(e - s - 1);
        s = e + 1;
      } else if (*s == '"') {
        s++;
        while (*s && *s != '"') {
          if (*s == '\\' && (s[1] == '"' || s[1] == '\\')) s++;
          word[w++] = *s++;
        }
        if (*s != '"') goto unterminated;
        s++;
      } else if (*s == '\\' && s[1]) {
        word[w++] = s[1];
        s += 2;
      } else {
        word[w++] = *s++;
      }
    }
    word[w] = '\0';
    if (n + 2 > cap) argv = hcs_xrealloc(argv, (cap *= 2) * sizeof(char *));
    argv[n++] = hcs_xstrdup(word);
    argv[n] = NULL;
  }
  if (n == 0) {
    hcs_strv_free(argv);
    hcs_error_make(err, 0, "empty command line");
    return NULL;
  }
  return argv;
unterminated:
  hcs_strv_free(argv);
  hcs_error_make(err, 0, "unterminated quote in command line `%s`", line);
  return NULL;
}

void hcs_proc_spec_free(hcs_proc_spec_t *p) {
  if (p == NULL) return;
  hcs_strv_free(p->argv);
  hcs_strv_free(p->env);
  free(p->cwd);
  free(p->user);
  free(p->extra_groups);
  free(p);
}

hcs_proc_spec_t *hcs_proc_spec_parse(json_t *doc, const char *where, hcs_error_t *err) {
  static const char *const keys[] = {"CommandLine",
                                     "CommandArgs",
                                     "WorkingDirectory",
                                     "Environment",
                                     "User",
                                     "EmulateConsole",
                                     "ConsoleSize",
                                     "CreateStdInPipe",
                                     "CreateStdOutPipe",
                                     "CreateStdErrPipe",
                                     "Umask",
                                     "AdditionalGroups",
                                     "PreserveFds",
                                     "Capabilities",
                                     "CapabilitySets",
                                     NULL};
  if (!json_is_object(doc)) {
    bad(err, *where ? where : "ProcessParameters", "object", doc);
    return NULL;
  }
  hcs_proc_spec_t *p = hcs_xcalloc(1, sizeof *p);
  char *cmdline = NULL;
  p->umask = -1;
  const char *w = where;
  if (check_keys(doc, w, keys, err) < 0) goto fail;
  if (get_str(doc, w, "CommandLine", &cmdline, err) < 0 || get_strv(doc, w, "CommandArgs", &p->argv, err) < 0 ||
      get_str(doc, w, "WorkingDirectory", &p->cwd, err) < 0 || get_str(doc, w, "User", &p->user, err) < 0 ||
      get_bool(doc, w, "EmulateConsole", &p->console, err) < 0 ||
      get_bool(doc, w, "CreateStdInPipe", &p->pipe_in, err) < 0 ||
      get_bool(doc, w, "CreateStdOutPipe", &p->pipe_out, err) < 0 ||
      get_bool(doc, w, "CreateStdErrPipe", &p->pipe_err, err) < 0)
    goto fail;
  int64_t um = -1, pf = 0;
  if (get_int(doc, w, "Umask", 0, 0777, &um, err) < 0 || get_int(doc, w, "PreserveFds", 0, 65536, &pf, err) < 0)
    goto fail;
  p->umask = (int)um;
  p->preserve_fds = (int)pf;
  if (parse_cap_list(doc, w, "Capabilities", &p->caps, &p->caps_given, err) < 0) goto fail;
  json_t *sets = NULL;
  if (get_obj(doc, w, "CapabilitySets", &sets, err) < 0) goto fail;
  if (sets) {
    cleanup_free char *sp = hcs_xasprintf("%s%sCapabilitySets", w, *w ? "." : "");
    if (parse_cap_sets(sets, sp, &p->cap_eff, &p->cap_perm, &p->cap_inh, &p->cap_amb, err) < 0) goto fail;
    p->cap_sets = true;
  }
  json_t *ag = json_object_get(doc, "AdditionalGroups");
  if (ag && !json_is_null(ag)) {
    cleanup_free char *gp = hcs_xasprintf("%s%sAdditionalGroups", w, *w ? "." : "");
    json_t *g;
    size_t i;
    if (!json_is_array(ag) || json_array_size(ag) > 32) {
      bad(err, gp, "an array of at most 32 group ids", ag);
      goto fail;
    }
    p->extra_groups = hcs_xcalloc(json_array_size(ag) + 1, sizeof(gid_t));
    json_array_foreach(ag, i, g) {
      if (!json_is_integer(g) || json_integer_value(g) < 0 || json_integer_value(g) > UINT32_MAX - 1) {
        cleanup_free char *ep = hcs_xasprintf("%s[%zu]", gp, i);
        bad(err, ep, "a group id", g);
        goto fail;
      }
      p->extra_groups[p->n_extra_groups++] = (gid_t)json_integer_value(g);
    }
  }
  if (cmdline && p->argv) {
    hcs_error_make(err, 0, "invalid configuration: `%s%sCommandLine`: give CommandLine or CommandArgs, not both", w,
                   *w ? "." : "");
    goto fail;
  }
  if (cmdline) {
    p->argv = hcs_split_command_line(cmdline, err);
    if (p->argv == NULL) {
      hcs_error_wrap(err, "invalid configuration: `%s%sCommandLine`", w, *w ? "." : "");
      goto fail;
    }
  }
  if (p->argv == NULL || p->argv[0] == NULL) {
    hcs_error_make(err, 0, "invalid configuration: `%s%sCommandArgs`: expected a non-empty command, missing", w,
                   *w ? "." : "");
    goto fail;
  }
  if (p->cwd) {
    cleanup_free char *cp = hcs_xasprintf("%s%sWorkingDirectory", w, *w ? "." : "");
    if (check_ctr_path(p->cwd, cp, json_object_get(doc, "WorkingDirectory"), err) < 0) goto fail;
  }
  json_t *env = json_object_get(doc, "Environment");
  size_t n = 0;
  if (env && !json_is_null(env)) {
    cleanup_free char *ep = hcs_xasprintf("%s%sEnvironment", w, *w ? "." : "");
    if (!json_is_object(env)) {
      bad(err, ep, "object of strings", env);
      goto fail;
    }
    const char *k;
    json_t *v;
    p->env = hcs_xcalloc(json_object_size(env) + 2, sizeof(char *));
    json_object_foreach(env, k, v) {
      if (!json_is_string(v)) {
        cleanup_free char *kp = hcs_xasprintf("%s.%s", ep, k);
        bad(err, kp, "string", v);
        goto fail;
      }
      if (!*k || strchr(k, '=')) {
        hcs_error_make(err, 0, "invalid configuration: `%s`: invalid variable name \"%s\"", ep, k);
        goto fail;
      }
      p->env[n++] = hcs_xasprintf("%s=%s", k, json_string_value(v));
    }
  }
  if (p->env == NULL) p->env = hcs_xcalloc(2, sizeof(char *));
  bool has_path = false;
  for (size_t i = 0; i < n; i++)
    if (strncmp(p->env[i], "PATH=", 5) == 0) has_path = true;
  if (!has_path) p->env[n++] = hcs_xstrdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  json_t *size = json_object_get(doc, "ConsoleSize");
  if (size && !json_is_null(size)) {
    cleanup_free char *sp = hcs_xasprintf("%s%sConsoleSize", w, *w ? "." : "");
    if (!json_is_array(size) || json_array_size(size) != 2 || !json_is_integer(json_array_get(size, 0)) ||
        !json_is_integer(json_array_get(size, 1)) || json_integer_value(json_array_get(size, 0)) < 0 ||
        json_integer_value(json_array_get(size, 0)) > 65535 || json_integer_value(json_array_get(size, 1)) < 0 ||
        json_integer_value(json_array_get(size, 1)) > 65535) {
      bad(err, sp, "[rows, columns] (two integers 0..65535)", size);
      goto fail;
    }
    p->rows = (unsigned short)json_integer_value(json_array_get(size, 0));
    p->cols = (unsigned short)json_integer_value(json_array_get(size, 1));
  }
  free(cmdline);
  return p;
fail:
  free(cmdline);
  hcs_proc_spec_free(p);
  return NULL;
}
