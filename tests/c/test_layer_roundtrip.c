/* Round trips and whiteouts: a tree with every kind of entry (dirs, files,
 * hardlinks, symlinks, xattrs, fifos, device nodes, odd modes and owners)
 * imported from a tar equals the source; export -> import gives identical
 * trees and digests for none/gzip/zstd; exports are reproducible; OCI
 * whiteouts become overlay whiteouts and hide lower content through a real
 * overlay mount, and export back to OCI form. */
#include <jansson.h>

#include "hcs/layer.h"
#include "layer_util.h"
#include "tap.h"

#define HCS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static char *T;
static hcs_layer_store_t *store;

static char *path(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *p = NULL;
  if (vasprintf(&p, fmt, ap) < 0) abort();
  va_end(ap);
  return p;
}

static char *diff_of(const char *id) { return path("%s/root/layers/%s/diff", T, id); }

static char *file_sha(const char *p) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "sha256sum '%s'", p);
  FILE *f = popen(cmd, "r");
  char *out = calloc(1, 80);
  if (f && fscanf(f, "%64s", out) != 1) out[0] = '\0';
  if (f) pclose(f);
  return out;
}

/* Names in an archive (any compression), in order, one per line. */
static char *tar_names(const char *p) {
  struct archive *a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_filter_all(a);
  struct t_buf b = {0};
  t_printf(&b, "");
  if (archive_read_open_filename(a, p, 65536) == ARCHIVE_OK) {
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK)
      t_printf(&b, "%s\n", archive_entry_pathname(e));
  }
  archive_read_free(a);
  return b.s;
}

static void make_source(const char *src) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd,
           "set -e; cd '%s'; mkdir -p bin etc/deep/er empty usr/lib; printf 'hello\\n' > etc/hello;"
           "head -c 3000000 /dev/urandom > usr/lib/big; : > etc/empty; printf '#!/bin/sh\\n' > bin/tool;"
           "chmod 4755 bin/tool; chmod 0600 etc/hello; chown 1000:1001 etc/hello; chmod 1777 empty;"
           "ln etc/hello etc/hello.link; ln etc/hello etc/deep/er/hello.link2; ln -s ../etc/hello bin/rel;"
           "ln -s /etc/passwd bin/abs; mkfifo etc/fifo; mknod etc/null c 1 3; mknod etc/blk b 7 0;"
           "printf 'x' > 'etc/name with spaces'; printf 'long' > usr/lib/%0200d;"
           "setfattr -n user.one -v 1 etc/hello 2>/dev/null || python3 -c \"import os; os.setxattr('etc/hello', "
           "'user.one', b'1'); os.setxattr('etc/deep', 'user.dir', b'd')\";"
           "touch -d @1600000000 etc/hello bin/tool usr/lib/big",
           src, 7);
  if (system(cmd) != 0) printf("# make_source failed\n");
}

