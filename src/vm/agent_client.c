/* The host side of the guest agent protocol (see agent_client.h).  One
 * relay thread per session owns the socket's input: it answers waiters by
 * seq, records exits, and moves stdio between the socket and the pipes the
 * caller holds, with non-blocking writes and per-stream credit, so a caller
 * that does not read one process's output never stalls the others.
 * Writes to the socket go through one mutex (whole frames). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "vm/agent_internal.h"
#include "vm/agent_proto.h"

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int write_all(int fd, const void *p, size_t n) {
  const unsigned char *b = p;
  while (n) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

static int send_frame(hcs_vm_agent_t *a, unsigned type, uint32_t stream, const void *p, uint32_t n) {
  unsigned char h[HCS_AGENT_HDR];
  hcs_agent_put_hdr(h, type, stream, n);
  pthread_mutex_lock(&a->wmu);
  int r = write_all(a->sock, h, sizeof(h));
  if (r == 0 && n) r = write_all(a->sock, p, n);
  pthread_mutex_unlock(&a->wmu);
  return r;
}

static void send_window(hcs_vm_agent_t *a, uint32_t stream, uint32_t n) {
  unsigned char b[4] = {n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >> 24};
  send_frame(a, HCS_AGENT_WINDOW_UPDATE, stream, b, 4);
}

void agent_wake(hcs_vm_agent_t *a) {
  uint64_t one = 1;
  if (write(a->wake, &one, sizeof(one)) < 0) {
  }
}

int agent_gone_error(hcs_vm_agent_t *a, hcs_error_t *err) {
  return hcs_error_make(err, ECONNRESET, "agent gone (%s)", a->gone_why ? a->gone_why : "the connection closed");
}

/* --- the relay (its thread, a->mu held where noted) ------------------------- */

static void closefd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void proc_close_relay(hcs_vm_agent_process_t *p) {
  if (p->relay_in >= 0 && p->relay_in == p->relay_out[1]) p->relay_in = -1;
  closefd(&p->relay_in);
  for (int i = 1; i < 3; i++)
    closefd(&p->relay_out[i]);
}

static void stop_copiers(hcs_vm_agent_process_t *p) {
  if (p->stop < 0) return;
  uint64_t one = 1;
  if (write(p->stop, &one, sizeof(one)) < 0) {
  }
  close(p->stop);
  p->stop = -1;
}

static void signal_exit(hcs_vm_agent_process_t *p) {
  uint64_t one = 1;
  if (p->exitfd >= 0 && write(p->exitfd, &one, sizeof(one)) < 0) {
  }
}

void agent_proc_free(hcs_vm_agent_process_t *p) {
  proc_close_relay(p);
  stop_copiers(p);
  if (p->exitfd >= 0) close(p->exitfd);
  for (int i = 1; i < 3; i++)
    if (p->done[i] >= 0) close(p->done[i]);
  for (int i = 0; i < 3; i++) {
    if (p->user[i] >= 0 && !(i == 1 && p->user[1] == p->user[0])) close(p->user[i]);
    free(p->pend[i].d);
  }
  free(p);
}

static hcs_vm_agent_process_t *proc_find(hcs_vm_agent_t *a, uint32_t id) {
  for (hcs_vm_agent_process_t *p = a->procs; p; p = p->next)
    if (p->id == id) return p;
  return NULL;
}

/* Write what is pending on stream i; grant the guest the bytes delivered. */
static void flush_out(hcs_vm_agent_process_t *p, int i) {
  struct pend *q = &p->pend[i];
  uint32_t delivered = 0;
  while (q->len && p->relay_out[i] >= 0) {
    ssize_t w = write(p->relay_out[i], q->d + q->off, q->len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) break;
    if (w < 0) { /* the caller closed its end: discard, keep the guest flowing */
      delivered += (uint32_t)q->len;
      q->len = 0;
      closefd(&p->relay_out[i]);
      if (p->tty) p->relay_in = -1;
      break;
    }
    q->off += (size_t)w;
    q->len -= (size_t)w;
    delivered += (uint32_t)w;
  }
  if (!q->len) q->off = 0;
  if (delivered && !p->eof[i]) {
    p->out_credit[i] += delivered;
    send_window(p->a, HCS_AGENT_STREAM(p->id, i), delivered);
  }
  if (!q->len && p->eof[i] && p->relay_out[i] >= 0) {
    if (p->tty && p->relay_in == p->relay_out[i]) {
      shutdown(p->relay_out[i], SHUT_WR); /* the stdin direction stays open */
      p->relay_out[i] = -1;
    } else {
      closefd(&p->relay_out[i]);
    }
  }
}

