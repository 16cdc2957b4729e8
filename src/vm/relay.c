/* The VM monitor's agent relay: QEMU's chardev takes one client at a time,
 * so the monitor holds the one connection to the guest agent (one agent
 * session) and serves any number of callers on <system dir>/exec.sock.
 * Each caller speaks the agent protocol as to the agent itself
 * (src/vm/agent_client.c): its hello is answered here, its requests go on
 * with the seq rewritten to the monitor's (answers go back to whoever
 * asked), and the processes it creates are its own: their streams and exit
 * events reach only it, and it may signal only them.  A caller that goes
 * away has its processes killed, as the agent does when a session ends.
 * A detached process (a create with "detach": true, `hcs exec -d`) is the
 * monitor's own: it outlives its creator, its output is discarded, its
 * exit is recorded (kept here and written to the event journal), and any
 * caller may "open" it by guest pid to signal and wait it.  When the
 * agent goes (QEMU exits) every caller is disconnected: its waits fail
 * with "agent gone".  Single-threaded: the monitor's poll loop. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vm/agent_proto.h"
#include "vm/vm.h"

#define MAX_CLIENTS 64
/* Exited processes remembered for a later open (their exit code). */
#define MAX_EXITED 256

struct buf {
  unsigned char *d;
  size_t len, cap;
};

struct client {
  int fd;
  struct buf in;
  int64_t hello_seq; /* a hello waiting for the agent to be ready; -1 none */
  char *hello_nonce;
  uint32_t *ids; /* the agent process ids this caller created or opened: their exit events, signal, resize */
  size_t n_ids;
};

struct gproc { /* a guest process created through the relay */
  struct gproc *next;
  uint32_t id;
  int pid;
  struct client *creator; /* its stdio goes there; NULL: detached, or the creator left */
  bool detached, exited;
  int code, signal;
};

struct pending { /* a request forwarded to the agent */
  struct pending *next;
  int64_t seq, client_seq;
  bool create, detach; /* its answer names a process of the caller's (a detached one) */
  struct client *c;    /* NULL: the monitor's own (a kill of a gone caller's process) */
};

struct hcs_vm_relay_s {
  int listen_fd, agent_fd;
  bool ready;
  char nonce[HCS_VM_NONCE_SIZE];
  char *dir, *run_root, *id, *owner; /* the system, for its events */
  struct buf ain;
  struct gproc *procs; /* newest first */
  struct client *clients[MAX_CLIENTS];
  struct pending *pending;
  int64_t seq;
};

static void buf_drop(struct buf *b, size_t n) {
  memmove(b->d, b->d + n, b->len - n);
  b->len -= n;
}

/* Up to RECV_MAX bytes from fd straight into b (no buffer on the stack:
 * its pages would stay resident in an idle monitor). */
enum { RECV_MAX = 65536 };
static ssize_t buf_recv(struct buf *b, int fd) {
  if (b->cap - b->len < RECV_MAX) {
    b->cap = b->len + RECV_MAX;
    b->d = hcs_xrealloc(b->d, b->cap);
  }
  ssize_t k = recv(fd, b->d + b->len, RECV_MAX, 0);
  if (k > 0) b->len += (size_t)k;
  return k;
}

/* An empty buffer gives its memory back (hcs_vm_relay_trim). */
static void buf_trim(struct buf *b) {
  if (b->len > 0) return;
  free(b->d);
  *b = (struct buf){0};
}

/* Whole frames, blocking: a caller's relay thread always reads (the
 * windows bound what is in flight), and a caller stuck for 10 s is dropped
 * (SO_SNDTIMEO), never the monitor. */
static int send_all(int fd, const unsigned char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w, n -= (size_t)w;
  }
  return 0;
}

static int send_frame(int fd, unsigned type, uint32_t stream, const void *p, uint32_t n) {
  unsigned char hdr[HCS_AGENT_HDR];
  hcs_agent_put_hdr(hdr, type, stream, n);
  if (send_all(fd, hdr, sizeof hdr) < 0) return -1;
  return n ? send_all(fd, p, n) : 0;
}

static int send_json(int fd, json_t *o) {
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  int r = s ? send_frame(fd, HCS_AGENT_CTRL, 0, s, (uint32_t)strlen(s)) : -1;
  free(s);
  return r;
}

