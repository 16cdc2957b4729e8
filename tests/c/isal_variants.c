/* ISA-L's deflate gives the same bytes whatever CPU code it runs (the
 * layer writer's gzip output depends on it, docs/layers.md).  ISA-L picks
 * its SSE4.2, AVX, AVX2 or AVX-512 code by CPUID through dispatcher
 * symbols that the library calls through its PLT; this test defines those
 * symbols itself, so the library's calls land here and go to the variant
 * set under test, and compares the output of every set this CPU can run
 * (x86-64 with SSE4.2 and up) at the levels the writer uses (1 and 2),
 * over generated text, records, runs, random bytes and this machine's own
 * binaries, cut in 1 MiB chunks as the writer does.  Level 3 is printed
 * for information: its AVX2 and AVX-512 match finders differ, which is why
 * the writer does not use it.  Linked with libisal directly (not through
 * libhcs's lazy loading) so the dispatcher symbols defined here are
 * exported to it. */
#include <dlfcn.h>
#include <stdbool.h>
#include <isa-l/igzip_lib.h>
#include <stdint.h>

#include "tap.h"

typedef uint64_t (*fn_t)(uint64_t, uint64_t, uint64_t, uint64_t);

/* The CPU classes of ISA-L's dispatch (include/multibinary.asm). */
enum { C_SSE42, C_AVX, C_AVX2, C_AVX512, NCLASS };
static const char *const class_name[NCLASS] = {"SSE4.2", "AVX", "AVX2", "AVX-512"};
static int cls = C_AVX512;
static unsigned long interposed;

static fn_t sym(const char *name) {
  fn_t f = (fn_t)dlsym(RTLD_DEFAULT, name);
  if (f == NULL) {
    printf("Bail out! libisal has no symbol %s\n", name);
    exit(1);
  }
  return f;
}

