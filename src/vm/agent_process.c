/* Processes in the guest through the agent session (see agent_client.h):
 * create (with pipes, a pty or the caller's fds through copier threads),
 * detached processes the VM's monitor owns, reopening by guest pid, signals,
 * resize, wait and exit status; and the small requests (9p mounts, share
 * unmount, poweroff). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "vm/agent_internal.h"
#include "vm/agent_proto.h"

/* A handle with no streams yet; NULL with err. */
static hcs_vm_agent_process_t *proc_new(hcs_vm_agent_t *a, hcs_error_t *err) {
  hcs_vm_agent_process_t *p = hcs_xcalloc(1, sizeof(*p));
  p->a = a;
  p->done[0] = p->done[1] = p->done[2] = p->stop = -1;
  p->exitfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p->exitfd < 0) {
    free(p);
    hcs_error_make(err, errno, "eventfd");
    return NULL;
  }
  p->relay_in = p->relay_out[0] = p->relay_out[1] = p->relay_out[2] = -1;
  p->user[0] = p->user[1] = p->user[2] = -1;
  return p;
}

/* detach: a process the VM's monitor owns (its relay; the agent itself
 * knows no detached processes): no stdio. */
static hcs_vm_agent_process_t *create_process(hcs_vm_agent_t *a, json_t *doc, bool detach, hcs_error_t *err) {
  hcs_vm_agent_process_t *p = proc_new(a, err);
  if (!p) return NULL;
  p->tty = json_is_true(json_object_get(doc, "EmulateConsole"));
  if (detach) {
  } else if (p->tty) {
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
      close(p->exitfd);
      free(p);
      hcs_error_make(err, errno, "socketpair");
      return NULL;
    }
    p->user[0] = p->user[1] = sp[0];
    p->relay_in = p->relay_out[1] = sp[1];
    fcntl(sp[1], F_SETFL, O_NONBLOCK);
  } else {
    static const char *const names[3] = {"CreateStdInPipe", "CreateStdOutPipe", "CreateStdErrPipe"};
    for (int i = 0; i < 3; i++) {
      int pp[2];
      if (!json_is_true(json_object_get(doc, names[i]))) continue;
      if (pipe2(pp, O_CLOEXEC) < 0) {
        int e = errno;
        agent_proc_free(p);
        hcs_error_make(err, e, "pipe");
        return NULL;
      }
      p->user[i] = i == 0 ? pp[1] : pp[0];
      int mine = i == 0 ? pp[0] : pp[1];
      fcntl(mine, F_SETFL, O_NONBLOCK);
      if (i == 0)
        p->relay_in = mine;
      else
        p->relay_out[i] = mine;
    }
  }
  p->in_credit = p->out_credit[1] = p->out_credit[2] = HCS_AGENT_WINDOW;
  json_t *req = json_pack("{s:s,s:O}", "op", "create", "process", doc);
  if (detach) json_object_set_new(req, "detach", json_true());
  json_t *reply = agent_request(a, req, p, err);
  if (!reply) {
    agent_proc_free(p);
    return NULL;
  }
  json_decref(reply);
  agent_wake(a); /* poll the new process's fds */
  return p;
}

/* Copy stream i between its pipe end and the caller's fd (dup'ed). */
static int start_copier(hcs_vm_agent_process_t *p, int i, int caller_fd, hcs_error_t *err) {
  int mine = fcntl(caller_fd, F_DUPFD_CLOEXEC, 3);
  if (mine < 0) return hcs_error_make(err, errno, "duplicate stdio fd %d", caller_fd);
  int from, to, stop = -1, done = -1;
  if (i == 0) {
    from = mine;
    to = p->user[0];
    if (p->stop < 0) p->stop = eventfd(0, EFD_CLOEXEC);
    stop = p->stop >= 0 ? fcntl(p->stop, F_DUPFD_CLOEXEC, 3) : -1;
  } else {
    int d[2];
    if (pipe2(d, O_CLOEXEC) < 0) {
      close(mine);
      return hcs_error_make(err, errno, "pipe");
    }
    p->done[i] = d[0];
    done = d[1];
    from = p->user[i];
    to = mine;
  }
  p->user[i] = -1;
  return hcs_vm_agent_copier_start(from, to, stop, done, err);
}