static bool owns(struct client *c, uint32_t id) {
  for (size_t i = 0; i < c->n_ids; i++)
    if (c->ids[i] == id) return true;
  return false;
}

static void add_id(struct client *c, uint32_t id) {
  if (owns(c, id)) return;
  c->ids = hcs_xrealloc(c->ids, (c->n_ids + 1) * sizeof *c->ids);
  c->ids[c->n_ids++] = id;
}

static struct gproc *gproc_find(hcs_vm_relay_t *r, uint32_t id) {
  for (struct gproc *g = r->procs; g; g = g->next)
    if (g->id == id) return g;
  return NULL;
}

/* The process a caller opens by guest pid: a running one, else the newest
 * that exited (pids are reused). */
static struct gproc *gproc_by_pid(hcs_vm_relay_t *r, int pid) {
  struct gproc *exited = NULL;
  for (struct gproc *g = r->procs; g; g = g->next) {
    if (g->pid != pid) continue;
    if (!g->exited) return g;
    if (!exited) exited = g;
  }
  return exited;
}

/* Forget the oldest exited processes beyond MAX_EXITED. */
static void gproc_trim(hcs_vm_relay_t *r) {
  int n = 0;
  for (struct gproc **pp = &r->procs; *pp;) {
    struct gproc *g = *pp;
    if (g->exited && ++n > MAX_EXITED) {
      *pp = g->next;
      free(g);
    } else {
      pp = &g->next;
    }
  }
}

static void to_agent(hcs_vm_relay_t *r, json_t *req, struct client *c, int64_t client_seq) {
  struct pending *p = hcs_xcalloc(1, sizeof *p);
  p->seq = ++r->seq;
  p->client_seq = client_seq;
  p->c = c;
  p->create = strcmp(json_string_value(json_object_get(req, "op")), "create") == 0;
  p->detach = p->create && json_is_true(json_object_get(req, "detach"));
  json_object_del(req, "detach"); /* the relay's: the agent knows no such field */
  p->next = r->pending;
  r->pending = p;
  json_object_set_new(req, "seq", json_integer(p->seq));
  send_json(r->agent_fd, req);
}

static void answer_hello(struct client *c) {
  send_json(c->fd, json_pack("{s:I,s:b,s:s,s:i}", "seq", (json_int_t)c->hello_seq, "ok", 1, "nonce",
                             c->hello_nonce ? c->hello_nonce : "", "version", 1));
  free(c->hello_nonce);
  c->hello_nonce = NULL;
  c->hello_seq = -1;
}

static void client_drop(hcs_vm_relay_t *r, int slot) {
  struct client *c = r->clients[slot];
  r->clients[slot] = NULL;
  /* The processes it created have nobody on the other end any more;
   * detached ones and those it only opened run on. */
  for (struct gproc *g = r->procs; g; g = g->next) {
    if (g->creator != c) continue;
    g->creator = NULL;
    if (!g->exited && r->agent_fd >= 0 && r->ready)
      to_agent(r, json_pack("{s:s,s:i,s:i}", "op", "signal", "id", (int)g->id, "signal", SIGKILL), NULL, 0);
  }
  for (struct pending *p = r->pending; p; p = p->next)
    if (p->c == c) p->c = NULL;
  close(c->fd);
  free(c->in.d);
  free(c->ids);
  free(c->hello_nonce);
  free(c);
}

