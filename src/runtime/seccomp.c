/* The OCI seccomp profile (linux.seccomp: defaultAction, defaultErrnoRet,
 * architectures, syscalls with names, action, errnoRet and args) compiled
 * with libseccomp into a raw BPF program, which the compute document loads
 * instead of hcs's own filter (Linux.Seccomp.ProgramFile). */
#include <seccomp.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>

#include "runtime/runtime.h"

static int action(json_t *o, const char *field, json_t *dflt_errno, uint32_t *out, bool *notify, hcs_error_t *err) {
  const char *a = json_string_value(json_object_get(o, field[0] == 'd' ? "defaultAction" : "action"));
  json_t *ret = json_object_get(o, field[0] == 'd' ? "defaultErrnoRet" : "errnoRet");
  int eno = json_is_integer(ret)          ? (int)json_integer_value(ret)
            : json_is_integer(dflt_errno) ? (int)json_integer_value(dflt_errno)
                                          : EPERM;
  if (a == NULL) return hcs_error_make(err, 0, "config.json: `%s`: expected an SCMP_ACT_* action, missing", field);
  if (strcmp(a, "SCMP_ACT_ALLOW") == 0)
    *out = SCMP_ACT_ALLOW;
  else if (strcmp(a, "SCMP_ACT_ERRNO") == 0)
    *out = SCMP_ACT_ERRNO((uint16_t)eno);
  else if (strcmp(a, "SCMP_ACT_KILL") == 0 || strcmp(a, "SCMP_ACT_KILL_THREAD") == 0)
    *out = SCMP_ACT_KILL_THREAD;
  else if (strcmp(a, "SCMP_ACT_KILL_PROCESS") == 0)
    *out = SCMP_ACT_KILL_PROCESS;
  else if (strcmp(a, "SCMP_ACT_TRAP") == 0)
    *out = SCMP_ACT_TRAP;
  else if (strcmp(a, "SCMP_ACT_TRACE") == 0)
    *out = SCMP_ACT_TRACE((uint16_t)eno);
  else if (strcmp(a, "SCMP_ACT_LOG") == 0)
    *out = SCMP_ACT_LOG;
  else if (strcmp(a, "SCMP_ACT_NOTIFY") == 0)
    *out = SCMP_ACT_NOTIFY, *notify = true;
  else
    return hcs_error_make(err, 0, "config.json: `%s`: unknown action \"%s\"", field, a);
  return 0;
}

