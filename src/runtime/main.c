/* hcs-runtime: runc's command line over libhcs compute systems, so podman,
 * containerd and CRI-O can use hcs as their OCI runtime.  A container is a
 * compute system of the same id under <root> (default /run/hcs-runtime);
 * what OCI adds (bundle, annotations, hooks, creation time) is kept in
 * <root>/oci/<id>.json, written before the system exists and removed after
 * it is gone.  Errors go to stderr and, with --log, to the log file (runc's
 * json lines with --log-format json, which podman and containerd read). */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "runtime/runtime.h"

static const char *g_root = "/run/hcs-runtime";
/* The lowest fd >= 3 that was closed when we started, before we opened
 * anything: --preserve-fds N needs 3..3+N-1 open. */
static int g_first_closed_fd = 3;
static FILE *g_log;
static bool g_log_json, g_debug;

static void log_line(const char *level, const char *msg) {
  if (g_log == NULL) return;
  cleanup_free char *now = hcs_now_rfc3339();
  if (g_log_json) {
    cleanup_json json_t *o = json_pack("{s:s,s:s,s:s}", "level", level, "msg", msg, "time", now);
    cleanup_free char *t = json_dumps(o, JSON_COMPACT);
    fprintf(g_log, "%s\n", t);
  } else {
    fprintf(g_log, "time=\"%s\" level=%s msg=\"%s\"\n", now, level, msg);
  }
  fflush(g_log);
}

static int fail_msg(const char *msg) {
  fprintf(stderr, "hcs-runtime: %s\n", msg);
  log_line("error", msg);
  return 1;
}

static int fail(hcs_error_t *err) {
  int r = fail_msg(hcs_error_message(*err));
  hcs_error_release(err);
  return r;
}

static int usage_error(const char *cmd, const char *msg) {
  cleanup_free char *m = hcs_xasprintf("%s: %s", cmd, msg);
  fail_msg(m);
  return 1;
}

static char *oci_path(const char *id) { return hcs_xasprintf("%s/oci/%s.json", g_root, id); }

static json_t *load_oci(const char *id) {
  cleanup_free char *p = oci_path(id);
  return json_load_file(p, 0, NULL);
}

/* Open the container: its compute system must exist. */
static void remove_record(const char *id);

static hcs_system_t *open_container(const char *id, hcs_error_t *err) {
  if (hcs_validate_id("container", id, err) < 0) return NULL;
  hcs_error_t e = NULL;
  hcs_system_t *cs = hcs_compute_open(g_root, id, &e);
  if (cs == NULL) {
    if (hcs_error_status(e) == ENOENT) {
      hcs_error_release(&e);
      hcs_error_make(err, 0, "container `%s` does not exist", id);
      /* An OCI record without a system is what a killed create or delete
       * left: nothing references it any more. */
      cleanup_free char *p = oci_path(id);
      int fd = open(p, O_RDONLY | O_CLOEXEC);
      if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) remove_record(id);
      if (fd >= 0) close(fd);
      return NULL;
    }
    *err = e;
  }
  return cs;
}

static const char *oci_status(const char *state) {
  if (strcmp(state, "Created") == 0) return "created";
  if (strcmp(state, "Running") == 0) return "running";
  if (strcmp(state, "Paused") == 0) return "paused";
  return "stopped";
}

/* The runtime-spec state document. */
static json_t *oci_state(hcs_system_t *cs, hcs_error_t *err) {
  cleanup_free char *props = hcs_compute_properties(cs, NULL, err);
  if (props == NULL) return NULL;
  cleanup_json json_t *p = json_loads(props, 0, NULL);
  cleanup_json json_t *oci = load_oci(hcs_compute_id(cs));
  const char *st = oci_status(json_string_value(json_object_get(p, "State")));
  json_t *s = json_pack("{s:s,s:s,s:s,s:I}", "ociVersion", "1.1.0", "id", hcs_compute_id(cs), "status", st, "pid",
                        (json_int_t)(strcmp(st, "stopped") ? json_integer_value(json_object_get(p, "Pid")) : 0));
  json_object_set_new(s, "bundle", json_string(json_string_value(json_object_get(oci, "bundle")) ?: ""));
  json_object_set_new(s, "rootfs", json_string(json_string_value(json_object_get(oci, "rootfs")) ?: ""));
  json_object_set_new(s, "created", json_string(json_string_value(json_object_get(oci, "created")) ?: ""));
  json_object_set_new(s, "owner", json_string(""));
  json_t *ann = json_object_get(oci, "annotations");
  if (json_is_object(ann) && json_object_size(ann)) json_object_set(s, "annotations", ann);
  return s;
}

static int write_pid_file(const char *path, pid_t pid, hcs_error_t *err) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%d", (int)pid);
  return hcs_write_file_atomic(path, buf, (size_t)n, 0644, err);
}

/* ------------------------------------------------------------------ create */
typedef struct {
  const char *bundle, *pid_file, *console_socket;
  int preserve_fds;
  bool detach, keep;
} create_opts_t;

/* The OCI record and the compiled seccomp program, once the system is gone. */
static void remove_record(const char *id) {
  cleanup_free char *p = oci_path(id);
  cleanup_free char *bpf = hcs_xasprintf("%s/oci/%s.bpf", g_root, id);
  unlink(bpf);
  unlink(p);
}

static void remove_container(const char *id, hcs_system_t *cs) {
  if (cs) hcs_compute_delete(cs, true, NULL);
  remove_record(id);
}

