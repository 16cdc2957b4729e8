/* The agent's event loop: one poll over the virtio-serial port, the
 * processes' stdio, a signalfd (SIGCHLD: exits and orphan reaping) and the
 * power button.  Frames are parsed from the port (src/vm/agent_proto.h);
 * CTRL frames are JSON requests answered by seq, DATA/EOF/WINDOW frames move
 * stdio with per-stream credit so a slow host reader stalls only its own
 * process.  A new `hello` (or the host going away) ends the session: its
 * processes are killed, since nobody can read their output any more. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h> /* setgroups */
#include <linux/input.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "vm/agent_proto.h"

#define OUTQ_HIGH (1u << 20) /* stop reading processes while this much waits for the port */

struct buf {
  unsigned char *d;
  size_t off, len, cap; /* bytes d[off .. off+len) are pending */
};

static void buf_reserve(struct buf *b, size_t n) {
  if (b->off + b->len + n <= b->cap) return;
  if (b->off) {
    memmove(b->d, b->d + b->off, b->len);
    b->off = 0;
  }
  if (b->len + n <= b->cap) return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + n)
    cap *= 2;
  unsigned char *d = realloc(b->d, cap);
  if (!d) {
    agent_log("hcs-agent: out of memory\n");
    abort();
  }
  b->d = d;
  b->cap = cap;
}
static void buf_put(struct buf *b, const void *p, size_t n) {
  buf_reserve(b, n);
  memcpy(b->d + b->off + b->len, p, n);
  b->len += n;
}
static void buf_drop(struct buf *b, size_t n) {
  b->off += n;
  b->len -= n;
  if (!b->len) b->off = 0;
}
static void buf_free(struct buf *b) {
  free(b->d);
  memset(b, 0, sizeof(*b));
}

struct proc {
  struct proc *next;
  uint32_t id;
  pid_t pid;
  int fd[3];          /* 0: to the process's stdin, 1 and 2: from its stdout/stderr; -1 closed */
  bool tty;           /* fd[0] and fd[1] are the same pty master */
  uint32_t credit[3]; /* [1], [2]: bytes the host lets us send */
  struct buf in;      /* stdin bytes received, not yet written */
  bool in_eof;        /* the host closed stdin: close fd[0] once `in` is written */
  bool exited;
};

static int port = -1;
static struct buf inq, outq;
static struct proc *procs;
static uint32_t next_id = 1;
static bool connected;

static void send_frame(unsigned type, uint32_t stream, const void *p, uint32_t n) {
  unsigned char h[HCS_AGENT_HDR];
  hcs_agent_put_hdr(h, type, stream, n);
  buf_put(&outq, h, sizeof(h));
  if (n) buf_put(&outq, p, n);
}

static void send_json(json_t *msg) {
  char *s = json_dumps(msg, JSON_COMPACT);
  json_decref(msg);
  if (!s) return;
  send_frame(HCS_AGENT_CTRL, 0, s, (uint32_t)strlen(s));
  free(s);
}

static void send_window(uint32_t stream, uint32_t n) {
  unsigned char b[4] = {n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >> 24};
  send_frame(HCS_AGENT_WINDOW_UPDATE, stream, b, 4);
}

void agent_send_json(json_t *msg) { send_json(msg); }

void agent_reply_error(json_t *seq, int errnum, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (errnum && n >= 0 && (size_t)n < sizeof(msg)) snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(errnum));
  send_json(json_pack("{s:O?,s:s,s:i}", "seq", seq, "error", msg, "errno", errnum));
}
#define reply_error agent_reply_error

static void close_fd(struct proc *p, int i) {
  if (p->fd[i] < 0) return;
  bool shared = p->tty && (i == 0 || i == 1) && p->fd[0] == p->fd[1];
  if (!shared)
    close(p->fd[i]);
  else if (p->fd[1 - i] < 0)
    close(p->fd[i]);
  p->fd[i] = -1;
}