static const struct {
  const char *name;
  enum scmp_compare op;
} ops[] = {{"SCMP_CMP_NE", SCMP_CMP_NE},
           {"SCMP_CMP_LT", SCMP_CMP_LT},
           {"SCMP_CMP_LE", SCMP_CMP_LE},
           {"SCMP_CMP_EQ", SCMP_CMP_EQ},
           {"SCMP_CMP_GE", SCMP_CMP_GE},
           {"SCMP_CMP_GT", SCMP_CMP_GT},
           {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};

static int add_rule(scmp_filter_ctx ctx, uint32_t act, int nr, unsigned n, const struct scmp_arg_cmp *args,
                    const char *field, const char *name, hcs_error_t *err) {
  int r = seccomp_rule_add_array(ctx, act, nr, n, args);
  /* libseccomp refuses a rule whose action is the default one: nothing to do. */
  if (r < 0 && r != -EEXIST && r != -EACCES && r != -EINVAL)
    return hcs_error_make(err, -r, "config.json: `%s`: add the rule for `%s`", field, name);
  if (r == -EINVAL) return hcs_error_make(err, 0, "config.json: `%s`: invalid rule for `%s`", field, name);
  return 0;
}

int rt_seccomp_compile(json_t *sc, const char *path, bool *notify, hcs_error_t *err) {
  uint32_t def;
  json_t *dflt_errno = json_object_get(sc, "defaultErrnoRet");
  *notify = false;
  if (action(sc, "defaultAction", NULL, &def, notify, err) < 0) return -1;
  scmp_filter_ctx ctx = seccomp_init(def);
  if (ctx == NULL) return hcs_error_make(err, ENOMEM, "seccomp_init");
  int ret = -1;
  json_t *a, *s;
  size_t i, k;
  json_array_foreach(json_object_get(sc, "architectures"), i, a) {
    const char *name = json_string_value(a);
    char lower[64] = "";
    if (name && strncmp(name, "SCMP_ARCH_", 10) == 0) name += 10;
    for (k = 0; name && name[k] && k < sizeof lower - 1; k++)
      lower[k] = (char)(name[k] >= 'A' && name[k] <= 'Z' ? name[k] + 32 : name[k]);
    uint32_t token = name ? seccomp_arch_resolve_name(lower) : 0;
    if (token == 0) {
      hcs_error_make(err, 0, "config.json: `linux.seccomp.architectures[%zu]`: unknown architecture \"%s\"", i,
                     json_string_value(a) ? json_string_value(a) : "(not a string)");
      goto out;
    }
    int r = seccomp_arch_add(ctx, token);
    if (r < 0 && r != -EEXIST) {
      hcs_error_make(err, -r, "config.json: `linux.seccomp.architectures[%zu]`", i);
      goto out;
    }
  }
  json_array_foreach(json_object_get(sc, "syscalls"), i, s) {
    cleanup_free char *field = hcs_xasprintf("linux.seccomp.syscalls[%zu].action", i);
    uint32_t act;
    if (action(s, field, dflt_errno, &act, notify, err) < 0) goto out;
    json_t *args = json_object_get(s, "args"), *arg;
    size_t n = json_array_size(args);
    if (n > 6) {
      hcs_error_make(err, 0, "config.json: `linux.seccomp.syscalls[%zu].args`: at most 6 conditions", i);
      goto out;
    }
    struct scmp_arg_cmp cmp[6];
    bool repeated = false;
    json_array_foreach(args, k, arg) {
      json_t *idx = json_object_get(arg, "index"), *v = json_object_get(arg, "value"),
             *v2 = json_object_get(arg, "valueTwo");
      const char *op = json_string_value(json_object_get(arg, "op"));
      int found = -1;
      for (size_t o = 0; op && o < HCS_ARRAY_SIZE(ops); o++)
        if (strcmp(ops[o].name, op) == 0) found = (int)o;
      if (!json_is_integer(idx) || json_integer_value(idx) < 0 || json_integer_value(idx) > 5 || found < 0 ||
          (v && !json_is_integer(v)) || (v2 && !json_is_integer(v2))) {
        hcs_error_make(err, 0,
                       "config.json: `linux.seccomp.syscalls[%zu].args[%zu]`: expected {index 0..5, value, valueTwo, "
                       "op SCMP_CMP_*}",
                       i, k);
        goto out;
      }
      cmp[k] = (struct scmp_arg_cmp){(unsigned)json_integer_value(idx), ops[found].op,
                                     (scmp_datum_t)json_integer_value(v), (scmp_datum_t)json_integer_value(v2)};
      for (size_t j = 0; j < k; j++)
        if (cmp[j].arg == cmp[k].arg) repeated = true;
    }
    json_t *names = json_object_get(s, "names"), *nm;
    json_array_foreach(names, k, nm) {
      const char *name = json_string_value(nm);
      if (name == NULL) {
        hcs_error_make(err, 0, "config.json: `linux.seccomp.syscalls[%zu].names[%zu]`: expected a string", i, k);
        goto out;
      }
      int nr = seccomp_syscall_resolve_name(name);
      if (nr == __NR_SCMP_ERROR) continue; /* not on this kernel's architectures: as runc, skipped */
      cleanup_free char *rf = hcs_xasprintf("linux.seccomp.syscalls[%zu]", i);
      /* Two conditions on one argument cannot both hold in one rule: as
       * runc does, each becomes a rule of its own (either matches). */
      if (repeated) {
        for (size_t c = 0; c < n; c++)
          if (add_rule(ctx, act, nr, 1, &cmp[c], rf, name, err) < 0) goto out;
      } else if (add_rule(ctx, act, nr, (unsigned)n, cmp, rf, name, err) < 0) {
        goto out;
      }
    }
  }
  {
    cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      hcs_error_make(err, errno, "open `%s`", path);
      goto out;
    }
    int r = seccomp_export_bpf(ctx, fd);
    if (r < 0) {
      hcs_error_make(err, -r, "export the seccomp program to `%s`", path);
      goto out;
    }
  }
  ret = 0;
out:
  seccomp_release(ctx);
  return ret;
}

/* The seccomp agent's message (runtime-spec "Seccomp State", as runc and
 * crun send it): the container process state as JSON, the listener as the
 * one fd of SCM_RIGHTS, in one message on a stream socket. */
int rt_seccomp_send_listener(int sock, int fd, json_t *state, const char *metadata, pid_t pid, hcs_error_t *err) {
  cleanup_json json_t *msg = json_pack("{s:s,s:[s],s:I,s:s,s:O}", "ociVersion", "1.1.0", "fds", "seccompFd", "pid",
                                       (json_int_t)pid, "metadata", metadata ? metadata : "", "state", state);
  cleanup_free char *text = json_dumps(msg, JSON_COMPACT);
  struct iovec iov = {text, strlen(text)};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  if (sendmsg(sock, &m, MSG_NOSIGNAL) < 0)
    return hcs_error_make(err, errno, "config.json: `linux.seccomp.listenerPath`: send the seccomp listener");
  return 0;
}