hcs_vm_agent_process_t *hcs_vm_agent_create_process(hcs_vm_agent_t *a, const char *params, hcs_error_t *err) {
  return hcs_vm_agent_create_process_ex(a, params, NULL, err);
}

hcs_vm_agent_process_t *hcs_vm_agent_create_process_ex(hcs_vm_agent_t *a, const char *params, const int stdio[3],
                                                       hcs_error_t *err) {
  cleanup_json json_t *doc = hcs_json_parse(params, "process parameters", err);
  if (!doc) return NULL;
  if (!json_is_object(doc)) {
    hcs_error_make(err, 0, "invalid process parameters: expected an object");
    return NULL;
  }
  static const char *const names[3] = {"CreateStdInPipe", "CreateStdOutPipe", "CreateStdErrPipe"};
  bool inherit[3] = {false, false, false};
  bool tty = json_is_true(json_object_get(doc, "EmulateConsole"));
  for (int i = 0; i < 3 && stdio && !tty; i++) {
    if (stdio[i] < 0 || json_is_true(json_object_get(doc, names[i]))) continue;
    inherit[i] = true; /* the guest side is a pipe; a copier feeds the caller's fd */
    json_object_set_new(doc, names[i], json_true());
  }
  hcs_vm_agent_process_t *p = create_process(a, doc, false, err);
  if (!p) return NULL;
  pthread_mutex_lock(&a->mu);
  for (int i = 0; i < 3; i++) {
    hcs_error_t cerr = NULL;
    if (inherit[i] && start_copier(p, i, stdio[i], &cerr) < 0) {
      /* the stream is discarded (the relay drops what nobody reads) */
      hcs_warning("vm agent: process %d: %s", p->pid, hcs_error_message(cerr));
      hcs_error_release(&cerr);
      if (p->user[i] >= 0) close(p->user[i]);
      p->user[i] = -1;
    }
  }
  pthread_mutex_unlock(&a->mu);
  return p;
}

hcs_vm_agent_process_t *hcs_vm_agent_create_detached(hcs_vm_agent_t *a, const char *params, hcs_error_t *err) {
  cleanup_json json_t *doc = hcs_json_parse(params, "process parameters", err);
  if (!doc) return NULL;
  if (!json_is_object(doc)) {
    hcs_error_make(err, 0, "invalid process parameters: expected an object");
    return NULL;
  }
  /* Nobody reads a detached process: its streams are /dev/null in the guest. */
  static const char *const pipes[] = {"CreateStdInPipe", "CreateStdOutPipe", "CreateStdErrPipe"};
  for (size_t i = 0; i < HCS_ARRAY_SIZE(pipes); i++)
    json_object_del(doc, pipes[i]);
  return create_process(a, doc, true, err);
}

hcs_vm_agent_process_t *hcs_vm_agent_open_process(hcs_vm_agent_t *a, int pid, hcs_error_t *err) {
  hcs_vm_agent_process_t *p = proc_new(a, err);
  if (!p) return NULL;
  json_t *reply = agent_request(a, json_pack("{s:s,s:i}", "op", "open", "pid", pid), p, err);
  if (!reply) {
    agent_proc_free(p);
    return NULL;
  }
  json_decref(reply);
  return p;
}

int hcs_vm_agent_process_pid(hcs_vm_agent_process_t *p) { return p->pid; }

int hcs_vm_agent_process_exit_fd(hcs_vm_agent_process_t *p) { return p->exitfd; }

void hcs_vm_agent_process_take_stdio(hcs_vm_agent_process_t *p, int *in, int *out, int *err_fd) {
  pthread_mutex_lock(&p->a->mu);
  if (in) *in = p->user[0], p->user[0] = -1;
  if (out) {
    *out = p->user[1];
    if (p->tty && *out >= 0) *out = fcntl(*out, F_DUPFD_CLOEXEC, 3);
    p->user[1] = -1;
  }
  if (err_fd) *err_fd = p->user[2], p->user[2] = -1;
  pthread_mutex_unlock(&p->a->mu);
}

static int simple(hcs_vm_agent_t *a, json_t *req, hcs_error_t *err) {
  json_t *reply = agent_request(a, req, NULL, err);
  if (!reply) return -1;
  json_decref(reply);
  return 0;
}

