/* Later entries replace earlier ones (tar semantics: the last entry of a
 * name wins): a directory replaced by a file, a file by a directory, a
 * directory by a symlink.  The importer caches the fd of the parent
 * directory it resolved last; replacing must neither close an fd in use
 * (it failed with EBADF) nor let a later entry reach through a stale fd or
 * through the new symlink out of the layer.  Every case runs with the
 * worker pool (threads = 4) and without it (threads = 1). */
#include <errno.h>

#include "hcs/layer.h"
#include "layer_util.h"
#include "tap.h"

static char *T, *root;
static hcs_layer_store_t *store;

static char *import(const char *what, const struct t_entry *e, size_t n, int threads, hcs_error_t *err) {
  char tar[4096];
  snprintf(tar, sizeof tar, "%s/%s.tar", T, what);
  if (t_write_tar(tar, e, n, NULL) != 0) return NULL;
  hcs_layer_import_opts_t o = {.threads = threads};
  return hcs_layer_import_file(store, tar, &o, err);
}

static char *diff_path(const char *id, const char *rel) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s/layers/%s/diff/%s", root, id ? id : "?", rel);
  return strdup(buf);
}

static void lstat_is(const char *id, const char *rel, mode_t type, const char *what) {
  char *p = diff_path(id, rel);
  struct stat st;
  ok(lstat(p, &st) == 0 && (st.st_mode & S_IFMT) == type, "%s: `%s` has type %o", what, rel, (unsigned)type);
  free(p);
}

static void content_is(const char *id, const char *rel, const char *want, const char *what) {
  char *p = diff_path(id, rel);
  char *got = t_read_file(p);
  is_str(got, want, "%s: content of `%s`", what, rel);
  free(got);
  free(p);
}

static void absent(const char *id, const char *rel, const char *what) {
  char *p = diff_path(id, rel);
  struct stat st;
  ok(lstat(p, &st) < 0 && errno == ENOENT, "%s: `%s` is gone", what, rel);
  free(p);
}

static void drop(char *id) {
  hcs_error_t err = NULL;
  if (id) ok(hcs_layer_destroy(store, id, false, &err) == 0, "destroy: %s", hcs_error_message(err));
  hcs_error_release(&err);
  free(id);
}

