/* sha256 digests in OCI form ("sha256:<hex>") over OpenSSL EVP, which uses
 * the CPU's SHA extensions where present. */
#include <openssl/evp.h>
#include <string.h>

#include "layer/internal.h"

EVP_MD_CTX *layer_sha256_new(void) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) abort();
  return ctx;
}

void layer_sha256_final(EVP_MD_CTX *ctx, char out[72]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, md, &n);
  static const char hex[] = "0123456789abcdef";
  memcpy(out, "sha256:", 7);
  for (unsigned int i = 0; i < n && i < 32; i++) {
    out[7 + 2 * i] = hex[md[i] >> 4];
    out[8 + 2 * i] = hex[md[i] & 15];
  }
  out[7 + 64] = '\0';
}