static int do_create(const char *id, const create_opts_t *o, hcs_system_t **out, hcs_error_t *err) {
  if (hcs_validate_id("container", id, err) < 0) return -1;
  char bundle[PATH_MAX];
  if (realpath(o->bundle ? o->bundle : ".", bundle) == NULL)
    return hcs_error_make(err, errno, "bundle `%s`", o->bundle ? o->bundle : ".");
  if (o->preserve_fds < 0) return hcs_error_make(err, 0, "--preserve-fds: expected a count >= 0");
  if (o->preserve_fds > 0 && 3 + o->preserve_fds > g_first_closed_fd)
    return hcs_error_make(err, EBADF, "--preserve-fds %d: fd %d is not open (fds 3..%d are passed)", o->preserve_fds,
                          g_first_closed_fd, 2 + o->preserve_fds);
  cleanup_free char *cfg_path = hcs_xasprintf("%s/config.json", bundle);
  json_error_t jerr;
  cleanup_json json_t *spec = json_load_file(cfg_path, JSON_REJECT_DUPLICATES, &jerr);
  if (spec == NULL) {
    if (access(cfg_path, F_OK) < 0) return hcs_error_make(err, errno, "open `%s`", cfg_path);
    return hcs_error_make(err, 0, "parse `%s`: line %d column %d: %s", cfg_path, jerr.line, jerr.column, jerr.text);
  }
  cleanup_json json_t *doc = rt_translate(spec, bundle, id, err);
  if (doc == NULL) return -1;
  bool terminal = json_is_true(json_object_get(json_object_get(spec, "process"), "terminal"));
  if (terminal && o->console_socket == NULL && o->detach)
    return hcs_error_make(err, 0, "cannot allocate a tty without --console-socket when detached");
  if (!terminal && o->console_socket)
    return hcs_error_make(err, 0, "--console-socket given but `process.terminal` is false");
  cleanup_close int sock = -1;
  if (terminal && o->console_socket && (sock = rt_console_connect(o->console_socket, err)) < 0) return -1;
  /* A seccomp agent (SCMP_ACT_NOTIFY): its socket is checked before
   * anything is created, and gets init's listener once it is loaded. */
  json_t *sc = json_object_get(json_object_get(spec, "linux"), "seccomp");
  const char *listener_path = json_string_value(json_object_get(sc, "listenerPath"));
  bool notify = false;
  {
    json_t *c;
    size_t i;
    json_array_foreach(json_object_get(sc, "syscalls"), i, c) notify |=
        json_is_string(json_object_get(c, "action")) &&
        strcmp(json_string_value(json_object_get(c, "action")), "SCMP_ACT_NOTIFY") == 0;
  }
  cleanup_close int agent = -1;
  if (notify && (agent = rt_unix_connect(listener_path, "config.json: `linux.seccomp.listenerPath`", err)) < 0)
    return -1;
  /* The OCI record first (locked while we create), the system second: a
   * record without a system is debris anyone may remove once unlocked. */
  cleanup_free char *dir = hcs_xasprintf("%s/oci", g_root);
  if (hcs_mkdir_p(dir, 0700, err) < 0) return -1;
  cleanup_free char *rec = oci_path(id);
  {
    hcs_error_t e = NULL;
    hcs_system_t *old = hcs_compute_open(g_root, id, &e);
    hcs_error_release(&e);
    if (old) {
      hcs_compute_close(old);
      return hcs_error_make(err, EEXIST, "container with id exists: %s", id);
    }
  }
  cleanup_close int lock = open(rec, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0)
    return hcs_error_make(err, errno, "container with id exists: %s", id);
  cleanup_free char *now = hcs_now_rfc3339();
  cleanup_json json_t *record = json_pack(
      "{s:s,s:s,s:s}", "bundle", bundle, "created", now, "rootfs",
      json_string_value(json_object_get(json_object_get(json_object_get(doc, "Container"), "Storage"), "Path")));
  json_t *ann = json_object_get(spec, "annotations");
  if (json_is_object(ann)) json_object_set(record, "annotations", ann);
  json_t *hooks = json_object_get(spec, "hooks");
  if (json_is_object(hooks)) json_object_set(record, "hooks", hooks);
  json_t *oom = json_object_get(json_object_get(spec, "process"), "oomScoreAdj");
  cleanup_free char *rtext = json_dumps(record, JSON_COMPACT);
  if (hcs_write_file(rec, rtext, strlen(rtext), err) < 0) {
    unlink(rec);
    return -1;
  }
  /* `run` in the foreground with a terminal and no console socket: init
   * gets our stdio, the caller's terminal. */
  cleanup_free char *bpf = hcs_xasprintf("%s/oci/%s.bpf", g_root, id);
  if (json_is_object(sc)) {
    if (rt_seccomp_compile(sc, bpf, &notify, err) < 0) {
      unlink(bpf);
      unlink(rec);
      return -1;
    }
    json_object_set_new(json_object_get(doc, "Linux"), "Seccomp",
                        json_pack("{s:s,s:b}", "ProgramFile", bpf, "Listener", notify));
  }
  if (o->preserve_fds > 0)
    json_object_set_new(json_object_get(json_object_get(doc, "Linux"), "Init"), "PreserveFds",
                        json_integer(o->preserve_fds));
  if (terminal)
    json_object_set_new(json_object_get(json_object_get(doc, "Linux"), "Init"), "EmulateConsole",
                        json_boolean(o->console_socket != NULL));
  hcs_compute_stdio_t stdio = {0, 1, 2};
  cleanup_free char *text = json_dumps(doc, JSON_COMPACT);
  if (g_debug) log_line("debug", text);
  hcs_system_t *cs = hcs_compute_create(g_root, id, text, &stdio, err);
  if (cs == NULL) {
    unlink(bpf);
    unlink(rec);
    return -1;
  }
  cleanup_free char *props = hcs_compute_properties(cs, NULL, err);
  cleanup_json json_t *p = props ? json_loads(props, 0, NULL) : NULL;
  pid_t pid = (pid_t)json_integer_value(json_object_get(p, "Pid"));
  if (props == NULL) goto fail;
  if (terminal && o->console_socket) {
    int in = -1, outfd = -1, errfd = -1;
    hcs_compute_take_stdio(cs, &in, &outfd, &errfd);
    int r = in >= 0 ? rt_send_fd(sock, in, err) : hcs_error_make(err, 0, "create `%s`: no console", id);
    if (in >= 0) close(in);
    if (outfd >= 0 && outfd != in) close(outfd);
    if (errfd >= 0 && errfd != in && errfd != outfd) close(errfd);
    if (r < 0) goto fail;
  }
  if (notify) {
    /* runc and crun send the state as "creating". */
    cleanup_close int lfd = hcs_compute_seccomp_listener(cs, err);
    cleanup_json json_t *st = lfd >= 0 ? oci_state(cs, err) : NULL;
    if (st) json_object_set_new(st, "status", json_string("creating"));
    if (st == NULL || rt_seccomp_send_listener(
                          agent, lfd, st, json_string_value(json_object_get(sc, "listenerMetadata")), pid, err) < 0)
      goto fail;
  }
  if (json_is_integer(oom)) {
    cleanup_free char *op = hcs_xasprintf("/proc/%d/oom_score_adj", (int)pid);
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(oom));
    if (hcs_write_file(op, buf, (size_t)n, err) < 0) {
      hcs_error_wrap(err, "config.json: `process.oomScoreAdj`");
      goto fail;
    }
  }
  if (json_is_object(hooks)) {
    cleanup_json json_t *st = oci_state(cs, NULL);
    if (rt_run_hooks(hooks, "prestart", st, 0, err) < 0 || rt_run_hooks(hooks, "createRuntime", st, 0, err) < 0 ||
        rt_run_hooks(hooks, "createContainer", st, pid, err) < 0)
      goto fail;
  }
  if (o->pid_file && write_pid_file(o->pid_file, pid, err) < 0) goto fail;
  *out = cs;
  return 0;