int main(void) {
  T = t_tmpdir();
  hcs_error_t err = NULL;
  char *root = path("%s/root", T);
  store = hcs_layer_store_open(root, &err);
  ok(store != NULL, "open store");

  /* 1. a tar made by GNU tar imports exactly */
  char *src = path("%s/src", T);
  mkdir(src, 0755);
  make_source(src);
  char *tar = path("%s/src.tar", T);
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "tar --xattrs --xattrs-include='*' -C '%s' -cf '%s' .", src, tar);
  ok(system(cmd) == 0, "tar the source tree");
  char *a = hcs_layer_import_file(store, tar, &(hcs_layer_import_opts_t){.id = "a"}, &err);
  ok(a != NULL, "import GNU tar: %s", hcs_error_message(err));
  char *msrc = t_manifest(src), *da = diff_of("a"), *ma = t_manifest(da);
  is_str(ma, msrc, "imported tree equals the source (types, modes, owners, times, xattrs, links, content)");

  /* 2. export none/gzip/zstd -> import: same tree, digests match */
  const hcs_layer_compression_t comps[] = {HCS_LAYER_COMPRESSION_NONE, HCS_LAYER_COMPRESSION_GZIP,
                                           HCS_LAYER_COMPRESSION_ZSTD};
  char first_diff_id[72] = "";
  for (size_t i = 0; i < 3; i++) {
    const char *cn = hcs_layer_compression_name(comps[i]);
    char *out = path("%s/a.%s", T, cn);
    hcs_layer_export_result_t r;
    ok(hcs_layer_export_file(store, "a", out, &(hcs_layer_export_opts_t){.compression = comps[i]}, &r, &err) == 0,
       "export %s: %s", cn, hcs_error_message(err));
    char *sha = file_sha(out);
    ok(strcmp(r.digest + 7, sha) == 0, "export %s: digest is the sha256 of the file", cn);
    free(sha);
    if (i == 0) snprintf(first_diff_id, sizeof first_diff_id, "%s", r.diff_id);
    is_str(r.diff_id, first_diff_id, "export %s: same diff id whatever the compression", cn);
    char *id = path("a-%s", cn);
    char *got = hcs_layer_import_file(store, out, &(hcs_layer_import_opts_t){.id = id}, &err);
    ok(got != NULL, "re-import %s: %s", cn, hcs_error_message(err));
    char *d = diff_of(id), *md = t_manifest(d);
    is_str(md, msrc, "re-imported %s tree equals the source", cn);
    /* and it exports to the same bytes again */
    char *out2 = path("%s/a2.%s", T, cn);
    hcs_layer_export_result_t r2;
    hcs_layer_export_file(store, id, out2, &(hcs_layer_export_opts_t){.compression = comps[i]}, &r2, &err);
    is_str(r2.digest, r.digest, "export of the re-imported %s layer: identical bytes", cn);
    free(out);
    free(out2);
    free(id);
    free(got);
    free(d);
    free(md);
  }
  /* the import records the digests the export computed */
  {
    char *s = hcs_layer_inspect(store, "a-gzip", &err);
    json_t *j = json_loads(s, 0, NULL);
    char *out = path("%s/a.gzip", T);
    char *sha = file_sha(out);
    ok(strcmp(json_string_value(json_object_get(j, "Digest")) + 7, sha) == 0, "import records the blob digest");
    is_str(json_string_value(json_object_get(j, "DiffID")), first_diff_id, "import records the diff id");
    is_str(json_string_value(json_object_get(j, "Compression")), "gzip", "import detected gzip");
    json_decref(j);
    free(s);
    free(sha);
    free(out);
  }

  /* output does not depend on the number of compression threads */
  for (size_t i = 1; i < 3; i++) {
    const char *cn = hcs_layer_compression_name(comps[i]);
    char *o1 = path("%s/t1.%s", T, cn), *o3 = path("%s/t3.%s", T, cn);
    hcs_layer_export_result_t r1, r3;
    hcs_layer_export_file(store, "a", o1, &(hcs_layer_export_opts_t){.compression = comps[i], .threads = 1}, &r1, &err);
    hcs_layer_export_file(store, "a", o3, &(hcs_layer_export_opts_t){.compression = comps[i], .threads = 3}, &r3, &err);
    is_str(r1.digest, r3.digest, "%s: 1 and 3 threads give the same bytes", cn);
    free(o1);
    free(o3);
  }
  /* import with and without file-writing threads gives the same tree */
  {
    char *got = hcs_layer_import_file(store, tar, &(hcs_layer_import_opts_t){.id = "seq", .threads = 1}, &err);
    char *d = diff_of("seq"), *md = t_manifest(d);
    is_str(md, msrc, "sequential import (threads = 1) equals the source");
    free(got);
    free(d);
    free(md);
  }

  /* 3. reproducible: fixed mtime gives the same bytes for trees with different times */
  {
    hcs_layer_export_opts_t o = {.compression = HCS_LAYER_COMPRESSION_GZIP, .fixed_mtime = true, .mtime = 1234};
    char *o1 = path("%s/fixed1.tgz", T), *o2 = path("%s/fixed2.tgz", T);
    hcs_layer_export_result_t r1, r2;
    hcs_layer_export_file(store, "a", o1, &o, &r1, &err);
    snprintf(cmd, sizeof cmd, "touch -d @1000 %s/root/layers/a-none/diff/etc/hello", T);
    ok(system(cmd) == 0, "change a time in the copy");
    hcs_layer_export_file(store, "a-none", o2, &o, &r2, &err);
    is_str(r1.digest, r2.digest, "fixed mtime: identical exports");
    char *got = hcs_layer_import_file(store, o1, &(hcs_layer_import_opts_t){.id = "fixed"}, &err);
    char *p = path("%s/root/layers/fixed/diff/etc/hello", T);
    struct stat st;
    ok(got && stat(p, &st) == 0 && st.st_mtime == 1234, "fixed mtime applied to entries");
    free(p);
    free(got);
    free(o1);
    free(o2);
  }

  /* 4. whiteouts: OCI -> overlay -> through a mount -> OCI */
  {
    struct t_entry lower[] = {{'d', "dir", NULL, 0, NULL},        {'f', "dir/old", "old", 0, NULL},
                              {'f', "dir/old2", "old2", 0, NULL}, {'f', "gone", "gone", 0, NULL},
                              {'f', "kept", "kept", 0, NULL},     {'d', "sub", NULL, 0, NULL},
                              {'f', "sub/x", "x", 0, NULL}};
    struct t_entry upper[] = {{'d', "dir", NULL, 0, NULL},      {'f', "dir/.wh..wh..opq", "", 0, NULL},
                              {'f', "dir/new", "new", 0, NULL}, {'f', ".wh.gone", "", 0, NULL},
                              {'d', "sub", NULL, 0, NULL},      {'f', "sub/.wh.x", "", 0, NULL}};
    char *lt = path("%s/lower.tar", T), *ut = path("%s/upper.tar.zst", T);
    t_write_tar(lt, lower, HCS_ARRAY_SIZE(lower), NULL);
    t_write_tar(ut, upper, HCS_ARRAY_SIZE(upper), "zstd");
    char *lo = hcs_layer_import_file(store, lt, &(hcs_layer_import_opts_t){.id = "lower"}, &err);
    const char *par[] = {"lower", NULL};
    char *up = hcs_layer_import_file(store, ut, &(hcs_layer_import_opts_t){.id = "upper", .parents = par}, &err);
    ok(lo && up, "import lower and upper (zstd) with whiteouts: %s", hcs_error_message(err));
    char *p = path("%s/root/layers/upper/diff/gone", T);
    struct stat st;
    ok(lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == 0, ".wh.gone became a 0/0 character device");
    free(p);
    p = path("%s/root/layers/upper/diff/dir", T);
    char v[4] = "";
    ok(getxattr(p, "trusted.overlay.opaque", v, sizeof v) == 1 && v[0] == 'y', ".wh..wh..opq became opaque=y");
    free(p);
    p = path("%s/root/layers/upper/diff/dir/.wh..wh..opq", T);
    is_int(access(p, F_OK), -1, "no .wh. file left in the layer");
    free(p);

    const char *spar[] = {"upper", NULL};
    ok(hcs_layer_create_scratch(store, "wh", spar, &err) == 0, "scratch over the whiteouts");
    ok(hcs_layer_activate(store, "wh", NULL, &err) == 0, "activate: %s", hcs_error_message(err));
    char *mp = hcs_layer_get_mount_path(store, "wh", &err);
    char *q = path("%s/gone", mp);
    is_int(access(q, F_OK), -1, "a whited-out file is hidden");
    free(q);
    q = path("%s/kept", mp);
    is_int(access(q, F_OK), 0, "other lower files stay visible");
    free(q);
    q = path("%s/dir/old", mp);
    is_int(access(q, F_OK), -1, "an opaque dir hides the lower content");
    free(q);
    q = path("%s/dir/new", mp);
    is_int(access(q, F_OK), 0, "an opaque dir shows its own content");
    free(q);
    q = path("%s/sub/x", mp);
    is_int(access(q, F_OK), -1, "whiteout in a subdirectory hides the file");
    free(q);
    /* delete through the mount: the scratch gets an overlay whiteout, exported as OCI */
    q = path("%s/kept", mp);
    ok(unlink(q) == 0, "delete a lower file through the mount");
    free(q);
    char *so = path("%s/scratch.tar", T);
    hcs_layer_export_result_t r;
    ok(hcs_layer_export_file(store, "wh", so, NULL, &r, &err) == 0, "export the scratch layer");
    char *names = tar_names(so);
    has_substr(names, ".wh.kept\n", "the deletion is exported as .wh.kept");
    free(names);
    char *uo = path("%s/upper-out.tar", T);
    ok(hcs_layer_export_file(store, "upper", uo, NULL, &r, &err) == 0, "export the upper layer");
    names = tar_names(uo);
    has_substr(names, "dir/\ndir/.wh..wh..opq\n", "opaque marker right after its directory");
    has_substr(names, ".wh.gone\n", "whiteout exported");
    has_substr(names, "sub/.wh.x\n", "nested whiteout exported");
    free(names);
    ok(hcs_layer_deactivate(store, "wh", &err) == 0, "deactivate");
    free(mp);
    free(so);
    free(uo);
    free(lo);
    free(up);
    free(lt);
    free(ut);
  }

  hcs_layer_store_close(store);
  free(msrc);
  free(ma);
  free(da);
  free(a);
  free(src);
  free(tar);
  free(root);
  is_int(t_rmroot(T), 0, "no mounts left");
  return tap_done();
}
