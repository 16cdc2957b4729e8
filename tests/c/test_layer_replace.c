/* Later entries replace earlier ones (tar semantics: the last entry of a
 * name wins): a directory replaced by a file, a file by a directory, a
 * directory by a symlink.  The importer caches the fd of the parent
 * directory it resolved last; replacing must neither close an fd in use
 * (it failed with EBADF) nor let a later entry reach through a stale fd or
 * through the new symlink out of the layer.  An entry whose path the
 * import never made skips the look for something to replace: the cases
 * where a path exists without an entry of its own (parents made on the
 * way, a parent reached through a symlink) must still replace.  A new
 * entry skips its chown when it comes out with the right owner anyway:
 * not in a set-gid directory of another group.  Every case runs with the
 * worker pool (threads = 4) and without it (threads = 1). */
#include <errno.h>

#include "hcs/layer.h"
#include "layer_util.h"
#include "tap.h"

static char *T, *root;
static hcs_layer_store_t *store;

static char *import_owned(const char *what, const struct t_entry *e, size_t n, const unsigned *owners, int threads,
                          hcs_error_t *err) {
  char tar[4096];
  snprintf(tar, sizeof tar, "%s/%s.tar", T, what);
  if (t_write_tar_owned(tar, e, n, NULL, owners) != 0) return NULL;
  hcs_layer_import_opts_t o = {.threads = threads};
  return hcs_layer_import_file(store, tar, &o, err);
}

static char *import(const char *what, const struct t_entry *e, size_t n, int threads, hcs_error_t *err) {
  return import_owned(what, e, n, NULL, threads, err);
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

static void owner_is(const char *id, const char *rel, unsigned uid, unsigned gid, const char *what) {
  char *p = diff_path(id, rel);
  struct stat st;
  int r = lstat(p, &st);
  ok(r == 0 && st.st_uid == uid && st.st_gid == gid, "%s: `%s` is owned by %u:%u (got %d:%d)", what, rel, uid, gid,
     r == 0 ? (int)st.st_uid : -1, r == 0 ? (int)st.st_gid : -1);
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
  /* directories made on the way (no entries of their own) replaced by a
   * file, and a file listed twice */
  snprintf(what, sizeof what, "implicit dir -> file (threads %d)", threads);
  {
    struct t_entry e[] = {{'f', "x/y/f", "deep\n", 0, NULL},
                          {'f', "x/y", "y is a file\n", 0, NULL},
                          {'f', "dup", "one\n", 0, NULL},
                          {'f', "dup", "two\n", 0, NULL},
                          {'f', "x", "x is a file\n", 0, NULL}};
    char *id = import("implicit", e, 5, threads, &err);
    ok(id != NULL, "%s: imported: %s", what, hcs_error_message(err));
    hcs_error_release(&err);
    content_is(id, "x", "x is a file\n", what);
    content_is(id, "dup", "two\n", what);
    drop(id);
  }
  /* a file reached again through a symlinked parent: the same file by
   * another name, which the import never made under that name */
  snprintf(what, sizeof what, "file again through a symlink (threads %d)", threads);
  {
    struct t_entry e[] = {{'d', "real", NULL, 0, NULL},      {'l', "link", "real", 0, NULL},
                          {'f', "real/f", "one\n", 0, NULL}, {'f', "link/f", "two\n", 0, NULL},
                          {'d', "real/d", NULL, 0, NULL},    {'f', "link/d", "d is a file\n", 0, NULL},
                          {'f', "real/g", "g\n", 0, NULL}};
    char *id = import("alias", e, 7, threads, &err);
    ok(id != NULL, "%s: imported: %s", what, hcs_error_message(err));
    hcs_error_release(&err);
    content_is(id, "real/f", "two\n", what);
    content_is(id, "real/d", "d is a file\n", what);
    content_is(id, "real/g", "g\n", what);
    lstat_is(id, "link", S_IFLNK, what);
    drop(id);
  }
  /* owners: entries owned by us skip their chown unless the directory is
   * set-gid to another group (the kernel would give them its group) */
  snprintf(what, sizeof what, "owners (threads %d)", threads);
  {
    struct t_entry e[] = {
        {'f', "top", "t\n", 0, NULL},    {'d', "g", NULL, 02775, NULL},    {'f', "g/root", "r\n", 0, NULL},
        {'f', "g/user", "u\n", 0, NULL}, {'d', "g/sub", NULL, 0, NULL},    {'l', "g/ln", "root", 0, NULL},
        {'p', "g/fifo", NULL, 0, NULL},  {'f', "g/sub/f", "f\n", 0, NULL}, {'d', ".", NULL, 02755, NULL},
        {'f', "late", "l\n", 0, NULL},   {'d', "mine", NULL, 0, NULL}};
    /* uid, gid of each entry */
    unsigned own[] = {0, 0, 0, 1234, 0, 0, 1000, 1001, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1234, 0, 0, 0, 0};
    char *id = import_owned("owners", e, 11, own, threads, &err);
    ok(id != NULL, "%s: imported: %s", what, hcs_error_message(err));
    hcs_error_release(&err);
    owner_is(id, "top", 0, 0, what);
    owner_is(id, "g", 0, 1234, what);
    owner_is(id, "g/root", 0, 0, what);
    owner_is(id, "g/user", 1000, 1001, what);
    owner_is(id, "g/sub", 0, 0, what);
    owner_is(id, "g/ln", 0, 0, what);
    owner_is(id, "g/fifo", 0, 0, what);
    owner_is(id, "g/sub/f", 0, 0, what);
    owner_is(id, "", 0, 1234, what);
    owner_is(id, "late", 0, 0, what);
    owner_is(id, "mine", 0, 0, what);
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
