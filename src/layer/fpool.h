/* Worker threads creating regular files during an import (see fpool.c). */
#ifndef HCS_LAYER_FPOOL_H
#define HCS_LAYER_FPOOL_H

#include <time.h>

#include "core/util.h"

struct layer_fjob {
  int pfd;     /* O_PATH fd of the parent directory (owned) */
  char *name;  /* base name */
  char *entry; /* archive entry name, for errors */
  unsigned char *data;
  size_t len;
  off_t size; /* final size (> len for a trailing hole) */
  uid_t uid;
  gid_t gid;
  bool owner_ok; /* a new file gets uid:gid by itself: no chown */
  mode_t perm;
  struct timespec ts[2];
  size_t nx;
  struct {
    char *name;
    void *value;
    size_t size;
  } * xattrs;
};

struct layer_fpool;
/* NULL when n <= 0 or no thread could start: import sequentially. */
HCS_INTERNAL struct layer_fpool *layer_fpool_start(int n);
/* Queue a job (ownership passes); -1 with the first worker error. */
HCS_INTERNAL int layer_fpool_submit(struct layer_fpool *p, struct layer_fjob *j, hcs_error_t *err);
/* Wait until every queued file is written; -1 with the first worker error. */
HCS_INTERNAL int layer_fpool_barrier(struct layer_fpool *p, hcs_error_t *err);
/* Paths queued since the last barrier (importing thread only). */
HCS_INTERNAL bool layer_fpool_in_flight(struct layer_fpool *p, const char *path);
HCS_INTERNAL void layer_fpool_mark(struct layer_fpool *p, const char *path);
HCS_INTERNAL void layer_fpool_free(struct layer_fpool *p);
/* Create and fill one file (used by the workers); *msg is malloc'd on error. */
HCS_INTERNAL int layer_fjob_run(const struct layer_fjob *j, char **msg);
HCS_INTERNAL void layer_fjob_free(struct layer_fjob *j);

#endif
