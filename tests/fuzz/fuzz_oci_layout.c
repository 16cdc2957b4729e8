/* libFuzzer harness: the OCI image layout readers (oci-layout, index.json,
 * nested indexes, manifests, configs, then the layer import) through
 * hcs_image_import on a layout directory.  Digests would stop a fuzzer at
 * the first blob, so the input is four parts separated by "\n@@@\n" --
 * index.json, manifest, config, layer -- and the harness names each blob by
 * its real digest, replacing placeholders first: @L@/@LS@/@D@ (the layer's
 * digest, size and diff id) in the config and manifest, @C@/@CS@ (the
 * config's) in the manifest, @M@/@MS@ (the manifest's) in the index.  A
 * fifth part, if any, is written as oci-layout (else a valid one).  All in
 * a private tmpfs, wiped after each run. */
#include "fuzz_util.h"
#include "hcs/image.h"
#include "image/internal.h"

static char root[4200], layout[4200];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fz_sandbox(false, 512);
  snprintf(root, sizeof root, "%s/root", fz_dir);
  snprintf(layout, sizeof layout, "%s/layout", fz_dir);
  return 0;
}

/* Write a blob named by its digest; digest and size out. */
static void blob(const char *data, size_t n, char digest[72], char size[32]) {
  hcs_image_sha256_buf(data, n, digest);
  char path[4400];
  snprintf(path, sizeof path, "%s/blobs/sha256/%s", layout, digest + 7);
  if (fz_write(path, data, n) < 0) abort();
  snprintf(size, 32, "%zu", n);
}

static char *subst_all(const char *text, size_t n, const char *const *kv, size_t *len) {
  char *cur = malloc(n + 1);
  memcpy(cur, text, n);
  cur[n] = '\0';
  *len = n;
  for (; kv[0]; kv += 2) {
    char *next = fz_subst(cur, *len, kv[0], kv[1], len);
    free(cur);
    cur = next;
  }
  return cur;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *p[5];
  size_t l[5];
  int n = fz_split(data, size, "\n@@@\n", p, l, 5);
  char path[4400];
  snprintf(path, sizeof path, "%s/blobs/sha256", layout);
  if (hcs_mkdir_p(path, 0700, NULL) < 0) abort();
  const char *none = "";
  char L[72], LS[32], C[72], CS[32], M[72], MS[32];
  /* the layer, its diff id the digest of the bytes as given */
  blob(n > 3 ? p[3] : none, n > 3 ? l[3] : 0, L, LS);
  const char *kv_c[] = {"@LS@", LS, "@L@", L, "@D@", L, NULL};
  size_t len;
  char *config = subst_all(n > 2 ? p[2] : none, n > 2 ? l[2] : 0, kv_c, &len);
  blob(config, len, C, CS);
  const char *kv_m[] = {"@LS@", LS, "@L@", L, "@D@", L, "@CS@", CS, "@C@", C, NULL};
  char *manifest = subst_all(n > 1 ? p[1] : none, n > 1 ? l[1] : 0, kv_m, &len);
  blob(manifest, len, M, MS);
  const char *kv_i[] = {"@MS@", MS, "@M@", M, NULL};
  char *index = subst_all(p[0], l[0], kv_i, &len);
  snprintf(path, sizeof path, "%s/index.json", layout);
  if (fz_write(path, index, len) < 0) abort();
  snprintf(path, sizeof path, "%s/oci-layout", layout);
  const char *ol = n > 4 ? p[4] : "{\"imageLayoutVersion\":\"1.0.0\"}";
  if (fz_write(path, ol, strlen(ol)) < 0) abort();

  hcs_error_t err = NULL;
  hcs_image_store_t *s = hcs_image_store_open(root, &err);
  if (s == NULL) {
    fprintf(stderr, "open image store: %s\n", hcs_error_message(err));
    abort();
  }
  hcs_layer_store_set_limits(hcs_image_store_layers(s), 64u << 20, 32u << 20);
  hcs_image_import_opts_t o = {.name = (size & 1) ? "fuzz" : NULL};
  char *out = hcs_image_import(s, layout, &o, &err);
  fz_report(out, err);
  free(out);
  hcs_error_release(&err);
  hcs_image_store_close(s);
  free(config);
  free(manifest);
  free(index);
  fz_parts_free(p, n);
  fz_wipe(fz_dir);
  return 0;
}
