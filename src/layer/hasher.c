/* A sha256 on a thread of its own: the import's reader hands it each
 * buffer it filled (the compressed input for the layer's digest, the tar
 * stream for its diff id) and goes on inflating.  Hashing 1.4 GB/s per core
 * with the SHA extensions, both digests of a 500 MB gzip layer cost about
 * as much CPU as the inflate itself: on the inflating thread they made it
 * the one that everything else waited for.  A buffer is reused only once
 * its ticket is done (layer_hasher_wait). */
#include <pthread.h>

#include "layer/internal.h"

#define HASH_QUEUE 32

struct piece {
  const void *p;
  size_t n;
};

struct layer_hasher {
  pthread_t thread;
  bool started, stop;
  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_done;
  struct piece q[HASH_QUEUE];
  uint64_t submitted, done; /* tickets: the n-th piece submitted has ticket n */
  EVP_MD_CTX *md;
};

static void *hasher_run(void *arg) {
  struct layer_hasher *h = arg;
  pthread_mutex_lock(&h->mu);
  for (;;) {
    while (h->done == h->submitted && !h->stop)
      pthread_cond_wait(&h->cv_work, &h->mu);
    if (h->stop) break;
    struct piece pc = h->q[h->done % HASH_QUEUE];
    pthread_mutex_unlock(&h->mu);
    EVP_DigestUpdate(h->md, pc.p, pc.n);
    pthread_mutex_lock(&h->mu);
    __atomic_store_n(&h->done, h->done + 1, __ATOMIC_RELEASE); /* after the update: see layer_hasher_wait */
    pthread_cond_broadcast(&h->cv_done);
  }
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

struct layer_hasher *layer_hasher_start(hcs_error_t *err) {
  struct layer_hasher *h = hcs_xcalloc(1, sizeof *h);
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv_work, NULL);
  pthread_cond_init(&h->cv_done, NULL);
  h->md = layer_sha256_new();
  int e = pthread_create(&h->thread, NULL, hasher_run, h);
  if (e != 0) {
    layer_hasher_free(h);
    hcs_error_make(err, e, "start hashing thread");
    return NULL;
  }
  h->started = true;
  return h;
}

uint64_t layer_hasher_submit(struct layer_hasher *h, const void *p, size_t n) {
  pthread_mutex_lock(&h->mu);
  while (h->submitted - h->done == HASH_QUEUE)
    pthread_cond_wait(&h->cv_done, &h->mu);
  h->q[h->submitted % HASH_QUEUE] = (struct piece){p, n};
  uint64_t ticket = ++h->submitted;
  pthread_cond_signal(&h->cv_work);
  pthread_mutex_unlock(&h->mu);
  return ticket;
}

void layer_hasher_wait(struct layer_hasher *h, uint64_t ticket) {
  if (ticket == 0) return;                                           /* nothing submitted (h may be NULL then) */
  if (__atomic_load_n(&h->done, __ATOMIC_ACQUIRE) >= ticket) return; /* the usual case: no lock */
  pthread_mutex_lock(&h->mu);
  while (h->done < ticket)
    pthread_cond_wait(&h->cv_done, &h->mu);
  pthread_mutex_unlock(&h->mu);
}

void layer_hasher_final(struct layer_hasher *h, char out[72]) {
  pthread_mutex_lock(&h->mu);
  uint64_t last = h->submitted;
  pthread_mutex_unlock(&h->mu);
  layer_hasher_wait(h, last);
  layer_sha256_final(h->md, out);
}

void layer_hasher_free(struct layer_hasher *h) {
  if (h == NULL) return;
  if (h->started) {
    pthread_mutex_lock(&h->mu);
    h->stop = true; /* the piece being hashed is finished, the rest dropped */
    pthread_cond_signal(&h->cv_work);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
  }
  EVP_MD_CTX_free(h->md);
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->cv_work);
  pthread_cond_destroy(&h->cv_done);
  free(h);
}
