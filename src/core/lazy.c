/* Heavy libraries loaded on first use.
 *
 * libarchive (which drags in libxml2 and ICU), libnftables and libcrypto
 * cost about 6 ms of dynamic loading and relocation in every process that
 * links them -- more than the rest of an `hcs exec`.  libhcs therefore does
 * not link them: each function it uses is a small hidden stub here that
 * dlopen()s the library the first time it is called and jumps to the real
 * function.  The prototypes come from the libraries' own headers, so the
 * compiler checks every stub against the real signature.  (systemd loads
 * its optional libraries the same way.)  A library that cannot be loaded is
 * a broken installation: the process aborts with a message saying which. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <archive.h>
#include <archive_entry.h>
#include <nftables/libnftables.h>
#include <openssl/evp.h>

#include "core/util.h"

enum { LIB_ARCHIVE, LIB_NFTABLES, LIB_CRYPTO, LIB_COUNT };

static const char *const sonames[LIB_COUNT] = {HCS_SONAME_ARCHIVE, HCS_SONAME_NFTABLES, HCS_SONAME_CRYPTO};
static void *handles[LIB_COUNT];

static void *lazy_sym(int lib, const char *name) {
  void *h = __atomic_load_n(&handles[lib], __ATOMIC_ACQUIRE);
  if (h == NULL) {
    /* Concurrent first calls may both dlopen: the loader refcounts, and the
     * handle is the same either way. */
    h = dlopen(sonames[lib], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
      fprintf(stderr, "libhcs: cannot load %s: %s\n", sonames[lib], dlerror());
      abort();
    }
    __atomic_store_n(&handles[lib], h, __ATOMIC_RELEASE);
  }
  void *fn = dlsym(h, name);
  if (fn == NULL) {
    fprintf(stderr, "libhcs: %s has no symbol %s\n", sonames[lib], name);
    abort();
  }
  return fn;
}