static void proc_free_if_done(struct proc **pp) {
  struct proc *p = *pp;
  if (!p->exited || p->fd[1] >= 0 || p->fd[2] >= 0) return;
  close_fd(p, 0);
  buf_free(&p->in);
  *pp = p->next;
  free(p);
}

static struct proc *proc_find(uint32_t id) {
  for (struct proc *p = procs; p; p = p->next)
    if (p->id == id) return p;
  return NULL;
}

static unsigned generation; /* bumped when a session ends: process pointers die */

/* End the session: nobody reads these processes any more.  The input
 * buffer is kept while it is being parsed (a hello inside it). */
static void session_end(bool keep_input) {
  generation++;
  while (procs) {
    struct proc *p = procs;
    if (!p->exited) kill(-p->pid, SIGKILL), kill(p->pid, SIGKILL);
    for (int i = 0; i < 3; i++)
      close_fd(p, i);
    buf_free(&p->in);
    procs = p->next;
    free(p);
  }
  if (!keep_input) buf_free(&inq);
  buf_free(&outq);
}

/* --- process creation ------------------------------------------------------ */

/* Find `name` (or the numeric id) in an /etc/passwd-style file: fields
 * name:x:id:gid...  Read directly, never through NSS (a static binary has
 * none).  1 found, 0 not. */
static int lookup_db(const char *file, const char *name, bool numeric, unsigned long id, unsigned long *out_id,
                     unsigned long *out_gid) {
  FILE *f = fopen(file, "re");
  if (!f) return 0;
  char line[1024];
  int found = 0;
  while (!found && fgets(line, sizeof(line), f)) {
    char *fld[4] = {0}, *save = NULL, *t = line;
    for (int i = 0; i < 4; i++) {
      fld[i] = strsep(&t, ":\n");
      if (!fld[i]) break;
    }
    (void)save;
    if (!fld[2]) continue;
    unsigned long v = strtoul(fld[2], NULL, 10);
    if (numeric ? v == id : strcmp(fld[0], name) == 0) {
      *out_id = v;
      if (out_gid && fld[3]) *out_gid = strtoul(fld[3], NULL, 10);
      found = 1;
    }
  }
  fclose(f);
  return found;
}

static int lookup_user(const char *spec, uid_t *uid, gid_t *gid, char *why, size_t whylen) {
  char user[256], *group = NULL;
  if (snprintf(user, sizeof(user), "%s", spec) >= (int)sizeof(user)) return snprintf(why, whylen, "too long"), -1;
  if ((group = strchr(user, ':'))) *group++ = 0;
  char *end;
  unsigned long n = strtoul(user, &end, 10), u = 0, g = 0;
  bool numeric = *user && !*end;
  if (lookup_db("/etc/passwd", user, numeric, n, &u, &g)) {
  } else if (numeric) {
    u = g = n;
  } else {
    return snprintf(why, whylen, "not found in the guest's /etc/passwd"), -1;
  }
  if (group) {
    n = strtoul(group, &end, 10);
    numeric = *group && !*end;
    if (!numeric && !lookup_db("/etc/group", group, false, 0, &n, NULL))
      return snprintf(why, whylen, "group `%s` not found in the guest's /etc/group", group), -1;
    g = n;
  }
  *uid = (uid_t)u;
  *gid = (gid_t)g;
  return 0;
}

static char **json_strings(json_t *arr) {
  size_t n = json_array_size(arr);
  char **v = calloc(n + 1, sizeof(char *));
  for (size_t i = 0; v && i < n; i++) {
    const char *s = json_string_value(json_array_get(arr, i));
    if (!s) {
      free(v);
      return NULL;
    }
    v[i] = (char *)s;
  }
  return v;
}

/* Split a CommandLine into words: whitespace, 'single' and "double" quotes,
 * backslash; no expansion (as the container side does). */
