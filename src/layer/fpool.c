/* Parallel file creation for imports.  On ext4 creating an inode is the
 * dominant cost of unpacking many small files (the inode allocator scans
 * for recently deleted inodes), so regular files up to a few MiB are handed
 * with their content to worker threads, while the tar parser goes on.  The
 * importing thread keeps everything ordered: it creates directories itself,
 * waits for the workers (a barrier) before any entry that could depend on
 * or replace a file in flight, and before the final directory times. */
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "layer/fpool.h"
#include "layer/path.h"

#define QCAP 256
#define MAX_QUEUED_BYTES (64u << 20)
#define MAX_WORKERS 8
/* Files are handed over in batches of this many (or bytes), and a worker
 * takes its share of the queue at once: one by one, the three threads
 * fought over the pool's lock and the workers (faster than the parser
 * feeding them) slept and woke for every file, and the lock and the
 * wake-ups cost more CPU than the small files they wrote. */
#define BATCH_FILES 16
#define BATCH_BYTES (1u << 20)

struct layer_fpool {
  pthread_t th[MAX_WORKERS];
  int n;
  pthread_mutex_t mu;
  pthread_cond_t cv_job, cv_idle;
  struct layer_fjob *q[QCAP];
  unsigned head, count, busy, sleeping;
  size_t queued_bytes;
  /* the batch being gathered (importing thread only) */
  struct layer_fjob *pend[BATCH_FILES];
  unsigned npend;
  size_t pend_bytes;
  bool stop;
  char *error; /* first failure */
  int errnum;
  /* paths in flight since the last barrier (importing thread only); a
   * false "maybe" only costs a barrier */
  struct layer_pathset set;
};

void layer_fjob_free(struct layer_fjob *j) {
  if (j == NULL) return;
  if (j->pfd >= 0) close(j->pfd);
  free(j->name);
  free(j->entry);
  free(j->data);
  for (size_t i = 0; i < j->nx; i++) {
    free(j->xattrs[i].name);
    free(j->xattrs[i].value);
  }
  free(j->xattrs);
  free(j);
}

