/* Libraries loaded on first use.
 *
 * libarchive (which drags in libxml2 and ICU), libnftables and libcrypto
 * cost about 6 ms of dynamic loading and relocation in every process that
 * links them -- more than the rest of an `hcs exec`; the compressors (zstd,
 * libdeflate, ISA-L), libmnl, libseccomp and libcap each cost a mapping and
 * their relocations (~0.1 ms apiece) in processes that mostly never call
 * them (a `hcs list` needs none).  libhcs therefore links none of them: each function it uses is a small hidden stub
 * here that dlopen()s the library the first time it is called and jumps to the real function.  The prototypes come from
 * the libraries' own headers, so the compiler checks every stub against the real signature.  (systemd loads its
 * optional libraries the same way.)  A library that cannot be loaded is a broken installation: the process aborts with
 * a message saying which.  libcurl (with its TLS, HTTP/2 and IDN libraries) loads only when a registry is contacted. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define CURL_DISABLE_TYPECHECK /* the stubs below define the functions its macros wrap */
#include <archive.h>
#include <curl/curl.h>
#include <archive_entry.h>
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <libmnl/libmnl.h>
#include <nftables/libnftables.h>
#include <openssl/evp.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <zstd.h>

#include "core/util.h"

enum {
  LIB_ARCHIVE,
  LIB_NFTABLES,
  LIB_CRYPTO,
  LIB_ZSTD,
  LIB_DEFLATE,
  LIB_ISAL,
  LIB_MNL,
  LIB_SECCOMP,
  LIB_CAP,
  LIB_CURL,
  LIB_COUNT
};

static const char *const sonames[LIB_COUNT] = {
    HCS_SONAME_ARCHIVE, HCS_SONAME_NFTABLES, HCS_SONAME_CRYPTO,  HCS_SONAME_ZSTD, HCS_SONAME_DEFLATE,
    HCS_SONAME_ISAL,    HCS_SONAME_MNL,      HCS_SONAME_SECCOMP, HCS_SONAME_CAP,  HCS_SONAME_CURL};
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
STUB_VOID(A, archive_entry_sparse_add_entry, (entry_t * e, la_int64_t o, la_int64_t l), (e, o, l))
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
STUB(A, int, archive_read_open_fd, (struct archive * a, int fd, size_t b), (a, fd, b))
STUB(A, int, archive_read_open_filename, (struct archive * a, const char *f, size_t b), (a, f, b))
STUB(A, int, archive_read_support_filter_all, (struct archive * a), (a))
STUB(A, int, archive_read_support_format_tar, (struct archive * a), (a))
STUB(A, int, archive_write_close, (struct archive * a), (a))
STUB(A, la_ssize_t, archive_write_data, (struct archive * a, const void *b, size_t n), (a, b, n))
STUB(A, la_ssize_t, archive_write_data_block, (struct archive * a, const void *b, size_t n, la_int64_t o), (a, b, n, o))
STUB(A, int, archive_write_finish_entry, (struct archive * a), (a))
STUB(A, int, archive_write_free, (struct archive * a), (a))
STUB(A, int, archive_write_header, (struct archive * a, entry_t *e), (a, e))
STUB(A, struct archive *, archive_write_new, (void), ())
STUB(A, int, archive_write_open2,
     (struct archive * a, void *d, archive_open_callback *o, archive_write_callback *w, archive_close_callback *c,
      archive_free_callback *f),
     (a, d, o, w, c, f))
STUB(A, int, archive_write_open_fd, (struct archive * a, int fd), (a, fd))
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
STUB(N, const char *, nft_ctx_get_output_buffer, (struct nft_ctx * c), (c))
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
STUB(C, int, EVP_EncodeBlock, (unsigned char *t, const unsigned char *f, int n), (t, f, n))
STUB(C, int, EVP_DecodeBlock, (unsigned char *t, const unsigned char *f, int n), (t, f, n))
#undef C

/* libcurl */
#define U LIB_CURL
STUB(U, CURLcode, curl_global_init, (long flags), (flags))
STUB(U, CURL *, curl_easy_init, (void), ())
STUB_VOID(U, curl_easy_cleanup, (CURL * h), (h))
STUB_VOID(U, curl_easy_reset, (CURL * h), (h))
STUB(U, CURLcode, curl_easy_perform, (CURL * h), (h))
STUB(U, const char *, curl_easy_strerror, (CURLcode c), (c))
STUB(U, struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s), (l, s))
STUB_VOID(U, curl_slist_free_all, (struct curl_slist * l), (l))
STUB(U, CURLSH *, curl_share_init, (void), ())
STUB(U, CURLSHcode, curl_share_cleanup, (CURLSH * s), (s))