static json_t *split_command_line(const char *s) {
  json_t *arr = json_array();
  char *word = malloc(strlen(s) + 1);
  size_t n = 0;
  bool in_word = false;
  char quote = 0;
  for (; *s; s++) {
    char c = *s;
    if (quote) {
      if (c == quote)
        quote = 0;
      else if (c == '\\' && quote == '"' && s[1])
        word[n++] = *++s;
      else
        word[n++] = c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && s[1]) {
      word[n++] = *++s;
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) json_array_append_new(arr, json_stringn(word, n));
      n = 0;
      in_word = false;
    } else {
      word[n++] = c;
      in_word = true;
    }
  }
  if (in_word) json_array_append_new(arr, json_stringn(word, n));
  free(word);
  return arr;
}

static void child_exec(char **argv, char **envp, const char *cwd, uid_t uid, gid_t gid, int status_fd) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (int s = 1; s < NSIG; s++)
    signal(s, SIG_DFL);
  int e = 0;
  if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
    e = errno;
  else if (chdir(cwd) < 0)
    e = errno | 0x10000;
  if (!e) {
    umask(022);
    const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (char **v = envp; *v; v++)
      if (strncmp(*v, "PATH=", 5) == 0) path = *v + 5;
    if (strchr(argv[0], '/'))
      execve(argv[0], argv, envp);
    else {
      e = ENOENT;
      char cand[4096];
      for (const char *p = path; *p;) {
        const char *c = strchrnul(p, ':');
        if (snprintf(cand, sizeof(cand), "%.*s/%s", (int)(c - p), p, argv[0]) < (int)sizeof(cand)) {
          execve(cand, argv, envp);
          if (errno != ENOENT) e = errno;
        }
        p = *c ? c + 1 : c;
      }
      errno = e;
    }
    e = errno | 0x20000;
  }
  if (write(status_fd, &e, sizeof(e)) < 0) _exit(126);
  _exit(127);
}