static void set_gone(hcs_vm_agent_t *a, const char *why);

static void handle_ctrl(hcs_vm_agent_t *a, const unsigned char *d, uint32_t n) {
  json_t *msg = json_loadb((const char *)d, n, 0, NULL);
  if (!json_is_object(msg)) {
    json_decref(msg);
    return;
  }
  const char *event = json_string_value(json_object_get(msg, "event"));
  if (event && strcmp(event, "exit") == 0) {
    hcs_vm_agent_process_t *p = proc_find(a, (uint32_t)json_integer_value(json_object_get(msg, "id")));
    if (p) {
      p->exited = true;
      stop_copiers(p);
      p->code = (int)json_integer_value(json_object_get(msg, "code"));
      p->signal = (int)json_integer_value(json_object_get(msg, "signal"));
      signal_exit(p);
      pthread_cond_broadcast(&a->cv);
    }
    json_decref(msg);
    return;
  }
  json_t *seq = json_object_get(msg, "seq");
  for (struct waiter *w = a->waiters; w; w = w->next) {
    if (!json_is_integer(seq) || w->seq != json_integer_value(seq) || w->reply) continue;
    if (w->proc && json_is_true(json_object_get(msg, "ok"))) {
      w->proc->id = (uint32_t)json_integer_value(json_object_get(msg, "id"));
      w->proc->pid = (int)json_integer_value(json_object_get(msg, "pid"));
      if (json_is_true(json_object_get(msg, "exited"))) { /* an open of a process that has exited */
        w->proc->exited = true;
        w->proc->code = (int)json_integer_value(json_object_get(msg, "code"));
        w->proc->signal = (int)json_integer_value(json_object_get(msg, "signal"));
        signal_exit(w->proc);
      }
      w->proc->next = a->procs;
      a->procs = w->proc;
    }
    w->reply = json_incref(msg);
    pthread_cond_broadcast(&a->cv);
    break;
  }
  json_decref(msg);
}

static void handle_frame(hcs_vm_agent_t *a, unsigned type, uint32_t stream, const unsigned char *d, uint32_t n) {
  if (type == HCS_AGENT_CTRL) return handle_ctrl(a, d, n);
  hcs_vm_agent_process_t *p = proc_find(a, HCS_AGENT_STREAM_ID(stream));
  unsigned i = HCS_AGENT_STREAM_FD(stream);
  if (!p || i > 2) return;
  if (type == HCS_AGENT_WINDOW_UPDATE && i == 0) {
    uint32_t more = hcs_agent_get_u32(d);
    p->in_credit = p->in_credit + more < p->in_credit ? UINT32_MAX : p->in_credit + more;
  } else if (type == HCS_AGENT_DATA && i > 0) {
    struct pend *q = &p->pend[i];
    /* The guest is not trusted: one that ignores its window would make the
     * host buffer without bound. */
    if (n > p->out_credit[i]) return set_gone(a, "the agent sent more than its window");
    if (p->relay_out[i] < 0) { /* nobody reads it: keep the guest flowing */
      send_window(a, stream, n);
      return;
    }
    if (n == 0) return; /* realloc(p, 0) would free the buffer */
    p->out_credit[i] -= n;
    q->d = hcs_xrealloc(q->d, q->off + q->len + n);
    memcpy(q->d + q->off + q->len, d, n);
    q->len += n;
    flush_out(p, (int)i);
  } else if (type == HCS_AGENT_EOF && i > 0) {
    p->eof[i] = true;
    flush_out(p, (int)i);
  }
}

/* Frames out of a->in; 0, or -1 when the stream is not our protocol. */
static void parse(hcs_vm_agent_t *a) {
  size_t off = 0;
  while (a->in_len - off >= HCS_AGENT_HDR && !a->gone) {
    unsigned type;
    uint32_t stream, n;
    if (hcs_agent_check_hdr(a->in + off, &type, &stream, &n) < 0) {
      off++; /* resynchronize on the next magic */
      continue;
    }
    if (a->in_len - off < HCS_AGENT_HDR + n) break;
    handle_frame(a, type, stream, a->in + off + HCS_AGENT_HDR, n);
    off += HCS_AGENT_HDR + n;
  }
  if (off) memmove(a->in, a->in + off, a->in_len - off);
  a->in_len -= off;
}

static void set_gone(hcs_vm_agent_t *a, const char *why) {
  a->gone = true;
  if (!a->gone_why) a->gone_why = hcs_xstrdup(why);
  for (hcs_vm_agent_process_t *p = a->procs; p; p = p->next) {
    proc_close_relay(p);
    signal_exit(p);
  }
  pthread_cond_broadcast(&a->cv);
}