/* STUB(lib, return type, name, (parameters), (arguments)) */
#define STUB(lib, ret, name, params, args)                                                                             \
  ret name params {                                                                                                    \
    static __typeof__(&name) fn;                                                                                       \
    __typeof__(&name) real_ = __atomic_load_n(&fn, __ATOMIC_RELAXED);                                                  \
    if (__builtin_expect(real_ == NULL, 0)) {                                                                          \
      real_ = (__typeof__(&name))lazy_sym(lib, #name);                                                                 \
      __atomic_store_n(&fn, real_, __ATOMIC_RELAXED);                                                                  \
    }                                                                                                                  \
    return real_ args;                                                                                                 \
  }
#define STUB_VOID(lib, name, params, args)                                                                             \
  void name params {                                                                                                   \
    static __typeof__(&name) fn;                                                                                       \
    __typeof__(&name) real_ = __atomic_load_n(&fn, __ATOMIC_RELAXED);                                                  \
    if (__builtin_expect(real_ == NULL, 0)) {                                                                          \
      real_ = (__typeof__(&name))lazy_sym(lib, #name);                                                                 \
      __atomic_store_n(&fn, real_, __ATOMIC_RELAXED);                                                                  \
    }                                                                                                                  \
    real_ args;                                                                                                        \
  }

#define A LIB_ARCHIVE
typedef struct archive_entry entry_t;

/* archive_entry.h */
STUB(A, time_t, archive_entry_atime, (entry_t * e), (e))
STUB(A, int, archive_entry_atime_is_set, (entry_t * e), (e))
STUB(A, long, archive_entry_atime_nsec, (entry_t * e), (e))
STUB(A, __LA_MODE_T, archive_entry_filetype, (entry_t * e), (e))
STUB_VOID(A, archive_entry_free, (entry_t * e), (e))
STUB(A, la_int64_t, archive_entry_gid, (entry_t * e), (e))
STUB(A, const char *, archive_entry_hardlink, (entry_t * e), (e))
STUB(A, time_t, archive_entry_mtime, (entry_t * e), (e))
STUB(A, long, archive_entry_mtime_nsec, (entry_t * e), (e))
STUB(A, entry_t *, archive_entry_new, (void), ())
STUB(A, const char *, archive_entry_pathname, (entry_t * e), (e))
STUB(A, __LA_MODE_T, archive_entry_perm, (entry_t * e), (e))
STUB(A, dev_t, archive_entry_rdev, (entry_t * e), (e))
STUB_VOID(A, archive_entry_set_filetype, (entry_t * e, unsigned int t), (e, t))
STUB_VOID(A, archive_entry_set_gid, (entry_t * e, la_int64_t g), (e, g))
STUB_VOID(A, archive_entry_set_hardlink, (entry_t * e, const char *s), (e, s))
STUB_VOID(A, archive_entry_set_mtime, (entry_t * e, time_t t, long ns), (e, t, ns))
STUB_VOID(A, archive_entry_set_pathname, (entry_t * e, const char *s), (e, s))
STUB_VOID(A, archive_entry_set_perm, (entry_t * e, __LA_MODE_T m), (e, m))
STUB_VOID(A, archive_entry_set_rdev, (entry_t * e, dev_t d), (e, d))
STUB_VOID(A, archive_entry_set_size, (entry_t * e, la_int64_t s), (e, s))
STUB_VOID(A, archive_entry_set_symlink, (entry_t * e, const char *s), (e, s))
STUB_VOID(A, archive_entry_set_uid, (entry_t * e, la_int64_t u), (e, u))
STUB(A, la_int64_t, archive_entry_size, (entry_t * e), (e))
STUB(A, int, archive_entry_size_is_set, (entry_t * e), (e))
STUB(A, const char *, archive_entry_symlink, (entry_t * e), (e))
STUB(A, la_int64_t, archive_entry_uid, (entry_t * e), (e))
STUB_VOID(A, archive_entry_xattr_add_entry, (entry_t * e, const char *n, const void *v, size_t s), (e, n, v, s))
STUB(A, int, archive_entry_xattr_count, (entry_t * e), (e))
STUB(A, int, archive_entry_xattr_next, (entry_t * e, const char **n, const void **v, size_t *s), (e, n, v, s))
STUB(A, int, archive_entry_xattr_reset, (entry_t * e), (e))

/* archive.h */
STUB(A, int, archive_errno, (struct archive * a), (a))
STUB(A, const char *, archive_error_string, (struct archive * a), (a))
STUB(A, la_ssize_t, archive_read_data, (struct archive * a, void *b, size_t n), (a, b, n))
STUB(A, int, archive_read_data_block, (struct archive * a, const void **b, size_t *n, la_int64_t *o), (a, b, n, o))
STUB(A, int, archive_read_free, (struct archive * a), (a))
STUB(A, struct archive *, archive_read_new, (void), ())
STUB(A, int, archive_read_next_header, (struct archive * a, entry_t **e), (a, e))
STUB(A, int, archive_read_open,
     (struct archive * a, void *d, archive_open_callback *o, archive_read_callback *r, archive_close_callback *c),
     (a, d, o, r, c))
STUB(A, int, archive_read_open_filename, (struct archive * a, const char *f, size_t b), (a, f, b))
STUB(A, int, archive_read_support_filter_all, (struct archive * a), (a))
STUB(A, int, archive_read_support_format_tar, (struct archive * a), (a))
STUB(A, int, archive_write_close, (struct archive * a), (a))
STUB(A, la_ssize_t, archive_write_data, (struct archive * a, const void *b, size_t n), (a, b, n))
STUB(A, la_ssize_t, archive_write_data_block, (struct archive * a, const void *b, size_t n, la_int64_t o), (a, b, n, o))
STUB(A, struct archive *, archive_write_disk_new, (void), ())
STUB(A, int, archive_write_disk_set_options, (struct archive * a, int f), (a, f))
STUB(A, int, archive_write_finish_entry, (struct archive * a), (a))
STUB(A, int, archive_write_free, (struct archive * a), (a))
STUB(A, int, archive_write_header, (struct archive * a, entry_t *e), (a, e))
STUB(A, struct archive *, archive_write_new, (void), ())
STUB(A, int, archive_write_open2,
     (struct archive * a, void *d, archive_open_callback *o, archive_write_callback *w, archive_close_callback *c,
      archive_free_callback *f),
     (a, d, o, w, c, f))
STUB(A, int, archive_write_open_filename, (struct archive * a, const char *f), (a, f))
STUB(A, int, archive_write_set_bytes_per_block, (struct archive * a, int b), (a, b))
STUB(A, int, archive_write_set_format_pax_restricted, (struct archive * a), (a))

/* Variadic: format here, hand libarchive the finished text. */
void archive_set_error(struct archive *a, int err, const char *fmt, ...) {
  static __typeof__(&archive_set_error) fn;
  __typeof__(&archive_set_error) f = __atomic_load_n(&fn, __ATOMIC_RELAXED);
  if (f == NULL) {
    f = (__typeof__(&archive_set_error))lazy_sym(A, "archive_set_error");
    __atomic_store_n(&fn, f, __ATOMIC_RELAXED);
  }
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  f(a, err, "%s", buf);
}
#undef A

/* libnftables */
#define N LIB_NFTABLES
STUB(N, int, nft_ctx_buffer_error, (struct nft_ctx * c), (c))
STUB(N, int, nft_ctx_buffer_output, (struct nft_ctx * c), (c))
STUB_VOID(N, nft_ctx_free, (struct nft_ctx * c), (c))
STUB(N, const char *, nft_ctx_get_error_buffer, (struct nft_ctx * c), (c))
STUB(N, struct nft_ctx *, nft_ctx_new, (uint32_t flags), (flags))
STUB(N, int, nft_run_cmd_from_buffer, (struct nft_ctx * c, const char *b), (c, b))
#undef N

/* libcrypto */
#define C LIB_CRYPTO
STUB(C, int, EVP_Digest, (const void *d, size_t n, unsigned char *md, unsigned int *s, const EVP_MD *t, ENGINE *e),
     (d, n, md, s, t, e))
STUB(C, int, EVP_DigestFinal_ex, (EVP_MD_CTX * c, unsigned char *md, unsigned int *s), (c, md, s))
STUB(C, int, EVP_DigestInit_ex, (EVP_MD_CTX * c, const EVP_MD *t, ENGINE *e), (c, t, e))
STUB(C, int, EVP_DigestUpdate, (EVP_MD_CTX * c, const void *d, size_t n), (c, d, n))
STUB_VOID(C, EVP_MD_CTX_free, (EVP_MD_CTX * c), (c))
STUB(C, EVP_MD_CTX *, EVP_MD_CTX_new, (void), ())
STUB(C, const EVP_MD *, EVP_sha256, (void), ())
#undef C