/* Variadic: an option's one argument has the type its number's range
 * says (long, object or function pointer, curl_off_t, blob pointer). */
CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...) {
  static __typeof__(&curl_easy_setopt) fn;
  __typeof__(&curl_easy_setopt) f = __atomic_load_n(&fn, __ATOMIC_RELAXED);
  if (f == NULL) {
    f = (__typeof__(&curl_easy_setopt))lazy_sym(U, "curl_easy_setopt");
    __atomic_store_n(&fn, f, __ATOMIC_RELAXED);
  }
  va_list ap;
  va_start(ap, opt);
  CURLcode rc;
  if (opt < CURLOPTTYPE_OBJECTPOINT) {
    long v = va_arg(ap, long);
    rc = f(h, opt, v);
  } else if (opt < CURLOPTTYPE_OFF_T) {
    void *v = va_arg(ap, void *);
    rc = f(h, opt, v);
  } else if (opt < CURLOPTTYPE_BLOB) {
    curl_off_t v = va_arg(ap, curl_off_t);
    rc = f(h, opt, v);
  } else {
    void *v = va_arg(ap, void *);
    rc = f(h, opt, v);
  }
  va_end(ap);
  return rc;
}

/* Variadic: CURLSHOPT_SHARE and _UNSHARE take an int (a curl_lock_data),
 * the others a pointer (the lock functions, the user data). */
CURLSHcode curl_share_setopt(CURLSH *sh, CURLSHoption opt, ...) {
  static __typeof__(&curl_share_setopt) fn;
  __typeof__(&curl_share_setopt) f = __atomic_load_n(&fn, __ATOMIC_RELAXED);
  if (f == NULL) {
    f = (__typeof__(&curl_share_setopt))lazy_sym(U, "curl_share_setopt");
    __atomic_store_n(&fn, f, __ATOMIC_RELAXED);
  }
  va_list ap;
  va_start(ap, opt);
  CURLSHcode rc;
  if (opt == CURLSHOPT_SHARE || opt == CURLSHOPT_UNSHARE) {
    int v = va_arg(ap, int);
    rc = f(sh, opt, v);
  } else {
    void *v = va_arg(ap, void *);
    rc = f(sh, opt, v);
  }
  va_end(ap);
  return rc;
}
#undef U

/* zstd */
#define Z LIB_ZSTD
STUB(Z, size_t, ZSTD_CCtx_setParameter, (ZSTD_CCtx * c, ZSTD_cParameter p, int v), (c, p, v))
STUB(Z, size_t, ZSTD_CStreamOutSize, (void), ())
STUB(Z, size_t, ZSTD_compressStream2, (ZSTD_CCtx * c, ZSTD_outBuffer *o, ZSTD_inBuffer *i, ZSTD_EndDirective e),
     (c, o, i, e))
STUB(Z, ZSTD_CCtx *, ZSTD_createCCtx, (void), ())
STUB(Z, ZSTD_DCtx *, ZSTD_createDCtx, (void), ())
STUB(Z, size_t, ZSTD_decompressStream, (ZSTD_DStream * d, ZSTD_outBuffer *o, ZSTD_inBuffer *i), (d, o, i))
STUB(Z, size_t, ZSTD_freeCCtx, (ZSTD_CCtx * c), (c))
STUB(Z, size_t, ZSTD_freeDCtx, (ZSTD_DCtx * d), (d))
STUB(Z, const char *, ZSTD_getErrorName, (size_t code), (code))
STUB(Z, unsigned, ZSTD_isError, (size_t code), (code))
#undef Z

/* libdeflate and ISA-L (gzip output: ISA-L at levels 1-2 and for the
 * stored members libdeflate, libdeflate above; gzip input: ISA-L) */
#define D LIB_DEFLATE
STUB(D, struct libdeflate_compressor *, libdeflate_alloc_compressor, (int level), (level))
STUB_VOID(D, libdeflate_free_compressor, (struct libdeflate_compressor * c), (c))
STUB(D, size_t, libdeflate_gzip_compress,
     (struct libdeflate_compressor * c, const void *in, size_t n, void *out, size_t m), (c, in, n, out, m))