fail:
  remove_container(id, cs);
  hcs_compute_close(cs);
  return -1;
}

static int do_start(hcs_system_t *cs, hcs_error_t *err) {
  cleanup_json json_t *oci = load_oci(hcs_compute_id(cs));
  json_t *hooks = json_object_get(oci, "hooks");
  cleanup_free char *props = hcs_compute_properties(cs, NULL, err);
  if (props == NULL) return -1;
  cleanup_json json_t *p = json_loads(props, 0, NULL);
  const char *state = json_string_value(json_object_get(p, "State"));
  if (strcmp(state, "Created")) return hcs_error_make(err, 0, "cannot start a container that is %s", oci_status(state));
  if (json_array_size(json_object_get(hooks, "startContainer"))) {
    cleanup_json json_t *st = oci_state(cs, NULL);
    if (rt_run_hooks(hooks, "startContainer", st, (pid_t)json_integer_value(json_object_get(p, "Pid")), err) < 0)
      return -1;
  }
  if (hcs_compute_start(cs, err) < 0) return -1;
  if (json_array_size(json_object_get(hooks, "poststart"))) {
    cleanup_json json_t *st = oci_state(cs, NULL);
    hcs_error_t e = NULL;
    /* A failing poststart hook is logged, the container keeps running. */
    if (rt_run_hooks(hooks, "poststart", st, 0, &e) < 0) {
      log_line("warning", hcs_error_message(e));
      hcs_error_release(&e);
    }
  }
  return 0;
}

static int do_delete(hcs_system_t *cs, bool force, hcs_error_t *err) {
  const char *id = hcs_compute_id(cs);
  cleanup_json json_t *oci = load_oci(id);
  cleanup_json json_t *st = oci_state(cs, err);
  if (st == NULL) return -1;
  const char *status = json_string_value(json_object_get(st, "status"));
  if (!force && (strcmp(status, "running") == 0 || strcmp(status, "paused") == 0))
    return hcs_error_make(err, 0, "cannot delete container %s that is not stopped: %s", id, status);
  if (hcs_compute_delete(cs, true, err) < 0) return -1;
  json_object_set_new(st, "status", json_string("stopped"));
  hcs_error_t e = NULL;
  if (rt_run_hooks(json_object_get(oci, "hooks"), "poststop", st, 0, &e) < 0) {
    log_line("warning", hcs_error_message(e));
    hcs_error_release(&e);
  }
  remove_record(id);
  return 0;
}

/* ------------------------------------------------------------ the commands */
enum {
  O_BUNDLE = 1,
  O_PIDFILE,
  O_CONSOLE,
  O_PRESERVE,
  O_NOPIVOT,
  O_NOKEYRING,
  O_DETACH,
  O_KEEP,
  O_FORCE,
  O_ALL,
  O_FORMAT,
  O_QUIET,
  O_PROCESS,
  O_TTY,
  O_CWD,
  O_ENV,
  O_USER,
  O_CAP,
  O_NNP,
  O_ADDGID,
  O_RESOURCES,
  O_STATS,
  O_INTERVAL,
  O_IGNORED,
  O_ROOTLESS,
  O_MEMORY,
  O_CPUSHARES,
  O_CPUQUOTA,
  O_CPUPERIOD,
  O_PIDSLIMIT
};