static void run(int threads) {
  hcs_error_t err = NULL;
  char what[128];

  /* a directory with content replaced by a file in the same archive */
  snprintf(what, sizeof what, "dir -> file (threads %d)", threads);
  {
    struct t_entry e[] = {{'d', "a", NULL, 0, NULL},           {'d', "a/b", NULL, 0, NULL},
                          {'f', "a/b/f", "deep\n", 0, NULL},   {'f', "a/g", "g\n", 0, NULL},
                          {'f', "a", "now a file\n", 0, NULL}, {'f', "z", "after\n", 0, NULL}};
    char *id = import("dir-file", e, 6, threads, &err);
    ok(id != NULL, "%s: imported: %s", what, hcs_error_message(err));
    hcs_error_release(&err);
    lstat_is(id, "a", S_IFREG, what);
    content_is(id, "a", "now a file\n", what);
    content_is(id, "z", "after\n", what);
    drop(id);
  }
  /* the same, the directory being the parent of the entry just before */
  snprintf(what, sizeof what, "nested dir -> file (threads %d)", threads);
  {
    struct t_entry e[] = {{'d', "p", NULL, 0, NULL},
                          {'d', "p/q", NULL, 0, NULL},
                          {'f', "p/q/x", "x\n", 0, NULL},
                          {'f', "p/q", "q is a file\n", 0, NULL},
                          {'f', "p/y", "y\n", 0, NULL}};
    char *id = import("nested", e, 5, threads, &err);
    ok(id != NULL, "%s: imported: %s", what, hcs_error_message(err));
    hcs_error_release(&err);
    content_is(id, "p/q", "q is a file\n", what);
    content_is(id, "p/y", "y\n", what);
    drop(id);
  }
  /* a file replaced by a directory, which then gets content */
  snprintf(what, sizeof what, "file -> dir (threads %d)", threads);
  {
    struct t_entry e[] = {{'f', "a", "file\n", 0, NULL},
                          {'d', "a", NULL, 0750, NULL},
                          {'f', "a/inside", "in\n", 0, NULL},
                          {'f', "b", "b\n", 0, NULL}};
    char *id = import("file-dir", e, 4, threads, &err);
    ok(id != NULL, "%s: imported: %s", what, hcs_error_message(err));
    hcs_error_release(&err);
    lstat_is(id, "a", S_IFDIR, what);
    content_is(id, "a/inside", "in\n", what);
    char *p = diff_path(id, "a");
    struct stat st;
    is_int(lstat(p, &st) == 0 ? (int)(st.st_mode & 07777) : -1, 0750, "%s: the directory's mode", what);
    free(p);
    drop(id);
  }
  /* a directory replaced by a symlink pointing out: entries beneath the
   * symlink are refused, never written through it nor into the old
   * (removed) directory through a cached fd */
  snprintf(what, sizeof what, "dir -> symlink out (threads %d)", threads);
  {
    char out[4096];
    snprintf(out, sizeof out, "%s/outside", T);
    struct t_entry e[] = {{'d', "d", NULL, 0, NULL},
                          {'f', "d/one", "1\n", 0, NULL},
                          {'l', "d", out, 0, NULL},
                          {'f', "d/pwned", "x\n", 0, NULL}};
    char *id = import("dir-symlink-out", e, 4, threads, &err);
    ok(id == NULL, "%s: refused", what);
    has_substr(hcs_error_message(err), "entry `d/pwned`", "%s: the error names the entry", what);
    hcs_error_release(&err);
    char buf[4200];
    snprintf(buf, sizeof buf, "%s/pwned", out);
    ok(access(buf, F_OK) < 0, "%s: nothing written outside", what);
    snprintf(buf, sizeof buf, "%s/layers/.tmp", root);
    DIR *d = opendir(buf);
    int left = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
      if (de->d_name[0] != '.') left++;
    if (d) closedir(d);
    is_int(left, 0, "%s: no temporary directory left", what);
    free(id);
  }
  /* a directory replaced by a symlink to another directory of the layer:
   * later entries beneath it land in the target (as GNU tar does), and the
   * replaced directory's times are not applied through the symlink */
  snprintf(what, sizeof what, "dir -> symlink in (threads %d)", threads);
  {
    struct t_entry e[] = {{'d', "real", NULL, 0, NULL},     {'d', "d", NULL, 0, NULL},
                          {'f', "d/old", "old\n", 0, NULL}, {'l', "d", "real", 0, NULL},
                          {'f', "d/new", "new\n", 0, NULL}, {'f', "last", "l\n", 0, NULL}};
    char *id = import("dir-symlink-in", e, 6, threads, &err);
    ok(id != NULL, "%s: imported: %s", what, hcs_error_message(err));
    hcs_error_release(&err);
    lstat_is(id, "d", S_IFLNK, what);
    content_is(id, "real/new", "new\n", what);
    absent(id, "real/old", what);
    char *p = diff_path(id, "real");
    struct stat st;
    /* t_write_tar gives entry i the mtime 1700000000 + i: `real` is entry 0,
     * the replaced `d` entry 1 */
    is_int(lstat(p, &st) == 0 ? (long)st.st_mtime : -1, 1700000000, "%s: the target keeps its own mtime", what);
    free(p);
    drop(id);
  }
  /* a symlink replaced by a directory: a directory resolved through the
   * symlink earlier (cached by path) must not take the later entries
   * beneath the new directory into the symlink's target */
  snprintf(what, sizeof what, "symlink -> dir (threads %d)", threads);
  {
    struct t_entry e[] = {{'d', "real", NULL, 0, NULL},       {'d', "real/sub", NULL, 0, NULL},
                          {'l', "l", "real", 0, NULL},        {'f', "l/sub/a", "a\n", 0, NULL},
                          {'d', "l", NULL, 0, NULL},          {'f', "l/sub/b", "b\n", 0, NULL},
                          {'f', "real/sub/c", "c\n", 0, NULL}};
    char *id = import("symlink-dir", e, 7, threads, &err);
    ok(id != NULL, "%s: imported: %s", what, hcs_error_message(err));
    hcs_error_release(&err);
    lstat_is(id, "l", S_IFDIR, what);
    content_is(id, "real/sub/a", "a\n", what);
    content_is(id, "l/sub/b", "b\n", what);
    absent(id, "real/sub/b", what);
    content_is(id, "real/sub/c", "c\n", what);
    drop(id);
  }
  /* the same directory twice: the later entry's metadata wins */
  snprintf(what, sizeof what, "dir twice (threads %d)", threads);
  {
    struct t_entry e[] = {{'d', "d", NULL, 0700, NULL}, {'f', "d/f", "f\n", 0, NULL}, {'d', "d", NULL, 0751, NULL}};
    char *id = import("dir-twice", e, 3, threads, &err);
    ok(id != NULL, "%s: imported: %s", what, hcs_error_message(err));
    hcs_error_release(&err);
    content_is(id, "d/f", "f\n", what);
    char *p = diff_path(id, "d");
    struct stat st;
    ok(lstat(p, &st) == 0, "%s: stat", what);
    is_int((int)(st.st_mode & 07777), 0751, "%s: the later mode", what);
    is_int((long)st.st_mtime, 1700000002, "%s: the later mtime", what);
    free(p);
    drop(id);
  }
}

int main(void) {
  T = t_tmpdir();
  char buf[4096];
  root = strdup((snprintf(buf, sizeof buf, "%s/root", T), buf));
  snprintf(buf, sizeof buf, "%s/outside", T);
  mkdir(buf, 0755);
  hcs_error_t err = NULL;
  store = hcs_layer_store_open(root, &err);
  ok(store != NULL, "open store: %s", hcs_error_message(err));
  run(1);
  run(4);
  hcs_layer_store_close(store);
  is_int(t_rmroot(T), 0, "no mounts left");
  free(root);
  free(T);
  return tap_done();
}