/* One frame from caller c: false when the caller is to be dropped. */
static bool client_frame(hcs_vm_relay_t *r, struct client *c, unsigned type, uint32_t stream, const unsigned char *d,
                         uint32_t n) {
  if (type != HCS_AGENT_CTRL) {
    /* stdin data, its EOF, and credit for output: only for its own. */
    struct gproc *g = gproc_find(r, HCS_AGENT_STREAM_ID(stream));
    if (!g || g->creator != c) return true;
    send_frame(r->agent_fd, type, stream, d, n); /* a failure shows as the agent's hang-up */
    return true;
  }
  cleanup_json json_t *m = json_loadb((const char *)d, n, 0, NULL);
  const char *op = json_string_value(json_object_get(m, "op"));
  json_t *seq = json_object_get(m, "seq");
  if (!json_is_object(m) || !op || !json_is_integer(seq)) return false;
  int64_t cseq = json_integer_value(seq);
  if (strcmp(op, "hello") == 0) {
    free(c->hello_nonce);
    const char *nonce = json_string_value(json_object_get(m, "nonce"));
    c->hello_nonce = nonce ? hcs_xstrdup(nonce) : NULL;
    c->hello_seq = cseq;
    if (r->ready) answer_hello(c);
    return true;
  }
  if (strcmp(op, "poweroff") == 0 || strcmp(op, "mount") == 0 || strcmp(op, "unmount_share") == 0 ||
      strcmp(op, "create") == 0 || strcmp(op, "configure_interface") == 0) {
    to_agent(r, json_incref(m), c, cseq);
    return true;
  }
  if (strcmp(op, "open") == 0) {
    json_t *pid = json_object_get(m, "pid");
    struct gproc *g = json_is_integer(pid) ? gproc_by_pid(r, (int)json_integer_value(pid)) : NULL;
    if (!g) {
      send_json(c->fd,
                json_pack("{s:I,s:s,s:i}", "seq", (json_int_t)cseq, "error",
                          "no such process (hcs did not start it in this VM, or it was forgotten)", "errno", ESRCH));
      return true;
    }
    add_id(c, g->id);
    send_json(c->fd,
              json_pack("{s:I,s:b,s:i,s:i,s:b,s:i,s:i,s:b}", "seq", (json_int_t)cseq, "ok", 1, "id", (int)g->id, "pid",
                        g->pid, "exited", g->exited, "code", g->code, "signal", g->signal, "detached", g->detached));
    return true;
  }
  json_t *id = json_object_get(m, "id");
  if ((strcmp(op, "signal") == 0 || strcmp(op, "resize") == 0) && json_is_integer(id)) {
    if (!owns(c, (uint32_t)json_integer_value(id))) {
      send_json(c->fd, json_pack("{s:I,s:s,s:i}", "seq", (json_int_t)cseq, "error", "no such process in this session",
                                 "errno", ESRCH));
      return true;
    }
    to_agent(r, json_incref(m), c, cseq);
    return true;
  }
  send_json(c->fd, json_pack("{s:I,s:s,s:s,s:i}", "seq", (json_int_t)cseq, "error", "unknown request", "op", op,
                             "errno", EINVAL));
  return true;
}

/* The agent says process `id` exited: remember its code for a later
 * open, and record a detached one's exit in the journal (nobody else
 * waits for it: the monitor is its reaper, as a container's detached
 * process has one). */
static void process_exited(hcs_vm_relay_t *r, uint32_t id, json_t *m) {
  struct gproc *g = gproc_find(r, id);
  if (!g || g->exited) return;
  g->exited = true;
  g->code = (int)json_integer_value(json_object_get(m, "code"));
  g->signal = (int)json_integer_value(json_object_get(m, "signal"));
  if (g->detached && r->run_root) {
    json_t *attrs = json_pack("{s:i,s:i,s:b}", "Pid", g->pid, "ExitCode", g->code, "InGuest", 1);
    if (g->signal) json_object_set_new(attrs, "ExitSignal", json_integer(g->signal));
    hcs_event_emit(r->run_root, "process", "exited", r->id, r->owner, attrs);
  }
  gproc_trim(r);
}

/* Complete frames in b (from caller c, or from the agent when c is NULL),
 * each routed; garbage skipped byte by byte
 * (the protocol's resynchronisation).  false: drop the peer. */
