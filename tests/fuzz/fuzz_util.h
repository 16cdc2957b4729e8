/* Shared by the libFuzzer harnesses: a private sandbox per fuzzing process
 * (own mount and network namespaces, a tmpfs for every state root, so
 * whatever an input makes -- files, mounts, bridges, nftables tables --
 * vanishes with the process and never touches the host), splitting an input
 * into parts, and wiping a directory between runs. */
#ifndef HCS_FUZZ_UTIL_H
#define HCS_FUZZ_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "hcs/error.h"
#include "hcs/log.h"

/* Where the harness works: `sandbox/` next to the harness executable (in
 * the build tree, an empty directory on the host), with a tmpfs mounted on
 * it in this process's own mount namespace only, so what an input makes is
 * never seen outside and goes when the process ends however it ends. */
static char fz_dir[4096];

static inline void fz_die(const char *what) {
  fprintf(stderr, "fuzz sandbox: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* Once per process, before the first input: unshare the mount (and, with
 * net, the network) namespace and mount a tmpfs of `mib` MiB. */
static inline void fz_sandbox(bool net, int mib) {
  char exe[4000];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0) fz_die("readlink /proc/self/exe");
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash) *slash = '\0';
  snprintf(fz_dir, sizeof fz_dir, "%s/sandbox", exe);
  if (mkdir(fz_dir, 0700) < 0 && errno != EEXIST) fz_die("mkdir");
  if (unshare(CLONE_NEWNS | (net ? CLONE_NEWNET : 0)) < 0) fz_die("unshare (run as root)");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fz_die("make / private");
  char opts[64];
  snprintf(opts, sizeof opts, "size=%dm,mode=0700", mib);
  if (mount("hcs-fuzz", fz_dir, "tmpfs", 0, opts) < 0) fz_die("mount a tmpfs");
  setenv("HCS_ROOT", fz_dir, 1);
  hcs_log_set_level(HCS_LOG_NONE);
}

/* Remove everything below dir (not dir itself); never crosses mounts. */
static inline void fz_wipe(const char *dir) {
  hcs_error_t err = NULL;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR *d = fdopendir(fd);
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (hcs_rm_rf_at(dirfd(d), de->d_name, &err) < 0) {
      fprintf(stderr, "fuzz: wipe `%s/%s`: %s\n", dir, de->d_name, hcs_error_message(err));
      abort(); /* a leftover the next run would trip over is a harness bug */
    }
  }
  if (d) closedir(d);
  hcs_error_release(&err);
}

/* Split data at each occurrence of sep into at most max parts (NUL-terminated
 * copies, freed with fz_parts_free).  Returns the number of parts. */
static inline int fz_split(const uint8_t *data, size_t size, const char *sep, char **parts, size_t *lens, int max) {
  size_t seplen = strlen(sep);
  int n = 0;
  size_t start = 0;
  for (size_t i = 0; n < max - 1 && i + seplen <= size; i++) {
    if (memcmp(data + i, sep, seplen) != 0) continue;
    lens[n] = i - start;
    parts[n] = malloc(lens[n] + 1);
    memcpy(parts[n], data + start, lens[n]);
    parts[n][lens[n]] = '\0';
    n++;
    start = i + seplen;
    i = start - 1;
  }
  lens[n] = size - start;
  parts[n] = malloc(lens[n] + 1);
  memcpy(parts[n], data + start, lens[n]);
  parts[n][lens[n]] = '\0';
  return n + 1;
}

static inline void fz_parts_free(char **parts, int n) {
  for (int i = 0; i < n; i++)
    free(parts[i]);
}

static inline int fz_write_fd(int fd, const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static inline int fz_write(const char *path, const void *data, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (fz_write_fd(fd, data, n) < 0) {
    close(fd);
    return -1;
  }
  return close(fd);
}

/* With HCS_FUZZ_VERBOSE set (replaying one input by hand): what came out. */
static inline void fz_report(const char *result, hcs_error_t err) {
  if (getenv("HCS_FUZZ_VERBOSE") == NULL) return;
  if (result)
    fprintf(stderr, "fuzz: ok: %.200s\n", result);
  else
    fprintf(stderr, "fuzz: error: %s\n", hcs_error_message(err));
}

/* text with every `key` replaced by `value` (malloc'd; *len its length) */
static inline char *fz_subst(const char *text, size_t n, const char *key, const char *value, size_t *len) {
  size_t klen = strlen(key), vlen = strlen(value), cap = n + 1, k = 0;
  char *out = malloc(cap);
  for (size_t i = 0; i < n;) {
    if (i + klen <= n && memcmp(text + i, key, klen) == 0) {
      if (k + vlen + 1 > cap) out = realloc(out, cap = 2 * (k + vlen + 1));
      memcpy(out + k, value, vlen);
      k += vlen;
      i += klen;
    } else {
      if (k + 2 > cap) out = realloc(out, cap *= 2);
      out[k++] = text[i++];
    }
  }
  out[k] = '\0';
  *len = k;
  return out;
}

#endif