static int write_all(int fd, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int layer_fjob_run(const struct layer_fjob *j, char **msg) {
  const char *what = "create"; /* the importing thread made room already */
  int fd = openat(j->pfd, j->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) goto fail;
  if (j->len && write_all(fd, j->data, j->len) < 0) {
    what = "write";
    goto fail_fd;
  }
  if ((off_t)j->len < j->size && ftruncate(fd, j->size) < 0) {
    what = "truncate";
    goto fail_fd;
  }
  if (!j->owner_ok && fchown(fd, j->uid, j->gid) < 0) {
    what = "chown";
    goto fail_fd;
  }
  if (fchmod(fd, j->perm) < 0) { /* after chown, which clears set-id bits */
    what = "chmod";
    goto fail_fd;
  }
  for (size_t i = 0; i < j->nx; i++)
    if (fsetxattr(fd, j->xattrs[i].name, j->xattrs[i].value, j->xattrs[i].size, 0) < 0) {
      what = "set xattr";
      goto fail_fd;
    }
  if (futimens(fd, j->ts) < 0) {
    what = "set times";
    goto fail_fd;
  }
  close(fd);
  return 0;
fail_fd : {
  int e = errno;
  close(fd);
  errno = e;
}
fail:
  *msg = hcs_xasprintf("entry `%s`: %s: %s", j->entry, what, strerror(errno));
  return -1;
}

static void *worker(void *arg) {
  struct layer_fpool *p = arg;
  struct layer_fjob *mine[BATCH_FILES];
  unsigned n = 0;
  size_t bytes = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    if (n) { /* the share just written */
      p->queued_bytes -= bytes;
      p->busy -= n;
      pthread_cond_broadcast(&p->cv_idle);
    }
    while (p->count == 0 && !p->stop) {
      p->sleeping++;
      pthread_cond_wait(&p->cv_job, &p->mu);
      p->sleeping--;
    }
    if (p->count == 0 && p->stop) break;
    n = (p->count + (unsigned)p->n - 1) / (unsigned)p->n;
    if (n > BATCH_FILES) n = BATCH_FILES;
    for (unsigned i = 0; i < n; i++) {
      mine[i] = p->q[p->head];
      p->head = (p->head + 1) % QCAP;
    }
    p->count -= n;
    p->busy += n;
    bool skip = p->error != NULL;
    pthread_mutex_unlock(&p->mu);
    char *msg = NULL;
    int e = 0;
    bytes = 0;
    for (unsigned i = 0; i < n; i++) {
      if (!skip && msg == NULL && layer_fjob_run(mine[i], &msg) < 0) e = errno;
      bytes += mine[i]->len;
      layer_fjob_free(mine[i]);
    }
    pthread_mutex_lock(&p->mu);
    if (msg && p->error == NULL) {
      p->error = msg;
      p->errnum = e;
    } else {
      free(msg);
    }
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

struct layer_fpool *layer_fpool_start(int n) {
  if (n <= 0) return NULL;
  if (n > MAX_WORKERS) n = MAX_WORKERS;
  struct layer_fpool *p = hcs_xcalloc(1, sizeof *p);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv_job, NULL);
  pthread_cond_init(&p->cv_idle, NULL);
  for (int i = 0; i < n; i++) {
    if (pthread_create(&p->th[i], NULL, worker, p) != 0) break;
    p->n++;
  }
  if (p->n == 0) {
    layer_fpool_free(p);
    return NULL;
  }
  return p;
}

static int take_error(struct layer_fpool *p, hcs_error_t *err) {
  if (p->error == NULL) return 0;
  hcs_error_make(err, 0, "%s", p->error);
  return -1;
}

static void drop_pending(struct layer_fpool *p) {
  for (unsigned i = 0; i < p->npend; i++)
    layer_fjob_free(p->pend[i]);
  p->npend = 0;
  p->pend_bytes = 0;
}

/* Queue the gathered batch for the workers. */
static int flush(struct layer_fpool *p, hcs_error_t *err) {
  if (p->npend == 0) return 0;
  pthread_mutex_lock(&p->mu);
  while (p->error == NULL &&
         (p->count + p->npend > QCAP || (p->queued_bytes + p->pend_bytes > MAX_QUEUED_BYTES && p->count > 0))) {
    if (p->sleeping) pthread_cond_broadcast(&p->cv_job);
    pthread_cond_wait(&p->cv_idle, &p->mu);
  }
  if (p->error) {
    int r = take_error(p, err);
    pthread_mutex_unlock(&p->mu);
    drop_pending(p);
    return r;
  }
  for (unsigned i = 0; i < p->npend; i++)
    p->q[(p->head + p->count + i) % QCAP] = p->pend[i];
  p->count += p->npend;
  p->queued_bytes += p->pend_bytes;
  if (p->sleeping) pthread_cond_broadcast(&p->cv_job);
  pthread_mutex_unlock(&p->mu);
  p->npend = 0;
  p->pend_bytes = 0;
  return 0;
}

int layer_fpool_submit(struct layer_fpool *p, struct layer_fjob *j, hcs_error_t *err) {
  p->pend[p->npend++] = j;
  p->pend_bytes += j->len;
  if (p->npend == BATCH_FILES || p->pend_bytes >= BATCH_BYTES) return flush(p, err);
  return 0;
}

int layer_fpool_barrier(struct layer_fpool *p, hcs_error_t *err) {
  if (p == NULL) return 0;
  if (flush(p, err) < 0) {
    layer_fpool_barrier(p, NULL); /* what is queued still finishes */
    return -1;
  }
  pthread_mutex_lock(&p->mu);
  while (p->count > 0 || p->busy > 0)
    pthread_cond_wait(&p->cv_idle, &p->mu);
  int r = take_error(p, err);
  pthread_mutex_unlock(&p->mu);
  layer_pathset_clear(&p->set);
  return r;
}

bool layer_fpool_in_flight(struct layer_fpool *p, const char *path) {
  return p != NULL && layer_pathset_maybe(&p->set, path);
}

void layer_fpool_mark(struct layer_fpool *p, const char *path) { layer_pathset_add(&p->set, path); }

void layer_fpool_free(struct layer_fpool *p) {
  if (p == NULL) return;
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->cv_job);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->n; i++)
    pthread_join(p->th[i], NULL);
  drop_pending(p);
  while (p->count > 0) {
    layer_fjob_free(p->q[p->head]);
    p->head = (p->head + 1) % QCAP;
    p->count--;
  }
  layer_pathset_free(&p->set);
  free(p->error);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv_job);
  pthread_cond_destroy(&p->cv_idle);
  free(p);
}