static bool frames(hcs_vm_relay_t *r, struct buf *b, struct client *c) {
  size_t off = 0;
  bool ok = true;
  while (ok && b->len - off >= HCS_AGENT_HDR) {
    unsigned type;
    uint32_t stream, n;
    if (hcs_agent_check_hdr(b->d + off, &type, &stream, &n) < 0) {
      off++;
      continue;
    }
    if (b->len - off < HCS_AGENT_HDR + n) break;
    const unsigned char *d = b->d + off + HCS_AGENT_HDR;
    off += HCS_AGENT_HDR + n;
    if (c) {
      ok = client_frame(r, c, type, stream, d, n);
    } else if (type != HCS_AGENT_CTRL) {
      struct gproc *g = gproc_find(r, HCS_AGENT_STREAM_ID(stream));
      struct client *o = g ? g->creator : NULL;
      if (o) {
        send_frame(o->fd, type, stream, d, n);
      } else if (type == HCS_AGENT_DATA && r->agent_fd >= 0) {
        /* A gone caller's process, or a detached one's console: credit it
         * back, so the agent drains the pipe (and forgets the process). */
        unsigned char w[4] = {(unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16),
                              (unsigned char)(n >> 24)};
        send_frame(r->agent_fd, HCS_AGENT_WINDOW_UPDATE, stream, w, 4);
      }
    } else {
      cleanup_json json_t *m = json_loadb((const char *)d, n, 0, NULL);
      json_t *seq = json_object_get(m, "seq");
      const char *ev = json_string_value(json_object_get(m, "event"));
      if (!r->ready) {
        const char *nonce = json_string_value(json_object_get(m, "nonce"));
        if (nonce && strcmp(nonce, r->nonce) == 0) hcs_vm_relay_ready(r);
      } else if (ev) {
        uint32_t id = (uint32_t)json_integer_value(json_object_get(m, "id"));
        if (strcmp(ev, "exit") == 0) process_exited(r, id, m);
        for (int i = 0; i < MAX_CLIENTS; i++)
          if (r->clients[i] && owns(r->clients[i], id)) send_json(r->clients[i]->fd, json_incref(m));
      } else if (json_is_integer(seq)) {
        for (struct pending **pp = &r->pending; *pp; pp = &(*pp)->next) {
          struct pending *p = *pp;
          if (p->seq != json_integer_value(seq)) continue;
          *pp = p->next;
          json_t *id = json_object_get(m, "id");
          if (p->create && json_is_true(json_object_get(m, "ok")) && json_is_integer(id)) {
            struct gproc *g = hcs_xcalloc(1, sizeof *g);
            g->id = (uint32_t)json_integer_value(id);
            g->pid = (int)json_integer_value(json_object_get(m, "pid"));
            g->detached = p->detach;
            g->creator = p->detach ? NULL : p->c;
            g->next = r->procs;
            r->procs = g;
            if (p->c) {
              add_id(p->c, g->id);
            } else if (!p->detach) { /* its creator left before the answer */
              to_agent(r, json_pack("{s:s,s:i,s:i}", "op", "signal", "id", (int)g->id, "signal", SIGKILL), NULL, 0);
            }
          }
          if (p->c) {
            json_object_set_new(m, "seq", json_integer(p->client_seq));
            send_json(p->c->fd, json_incref(m));
          }
          free(p);
          break;
        }
      }
    }
  }
  buf_drop(b, off);
  return ok;
}

void hcs_vm_relay_ready(hcs_vm_relay_t *r) {
  r->ready = true;
  /* `start` and properties say the agent answers (VirtualMachine.AgentReady). */
  cleanup_free char *path = hcs_xasprintf("%s/agent.ready", r->dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) close(fd);
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (r->clients[i] && r->clients[i]->hello_seq >= 0) answer_hello(r->clients[i]);
}

int hcs_vm_relay_listen(const char *dir, hcs_error_t *err) {
  cleanup_free char *path = hcs_xasprintf("%s/exec.sock", dir);
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sun.sun_path) return hcs_error_make(err, ENAMETOOLONG, "bind `%s`", path);
  strcpy(sun.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return hcs_error_make(err, errno, "socket");
  unlink(path);
  mode_t old = umask(0077);
  int b = bind(fd, (struct sockaddr *)&sun, sizeof sun);
  umask(old);
  if (b < 0 || listen(fd, 16) < 0) {
    int e = errno;
    close(fd);
    return hcs_error_make(err, e, "listen on `%s`", path);
  }
  return fd;
}

/* Connect to QEMU's chardev and say hello once: the bytes wait in the
 * chardev until the guest opens its port, and the agent answers once it
 * runs.  Called once QEMU listens. */
int hcs_vm_relay_agent(const char *dir, char nonce[HCS_VM_NONCE_SIZE], hcs_error_t *err) {
  cleanup_free char *path = hcs_xasprintf("%s/agent.sock", dir);
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sun.sun_path) return hcs_error_make(err, ENAMETOOLONG, "connect to `%s`", path);
  strcpy(sun.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return hcs_error_make(err, errno, "socket");
  if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
    int e = errno;
    close(fd);
    return hcs_error_make(err, e, "connect to `%s`", path);
  }
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  snprintf(nonce, HCS_VM_NONCE_SIZE, "monitor-%d-%lld", (int)getpid(), (long long)ts.tv_nsec);
  if (send_json(fd, json_pack("{s:s,s:i,s:s}", "op", "hello", "seq", 0, "nonce", nonce)) < 0) {
    int e = errno;
    close(fd);
    return hcs_error_make(err, e, "send hello to `%s`", path);
  }
  return fd;
}