static const struct option cmd_options[] = {{"bundle", required_argument, 0, O_BUNDLE},
                                            {"pid-file", required_argument, 0, O_PIDFILE},
                                            {"console-socket", required_argument, 0, O_CONSOLE},
                                            {"preserve-fds", required_argument, 0, O_PRESERVE},
                                            {"no-pivot", no_argument, 0, O_NOPIVOT},
                                            {"no-new-keyring", no_argument, 0, O_NOKEYRING},
                                            {"detach", no_argument, 0, O_DETACH},
                                            {"keep", no_argument, 0, O_KEEP},
                                            {"force", no_argument, 0, O_FORCE},
                                            {"all", no_argument, 0, O_ALL},
                                            {"format", required_argument, 0, O_FORMAT},
                                            {"quiet", no_argument, 0, O_QUIET},
                                            {"process", required_argument, 0, O_PROCESS},
                                            {"tty", no_argument, 0, O_TTY},
                                            {"cwd", required_argument, 0, O_CWD},
                                            {"env", required_argument, 0, O_ENV},
                                            {"user", required_argument, 0, O_USER},
                                            {"cap", required_argument, 0, O_CAP},
                                            {"no-new-privs", no_argument, 0, O_NNP},
                                            {"additional-gids", required_argument, 0, O_ADDGID},
                                            {"resources", required_argument, 0, O_RESOURCES},
                                            {"stats", no_argument, 0, O_STATS},
                                            {"interval", required_argument, 0, O_INTERVAL},
                                            {"rootless", no_argument, 0, O_ROOTLESS},
                                            {"memory", required_argument, 0, O_MEMORY},
                                            {"cpu-share", required_argument, 0, O_CPUSHARES},
                                            {"cpu-quota", required_argument, 0, O_CPUQUOTA},
                                            {"cpu-period", required_argument, 0, O_CPUPERIOD},
                                            {"pids-limit", required_argument, 0, O_PIDSLIMIT},
                                            {"apparmor", required_argument, 0, O_IGNORED},
                                            {"process-label", required_argument, 0, O_IGNORED},
                                            {"cgroup", required_argument, 0, O_IGNORED},
                                            {"log", required_argument, 0, O_IGNORED},
                                            {"exec-fifo", required_argument, 0, O_IGNORED},
                                            {0, 0, 0, 0}};

typedef struct {
  create_opts_t c;
  bool force, all, quiet, tty, stats, rootless, nnp;
  const char *format, *process, *cwd, *user, *resources;
  json_t *env, *caps;
  int interval;
  json_t *update;
} opts_t;

static int parse_opts(const char *cmd, int argc, char **argv, opts_t *o) {
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "+b:dfaqtu:e:p:c:", cmd_options, NULL)) != -1) {
    switch (c) {
    case 'b':
    case O_BUNDLE: o->c.bundle = optarg; break;
    case O_PIDFILE: o->c.pid_file = optarg; break;
    case O_CONSOLE: o->c.console_socket = optarg; break;
    case O_PRESERVE: {
      char *end;
      long n = strtol(optarg, &end, 10);
      o->c.preserve_fds = *end || n < 0 || n > 65536 ? -1 : (int)n;
      break;
    }
    case 'd':
    case O_DETACH: o->c.detach = true; break;
    case O_KEEP: o->c.keep = true; break;
    case 'f':
    case O_FORCE: o->force = true; break;
    case 'a':
    case O_ALL: o->all = true; break;
    case O_FORMAT: o->format = optarg; break;
    case 'q':
    case O_QUIET: o->quiet = true; break;
    case 'p':
    case O_PROCESS: o->process = optarg; break;
    case 't':
    case O_TTY: o->tty = true; break;
    case O_CWD: o->cwd = optarg; break;
    case 'e':
    case O_ENV: json_array_append_new(o->env, json_string(optarg)); break;
    case 'u':
    case O_USER: o->user = optarg; break;
    case 'c':
    case O_CAP: json_array_append_new(o->caps, json_string(optarg)); break;
    case O_NNP: o->nnp = true; break;
    case O_RESOURCES: o->resources = optarg; break;
    case O_STATS: o->stats = true; break;
    case O_INTERVAL: o->interval = atoi(optarg); break;
    case O_MEMORY: json_object_set_new(o->update, "memory", json_string(optarg)); break;
    case O_CPUSHARES: json_object_set_new(o->update, "shares", json_string(optarg)); break;
    case O_CPUQUOTA: json_object_set_new(o->update, "quota", json_string(optarg)); break;
    case O_CPUPERIOD: json_object_set_new(o->update, "period", json_string(optarg)); break;
    case O_PIDSLIMIT: json_object_set_new(o->update, "pids", json_string(optarg)); break;
    case O_NOPIVOT:
    case O_NOKEYRING:
    case O_ADDGID:
    case O_IGNORED:
    case O_ROOTLESS: break;
    default: {
      cleanup_free char *m = hcs_xasprintf("flag provided but not defined: %s", argv[optind - 1]);
      return usage_error(cmd, m);
    }
    }
  }
  return 0;
}

static int cmd_state(hcs_system_t *cs) {
  hcs_error_t err = NULL;
  cleanup_json json_t *st = oci_state(cs, &err);
  if (st == NULL) return fail(&err);
  cleanup_free char *t = json_dumps(st, JSON_INDENT(2));
  printf("%s\n", t);
  return 0;
}