/* name: the dispatcher; v[class]: the variant ISA-L 2.30 dispatches to. */
#define DISPATCH(name, v0, v1, v2, v3)                                                                                 \
  uint64_t name(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {                                                      \
    static fn_t f[NCLASS];                                                                                             \
    static const char *const n[NCLASS] = {v0, v1, v2, v3};                                                             \
    if (f[cls] == NULL) f[cls] = sym(n[cls]);                                                                          \
    interposed++;                                                                                                      \
    return f[cls](a, b, c, d);                                                                                         \
  }
#define HH "isal_deflate_icf_body_hash_hist_"
DISPATCH(isal_deflate_icf_body_lvl1, HH "01", HH "02", HH "04", HH "04")
DISPATCH(isal_deflate_icf_body_lvl2, HH "01", HH "02", HH "04", HH "04")
DISPATCH(isal_deflate_icf_body_lvl3, "icf_body_hash1_fillgreedy_lazy", "icf_body_hash1_fillgreedy_lazy",
         "icf_body_lazyhash1_fillgreedy_greedy", "icf_body_lazyhash1_fillgreedy_greedy")
#define FH "isal_deflate_icf_finish_hash_hist_01"
DISPATCH(isal_deflate_icf_finish_lvl1, FH, FH, FH, FH)
DISPATCH(isal_deflate_icf_finish_lvl2, FH, FH, FH, FH)
DISPATCH(encode_deflate_icf, "encode_deflate_icf_base", "encode_deflate_icf_base", "encode_deflate_icf_04",
         "encode_deflate_icf_06")
DISPATCH(set_long_icf_fg, "set_long_icf_fg_base", "set_long_icf_fg_base", "set_long_icf_fg_04", "set_long_icf_fg_06")
DISPATCH(gen_icf_map_lh1, "gen_icf_map_h1_base", "gen_icf_map_h1_base", "gen_icf_map_lh1_04", "gen_icf_map_lh1_06")

static bool can_run(int c) {
#ifndef __x86_64__
  (void)c;
  return false; /* other architectures have their own code and dispatch */
#else
  __builtin_cpu_init();
  switch (c) {
  case C_SSE42: return __builtin_cpu_supports("sse4.2");
  case C_AVX: return __builtin_cpu_supports("avx");
  case C_AVX2: return __builtin_cpu_supports("avx2");
  default:
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512dq");
  }
#endif
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* About 14 MiB of inputs of different kinds, the same on every run. */
static unsigned char *make_input(size_t *len) {
  size_t cap = 24u << 20, n = 0;
  unsigned char *p = malloc(cap);
  static const char *const words[] = {
      "layer", "export ",     "the ",         "gzip\n",     "{\"key\": ", "0x7f ", "import",
      "; ",    "static int ", "return -1;\n", "#include <", "/usr/lib/",  "    ",  "\t\t"};
  while (n < (4u << 20)) { /* text */
    const char *w = words[next() % (sizeof words / sizeof *words)];
    size_t k = strlen(w);
    memcpy(p + n, w, k);
    n += k;
  }
  for (size_t i = 0; i < (1u << 19); i++) { /* 4 MiB of 8-byte records: small counters, flags */
    uint64_t r = (i & 0xffff) | (uint64_t)(next() % 7) << 32;
    memcpy(p + n, &r, 8);
    n += 8;
  }
  for (int i = 0; i < 64; i++) { /* runs and random bytes */
    size_t k = next() % 30000;
    if (i & 1)
      memset(p + n, (int)(next() & 0xff), k);
    else
      for (size_t j = 0; j < k; j++)
        p[n + j] = (unsigned char)next();
    n += k;
  }
  const char *files[] = {"/proc/self/exe", NULL};
  Dl_info info;
  if (dladdr((void *)sym("isal_deflate_stateless"), &info) && info.dli_fname) files[1] = info.dli_fname;
  for (int i = 0; i < 2 && files[i]; i++) { /* real binaries */
    FILE *f = fopen(files[i], "rb");
    if (f == NULL) continue;
    n += fread(p + n, 1, cap - n < (4u << 20) ? cap - n : (4u << 20), f);
    fclose(f);
  }
  *len = n;
  return p;
}

/* Deflate in 1 MiB chunks as the layer writer does; all the output. */
static unsigned char *deflate_all(int level, const unsigned char *in, size_t n, size_t *outlen) {
  static const uint32_t lb[] = {0, ISAL_DEF_LVL1_DEFAULT, ISAL_DEF_LVL2_DEFAULT, ISAL_DEF_LVL3_DEFAULT};
  unsigned char *buf = malloc(lb[level]);
  size_t cap = n + n / 8 + (1u << 20), out = 0;
  unsigned char *o = malloc(cap);
  struct isal_zstream *zs = malloc(sizeof *zs);
  for (size_t off = 0; off < n; off += 1u << 20) {
    size_t k = n - off < (1u << 20) ? n - off : (1u << 20);
    isal_deflate_stateless_init(zs);
    zs->level = (uint32_t)level;
    zs->level_buf = buf;
    zs->level_buf_size = lb[level];
    zs->gzip_flag = IGZIP_GZIP_NO_HDR;
    zs->end_of_stream = 1;
    zs->next_in = (uint8_t *)in + off;
    zs->avail_in = (uint32_t)k;
    zs->next_out = o + out;
    zs->avail_out = (uint32_t)(cap - out);
    if (isal_deflate_stateless(zs) != COMP_OK) {
      printf("Bail out! isal_deflate_stateless failed\n");
      exit(1);
    }
    out += zs->total_out;
  }
  free(zs);
  free(buf);
  *outlen = out;
  return o;
}

int main(void) {
  if (!can_run(C_SSE42)) {
    printf("1..0 # SKIP not x86-64 with SSE4.2 (docs/layers.md: where ISA-L's bytes can differ)\n");
    return 0;
  }
  size_t n;
  unsigned char *in = make_input(&n);
  printf("# %zu bytes of input\n", n);
  for (int level = 1; level <= 3; level++) {
    unsigned char *ref = NULL;
    size_t reflen = 0;
    for (int c = 0; c < NCLASS; c++) {
      if (!can_run(c)) {
        printf("# level %d: this CPU cannot run ISA-L's %s code\n", level, class_name[c]);
        continue;
      }
      cls = c;
      interposed = 0;
      size_t len;
      unsigned char *out = deflate_all(level, in, n, &len);
      bool same = ref == NULL || (len == reflen && memcmp(out, ref, len) == 0);
      if (level < 3) {
        ok(interposed > 0, "level %d, %s: the library called the variant chosen here", level, class_name[c]);
        ok(same, "level %d, %s code: %zu bytes, the same as the SSE4.2 code's", level, class_name[c], len);
      } else {
        printf("# level %d, %s code: %zu bytes, %s the SSE4.2 code's\n", level, class_name[c], len,
               same ? "the same as" : "different from");
      }
      if (ref == NULL) {
        ref = out;
        reflen = len;
      } else {
        free(out);
      }
    }
    free(ref);
  }
  free(in);
  return tap_done();
}