static void op_create(json_t *seq, json_t *req) {
  json_t *doc = json_object_get(req, "process");
  if (!json_is_object(doc)) return reply_error(seq, 0, "create process: `process` must be an object");
  json_t *args = json_object_get(doc, "CommandArgs"), *owned = NULL;
  const char *cmdline = json_string_value(json_object_get(doc, "CommandLine"));
  if (!args && cmdline) args = owned = split_command_line(cmdline);
  if (!json_is_array(args) || json_array_size(args) == 0) {
    json_decref(owned);
    return reply_error(seq, 0, "create process: `CommandArgs` or `CommandLine` is missing or empty");
  }
  char **argv = json_strings(args);
  if (!argv) {
    json_decref(owned);
    return reply_error(seq, 0, "create process: `CommandArgs` must hold strings");
  }
  const char *cwd = json_string_value(json_object_get(doc, "WorkingDirectory"));
  if (!cwd) cwd = "/";
  const char *user = json_string_value(json_object_get(doc, "User"));
  uid_t uid = 0;
  gid_t gid = 0;
  char why[300];
  if (user && *user && lookup_user(user, &uid, &gid, why, sizeof(why)) < 0) {
    reply_error(seq, 0, "create process: user `%s`: %s", user, why);
    goto out_args;
  }
  json_t *env = json_object_get(doc, "Environment");
  size_t nenv = json_object_size(env);
  char **envp = calloc(nenv + 3, sizeof(char *));
  size_t k = 0;
  bool has_path = false;
  const char *key;
  json_t *val;
  json_object_foreach(env, key, val) {
    const char *v = json_string_value(val);
    if (!v) continue;
    if (asprintf(&envp[k], "%s=%s", key, v) < 0) break;
    if (strcmp(key, "PATH") == 0) has_path = true;
    k++;
  }
  if (!has_path) envp[k++] = strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");

  bool tty = json_is_true(json_object_get(doc, "EmulateConsole"));
  bool want[3] = {json_is_true(json_object_get(doc, "CreateStdInPipe")),
                  json_is_true(json_object_get(doc, "CreateStdOutPipe")),
                  json_is_true(json_object_get(doc, "CreateStdErrPipe"))};
  int mine[3] = {-1, -1, -1}, theirs[3] = {-1, -1, -1}, st[2] = {-1, -1};
  int master = -1;
  char slave[128] = "";
  if (tty) {
    master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, slave, sizeof(slave))) {
      reply_error(seq, errno, "create process: open a pty");
      goto out_fds;
    }
    json_t *size = json_object_get(doc, "ConsoleSize");
    struct winsize ws = {.ws_row = (unsigned short)json_integer_value(json_array_get(size, 0)),
                         .ws_col = (unsigned short)json_integer_value(json_array_get(size, 1))};
    if (ws.ws_row && ws.ws_col) ioctl(master, TIOCSWINSZ, &ws);
  } else {
    for (int i = 0; i < 3; i++) {
      int p[2];
      if (!want[i]) continue;
      if (pipe2(p, O_CLOEXEC) < 0) {
        reply_error(seq, errno, "create process: pipe");
        goto out_fds;
      }
      mine[i] = i == 0 ? p[1] : p[0];
      theirs[i] = i == 0 ? p[0] : p[1];
    }
  }
  if (pipe2(st, O_CLOEXEC) < 0) {
    reply_error(seq, errno, "create process: pipe");
    goto out_fds;
  }
  pid_t pid = fork();
  if (pid < 0) {
    reply_error(seq, errno, "create process: fork");
    goto out_fds;
  }
  if (pid == 0) {
    setsid();
    if (tty) {
      int s = open(slave, O_RDWR);
      if (s < 0 || ioctl(s, TIOCSCTTY, 0) < 0) _exit(126);
      for (int i = 0; i < 3; i++)
        theirs[i] = s;
    }
    int null = open("/dev/null", O_RDWR);
    for (int i = 0; i < 3; i++)
      dup2(theirs[i] >= 0 ? theirs[i] : null, i);
    child_exec(argv, envp, cwd, uid, gid, st[1]);
  }
  close(st[1]);
  st[1] = -1;
  int e = 0;
  ssize_t r;
  while ((r = read(st[0], &e, sizeof(e))) < 0 && errno == EINTR) {
  }
  if (r == (ssize_t)sizeof(e)) {
    /* the child failed before exec: report why (it exits 127; SIGCHLD reaps it) */
    int errnum = e & 0xffff;
    if (e & 0x10000)
      reply_error(seq, errnum, "create process: enter working directory `%s`", cwd);
    else if (e & 0x20000)
      reply_error(seq, errnum, "create process: exec `%s`", argv[0]);
    else
      reply_error(seq, errnum, "create process: switch to user `%s`", user ? user : "0");
    goto out_fds;
  }
  struct proc *p = calloc(1, sizeof(*p));
  p->id = next_id++;
  p->pid = pid;
  p->tty = tty;
  if (tty) {
    p->fd[0] = p->fd[1] = master;
    p->fd[2] = -1;
    master = -1;
  } else {
    for (int i = 0; i < 3; i++)
      p->fd[i] = mine[i], mine[i] = -1;
  }
  for (int i = 0; i < 3; i++)
    if (p->fd[i] >= 0) fcntl(p->fd[i], F_SETFL, O_NONBLOCK);
  p->credit[1] = p->credit[2] = HCS_AGENT_WINDOW;
  p->next = procs;
  procs = p;
  send_json(json_pack("{s:O?,s:b,s:i,s:i}", "seq", seq, "ok", 1, "id", (int)p->id, "pid", (int)pid));
out_fds:
  for (int i = 0; i < 3; i++) {
    if (mine[i] >= 0) close(mine[i]);
    if (theirs[i] >= 0) close(theirs[i]);
  }
  if (st[0] >= 0) close(st[0]);
  if (st[1] >= 0) close(st[1]);
  if (master >= 0) close(master);
  for (size_t i = 0; i < k; i++)
    free(envp[i]);
  free(envp);
out_args:
  free(argv);
  json_decref(owned);
}

/* --- requests -------------------------------------------------------------- */