STUB(D, size_t, libdeflate_gzip_compress_bound, (struct libdeflate_compressor * c, size_t n), (c, n))
#undef D
#define I LIB_ISAL
STUB(I, int, isal_deflate_stateless, (struct isal_zstream * s), (s))
STUB_VOID(I, isal_deflate_stateless_init, (struct isal_zstream * s), (s))
STUB(I, int, isal_inflate, (struct inflate_state * s), (s))
STUB_VOID(I, isal_inflate_init, (struct inflate_state * s), (s))
STUB_VOID(I, isal_inflate_reset, (struct inflate_state * s), (s))
#undef I

/* libmnl (netlink) */
#define M LIB_MNL
typedef struct nlattr attr_t;
typedef struct nlmsghdr msg_t;
STUB(M, void *, mnl_attr_get_payload, (const attr_t *a), (a))
STUB(M, uint16_t, mnl_attr_get_payload_len, (const attr_t *a), (a))
STUB(M, const char *, mnl_attr_get_str, (const attr_t *a), (a))
STUB(M, uint16_t, mnl_attr_get_type, (const attr_t *a), (a))
STUB(M, uint32_t, mnl_attr_get_u32, (const attr_t *a), (a))
STUB_VOID(M, mnl_attr_nest_end, (msg_t * n, attr_t *start), (n, start))
STUB(M, attr_t *, mnl_attr_nest_start, (msg_t * n, uint16_t type), (n, type))
STUB(M, attr_t *, mnl_attr_next, (const attr_t *a), (a))
STUB(M, bool, mnl_attr_ok, (const attr_t *a, int len), (a, len))
STUB(M, int, mnl_attr_parse, (const msg_t *n, unsigned int off, mnl_attr_cb_t cb, void *d), (n, off, cb, d))
STUB_VOID(M, mnl_attr_put, (msg_t * n, uint16_t type, size_t len, const void *d), (n, type, len, d))
STUB_VOID(M, mnl_attr_put_strz, (msg_t * n, uint16_t type, const char *d), (n, type, d))
STUB_VOID(M, mnl_attr_put_u32, (msg_t * n, uint16_t type, uint32_t d), (n, type, d))
STUB(M, int, mnl_cb_run, (const void *b, size_t n, unsigned int seq, unsigned int pid, mnl_cb_t cb, void *d),
     (b, n, seq, pid, cb, d))
STUB(M, void *, mnl_nlmsg_get_payload, (const msg_t *n), (n))
STUB(M, msg_t *, mnl_nlmsg_next, (const msg_t *n, int *len), (n, len))
STUB(M, bool, mnl_nlmsg_ok, (const msg_t *n, int len), (n, len))
STUB(M, void *, mnl_nlmsg_put_extra_header, (msg_t * n, size_t size), (n, size))
STUB(M, msg_t *, mnl_nlmsg_put_header, (void *buf), (buf))
STUB(M, int, mnl_socket_bind, (struct mnl_socket * s, unsigned int groups, pid_t pid), (s, groups, pid))
STUB(M, int, mnl_socket_close, (struct mnl_socket * s), (s))
STUB(M, unsigned int, mnl_socket_get_portid, (const struct mnl_socket *s), (s))
STUB(M, struct mnl_socket *, mnl_socket_open2, (int bus, int flags), (bus, flags))
STUB(M, ssize_t, mnl_socket_recvfrom, (const struct mnl_socket *s, void *buf, size_t n), (s, buf, n))
STUB(M, ssize_t, mnl_socket_sendto, (const struct mnl_socket *s, const void *req, size_t n), (s, req, n))
#undef M

/* libseccomp (the non-variadic seccomp_rule_add_array only) and libcap */
#define S LIB_SECCOMP
STUB(S, int, seccomp_export_bpf, (const scmp_filter_ctx c, int fd), (c, fd))
STUB(S, scmp_filter_ctx, seccomp_init, (uint32_t action), (action))
STUB_VOID(S, seccomp_release, (scmp_filter_ctx c), (c))
STUB(S, int, seccomp_rule_add_array,
     (scmp_filter_ctx c, uint32_t action, int nr, unsigned int n, const struct scmp_arg_cmp *args),
     (c, action, nr, n, args))
STUB(S, int, seccomp_syscall_resolve_name, (const char *name), (name))
STUB(S, uint32_t, seccomp_arch_resolve_name, (const char *name), (name))
STUB(S, int, seccomp_arch_add, (scmp_filter_ctx c, uint32_t token), (c, token))
#undef S
STUB(LIB_CAP, int, cap_from_name, (const char *name, cap_value_t *v), (name, v))
STUB(LIB_CAP, char *, cap_to_name, (cap_value_t v), (v))
STUB(LIB_CAP, int, cap_free, (void *p), (p))
