/* Copier threads for the agent client: bytes between a stream's internal
 * pipe and an fd the caller passed (hcs_vm_agent_create_process_ex), so
 * the relay thread never blocks on a caller's terminal or file. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/util.h"
#include "vm/agent_client.h"

struct copier {
  int from, to, stop, done;
};

static void copier_close(struct copier *c) {
  close(c->from);
  close(c->to);
  if (c->stop >= 0) close(c->stop);
  if (c->done >= 0) close(c->done); /* a waiter sees EOF: the copy is complete */
  free(c);
}

static void *copy_thread(void *arg) {
  struct copier *c = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  unsigned char buf[65536];
  for (;;) {
    struct pollfd pf[2] = {{c->from, POLLIN, 0}, {c->stop, POLLIN, 0}};
    if (poll(pf, c->stop >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (c->stop >= 0 && pf[1].revents) break;
    ssize_t r = read(c->from, buf, sizeof(buf));
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) break;
    size_t off = 0;
    while (off < (size_t)r) {
      ssize_t w = write(c->to, buf + off, (size_t)r - off);
      if (w < 0 && errno == EAGAIN) { /* a non-blocking fd of the caller's */
        struct pollfd o = {c->to, POLLOUT, 0};
        poll(&o, 1, -1);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) goto out;
      off += (size_t)w;
    }
  }
out:
  copier_close(c);
  return NULL;
}

int hcs_vm_agent_copier_start(int from, int to, int stop, int done, hcs_error_t *err) {
  struct copier *c = hcs_xcalloc(1, sizeof(*c));
  *c = (struct copier){from, to, stop, done};
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int e = pthread_create(&t, &attr, copy_thread, c);
  pthread_attr_destroy(&attr);
  if (e) {
    copier_close(c);
    return hcs_error_make(err, e, "start a stdio copier");
  }
  return 0;
}