static struct proc *req_proc(json_t *seq, json_t *req, const char *verb) {
  json_int_t id = json_integer_value(json_object_get(req, "id"));
  struct proc *p = id > 0 ? proc_find((uint32_t)id) : NULL;
  if (!p) reply_error(seq, ESRCH, "%s process %lld", verb, (long long)id);
  return p;
}

static void handle_ctrl(const unsigned char *d, uint32_t n) {
  json_error_t jerr;
  json_t *req = json_loadb((const char *)d, n, 0, &jerr);
  if (!json_is_object(req)) {
    reply_error(NULL, 0, "parse request: %s", req ? "not an object" : jerr.text);
    json_decref(req);
    return;
  }
  json_t *seq = json_object_get(req, "seq");
  const char *op = json_string_value(json_object_get(req, "op"));
  if (!op) {
    reply_error(seq, 0, "request: `op` is missing");
  } else if (strcmp(op, "hello") == 0) {
    session_end(true); /* a hello opens a new session: the previous host's processes go */
    send_json(
        json_pack("{s:O?,s:b,s:O?,s:i}", "seq", seq, "ok", 1, "nonce", json_object_get(req, "nonce"), "version", 1));
  } else if (strcmp(op, "create") == 0) {
    op_create(seq, req);
  } else if (strcmp(op, "signal") == 0) {
    struct proc *p = req_proc(seq, req, "signal");
    int sig = (int)json_integer_value(json_object_get(req, "signal"));
    if (!p) {
    } else if (p->exited) {
      reply_error(seq, ESRCH, "signal process %u: it has exited", p->id);
    } else if (kill(p->pid, sig) < 0) {
      reply_error(seq, errno, "signal process %u with %d", p->id, sig);
    } else {
      send_json(json_pack("{s:O?,s:b}", "seq", seq, "ok", 1));
    }
  } else if (strcmp(op, "resize") == 0) {
    struct proc *p = req_proc(seq, req, "resize");
    struct winsize ws = {.ws_row = (unsigned short)json_integer_value(json_object_get(req, "rows")),
                         .ws_col = (unsigned short)json_integer_value(json_object_get(req, "cols"))};
    if (!p) {
    } else if (!p->tty || p->fd[0] < 0) {
      reply_error(seq, ENOTTY, "resize process %u", p->id);
    } else if (ioctl(p->fd[0], TIOCSWINSZ, &ws) < 0) {
      reply_error(seq, errno, "resize process %u", p->id);
    } else {
      send_json(json_pack("{s:O?,s:b}", "seq", seq, "ok", 1));
    }
  } else if (strcmp(op, "mount") == 0) {
    const char *tag = json_string_value(json_object_get(req, "source"));
    const char *target = json_string_value(json_object_get(req, "target"));
    const char *what = "mount";
    if (!tag || !target || target[0] != '/') {
      reply_error(seq, 0, "mount: `source` (a 9p tag) and an absolute `target` are required");
    } else if (agent_mount_9p(tag, target, json_is_true(json_object_get(req, "readonly")), &what) < 0) {
      reply_error(seq, errno, "%s 9p share `%s` on `%s`", what, tag, target);
    } else {
      send_json(json_pack("{s:O?,s:b}", "seq", seq, "ok", 1));
    }
  } else if (strcmp(op, "configure_interface") == 0) {
    agent_configure_interface_start(seq, req); /* answered when its child is reaped */
  } else if (strcmp(op, "poweroff") == 0) {
    send_json(json_pack("{s:O?,s:b}", "seq", seq, "ok", 1));
    /* best effort: let the reply out before the guest stops */
    fcntl(port, F_SETFL, 0);
    if (outq.len && write(port, outq.d + outq.off, outq.len) < 0) {
    }
    agent_poweroff();
  } else {
    reply_error(seq, 0, "request: unknown op `%s`", op);
  }
  json_decref(req);
}

