/* Capture by copy in one pass (hcs_layer_capture_scratch): changes made
 * through a real overlay mount (whiteouts, opaque directories, copy-ups
 * with overlay's private xattrs) and every kind of entry (small and large
 * files, sparse files, hardlinks, symlinks, fifos, devices, sockets, odd
 * modes, owners, xattrs) become a layer that re-exports to the DiffID it
 * recorded, byte for byte, and that equals, file for file and digest for
 * digest, what the former path (export piped into an import) makes of the
 * same scratch.  Also: the same id whatever the thread count, no temp dir
 * left, a layer that is not a scratch refused. */
#include <jansson.h>

#include "hcs/layer.h"
#include "layer_util.h"
#include "tap.h"

static char *T;

static char *path(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *p = NULL;
  if (vasprintf(&p, fmt, ap) < 0) abort();
  va_end(ap);
  return p;
}

static int sh(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *cmd = NULL;
  if (vasprintf(&cmd, fmt, ap) < 0) abort();
  va_end(ap);
  int r = system(cmd);
  if (r != 0) printf("# failed (%d): %s\n", r, cmd);
  free(cmd);
  return r;
}

static char *meta_field(hcs_layer_store_t *s, const char *id, const char *key) {
  char *doc = hcs_layer_inspect(s, id, NULL);
  json_t *j = doc ? json_loads(doc, 0, NULL) : NULL;
  const char *v = json_string_value(json_object_get(j, key));
  char *out = strdup(v ? v : "");
  json_decref(j);
  free(doc);
  return out;
}

/* Export (no compression) to a file; the diff id, or "" on failure. */
static char *export_diff_id(hcs_layer_store_t *s, const char *id, const char *out) {
  hcs_error_t err = NULL;
  hcs_layer_export_result_t r;
  if (hcs_layer_export_file(s, id, out, &(hcs_layer_export_opts_t){.compression = HCS_LAYER_COMPRESSION_NONE}, &r,
                            &err) < 0) {
    printf("# export `%s`: %s\n", id, hcs_error_message(err));
    hcs_error_release(&err);
    return strdup("");
  }
  return strdup(r.diff_id);
}

/* The manifest of a layer's diff directory. */
static char *layer_manifest(const char *store_path, const char *id) {
  if (id == NULL) return strdup("");
  char *d = path("%s/%s/diff", store_path, id);
  char *m = t_manifest(d);
  free(d);
  return m;
}

static int count_tmp(const char *store_path) {
  char *p = path("%s/.tmp", store_path);
  DIR *d = opendir(p);
  int n = 0;
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL)
    if (de->d_name[0] != '.') n++;
  if (d) closedir(d);
  free(p);
  return n;
}