hcs_vm_relay_t *hcs_vm_relay_new(const char *dir, const char *run_root, const char *id, const char *owner,
                                 int listen_fd, int agent_fd, const char *nonce) {
  hcs_vm_relay_t *r = hcs_xcalloc(1, sizeof *r);
  r->listen_fd = listen_fd;
  r->agent_fd = agent_fd;
  snprintf(r->nonce, sizeof r->nonce, "%s", nonce);
  r->dir = hcs_xstrdup(dir);
  r->run_root = run_root ? hcs_xstrdup(run_root) : NULL;
  r->id = id ? hcs_xstrdup(id) : NULL;
  r->owner = owner ? hcs_xstrdup(owner) : NULL;
  return r;
}

/* The fds to poll: [0] listen, [1] agent, then the callers; returns n. */
int hcs_vm_relay_pollfds(hcs_vm_relay_t *r, struct pollfd *pfd, int cap) {
  int n = 0;
  pfd[n++] = (struct pollfd){r->listen_fd, POLLIN, 0};
  pfd[n++] = (struct pollfd){r->agent_fd, POLLIN, 0};
  for (int i = 0; i < MAX_CLIENTS && n < cap; i++)
    pfd[n++] = (struct pollfd){r->clients[i] ? r->clients[i]->fd : -1, POLLIN, 0};
  return n;
}

static void agent_gone(hcs_vm_relay_t *r) {
  close(r->agent_fd);
  r->agent_fd = -1;
  r->ready = false;
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (r->clients[i]) client_drop(r, i);
  cleanup_free char *path = hcs_xasprintf("%s/agent.ready", r->dir);
  unlink(path);
}

void hcs_vm_relay_handle(hcs_vm_relay_t *r, const struct pollfd *pfd, int n) {
  if (pfd[1].fd >= 0 && pfd[1].revents) {
    ssize_t k = buf_recv(&r->ain, r->agent_fd);
    if (k > 0) {
      frames(r, &r->ain, NULL);
    } else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
      agent_gone(r);
    }
  }
  for (int i = 2; i < n; i++) {
    struct client *c = r->clients[i - 2];
    if (!c || pfd[i].fd != c->fd || !pfd[i].revents) continue;
    ssize_t k = buf_recv(&c->in, c->fd);
    if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    bool keep = k > 0 && r->agent_fd >= 0;
    if (keep) {
      keep = frames(r, &c->in, c) && c->in.len <= HCS_AGENT_HDR + HCS_AGENT_MAX_CTRL;
    }
    if (!keep) client_drop(r, i - 2);
  }
  if (pfd[0].revents) {
    int fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    int slot = -1;
    for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
      if (!r->clients[i]) slot = i;
    if (fd >= 0 && (slot < 0 || r->agent_fd < 0)) {
      close(fd); /* the caller's hello fails: agent gone, or too many */
    } else if (fd >= 0) {
      struct timeval tv = {10, 0};
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      struct client *c = hcs_xcalloc(1, sizeof *c);
      c->fd = fd;
      c->hello_seq = -1;
      r->clients[slot] = c;
    }
  }
}

void hcs_vm_relay_trim(hcs_vm_relay_t *r) {
  buf_trim(&r->ain);
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (r->clients[i]) buf_trim(&r->clients[i]->in);
}

void hcs_vm_relay_free(hcs_vm_relay_t *r) {
  if (r == NULL) return;
  if (r->agent_fd >= 0) agent_gone(r);
  while (r->pending) {
    struct pending *p = r->pending;
    r->pending = p->next;
    free(p);
  }
  close(r->listen_fd);
  cleanup_free char *path = hcs_xasprintf("%s/exec.sock", r->dir);
  unlink(path);
  while (r->procs) {
    struct gproc *g = r->procs;
    r->procs = g->next;
    free(g);
  }
  free(r->ain.d);
  free(r->dir);
  free(r->run_root);
  free(r->id);
  free(r->owner);
  free(r);
}
