/* Sparse files through a layer, and the caps on what an import may expand
 * to.  Archives are written by GNU tar (--sparse, PAX), exports read back by
 * GNU tar and by libarchive: a 1 TiB file holding 6 bytes imports as a
 * sparse file, exports as a PAX sparse entry of a few KiB (it was exported
 * as a TiB of zeros) and extracts sparse again; files without large holes
 * stay plain entries.  An archive over the per-file or the total cap is
 * refused naming the entry, leaving nothing behind. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>

#include "hcs/layer.h"
#include "layer_util.h"
#include "tap.h"

#define TiB (1ull << 40)
#define GiB (1ull << 30)
#define MiB (1ull << 20)

static char *T, *root;
static hcs_layer_store_t *store;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int r = system(cmd);
  if (r != 0) fprintf(stderr, "# command failed (%d): %s\n", r, cmd);
  return r;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (de->d_name[0] != '.') n++;
  if (d) closedir(d);
  return n;
}

static off_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_size : -1;
}

/* bytes allocated on disk */
static long long allocated(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long long)st.st_blocks * 512 : -1;
}

static char *read_at(const char *path, off_t off, size_t n) {
  char *buf = calloc(1, n + 1);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (pread(fd, buf, n, off) < 0) buf[0] = '\0';
    close(fd);
  }
  return buf;
}

/* Sparse-entry count of each name in a tar, read by libarchive: "name=N;..." */
static char *sparse_counts(const char *tar) {
  struct archive *a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_filter_all(a);
  static char out[1024];
  out[0] = '\0';
  if (archive_read_open_filename(a, tar, 65536) == ARCHIVE_OK) {
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
      size_t k = strlen(out);
      snprintf(out + k, sizeof out - k, "%s=%d;", archive_entry_pathname(e), archive_entry_sparse_count(e));
    }
  }
  archive_read_free(a);
  return out;
}

static void nothing_left(const char *what) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s/layers/.tmp", root);
  is_int(count_entries(buf), 0, "%s: no temporary directory left", what);
  snprintf(buf, sizeof buf, "%s/layers", root);
  is_int(count_entries(buf), 0, "%s: no layer visible", what);
}

static void refused(const char *what, const char *tar, const hcs_layer_import_opts_t *o, const char *entry,
                    const char *limit) {
  hcs_error_t err = NULL;
  char *id = hcs_layer_import_file(store, tar, o, &err);
  ok(id == NULL, "%s: import refused", what);
  has_substr(hcs_error_message(err), entry, "%s: the error names the entry", what);
  has_substr(hcs_error_message(err), limit, "%s: the error names the limit", what);
  is_int(hcs_error_status(err), EFBIG, "%s: EFBIG", what);
  hcs_error_release(&err);
  free(id);
  nothing_left(what);
}