static void handle_frame(unsigned type, uint32_t stream, const unsigned char *d, uint32_t n) {
  if (type == HCS_AGENT_CTRL) {
    return handle_ctrl(d, n);
  }
  struct proc *p = proc_find(HCS_AGENT_STREAM_ID(stream));
  unsigned fd = HCS_AGENT_STREAM_FD(stream);
  if (!p || fd > 2) return; /* a stream that ended: late frames are dropped */
  if (type == HCS_AGENT_WINDOW_UPDATE && fd != 0) {
    p->credit[fd] += hcs_agent_get_u32(d);
  } else if (type == HCS_AGENT_DATA && fd == 0) {
    if (p->fd[0] < 0 || p->in_eof)
      send_window(stream, n); /* nobody to write to: discard, keep credit flowing */
    else
      buf_put(&p->in, d, n);
  } else if (type == HCS_AGENT_EOF && fd == 0) {
    p->in_eof = true;
    if (!p->in.len && !p->tty) close_fd(p, 0);
  }
}

/* Parse whole frames from inq; skip bytes until a plausible header. */
static void parse_input(void) {
  while (inq.len >= HCS_AGENT_HDR) {
    unsigned char *h = inq.d + inq.off;
    unsigned type;
    uint32_t stream, n;
    if (hcs_agent_check_hdr(h, &type, &stream, &n) < 0) {
      buf_drop(&inq, 1);
      continue;
    }
    if (inq.len < HCS_AGENT_HDR + n) return;
    handle_frame(type, stream, h + HCS_AGENT_HDR, n);
    buf_drop(&inq, HCS_AGENT_HDR + n);
  }
}

/* --- the loop -------------------------------------------------------------- */

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (agent_configure_interface_reaped(pid)) continue;
    for (struct proc *p = procs; p; p = p->next) {
      if (p->pid != pid) continue;
      p->exited = true;
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      send_json(json_pack("{s:s,s:i,s:i,s:i}", "event", "exit", "id", (int)p->id, "code", code, "signal",
                          WIFSIGNALED(status) ? WTERMSIG(status) : 0));
      break;
    }
  }
}

static void pump_output(struct proc *p, int i) {
  size_t room = p->credit[i] < HCS_AGENT_MAX_DATA ? p->credit[i] : HCS_AGENT_MAX_DATA;
  buf_reserve(&outq, HCS_AGENT_HDR + room);
  unsigned char *h = outq.d + outq.off + outq.len;
  ssize_t r = read(p->fd[i], h + HCS_AGENT_HDR, room);
  if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
  uint32_t stream = HCS_AGENT_STREAM(p->id, i);
  if (r <= 0) { /* EOF, or EIO on a pty whose last slave closed */
    close_fd(p, i);
    send_frame(HCS_AGENT_EOF, stream, NULL, 0);
    return;
  }
  hcs_agent_put_hdr(h, HCS_AGENT_DATA, stream, (uint32_t)r);
  outq.len += HCS_AGENT_HDR + (size_t)r;
  p->credit[i] -= (uint32_t)r;
}

static void pump_input(struct proc *p) {
  ssize_t w = write(p->fd[0], p->in.d + p->in.off, p->in.len);
  if (w < 0 && (errno == EAGAIN || errno == EINTR)) return;
  uint32_t stream = HCS_AGENT_STREAM(p->id, 0);
  if (w < 0) { /* EPIPE: the process closed its stdin; drop what is left */
    send_window(stream, (uint32_t)p->in.len);
    buf_free(&p->in);
    if (!p->tty) close_fd(p, 0);
    return;
  }
  buf_drop(&p->in, (size_t)w);
  send_window(stream, (uint32_t)w);
  if (!p->in.len && p->in_eof && !p->tty) close_fd(p, 0);
}

