/* libFuzzer harness: the docker-archive reader (manifest.json, the config
 * it names, the layers) through hcs_image_import on a directory as `docker
 * save` lays it out.  The input is three parts separated by "\n@@@\n" --
 * manifest.json, config, layer -- written as manifest.json,
 * <config digest>.json and layer.tar; in the manifest @C@ becomes the
 * config's file name, in the config and manifest @D@ the layer's diff id.
 * All in a private tmpfs, wiped after each run. */
#include "fuzz_util.h"
#include "hcs/image.h"
#include "image/internal.h"

static char root[4200], dir[4200];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fz_sandbox(false, 512);
  snprintf(root, sizeof root, "%s/root", fz_dir);
  snprintf(dir, sizeof dir, "%s/archive", fz_dir);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *p[3];
  size_t l[3];
  int n = fz_split(data, size, "\n@@@\n", p, l, 3);
  if (hcs_mkdir_p(dir, 0700, NULL) < 0) abort();
  char path[4400], D[72], C[72], cname[80];
  const char *layer = n > 2 ? p[2] : "";
  size_t llen = n > 2 ? l[2] : 0;
  hcs_image_sha256_buf(layer, llen, D);
  snprintf(path, sizeof path, "%s/layer.tar", dir);
  if (fz_write(path, layer, llen) < 0) abort();
  size_t clen, mlen, tmp;
  char *config = fz_subst(n > 1 ? p[1] : "", n > 1 ? l[1] : 0, "@D@", D, &clen);
  hcs_image_sha256_buf(config, clen, C);
  snprintf(cname, sizeof cname, "%s.json", C + 7);
  snprintf(path, sizeof path, "%s/%s", dir, cname);
  if (fz_write(path, config, clen) < 0) abort();
  char *m1 = fz_subst(p[0], l[0], "@C@", cname, &tmp);
  char *manifest = fz_subst(m1, tmp, "@D@", D, &mlen);
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  if (fz_write(path, manifest, mlen) < 0) abort();

  hcs_error_t err = NULL;
  hcs_image_store_t *s = hcs_image_store_open(root, &err);
  if (s == NULL) {
    fprintf(stderr, "open image store: %s\n", hcs_error_message(err));
    abort();
  }
  hcs_layer_store_set_limits(hcs_image_store_layers(s), 64u << 20, 32u << 20);
  char *out = hcs_image_import(s, dir, NULL, &err);
  fz_report(out, err);
  free(out);
  hcs_error_release(&err);
  hcs_image_store_close(s);
  free(config);
  free(m1);
  free(manifest);
  fz_parts_free(p, n);
  fz_wipe(fz_dir);
  return 0;
}