int main(void) {
  T = t_tmpdir();
  hcs_error_t err = NULL;
  char *root = path("%s/root", T);
  hcs_layer_store_t *store = hcs_layer_store_open(root, &err);
  ok(store != NULL, "open store");
  const char *store_path = hcs_layer_store_path(store);

  /* the parent: a lower layer with content to hide, replace and copy up */
  struct t_entry lower[] = {
      {'d', "dir", NULL, 0, NULL},    {'f', "dir/old", "old", 0, NULL}, {'f', "gone", "gone", 0, NULL},
      {'f', "kept", "kept", 0, NULL}, {'d', "sub", NULL, 0, NULL},      {'f', "sub/x", "x", 0, NULL},
      {'f', "sub/up", "up", 0, NULL}, {'d', "etc", NULL, 0, NULL},      {'f', "etc/conf", "a=1\n", 0, NULL},
  };
  char *lt = path("%s/lower.tar", T);
  ok(t_write_tar(lt, lower, sizeof lower / sizeof *lower, NULL) == 0, "write the lower tar");
  char *base = hcs_layer_import_file(store, lt, &(hcs_layer_import_opts_t){.id = "base"}, &err);
  ok(base != NULL, "import the parent: %s", hcs_error_message(err));
  const char *par[] = {"base", NULL};
  ok(hcs_layer_create_scratch(store, "s", par, &err) == 0, "create the scratch: %s", hcs_error_message(err));
  ok(hcs_layer_activate(store, "s", NULL, &err) == 0, "activate it: %s", hcs_error_message(err));
  char *mp = hcs_layer_get_mount_path(store, "s", &err);
  ok(mp != NULL, "mount path");

  /* changes through the overlay, as a running system makes them */
  ok(sh("set -e; cd '%s'; rm gone sub/x; rm -rf dir; mkdir dir; echo new > dir/new; echo more >> sub/up;"
        "chmod 0640 etc/conf; mkdir -p app/a/b; printf 'hello\\n' > app/hello; chown 1000:1001 app/hello;"
        "head -c 3000000 /dev/urandom > app/big; head -c 700000 /dev/urandom > app/mid; : > app/empty;"
        "truncate -s 64M app/sparse; printf data | dd of=app/sparse bs=1 seek=33554432 conv=notrunc 2>/dev/null;"
        "ln app/hello app/a/hello.link; ln app/big app/b.link; ln -s ../etc/conf app/rel; ln -s /etc/passwd app/abs;"
        "mkfifo app/fifo; mknod app/null c 1 3; printf '#!/bin/sh\\n' > app/tool; chmod 4755 app/tool;"
        "chmod 1777 app/a; python3 -c \"import os; os.setxattr('app/hello', 'user.one', b'1');"
        "os.setxattr('app/a', 'user.dir', b'd')\";"
        "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.bind('app/sock')\";"
        "touch -h -d @1600000000 app/hello app/tool app/rel app/a/b app/null app/fifo",
        mp) == 0,
     "make changes through the mount");
  char *scratch_diff = path("%s/s/diff", store_path);
  struct stat st;
  char *p = path("%s/gone", scratch_diff);
  ok(lstat(p, &st) == 0 && S_ISCHR(st.st_mode), "the overlay made a whiteout in the scratch");
  free(p);

  /* 1. the one-pass capture, with the scratch still mounted */
  char *c1 = hcs_layer_capture_scratch(store, "s", 0, NULL, NULL, &err);
  ok(c1 != NULL, "capture the scratch: %s", hcs_error_message(err));
  char *recorded = c1 ? meta_field(store, c1, "DiffID") : strdup("");
  char *o1 = path("%s/new.tar", T);
  char *d1 = c1 ? export_diff_id(store, c1, o1) : strdup("");
  is_str(d1, recorded, "its export reproduces the recorded DiffID byte for byte");
  char *os_ = path("%s/scratch.tar", T);
  char *ds = export_diff_id(store, "s", os_);
  is_str(recorded, ds, "the DiffID is that of the scratch's canonical export");
  char *comp = c1 ? meta_field(store, c1, "Compression") : strdup("");
  is_str(comp, "none", "recorded as an uncompressed stream");
  free(comp);
  is_int(count_tmp(store_path), 0, "no temp dir left");
  char *m1 = layer_manifest(store_path, c1);
  p = path("%s/%s/diff/gone", store_path, c1 ? c1 : "x");
  ok(lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == 0, "a deletion is a whiteout in the new layer");
  free(p);
  p = path("%s/%s/diff/dir", store_path, c1 ? c1 : "x");
  char v[4] = "";
  ok(getxattr(p, "trusted.overlay.opaque", v, sizeof v) == 1 && v[0] == 'y', "a replaced directory is opaque");
  ok(listxattr(p, NULL, 0) == (ssize_t)sizeof "trusted.overlay.opaque", "and carries no other overlay xattr");
  free(p);
  p = path("%s/%s/diff/app/sparse", store_path, c1 ? c1 : "x");
  ok(stat(p, &st) == 0 && st.st_size == 64 << 20 && st.st_blocks * 512 < (1 << 20), "a sparse file keeps its holes");
  free(p);
  p = path("%s/%s/diff/app/sock", store_path, c1 ? c1 : "x");
  is_int(lstat(p, &st), -1, "sockets are not content");
  free(p);

  /* 2. the same id with one thread (no workers) */
  char *c1b = NULL;
  if (c1) {
    ok(hcs_layer_destroy(store, c1, false, &err) == 0, "destroy the captured layer: %s", hcs_error_message(err));
    c1b = hcs_layer_capture_scratch(store, "s", 1, NULL, NULL, &err);
    is_str(c1b ? c1b : "", c1, "captured again on one thread: the same layer id");
    char *m1b = layer_manifest(store_path, c1b);
    is_str(m1b, m1, "and the same files");
    free(m1b);
    if (c1b) hcs_layer_destroy(store, c1b, false, NULL);
  }

  /* 3. the former path: the canonical export imported on the parent */
  char *c2 = hcs_layer_import_file(store, os_, &(hcs_layer_import_opts_t){.parents = par}, &err);
  ok(c2 != NULL, "the former capture (export -> import): %s", hcs_error_message(err));
  is_str(c2 ? c2 : "", c1 ? c1 : "?", "both paths give the same layer id");
  char *m2 = layer_manifest(store_path, c2);
  is_str(m2, m1, "both paths give the same files (types, modes, owners, times, xattrs, contents, links)");
  char *o2 = path("%s/old.tar", T);
  char *d2 = c2 ? export_diff_id(store, c2, o2) : strdup("");
  is_str(d2, d1, "both layers export to the same bytes");

  /* 4. misuse */
  char *bad = hcs_layer_capture_scratch(store, "base", 0, NULL, NULL, &err);
  ok(bad == NULL && strstr(hcs_error_message(err), "`base` is not a scratch layer"), "a read-only layer is refused: %s",
     hcs_error_message(err));
  hcs_error_release(&err);
  bad = hcs_layer_capture_scratch(store, "nope", 0, NULL, NULL, &err);
  ok(bad == NULL && strstr(hcs_error_message(err), "layer `nope` not found"), "an unknown layer is refused: %s",
     hcs_error_message(err));
  hcs_error_release(&err);
  is_int(count_tmp(store_path), 0, "no temp dir left after the failures");

  ok(hcs_layer_deactivate(store, "s", &err) == 0, "deactivate");
  hcs_layer_store_close(store);
  free(bad);
  free(c1);
  free(c1b);
  free(c2);
  free(m1);
  free(m2);
  free(d1);
  free(d2);
  free(ds);
  free(recorded);
  free(o1);
  free(o2);
  free(os_);
  free(scratch_diff);
  free(mp);
  free(base);
  free(lt);
  free(root);
  is_int(t_rmroot(T), 0, "no mounts left");
  return tap_done();
}