static int cmd_list(opts_t *o) {
  hcs_error_t err = NULL;
  cleanup_free char *text = hcs_compute_enumerate(g_root, "{\"Owners\":[\"hcs-runtime\"]}", &err);
  if (text == NULL) return fail(&err);
  cleanup_json json_t *list = json_loads(text, 0, NULL);
  cleanup_json json_t *out = json_array();
  json_t *e;
  size_t i;
  json_array_foreach(list, i, e) {
    hcs_system_t *cs = hcs_compute_open(g_root, json_string_value(json_object_get(e, "Id")), NULL);
    if (cs == NULL) continue;
    json_t *st = oci_state(cs, NULL);
    hcs_compute_close(cs);
    if (st) json_array_append_new(out, st);
  }
  if (o->quiet) {
    json_array_foreach(out, i, e) printf("%s\n", json_string_value(json_object_get(e, "id")));
  } else if (o->format && strcmp(o->format, "json") == 0) {
    cleanup_free char *t = json_dumps(out, JSON_COMPACT);
    printf("%s\n", json_array_size(out) ? t : "null");
  } else {
    printf("%-24s %-8s %-10s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
    json_array_foreach(out, i, e) printf(
        "%-24s %-8lld %-10s %-40s %-32s %s\n", json_string_value(json_object_get(e, "id")),
        (long long)json_integer_value(json_object_get(e, "pid")), json_string_value(json_object_get(e, "status")),
        json_string_value(json_object_get(e, "bundle")), json_string_value(json_object_get(e, "created")), "root");
  }
  return 0;
}

static int cmd_ps(hcs_system_t *cs, opts_t *o, int argc, char **argv) {
  hcs_error_t err = NULL;
  cleanup_free char *props = hcs_compute_properties(cs, "{\"PropertyTypes\":[\"ProcessList\"]}", &err);
  if (props == NULL) return fail(&err);
  cleanup_json json_t *p = json_loads(props, 0, NULL);
  json_t *e, *list = json_object_get(p, "ProcessList");
  size_t i;
  if (o->format && strcmp(o->format, "json") == 0) {
    printf("[");
    json_array_foreach(list, i, e)
        printf("%s%lld", i ? "," : "", (long long)json_integer_value(json_object_get(e, "ProcessId")));
    printf("]\n");
    return 0;
  }
  /* Table: ps(1)'s own output, filtered to the container's processes. */
  cleanup_free char *cmd = hcs_xstrdup("ps");
  for (int k = 0; k < argc; k++) {
    char *n = hcs_xasprintf("%s '%s'", cmd, argv[k]);
    free(cmd);
    cmd = n;
  }
  if (argc == 0) {
    free(cmd);
    cmd = hcs_xstrdup("ps -ef");
  }
  FILE *f = popen(cmd, "r");
  if (f == NULL) return fail_msg("run ps");
  char line[4096];
  int pidcol = -1;
  while (fgets(line, sizeof line, f)) {
    if (pidcol < 0) {
      char copy[4096];
      snprintf(copy, sizeof copy, "%s", line);
      int col = 0;
      for (char *t = strtok(copy, " \t\n"); t; t = strtok(NULL, " \t\n"), col++)
        if (strcmp(t, "PID") == 0) pidcol = col;
      fputs(line, stdout);
      if (pidcol < 0) break;
      continue;
    }
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", line);
    char *t = strtok(copy, " \t\n");
    for (int col = 0; t && col < pidcol; col++)
      t = strtok(NULL, " \t\n");
    long pid = t ? atol(t) : -1;
    json_array_foreach(list, i, e) if (json_integer_value(json_object_get(e, "ProcessId")) == pid) fputs(line, stdout);
  }
  pclose(f);
  if (pidcol < 0) return fail_msg("ps: no PID column in the output of ps");
  return 0;
}

static int cmd_exec(hcs_system_t *cs, opts_t *o, int argc, char **argv) {
  hcs_error_t err = NULL;
  cleanup_json json_t *proc = NULL;
  if (o->process) {
    json_error_t jerr;
    proc = json_load_file(o->process, 0, &jerr);
    if (proc == NULL)
      return hcs_error_make(&err, 0, "parse `%s`: line %d: %s", o->process, jerr.line, jerr.text), fail(&err);
  } else {
    if (argc == 0) return usage_error("exec", "a command is required (or --process FILE)");
    proc = json_pack("{s:[],s:s}", "args", "cwd", o->cwd ? o->cwd : "/");
    for (int i = 0; i < argc; i++)
      json_array_append_new(json_object_get(proc, "args"), json_string(argv[i]));
    json_object_set(proc, "env", o->env);
    if (o->tty) json_object_set_new(proc, "terminal", json_true());
  }
  cleanup_json json_t *params = rt_translate_process(proc, "process", &err);
  if (params == NULL) return fail(&err);
  /* The process's own capability sets (bounding can only shrink, checked
   * by hcs): --process's `capabilities`, or with --cap the container's
   * sets plus those capabilities (as runc). */
  json_t *pcaps = json_object_get(proc, "capabilities");
  cleanup_json json_t *bcaps = NULL;
  if (!o->process && json_array_size(o->caps)) {
    cleanup_json json_t *oci = load_oci(hcs_compute_id(cs));
    cleanup_free char *cfg = hcs_xasprintf("%s/config.json", json_string_value(json_object_get(oci, "bundle")) ?: ".");
    cleanup_json json_t *spec = json_load_file(cfg, 0, NULL);
    json_t *c = json_object_get(json_object_get(spec, "process"), "capabilities");
    bcaps = json_is_object(c) ? json_deep_copy(c) : json_object();
    static const char *const sets[] = {"bounding", "effective", "permitted"};
    json_t *cap;
    size_t k;
    json_array_foreach(o->caps, k, cap) {
      for (size_t j = 0; j < HCS_ARRAY_SIZE(sets); j++) {
        json_t *a = json_object_get(bcaps, sets[j]);
        if (!json_is_array(a)) json_object_set_new(bcaps, sets[j], a = json_array());
        json_array_append(a, cap);
      }
      if (json_array_size(json_object_get(bcaps, "inheritable"))) {
        json_t *a = json_object_get(bcaps, "ambient");
        if (!json_is_array(a)) json_object_set_new(bcaps, "ambient", a = json_array());
        json_array_append(a, cap);
      }
    }
    pcaps = bcaps;
  }
  if (pcaps && !json_is_null(pcaps) && rt_translate_caps(pcaps, o->process ? o->process : "--cap", params, &err) < 0)
    return fail(&err);
  if (o->c.preserve_fds < 0) return fail_msg("exec: --preserve-fds: expected a count >= 0");
  if (o->c.preserve_fds > 0 && 3 + o->c.preserve_fds > g_first_closed_fd) {
    cleanup_free char *m = hcs_xasprintf("exec: --preserve-fds %d: fd %d is not open (fds 3..%d are passed)",
                                         o->c.preserve_fds, g_first_closed_fd, 2 + o->c.preserve_fds);
    return fail_msg(m);
  }
  if (o->c.preserve_fds > 0) json_object_set_new(params, "PreserveFds", json_integer(o->c.preserve_fds));
  if (o->user && !o->process) json_object_set_new(params, "User", json_string(o->user));
  if (o->cwd && o->process) json_object_set_new(params, "WorkingDirectory", json_string(o->cwd));
  bool tty = json_is_true(json_object_get(params, "EmulateConsole"));
  if (tty && o->c.console_socket == NULL)
    return fail_msg("exec: a terminal needs --console-socket (hcs-runtime does not relay a console itself)");
  if (!tty && o->c.console_socket) return fail_msg("exec: --console-socket given without a terminal");
  cleanup_close int sock = tty ? rt_console_connect(o->c.console_socket, &err) : -1;
  if (tty && sock < 0) return fail(&err);
  cleanup_free char *props = hcs_compute_properties(cs, NULL, &err);
  if (props == NULL) return fail(&err);
  cleanup_json json_t *p = json_loads(props, 0, NULL);
  const char *state = json_string_value(json_object_get(p, "State"));
  if (strcmp(state, "Running") && strcmp(state, "Created"))
    return hcs_error_make(&err, 0, "cannot exec in a %s container", oci_status(state)), fail(&err);
  cleanup_free char *text = json_dumps(params, JSON_COMPACT);
  hcs_compute_stdio_t stdio = {0, 1, 2};
  hcs_process_t *pr = hcs_process_create_ex(cs, text, &stdio, &err);
  if (pr == NULL) return fail(&err);
  if (tty) {
    int in = -1, out = -1, errfd = -1;
    hcs_process_take_stdio(pr, &in, &out, &errfd);
    int r = rt_send_fd(sock, in, &err);
    if (in >= 0) close(in);
    if (out >= 0 && out != in) close(out);
    if (errfd >= 0 && errfd != in && errfd != out) close(errfd);
    if (r < 0) {
      hcs_process_terminate(pr, NULL);
      hcs_process_close(pr);
      return fail(&err);
    }
  }
  if (o->c.pid_file && write_pid_file(o->c.pid_file, hcs_process_pid(pr), &err) < 0) {
    hcs_process_terminate(pr, NULL);
    hcs_process_close(pr);
    return fail(&err);
  }
  if (o->c.detach) {
    /* The process is our child until we exit, then the subreaper's
     * (conmon, the shim), which reaps it for its exit status: closing the
     * handle would reap it here if it has already exited. */
    fflush(NULL);
    _exit(0);
  }
  int r = hcs_process_wait(pr, -1, &err);
  int code = r > 0 ? hcs_process_exit_code(pr, &err) : -1;
  hcs_process_close(pr);
  if (code < 0) return fail(&err);
  return code;
}

/* run: create, start, and in the foreground wait for init (reaped here: we
 * are its subreaper) and delete, exiting with its status. */
static int cmd_run(const char *id, opts_t *o) {
  hcs_error_t err = NULL;
  if (!o->c.detach) prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  hcs_system_t *cs = NULL;
  if (do_create(id, &o->c, &cs, &err) < 0) return fail(&err);
  cleanup_free char *props = hcs_compute_properties(cs, NULL, &err);
  cleanup_json json_t *p = props ? json_loads(props, 0, NULL) : NULL;
  pid_t pid = (pid_t)json_integer_value(json_object_get(p, "Pid"));
  if (props == NULL || do_start(cs, &err) < 0) {
    remove_container(id, cs);
    hcs_compute_close(cs);
    return fail(&err);
  }
  if (o->c.detach) {
    hcs_compute_close(cs);
    return 0;
  }
  int st = 0, code = 255;
  for (;;) {
    pid_t r = waitpid(-1, &st, 0);
    if (r == pid) {
      code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (r < 0 && errno != EINTR) break;
  }
  hcs_compute_wait(cs, -1, NULL);
  if (!o->c.keep && do_delete(cs, true, &err) < 0) {
    hcs_compute_close(cs);
    return fail(&err);
  }
  hcs_compute_close(cs);
  return code;
}

static int cmd_update(hcs_system_t *cs, opts_t *o) {
  hcs_error_t err = NULL;
  cleanup_json json_t *res = NULL;
  if (o->resources) {
    json_error_t jerr;
    res = strcmp(o->resources, "-") == 0 ? json_loadf(stdin, 0, &jerr) : json_load_file(o->resources, 0, &jerr);
    if (res == NULL) return hcs_error_make(&err, 0, "parse `%s`: %s", o->resources, jerr.text), fail(&err);
  } else {
    res = json_object();
    const char *v;
    if ((v = json_string_value(json_object_get(o->update, "memory"))))
      json_object_set_new(res, "memory", json_pack("{s:I}", "limit", (json_int_t)strtoll(v, NULL, 10)));
    json_t *cpu = json_object();
    if ((v = json_string_value(json_object_get(o->update, "shares"))))
      json_object_set_new(cpu, "shares", json_integer(atoll(v)));
    if ((v = json_string_value(json_object_get(o->update, "quota"))))
      json_object_set_new(cpu, "quota", json_integer(atoll(v)));
    if ((v = json_string_value(json_object_get(o->update, "period"))))
      json_object_set_new(cpu, "period", json_integer(atoll(v)));
    json_object_set_new(res, "cpu", cpu);
    if ((v = json_string_value(json_object_get(o->update, "pids")))) {
      char *end;
      long long n = strtoll(v, &end, 10);
      if (*end || !*v) return fail_msg("update: --pids-limit: expected a number");
      json_object_set_new(res, "pids", json_pack("{s:I}", "limit", (json_int_t)n));
    }
  }
  /* Reuse the create-time translation on a skeleton document. */
  cleanup_json json_t *doc = json_pack("{s:{},s:{}}", "Container", "Linux");
  json_t *spec =
      json_pack("{s:s,s:{s:s},s:{s:[s,s,s,s,s],s:O},s:{s:[s]}}", "ociVersion", "1.1.0", "root", "path", "/", "linux",
                "namespaces", "pid", "network", "mount", "ipc", "uts", "resources", res, "process", "args", "true");
  json_t *nss = json_object_get(json_object_get(spec, "linux"), "namespaces");
  for (size_t i = 0; i < json_array_size(nss); i++)
    json_array_set_new(nss, i, json_pack("{s:O}", "type", json_array_get(nss, i)));
  cleanup_json json_t *tr = rt_translate(spec, "/", "update", &err);
  json_decref(spec);
  if (tr == NULL) return fail(&err);
  /* hcs keeps a pids limit (Linux.PidsLimit is 1..2^31-1): it cannot be
   * lifted with 0 or -1 as runc's "unlimited". */
  json_t *pl = json_object_get(json_object_get(res, "pids"), "limit");
  if (pl && !json_is_null(pl) && (!json_is_integer(pl) || json_integer_value(pl) <= 0))
    return fail_msg("update: `pids.limit`: expected a positive count (hcs cannot lift a pids limit)");
  json_t *ct = json_object_get(tr, "Container"), *req = json_object();
  if (json_object_get(ct, "Memory")) json_object_set(req, "Memory", json_object_get(ct, "Memory"));
  if (json_object_size(json_object_get(ct, "Processor")))
    json_object_set(req, "Processor", json_object_get(ct, "Processor"));
  if (json_object_get(json_object_get(tr, "Linux"), "PidsLimit"))
    json_object_set(req, "PidsLimit", json_object_get(json_object_get(tr, "Linux"), "PidsLimit"));
  cleanup_free char *t = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  (void)doc;
  if (hcs_compute_modify(cs, t, &err) < 0) return fail(&err);
  return 0;
}

static int cmd_events(hcs_system_t *cs, opts_t *o) {
  hcs_error_t err = NULL;
  for (;;) {
    cleanup_free char *props = hcs_compute_properties(cs, "{\"PropertyTypes\":[\"Statistics\"]}", &err);
    if (props == NULL) return fail(&err);
    cleanup_json json_t *p = json_loads(props, 0, NULL);
    if (strcmp(json_string_value(json_object_get(p, "State")), "Stopped") == 0) return 0;
    json_t *s = json_object_get(p, "Statistics");
    cleanup_json json_t *ev = json_pack(
        "{s:s,s:s,s:{s:{s:{s:I}},s:{s:{s:I,s:I}},s:{s:I}}}", "type", "stats", "id", hcs_compute_id(cs), "data", "cpu",
        "usage", "total",
        json_integer_value(json_object_get(json_object_get(s, "Processor"), "TotalRuntime100ns")) * 100, "memory",
        "usage", "usage", json_integer_value(json_object_get(json_object_get(s, "Memory"), "UsageBytes")), "max",
        json_integer_value(json_object_get(json_object_get(s, "Memory"), "PeakBytes")), "pids", "current",
        json_integer_value(json_object_get(json_object_get(s, "Pids"), "Current")));
    cleanup_free char *t = json_dumps(ev, JSON_COMPACT);
    printf("%s\n", t);
    fflush(stdout);
    if (o->stats) return 0;
    if (hcs_compute_wait(cs, (o->interval > 0 ? o->interval : 5) * 1000, NULL) == 1) return 0;
  }
}

static void usage(void) {
  printf("usage: hcs-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND [OPTIONS] ID\n"
         "commands: create, start, run, state, kill, delete, exec, ps, list, pause, resume, update, events,\n"
         "          features, spec, checkpoint, restore (not supported)\n");
}

int main(int argc, char **argv) {
  int i = 1;
  while (fcntl(g_first_closed_fd, F_GETFD) >= 0)
    g_first_closed_fd++;
  const char *log_path = NULL, *log_format = "text";
  static const struct option globals[] = {
      {"root", required_argument, 0, 'r'},       {"log", required_argument, 0, 'l'},
      {"log-format", required_argument, 0, 'f'}, {"debug", no_argument, 0, 'd'},
      {"systemd-cgroup", no_argument, 0, 's'},   {"rootless", required_argument, 0, 'R'},
      {"criu", required_argument, 0, 'c'},       {"help", no_argument, 0, 'h'},
      {"version", no_argument, 0, 'v'},          {0, 0, 0, 0}};
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "+hv", globals, NULL)) != -1) {
    switch (c) {
    case 'r': g_root = optarg; break;
    case 'l': log_path = optarg; break;
    case 'f': log_format = optarg; break;
    case 'd': g_debug = true; break;
    case 'h': usage(); return 0;
    case 'v': printf("hcs-runtime version %s\nspec: 1.1.0\n", HCS_VERSION); return 0;
    case 's':
    case 'R':
    case 'c': break;
    default: fprintf(stderr, "hcs-runtime: flag provided but not defined: %s\n", argv[optind - 1]); return 1;
    }
  }
  i = optind;
  if (log_path) {
    g_log = fopen(log_path, "ae");
    if (g_log == NULL) fprintf(stderr, "hcs-runtime: open log `%s`: %s\n", log_path, strerror(errno));
  }
  if (strcmp(log_format, "json") == 0)
    g_log_json = true;
  else if (strcmp(log_format, "text"))
    return fail_msg("--log-format: expected text or json");
  if (i >= argc) {
    usage();
    return 1;
  }
  const char *cmd = argv[i];
  int cargc = argc - i;
  char **cargv = argv + i;
  cleanup_json json_t *env = json_array(), *caps = json_array(), *upd = json_object();
  opts_t o = {.env = env, .caps = caps, .update = upd};
  if (parse_opts(cmd, cargc, cargv, &o)) return 1;
  char **rest = cargv + optind;
  int nrest = cargc - optind;
  const char *id = nrest > 0 ? rest[0] : NULL;
  hcs_error_t err = NULL;
  if (strcmp(cmd, "features") == 0) {
    cleanup_json json_t *f = rt_features();
    cleanup_free char *t = json_dumps(f, JSON_INDENT(4));
    printf("%s\n", t);
    return 0;
  }
  if (strcmp(cmd, "spec") == 0) {
    cleanup_free char *p = hcs_xasprintf("%s/config.json", o.c.bundle ? o.c.bundle : ".");
    if (access(p, F_OK) == 0) return fail_msg("spec: File config.json exists. Remove it first.");
    cleanup_json json_t *s = rt_spec_template(o.rootless);
    if (json_dump_file(s, p, JSON_INDENT(4)) < 0) return hcs_error_make(&err, errno, "write `%s`", p), fail(&err);
    return 0;
  }
  if (strcmp(cmd, "list") == 0) return cmd_list(&o);
  if (strcmp(cmd, "checkpoint") == 0 || strcmp(cmd, "restore") == 0) {
    cleanup_free char *m = hcs_xasprintf("%s: not supported by hcs-runtime (hcs has no CRIU support)", cmd);
    return fail_msg(m);
  }
  static const char *const known[] = {"create", "start", "run",   "state",  "kill",   "delete",
                                      "exec",   "ps",    "pause", "resume", "update", "events"};
  bool ok = false;
  for (size_t k = 0; k < HCS_ARRAY_SIZE(known); k++)
    if (strcmp(known[k], cmd) == 0) ok = true;
  if (!ok) {
    cleanup_free char *m = hcs_xasprintf("no such command: %s", cmd);
    return fail_msg(m);
  }
  if (id == NULL) return usage_error(cmd, "a container id is required");
  if (strcmp(cmd, "create") == 0) {
    o.c.detach = true;
    hcs_system_t *cs = NULL;
    if (do_create(id, &o.c, &cs, &err) < 0) return fail(&err);
    hcs_compute_close(cs);
    return 0;
  }
  if (strcmp(cmd, "run") == 0) return cmd_run(id, &o);
  hcs_system_t *cs = open_container(id, &err);
  if (cs == NULL) return fail(&err);
  int r = 0;
  if (strcmp(cmd, "start") == 0) {
    if (do_start(cs, &err) < 0) r = fail(&err);
  } else if (strcmp(cmd, "state") == 0) {
    r = cmd_state(cs);
  } else if (strcmp(cmd, "kill") == 0) {
    const char *s = nrest > 1 ? rest[1] : "SIGTERM";
    int sig = rt_parse_signal(s);
    if (sig < 0) {
      cleanup_free char *m = hcs_xasprintf("kill: unknown signal \"%s\"", s);
      r = fail_msg(m);
    } else if (hcs_compute_signal(cs, sig, o.all, &err) < 0) {
      hcs_error_release(&err);
      cleanup_free char *m = hcs_xasprintf("container `%s` is not running", id);
      r = fail_msg(m);
    }
  } else if (strcmp(cmd, "delete") == 0) {
    if (do_delete(cs, o.force, &err) < 0) r = fail(&err);
  } else if (strcmp(cmd, "exec") == 0) {
    r = cmd_exec(cs, &o, nrest - 1, rest + 1);
  } else if (strcmp(cmd, "ps") == 0) {
    r = cmd_ps(cs, &o, nrest - 1, rest + 1);
  } else if (strcmp(cmd, "pause") == 0) {
    if (hcs_compute_pause(cs, &err) < 0) r = fail(&err);
  } else if (strcmp(cmd, "resume") == 0) {
    if (hcs_compute_resume(cs, &err) < 0) r = fail(&err);
  } else if (strcmp(cmd, "update") == 0) {
    r = cmd_update(cs, &o);
  } else if (strcmp(cmd, "events") == 0) {
    r = cmd_events(cs, &o);
  }
  hcs_compute_close(cs);
  return r;
}
