/* The copying side of a capture (see mirror.c): the exporter's walk creates
 * each entry in the new layer as an import of its tar entry would. */
#ifndef HCS_LAYER_MIRROR_H
#define HCS_LAYER_MIRROR_H

#include <stdbool.h>
#include <sys/stat.h>

#include "core/util.h"

/* Regular files up to this size go to worker threads with their content. */
#define LAYER_MIRROR_POOL_MAX (1u << 20)

struct archive_entry;
struct layer_mirror;

/* rootfd: the new layer's (empty) diff directory, not owned.  threads: 0 for
 * one per CPU, 1 for none. */
HCS_INTERNAL struct layer_mirror *layer_mirror_start(int rootfd, int threads);
HCS_INTERNAL void layer_mirror_free(struct layer_mirror *m);
/* Entries, in the walk's order (a directory before its contents); st is
 * the source's stat, ae the tar entry made of it (for its xattrs). */
HCS_INTERNAL int layer_mirror_dir(struct layer_mirror *m, const char *rel, const struct stat *st,
                                  struct archive_entry *ae, bool opaque, hcs_error_t *err);
HCS_INTERNAL int layer_mirror_whiteout(struct layer_mirror *m, const char *rel, const struct stat *st,
                                       hcs_error_t *err);
HCS_INTERNAL int layer_mirror_symlink(struct layer_mirror *m, const char *rel, const char *target,
                                      const struct stat *st, hcs_error_t *err);
HCS_INTERNAL int layer_mirror_node(struct layer_mirror *m, const char *rel, const struct stat *st, hcs_error_t *err);
/* A hardlink to the first path of the same inode. */
HCS_INTERNAL int layer_mirror_link(struct layer_mirror *m, const char *rel, const char *first, hcs_error_t *err);
/* A small file goes whole to a worker (data: st_size bytes, malloc'd, owned
 * from the call); larger ones are written here: open, write, close. */
HCS_INTERNAL bool layer_mirror_pooled(struct layer_mirror *m, off_t size);
HCS_INTERNAL int layer_mirror_file_data(struct layer_mirror *m, const char *rel, const struct stat *st,
                                        struct archive_entry *ae, unsigned char *data, hcs_error_t *err);
HCS_INTERNAL int layer_mirror_file_open(struct layer_mirror *m, const char *rel, hcs_error_t *err);
HCS_INTERNAL int layer_mirror_file_write(int fd, const unsigned char *p, size_t n, off_t off, const char *rel,
                                         hcs_error_t *err);
HCS_INTERNAL int layer_mirror_file_close(int fd, const char *rel, const struct stat *st, struct archive_entry *ae,
                                         hcs_error_t *err);
/* Wait for the workers, then set the directories' times. */
HCS_INTERNAL int layer_mirror_finish(struct layer_mirror *m, hcs_error_t *err);

#endif