static void roundtrip(int threads) {
  hcs_error_t err = NULL;
  char buf[4096], what[64];
  snprintf(what, sizeof what, "threads %d", threads);
  hcs_layer_import_opts_t o = {.threads = threads};
  snprintf(buf, sizeof buf, "%s/layer.tar", T);
  char *id = hcs_layer_import_file(store, buf, &o, &err);
  ok(id != NULL, "%s: the sparse archive imports: %s", what, hcs_error_message(err));
  hcs_error_release(&err);
  if (id == NULL) return;
  snprintf(buf, sizeof buf, "%s/layers/%s/diff/big", root, id);
  is_int(file_size(buf), (long long)TiB, "%s: imported big has its apparent size", what);
  ok(allocated(buf) < (long long)MiB, "%s: imported big is sparse (%lld bytes allocated)", what, allocated(buf));
  char *s = read_at(buf, GiB, 6);
  is_str(s, "hello\n", "%s: imported big has its data at 1 GiB", what);
  free(s);

  /* export: a few KiB, not a TiB; the same tree gives the same bytes */
  char out[4096];
  snprintf(out, sizeof out, "%s/out-%d.tar", T, threads);
  hcs_layer_export_opts_t eo = {.compression = HCS_LAYER_COMPRESSION_NONE, .fixed_mtime = true, .mtime = 1700000000};
  hcs_layer_export_result_t r, r2;
  ok(hcs_layer_export_file(store, id, out, &eo, &r, &err) == 0, "%s: export: %s", what, hcs_error_message(err));
  hcs_error_release(&err);
  ok(r.uncompressed_size < 128 * 1024, "%s: the export is %llu bytes (a 1 TiB file in it)", what,
     (unsigned long long)r.uncompressed_size);
  ok(hcs_layer_export(store, id, open("/dev/null", O_WRONLY | O_CLOEXEC), &eo, &r2, &err) == 0, "%s: export again",
     what);
  is_str(r2.diff_id, r.diff_id, "%s: the same diff id twice", what);
  /* sparse entries for the files with large holes only */
  is_str(sparse_counts(out), "big=2;mid=1;plain=0;small-hole=0;", "%s: sparse maps for big and mid only", what);
  hcs_layer_export_opts_t gz = {.compression = HCS_LAYER_COMPRESSION_GZIP};
  snprintf(buf, sizeof buf, "%s/out-%d.tar.gz", T, threads);
  ok(hcs_layer_export_file(store, id, buf, &gz, &r2, &err) == 0, "%s: gzip export: %s", what, hcs_error_message(err));
  ok(r2.uncompressed_size < 128 * 1024, "%s: gzip export of %llu tar bytes", what,
     (unsigned long long)r2.uncompressed_size);

  /* GNU tar extracts it sparse, with the same content */
  snprintf(buf, sizeof buf, "%s/x-%d", T, threads);
  mkdir(buf, 0755);
  is_int(sh("tar -C %s -xf %s", buf, out), 0, "%s: GNU tar extracts the export", what);
  char p[4200];
  snprintf(p, sizeof p, "%s/big", buf);
  is_int(file_size(p), (long long)TiB, "%s: GNU tar: big has its size", what);
  ok(allocated(p) < (long long)MiB, "%s: GNU tar: big is sparse (%lld bytes allocated)", what, allocated(p));
  s = read_at(p, GiB, 6);
  is_str(s, "hello\n", "%s: GNU tar: big's data", what);
  free(s);
  is_int(sh("cmp %s/mid %s/src/mid && cmp %s/small-hole %s/src/small-hole && cmp %s/plain %s/src/plain", buf, T, buf, T,
            buf, T),
         0, "%s: GNU tar: the other files are identical", what);

  /* and the export imports again, sparse */
  char *id2 = hcs_layer_import_file(store, out, &(hcs_layer_import_opts_t){.id = "again", .threads = threads}, &err);
  ok(id2 != NULL, "%s: the export imports: %s", what, hcs_error_message(err));
  hcs_error_release(&err);
  snprintf(buf, sizeof buf, "%s/layers/again/diff/big", root);
  ok(allocated(buf) < (long long)MiB && file_size(buf) == (off_t)TiB, "%s: re-imported big is sparse", what);
  if (id2) hcs_layer_destroy(store, id2, false, &err);
  free(id2);
  hcs_layer_destroy(store, id, false, &err);
  free(id);
  hcs_error_release(&err);
}