static void *relay(void *arg) {
  hcs_vm_agent_t *a = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  for (;;) {
    pthread_mutex_lock(&a->mu);
    if (a->stopping || a->gone) {
      pthread_mutex_unlock(&a->mu);
      return NULL;
    }
    size_t cap = 2;
    for (hcs_vm_agent_process_t *p = a->procs; p; p = p->next)
      cap += 3;
    struct pollfd *pf = hcs_xcalloc(cap, sizeof(*pf));
    hcs_vm_agent_process_t **who = hcs_xcalloc(cap, sizeof(*who));
    int *which = hcs_xcalloc(cap, sizeof(int));
    nfds_t n = 0;
    pf[n++] = (struct pollfd){.fd = a->sock, .events = POLLIN};
    pf[n++] = (struct pollfd){.fd = a->wake, .events = POLLIN};
    for (hcs_vm_agent_process_t *p = a->procs; p; p = p->next) {
      if (p->relay_in >= 0 && p->in_credit) pf[n] = (struct pollfd){p->relay_in, POLLIN, 0}, who[n] = p, which[n++] = 0;
      for (int i = 1; i < 3; i++)
        if (p->relay_out[i] >= 0 && p->pend[i].len)
          pf[n] = (struct pollfd){p->relay_out[i], POLLOUT, 0}, who[n] = p, which[n++] = i;
    }
    pthread_mutex_unlock(&a->mu);
    int r = poll(pf, n, -1);
    pthread_mutex_lock(&a->mu);
    if (r < 0 && errno != EINTR) set_gone(a, "poll failed");
    if (r > 0 && pf[1].revents) {
      uint64_t v;
      if (read(a->wake, &v, sizeof(v)) < 0) {
      }
    }
    if (r > 0 && !a->gone && pf[0].revents) {
      if (a->in_cap - a->in_len < 65536 + HCS_AGENT_HDR) {
        a->in_cap = a->in_cap * 2 + 65536 + HCS_AGENT_HDR;
        a->in = hcs_xrealloc(a->in, a->in_cap);
      }
      ssize_t k = recv(a->sock, a->in + a->in_len, a->in_cap - a->in_len, MSG_DONTWAIT);
      if (k > 0) {
        a->in_len += (size_t)k;
        parse(a);
      } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
        set_gone(a, k == 0 ? "the VM closed the channel" : strerror(errno));
      }
    }
    for (nfds_t j = 2; r > 0 && !a->gone && j < n; j++) {
      hcs_vm_agent_process_t *p = who[j];
      if (!pf[j].revents) continue;
      if (which[j] > 0) {
        if (p->relay_out[which[j]] >= 0) flush_out(p, which[j]);
        continue;
      }
      if (p->relay_in < 0 || !p->in_credit) continue;
      unsigned char buf[HCS_AGENT_MAX_DATA];
      size_t room = p->in_credit < sizeof(buf) ? p->in_credit : sizeof(buf);
      ssize_t k = read(p->relay_in, buf, room);
      if (k < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      uint32_t stream = HCS_AGENT_STREAM(p->id, 0);
      if (k <= 0) { /* the caller closed stdin */
        send_frame(a, HCS_AGENT_EOF, stream, NULL, 0);
        if (p->relay_in != p->relay_out[1]) close(p->relay_in);
        p->relay_in = -1;
        continue;
      }
      p->in_credit -= (uint32_t)k;
      send_frame(a, HCS_AGENT_DATA, stream, buf, (uint32_t)k);
    }
    /* released and finished processes go */
    for (hcs_vm_agent_process_t **pp = &a->procs; *pp;) {
      hcs_vm_agent_process_t *p = *pp;
      if (p->released && p->exited && p->relay_out[1] < 0 && p->relay_out[2] < 0) {
        *pp = p->next;
        agent_proc_free(p);
      } else {
        pp = &p->next;
      }
    }
    pthread_mutex_unlock(&a->mu);
    free(pf);
    free(who);
    free(which);
  }
}

/* --- requests ---------------------------------------------------------------- */

