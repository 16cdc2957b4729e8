/* Early writeback for an import: a thread that syncs the layer's file
 * system over and over while the files are being created, so the disk
 * writes overlap with the parsing and the final sync (the one that makes
 * the layer durable before it is named) waits only for the last batch.
 * The kernel alone would start writing only past the dirty threshold (a
 * tenth of memory) or after 30 s, i.e. for most layers not before the
 * final sync, which then paid for every byte with nothing else to do. */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "layer/internal.h"

struct layer_writeback {
  int fd;
  bool stop;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

/* Between two syncs: short enough that little is left for the final one,
 * long enough that an idle disk is not asked for nothing in a loop. */
#define WRITEBACK_PAUSE_MS 100

static void *writeback_run(void *arg) {
  struct layer_writeback *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    /* A pause first: an import done within it (a small layer) never
     * syncs more than its final sync. */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += WRITEBACK_PAUSE_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0) {
    }
    if (w->stop) break;
    pthread_mutex_unlock(&w->mu);
    syncfs(w->fd); /* errors surface in the final sync */
    pthread_mutex_lock(&w->mu);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

struct layer_writeback *layer_writeback_start(int fd) {
  struct layer_writeback *w = hcs_xcalloc(1, sizeof(*w));
  w->fd = fd;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&w->mu, NULL);
  if (pthread_create(&w->thread, NULL, writeback_run, w) != 0) {
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return NULL; /* the final sync does it all, as without this */
  }
  return w;
}

void layer_writeback_stop(struct layer_writeback *w) {
  if (w == NULL) return;
  pthread_mutex_lock(&w->mu);
  w->stop = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  free(w);
}
