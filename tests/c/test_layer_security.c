/* Hostile archives cannot write outside the layer: `..`, absolute names,
 * symlinks and hardlinks pointing out, symlink-then-file tricks.  Each is a
 * crafted archive; the import fails naming the entry (or, for a symlink
 * replaced by a file, succeeds without touching the outside), no layer
 * appears and nothing is left in the store. */
#include <dirent.h>

#include "hcs/layer.h"
#include "layer_util.h"
#include "tap.h"

static char *T, *outside, *root;
static hcs_layer_store_t *store;

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (de->d_name[0] != '.') n++;
  if (d) closedir(d);
  return n;
}

/* Import the entries; expect failure with a message containing `want`. */
static void refused(const char *what, const struct t_entry *e, size_t n, const char *want) {
  char tar[4096];
  snprintf(tar, sizeof tar, "%s/evil.tar", T);
  ok(t_write_tar(tar, e, n, NULL) == 0, "%s: crafted archive written", what);
  hcs_error_t err = NULL;
  char *id = hcs_layer_import_file(store, tar, NULL, &err);
  ok(id == NULL, "%s: import refused", what);
  has_substr(hcs_error_message(err), want, "%s: the error names the entry", what);
  free(id);
  hcs_error_release(&err);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s/layers/.tmp", root);
  is_int(count_entries(tmp), 0, "%s: no temporary directory left", what);
  snprintf(tmp, sizeof tmp, "%s/layers", root);
  is_int(count_entries(tmp), 0, "%s: no layer visible", what);
  is_int(count_entries(outside), 1, "%s: nothing written outside", what);
}

int main(void) {
  T = t_tmpdir();
  char buf[4096];
  outside = strdup((snprintf(buf, sizeof buf, "%s/outside", T), buf));
  root = strdup((snprintf(buf, sizeof buf, "%s/root", T), buf));
  mkdir(outside, 0755);
  snprintf(buf, sizeof buf, "%s/secret", outside);
  t_write_file(buf, "secret\n");
  hcs_error_t err = NULL;
  store = hcs_layer_store_open(root, &err);
  ok(store != NULL, "open store: %s", hcs_error_message(err));

  {
    struct t_entry e[] = {{'f', "ok", "fine", 0, NULL}, {'f', "../escape", "x", 0, NULL}};
    refused("dot-dot name", e, 2, "entry `../escape`");
  }
  {
    struct t_entry e[] = {{'f', "a/../../escape", "x", 0, NULL}};
    refused("dot-dot inside a name", e, 1, "entry `a/../../escape`");
  }
  {
    char abs[4096];
    snprintf(abs, sizeof abs, "%s/abs", outside);
    struct t_entry e[] = {{'f', abs, "x", 0, NULL}};
    char want[4200];
    snprintf(want, sizeof want, "entry `%s`", abs);
    refused("absolute name", e, 1, want);
  }
  {
    struct t_entry e[] = {{'l', "link", outside, 0, NULL}, {'f', "link/pwned", "x", 0, NULL}};
    refused("file through an absolute symlink", e, 2, "entry `link/pwned`");
  }
  {
    struct t_entry e[] = {{'d', "d", NULL, 0, NULL},
                          {'l', "d/up", "../../../../../../../../..", 0, NULL},
                          {'f', "d/up/tmp/pwned", "x", 0, NULL}};
    refused("file through a relative symlink climbing out", e, 3, "entry `d/up/tmp/pwned`");
  }
  {
    struct t_entry e[] = {{'h', "hl", "../../../../../../etc/passwd", 0, NULL}};
    refused("hardlink to a path outside", e, 1, "entry `hl`");
  }
  {
    char abs[4096];
    snprintf(abs, sizeof abs, "%s/secret", outside);
    struct t_entry e[] = {{'h', "hl", abs, 0, NULL}};
    refused("hardlink to an absolute path", e, 1, "entry `hl`");
  }
  {
    struct t_entry e[] = {{'l', "s", outside, 0, NULL}, {'h', "hl", "s/secret", 0, NULL}};
    refused("hardlink through a symlink pointing out", e, 2, "entry `hl`");
    snprintf(buf, sizeof buf, "%s/secret", outside);
    struct stat st;
    stat(buf, &st);
    is_int(st.st_nlink, 1, "the outside file got no new link");
  }
  {
    struct t_entry e[] = {{'l', "s", outside, 0, NULL}, {'f', "s/.wh..wh..opq", "", 0, NULL}};
    refused("opaque whiteout through a symlink", e, 2, "entry `s/.wh..wh..opq`");
  }
  {
    struct t_entry e[] = {{'l', "s", outside, 0, NULL}, {'f', "s/.wh.secret", "", 0, NULL}};
    refused("whiteout through a symlink", e, 2, "entry `s/.wh.secret`");
  }
  {
    struct t_entry e[] = {{'d', "d", NULL, 0, NULL}, {'f', "d/.wh..", "", 0, NULL}};
    refused("whiteout of `.`", e, 2, "entry `d/.wh..`");
  }

  /* A symlink replaced by a file of the same name: the file is written in
   * the layer, never through the symlink. */
  {
    char target[4096];
    snprintf(target, sizeof target, "%s/over", outside);
    struct t_entry e[] = {{'l', "x", target, 0, NULL}, {'f', "x", "inside\n", 0, NULL}};
    snprintf(buf, sizeof buf, "%s/swap.tar", T);
    t_write_tar(buf, e, 2, NULL);
    char *id = hcs_layer_import_file(store, buf, NULL, &err);
    ok(id != NULL, "symlink then file of the same name: imported: %s", hcs_error_message(err));
    is_int(access(target, F_OK), -1, "symlink then file: nothing created outside");
    snprintf(buf, sizeof buf, "%s/layers/%s/diff/x", root, id ? id : "?");
    struct stat st;
    ok(lstat(buf, &st) == 0 && S_ISREG(st.st_mode), "symlink then file: a regular file in the layer");
    if (id) ok(hcs_layer_destroy(store, id, false, &err) == 0, "destroy it");
    free(id);
  }
  /* archives may not smuggle overlay attributes */
  {
    struct t_entry e[] = {{'d', "d", NULL, 0, "trusted.overlay.opaque=y"}, {'f', "d/f", "x", 0, NULL}};
    snprintf(buf, sizeof buf, "%s/ovl.tar", T);
    t_write_tar(buf, e, 2, NULL);
    char *id = hcs_layer_import_file(store, buf, NULL, &err);
    ok(id != NULL, "archive with trusted.overlay xattr imported: %s", hcs_error_message(err));
    snprintf(buf, sizeof buf, "%s/layers/%s/diff/d", root, id ? id : "?");
    char v[8];
    ok(getxattr(buf, "trusted.overlay.opaque", v, sizeof v) < 0, "trusted.overlay.* from the archive is dropped");
    if (id) hcs_layer_destroy(store, id, false, &err);
    free(id);
  }
  hcs_layer_store_close(store);
  is_int(t_rmroot(T), 0, "no mounts left");
  return tap_done();
}