/* Send req (stolen) and wait for its reply.  timeout_ms < 0: forever. */
json_t *agent_request(hcs_vm_agent_t *a, json_t *req, hcs_vm_agent_process_t *proc, hcs_error_t *err) {
  pthread_mutex_lock(&a->mu);
  if (a->gone) {
    pthread_mutex_unlock(&a->mu);
    json_decref(req);
    agent_gone_error(a, err);
    return NULL;
  }
  struct waiter w = {.seq = ++a->seq, .proc = proc};
  w.next = a->waiters;
  a->waiters = &w;
  pthread_mutex_unlock(&a->mu);
  json_object_set_new(req, "seq", json_integer(w.seq));
  cleanup_free char *s = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  int r = s ? send_frame(a, HCS_AGENT_CTRL, 0, s, (uint32_t)strlen(s)) : -1;
  int e = errno;
  pthread_mutex_lock(&a->mu);
  if (r < 0) set_gone(a, strerror(e));
  while (!w.reply && !a->gone)
    pthread_cond_wait(&a->cv, &a->mu);
  for (struct waiter **pp = &a->waiters; *pp; pp = &(*pp)->next)
    if (*pp == &w) {
      *pp = w.next;
      break;
    }
  bool gone = a->gone && !w.reply;
  pthread_mutex_unlock(&a->mu);
  if (gone) {
    agent_gone_error(a, err);
    return NULL;
  }
  const char *msg = json_string_value(json_object_get(w.reply, "error"));
  if (msg) {
    hcs_error_make(err, 0, "%s", msg);
    if (err && *err) (*err)->status = (int)json_integer_value(json_object_get(w.reply, "errno"));
    json_decref(w.reply);
    return NULL;
  }
  if (!json_is_true(json_object_get(w.reply, "ok"))) {
    /* Neither: a create or open would hand out a process the relay
     * thread never registered (found by fuzz_vm_agent_frames). */
    hcs_error_make(err, EPROTO, "the agent's answer is neither ok nor an error");
    json_decref(w.reply);
    return NULL;
  }
  return w.reply;
}

/* --- connection ---------------------------------------------------------------- */

static int connect_socket(const char *path, int64_t deadline, hcs_error_t *err) {
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sun.sun_path)) return hcs_error_make(err, ENAMETOOLONG, "connect to agent `%s`", path);
  strcpy(sun.sun_path, path);
  for (;;) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return hcs_error_make(err, errno, "socket");
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) return fd;
    int e = errno;
    close(fd);
    if ((e != ENOENT && e != ECONNREFUSED) || now_ms() >= deadline)
      return hcs_error_make(err, e, "connect to agent `%s`", path);
    usleep(20000);
  }
}

/* Send a hello with a nonce; read until its answer (frames before it are
 * leftovers of an earlier session).  Extra bytes stay in a->in. */
static int handshake(hcs_vm_agent_t *a, const char *path, int64_t deadline, hcs_error_t *err) {
  char nonce[64];
  snprintf(nonce, sizeof(nonce), "%d-%lld", (int)getpid(), (long long)now_ms());
  cleanup_free char *hello = hcs_xasprintf("{\"op\":\"hello\",\"seq\":0,\"nonce\":\"%s\"}", nonce);
  if (send_frame(a, HCS_AGENT_CTRL, 0, hello, (uint32_t)strlen(hello)) < 0)
    return hcs_error_make(err, errno, "agent gone: send hello to `%s`", path);
  for (;;) {
    size_t off = 0;
    while (a->in_len - off >= HCS_AGENT_HDR) {
      unsigned type;
      uint32_t stream, n;
      if (hcs_agent_check_hdr(a->in + off, &type, &stream, &n) < 0) {
        off++;
        continue;
      }
      if (a->in_len - off < HCS_AGENT_HDR + n) break;
      bool mine = false;
      if (type == HCS_AGENT_CTRL) {
        json_t *m = json_loadb((const char *)a->in + off + HCS_AGENT_HDR, n, 0, NULL);
        const char *got = json_string_value(json_object_get(m, "nonce"));
        mine = got && strcmp(got, nonce) == 0 && json_is_true(json_object_get(m, "ok"));
        json_decref(m);
      }
      off += HCS_AGENT_HDR + n;
      if (mine) {
        if (off) memmove(a->in, a->in + off, a->in_len - off);
        a->in_len -= off;
        return 0;
      }
    }
    if (off) memmove(a->in, a->in + off, a->in_len - off);
    a->in_len -= off;
    int64_t left = deadline - now_ms();
    if (left <= 0) return hcs_error_make(err, ETIMEDOUT, "wait for the agent on `%s`", path);
    struct pollfd pf = {.fd = a->sock, .events = POLLIN};
    int r = poll(&pf, 1, (int)(left > 1000 ? 1000 : left));
    if (r < 0 && errno != EINTR) return hcs_error_make(err, errno, "poll agent `%s`", path);
    if (r <= 0) continue;
    if (a->in_cap - a->in_len < 65536) {
      a->in_cap = a->in_cap * 2 + 65536 + HCS_AGENT_HDR;
      a->in = hcs_xrealloc(a->in, a->in_cap);
    }
    ssize_t k = recv(a->sock, a->in + a->in_len, a->in_cap - a->in_len, 0);
    if (k == 0) return hcs_error_make(err, ECONNRESET, "agent gone: `%s` closed during the hello", path);
    if (k < 0 && errno != EINTR) return hcs_error_make(err, errno, "agent gone: read `%s`", path);
    if (k > 0) a->in_len += (size_t)k;
  }
}