int hcs_vm_agent_process_signal(hcs_vm_agent_process_t *p, int sig, hcs_error_t *err) {
  pthread_mutex_lock(&p->a->mu);
  bool exited = p->exited;
  pthread_mutex_unlock(&p->a->mu);
  if (exited) return hcs_error_make(err, ESRCH, "signal process %d in the VM: it has exited", p->pid);
  return simple(p->a, json_pack("{s:s,s:i,s:i}", "op", "signal", "id", (int)p->id, "signal", sig), err);
}

int hcs_vm_agent_process_resize(hcs_vm_agent_process_t *p, unsigned short rows, unsigned short cols, hcs_error_t *err) {
  return simple(p->a, json_pack("{s:s,s:i,s:i,s:i}", "op", "resize", "id", (int)p->id, "rows", rows, "cols", cols),
                err);
}

int hcs_vm_agent_process_wait(hcs_vm_agent_process_t *p, int timeout_ms, hcs_error_t *err) {
  hcs_vm_agent_t *a = p->a;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  if (timeout_ms > 0) {
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock(&a->mu);
  int r = 0;
  while (!p->exited && !a->gone && timeout_ms != 0 && r != ETIMEDOUT)
    r = timeout_ms < 0 ? pthread_cond_wait(&a->cv, &a->mu) : pthread_cond_timedwait(&a->cv, &a->mu, &until);
  bool exited = p->exited, gone = a->gone;
  pthread_mutex_unlock(&a->mu);
  if (!exited && gone) return agent_gone_error(a, err);
  if (!exited) return 0;
  /* Output copied to the caller's own fds is all there when wait returns,
   * as it is for a container process writing to them directly. */
  for (int i = 1; i < 3; i++) {
    while (p->done[i] >= 0) {
      struct pollfd pf = {p->done[i], POLLIN, 0};
      int r2 = poll(&pf, 1, timeout_ms);
      if (r2 < 0 && errno == EINTR) continue;
      if (r2 == 0) return 0;
      close(p->done[i]);
      p->done[i] = -1;
    }
  }
  return 1;
}

int hcs_vm_agent_process_exit_code(hcs_vm_agent_process_t *p, hcs_error_t *err) {
  pthread_mutex_lock(&p->a->mu);
  bool exited = p->exited;
  int code = p->code;
  pthread_mutex_unlock(&p->a->mu);
  if (!exited) return hcs_error_make(err, 0, "process %d in the VM has not exited", p->pid);
  return code;
}

int hcs_vm_agent_process_exit_signal(hcs_vm_agent_process_t *p) {
  pthread_mutex_lock(&p->a->mu);
  int sig = p->exited ? p->signal : 0;
  pthread_mutex_unlock(&p->a->mu);
  return sig;
}

void hcs_vm_agent_process_close(hcs_vm_agent_process_t *p) {
  if (!p) return;
  hcs_vm_agent_t *a = p->a; /* once released and unlocked, the relay may free p */
  pthread_mutex_lock(&a->mu);
  p->released = true;
  for (int i = 0; i < 3; i++) {
    if (p->user[i] >= 0 && !(i == 1 && p->user[1] == p->user[0])) close(p->user[i]);
    p->user[i] = -1;
  }
  pthread_mutex_unlock(&a->mu);
  agent_wake(a);
}

int hcs_vm_agent_mount_9p(hcs_vm_agent_t *a, const char *tag, const char *target, bool readonly, hcs_error_t *err) {
  return simple(a, json_pack("{s:s,s:s,s:s,s:b}", "op", "mount", "source", tag, "target", target, "readonly", readonly),
                err);
}

int hcs_vm_agent_unmount_share(hcs_vm_agent_t *a, const char *name, hcs_error_t *err) {
  return simple(a, json_pack("{s:s,s:s}", "op", "unmount_share", "name", name), err);
}

int hcs_vm_agent_poweroff(hcs_vm_agent_t *a, hcs_error_t *err) {
  return simple(a, json_pack("{s:s}", "op", "poweroff"), err);
}

int hcs_vm_agent_configure_interface(hcs_vm_agent_t *a, const char *mac, const char *address, int prefix,
                                     const char *gateway, int timeout_ms, hcs_error_t *err) {
  json_t *req = json_pack("{s:s,s:s,s:s,s:i,s:i}", "op", "configure_interface", "mac", mac, "address", address,
                          "prefix", prefix, "timeout_ms", timeout_ms);
  if (gateway && *gateway) json_object_set_new(req, "gateway", json_string(gateway));
  return simple(a, req, err);
}