int agent_serve(int port_fd, int power_fd) {
  port = port_fd;
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return agent_log("hcs-agent: signalfd: %s\n", strerror(errno)), -1;
  reap();
  struct pollfd *pf = NULL;
  struct proc **who = NULL;
  int *which = NULL;
  size_t cap = 0;
  for (;;) {
    /* room for every process's three descriptors: none is left unpolled */
    size_t need = 3;
    for (struct proc *p = procs; p; p = p->next)
      need += 3;
    if (need > cap) {
      cap = need * 2;
      pf = realloc(pf, cap * sizeof(*pf));
      who = realloc(who, cap * sizeof(*who));
      which = realloc(which, cap * sizeof(*which));
      if (!pf || !who || !which) {
        agent_log("hcs-agent: out of memory\n");
        abort();
      }
    }
    nfds_t n = 0;
    pf[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
    if (power_fd >= 0) pf[n++] = (struct pollfd){.fd = power_fd, .events = POLLIN};
    nfds_t port_i = n;
    /* A port with no host polls as readable and hung up: look at it again
     * after a short sleep rather than spinning. */
    pf[n++] = (struct pollfd){.fd = port, .events = (short)(connected ? POLLIN | (outq.len ? POLLOUT : 0) : 0)};
    nfds_t first = n;
    for (struct proc *p = procs; p; p = p->next) {
      if (p->fd[0] >= 0 && p->in.len)
        pf[n] = (struct pollfd){.fd = p->fd[0], .events = POLLOUT}, who[n] = p, which[n++] = 0;
      for (int i = 1; i < 3; i++)
        if (p->fd[i] >= 0 && p->credit[i] && outq.len < OUTQ_HIGH)
          pf[n] = (struct pollfd){.fd = p->fd[i], .events = POLLIN}, who[n] = p, which[n++] = i;
    }
    int r = poll(pf, n, connected ? -1 : 20);
    if (r < 0 && errno != EINTR) return agent_log("hcs-agent: poll: %s\n", strerror(errno)), -1;
    if (r < 0) continue;
    unsigned gen = generation;
    if (pf[0].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof(si)) > 0) {
      }
      reap();
    }
    if (power_fd >= 0 && pf[1].revents) {
      struct input_event ev[16];
      ssize_t k = read(power_fd, ev, sizeof(ev));
      for (ssize_t j = 0; j < k / (ssize_t)sizeof(ev[0]); j++)
        if (ev[j].type == EV_KEY && ev[j].code == KEY_POWER && ev[j].value == 1) {
          agent_log("hcs-agent: power button pressed: powering off\n");
          session_end(false);
          agent_poweroff();
        }
    }
    if (!connected) {
      /* probe: is a host there now? */
      struct pollfd q = {.fd = port, .events = POLLIN};
      if (poll(&q, 1, 0) >= 0 && !(q.revents & POLLHUP))
        connected = true;
      else
        continue;
    } else if (pf[port_i].revents & (POLLIN | POLLHUP | POLLERR)) {
      buf_reserve(&inq, 65536 + HCS_AGENT_HDR);
      ssize_t k = read(port, inq.d + inq.off + inq.len, inq.cap - inq.off - inq.len);
      if (k > 0) {
        inq.len += (size_t)k;
        parse_input();
      } else if (k == 0 || (pf[port_i].revents & POLLHUP)) {
        connected = false; /* the host went away */
        session_end(false);
        continue;
      }
    }
    if (connected && (pf[port_i].revents & POLLOUT) && outq.len) {
      ssize_t w = write(port, outq.d + outq.off, outq.len);
      if (w > 0) buf_drop(&outq, (size_t)w);
    }
    for (nfds_t j = first; j < n && gen == generation; j++) {
      if (!pf[j].revents) continue;
      struct proc *p = who[j];
      if (which[j] == 0 && p->fd[0] >= 0)
        pump_input(p);
      else if (which[j] > 0 && p->fd[which[j]] >= 0)
        pump_output(p, which[j]);
    }
    for (struct proc **pp = &procs; *pp;) {
      struct proc *p = *pp;
      proc_free_if_done(pp);
      if (*pp == p) pp = &p->next;
    }
    if (connected && outq.len) { /* try now rather than after the next poll */
      ssize_t w = write(port, outq.d + outq.off, outq.len);
      if (w > 0) buf_drop(&outq, (size_t)w);
    }
  }
}