static void agent_free(hcs_vm_agent_t *a) {
  if (a->thread_started) {
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    pthread_mutex_unlock(&a->mu);
    agent_wake(a);
    pthread_join(a->thread, NULL);
  }
  while (a->procs) {
    hcs_vm_agent_process_t *p = a->procs;
    a->procs = p->next;
    agent_proc_free(p);
  }
  if (a->sock >= 0) close(a->sock);
  if (a->wake >= 0) close(a->wake);
  pthread_mutex_destroy(&a->mu);
  pthread_mutex_destroy(&a->wmu);
  pthread_cond_destroy(&a->cv);
  free(a->in);
  free(a->gone_why);
  free(a);
}

/* sock_path, or fd >= 0 (an already connected socket, taken over). */
static hcs_vm_agent_t *agent_open(const char *sock_path, int fd, int timeout_ms, bool relay_thread, hcs_error_t *err) {
  int64_t deadline = now_ms() + (timeout_ms < 0 ? INT32_MAX : timeout_ms);
  hcs_vm_agent_t *a = hcs_xcalloc(1, sizeof(*a));
  a->sock = a->wake = -1;
  pthread_mutex_init(&a->mu, NULL);
  pthread_mutex_init(&a->wmu, NULL);
  pthread_cond_init(&a->cv, NULL);
  /* A hello unanswered for a while gets a new connection and a new hello
   * (a new nonce: an answer to the old one is skipped).  Seen once under
   * load: a reconnect the agent missed left the second connection's hello
   * without an answer for a minute; a new connection makes the port hang
   * up and open again.  Safe: an unanswered session has no processes. */
  int64_t attempt_ms = timeout_ms < 0 || timeout_ms / 6 > 10000 ? 10000 : timeout_ms / 6 > 1000 ? timeout_ms / 6 : 1000;
  for (;;) {
    a->sock = fd >= 0 ? fd : connect_socket(sock_path, deadline, err);
    if (a->sock < 0) {
      agent_free(a);
      return NULL;
    }
    int64_t until = fd >= 0 || now_ms() + attempt_ms >= deadline ? deadline : now_ms() + attempt_ms;
    hcs_error_t herr = NULL;
    if (handshake(a, fd >= 0 ? "(socket)" : sock_path, until, &herr) == 0) break;
    if (fd >= 0 || until >= deadline || hcs_error_status(herr) != ETIMEDOUT) {
      if (err)
        *err = herr;
      else
        hcs_error_release(&herr);
      agent_free(a);
      return NULL;
    }
    hcs_error_release(&herr);
    close(a->sock);
    a->sock = -1;
    a->in_len = 0;
  }
  if (!relay_thread) return a;
  a->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int e = a->wake < 0 ? errno : pthread_create(&a->thread, NULL, relay, a);
  if (e) {
    agent_free(a);
    hcs_error_make(err, e, "start the agent relay");
    return NULL;
  }
  a->thread_started = true;
  if (a->in_len) { /* frames that came with the hello's answer */
    pthread_mutex_lock(&a->mu);
    parse(a);
    pthread_mutex_unlock(&a->mu);
  }
  return a;
}

int hcs_vm_agent_wait_ready(const char *sock_path, int timeout_ms, hcs_error_t *err) {
  hcs_vm_agent_t *a = agent_open(sock_path, -1, timeout_ms, false, err);
  if (!a) return -1;
  agent_free(a);
  return 0;
}

hcs_vm_agent_t *hcs_vm_agent_connect(const char *sock_path, int timeout_ms, hcs_error_t *err) {
  return agent_open(sock_path, -1, timeout_ms, true, err);
}

hcs_vm_agent_t *hcs_vm_agent_connect_fd(int fd, int timeout_ms, hcs_error_t *err) {
  if (fd < 0) {
    hcs_error_make(err, EBADF, "connect to agent: no socket");
    return NULL;
  }
  return agent_open(NULL, fd, timeout_ms, true, err);
}

void hcs_vm_agent_close(hcs_vm_agent_t *a) {
  if (a) agent_free(a);
}
