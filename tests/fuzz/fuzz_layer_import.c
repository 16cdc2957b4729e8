/* libFuzzer harness: the layer tar importer (hcs_layer_import) on hostile
 * archives -- plain tar, gzip or zstd, as the content says.  Each input is
 * imported into a store on a private tmpfs (fuzz_util.h); a layer that
 * imports is exported again (the export path reads what the import wrote:
 * whiteouts, xattrs, sparse files, links) and destroyed, and the store's
 * directory is wiped, so every run starts from the same empty store.
 * The caps keep an archive from filling the tmpfs. */
#include <sys/mman.h>

#include "fuzz_util.h"
#include "hcs/layer.h"

static char root[4200];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fz_sandbox(false, 512);
  snprintf(root, sizeof root, "%s/root", fz_dir);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fd = memfd_create("layer", MFD_CLOEXEC);
  if (fd < 0 || fz_write_fd(fd, data, size) < 0 || lseek(fd, 0, SEEK_SET) < 0) abort();
  hcs_error_t err = NULL;
  hcs_layer_store_t *s = hcs_layer_store_open(root, &err);
  if (s == NULL) {
    fprintf(stderr, "open store: %s\n", hcs_error_message(err));
    abort();
  }
  hcs_layer_store_set_limits(s, 64u << 20, 32u << 20);
  hcs_layer_import_opts_t o = {.threads = (size & 1) ? 1 : 2}; /* the sequential and the pooled path */
  char *id = hcs_layer_import(s, fd, &o, &err);
  fz_report(id, err);
  hcs_error_release(&err);
  if (id) {
    int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    hcs_layer_export_opts_t eo = {.compression = HCS_LAYER_COMPRESSION_NONE, .threads = 1};
    hcs_layer_export(s, id, out, &eo, NULL, &err);
    hcs_error_release(&err);
    close(out);
    if (hcs_layer_destroy(s, id, true, &err) < 0) {
      fprintf(stderr, "destroy `%s`: %s\n", id, hcs_error_message(err));
      abort();
    }
    free(id);
  }
  hcs_layer_store_close(s);
  close(fd);
  fz_wipe(fz_dir);
  return 0;
}