int main(void) {
  T = t_tmpdir();
  char buf[4096];
  root = strdup((snprintf(buf, sizeof buf, "%s/root", T), buf));
  hcs_error_t err = NULL;
  store = hcs_layer_store_open(root, &err);
  ok(store != NULL, "open store: %s", hcs_error_message(err));

  /* big: 1 TiB, 6 bytes at 1 GiB; mid: a 3 MiB hole then data; small-hole:
   * a 64 KiB hole (exported plain); plain: no hole */
  is_int(sh("set -e; cd %s; mkdir src; cd src; truncate -s 1T big; printf 'hello\\n' | dd of=big bs=1 seek=%llu "
            "conv=notrunc status=none; truncate -s 3M mid; printf 'mid\\n' >> mid; truncate -s 64K small-hole;"
            " printf 'tail\\n' >> small-hole; printf 'plain\\n' > plain;"
            " tar --sparse --format=pax -cf ../layer.tar big mid plain small-hole",
            T, (unsigned long long)GiB),
         0, "GNU tar writes the sparse archive");
  snprintf(buf, sizeof buf, "%s/layer.tar", T);
  ok(file_size(buf) < 128 * 1024, "the archive is %lld bytes", (long long)file_size(buf));
  /* First a 64 MiB file of holes, exported to /dev/null: before sparse
   * exports this gave 64 MiB of zeros; the TiB below is only tried when
   * this passed, so a regression cannot fill the disk. */
  is_int(
      sh("set -e; cd %s; mkdir probe; truncate -s 64M probe/p; tar --sparse --format=pax -C probe -cf probe.tar p", T),
      0, "GNU tar writes a 64 MiB sparse file");
  snprintf(buf, sizeof buf, "%s/probe.tar", T);
  char *pid = hcs_layer_import_file(store, buf, NULL, &err);
  ok(pid != NULL, "the probe imports: %s", hcs_error_message(err));
  hcs_layer_export_result_t pr = {.uncompressed_size = UINT64_MAX};
  if (pid) {
    hcs_layer_export_opts_t eo = {.compression = HCS_LAYER_COMPRESSION_NONE};
    hcs_layer_export_file(store, pid, "/dev/null", &eo, &pr, &err);
    hcs_layer_destroy(store, pid, false, &err);
  }
  free(pid);
  hcs_error_release(&err);
  bool sparse_ok = pr.uncompressed_size < 64 * 1024;
  ok(sparse_ok, "a 64 MiB file of holes exports as %llu bytes", (unsigned long long)pr.uncompressed_size);
  if (sparse_ok) {
    roundtrip(1);
    roundtrip(4);
  } else {
    ok(0, "the 1 TiB round trips are skipped: the export is not sparse");
  }

  /* caps */
  snprintf(buf, sizeof buf, "%s/layer.tar", T);
  hcs_layer_import_opts_t o = {.max_file_size = 2 * MiB};
  refused("per-file cap", buf, &o, "entry `big`", "max_file_size");
  o = (hcs_layer_import_opts_t){.max_size = TiB + 2 * MiB, .threads = 4};
  refused("total cap", buf, &o, "entry `mid`", "max_size");
  hcs_layer_store_set_limits(store, 0, 2 * MiB);
  refused("per-file cap of the store", buf, NULL, "entry `big`", "max_file_size");
  o = (hcs_layer_import_opts_t){.max_file_size = UINT64_MAX};
  char *id = hcs_layer_import_file(store, buf, &o, &err);
  ok(id != NULL, "an import's own cap overrides the store's: %s", hcs_error_message(err));
  hcs_error_release(&err);
  if (id) hcs_layer_destroy(store, id, false, &err);
  free(id);
  hcs_layer_store_set_limits(store, 0, 0);

  /* the defaults: a 2 TiB file is over the 1 TiB per-file default */
  is_int(sh("set -e; cd %s; mkdir huge; truncate -s 2T huge/h; tar --sparse --format=pax -C huge -cf huge.tar h", T), 0,
         "GNU tar writes a 2 TiB sparse file");
  snprintf(buf, sizeof buf, "%s/huge.tar", T);
  refused("default per-file cap", buf, NULL, "entry `h`", "1.0 TiB per file");
  hcs_layer_store_set_limits(store, UINT64_MAX, UINT64_MAX);
  id = hcs_layer_import_file(store, buf, NULL, &err);
  ok(id != NULL, "no cap: the 2 TiB file imports: %s", hcs_error_message(err));
  hcs_error_release(&err);
  if (id) hcs_layer_destroy(store, id, false, &err);
  free(id);

  hcs_layer_store_close(store);
  is_int(t_rmroot(T), 0, "no mounts left");
  free(root);
  free(T);
  return tap_done();
}
