/* Security of container processes: the capability bounding set (Docker's
 * default 14), no_new_privs, and the default seccomp allowlist
 * (seccomp_profile.c) compiled with libseccomp once in the parent and
 * loaded as raw BPF in the child, so the child does no allocation or
 * parsing between fork and exec. */
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <linux/seccomp.h>
#include <dirent.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <grp.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>

#include <seccomp.h>

#include "compute/compute.h"

uint64_t hcs_default_caps(void) {
  static const int caps[] = {
      CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FSETID,  CAP_FOWNER,           CAP_MKNOD,      CAP_NET_RAW, CAP_SETGID,
      CAP_SETUID, CAP_SETFCAP,      CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL,    CAP_AUDIT_WRITE};
  uint64_t m = 0;
  for (size_t i = 0; i < HCS_ARRAY_SIZE(caps); i++)
    m |= 1ULL << caps[i];
  return m;
}

int hcs_cap_from_name(const char *name) {
  cap_value_t v;
  cleanup_free char *lower = NULL;
  if (strncasecmp(name, "CAP_", 4) != 0) return -1;
  lower = hcs_xstrdup(name);
  for (char *p = lower; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  if (cap_from_name(lower, &v) < 0 || v < 0 || v > 63) return -1;
  return v;
}

static int build_filter(const hcs_config_t *c, struct sock_fprog *prog, hcs_error_t *err) {
  /* Linux.Seccomp.Deny: names that must exist, left out of the allowlist
   * (the default action then denies them). */
  size_t n_deny = 0;
  while (c->seccomp_deny && c->seccomp_deny[n_deny])
    n_deny++;
  cleanup_free int *deny = hcs_xcalloc(n_deny + 1, sizeof *deny);
  for (size_t i = 0; i < n_deny; i++) {
    deny[i] = seccomp_syscall_resolve_name(c->seccomp_deny[i]);
    if (deny[i] == __NR_SCMP_ERROR)
      return hcs_error_make(err, 0, "invalid configuration: `Linux.Seccomp.Deny[%zu]`: unknown syscall `%s`", i,
                            c->seccomp_deny[i]);
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  cleanup_close int fd = -1;
  int r, ret = -1;
  if (ctx == NULL) return hcs_error_make(err, ENOMEM, "seccomp_init");
  if (hcs_seccomp_add_default(ctx, c->caps, deny, n_deny, err) < 0) goto out;

  fd = memfd_create("hcs-seccomp", MFD_CLOEXEC);
  if (fd < 0) {
    hcs_error_make(err, errno, "memfd_create");
    goto out;
  }
  if ((r = seccomp_export_bpf(ctx, fd)) < 0) {
    hcs_error_make(err, -r, "export seccomp filter");
    goto out;
  }
  off_t size = lseek(fd, 0, SEEK_END);
  if (size <= 0 || size % (off_t)sizeof(struct sock_filter)) {
    hcs_error_make(err, EINVAL, "export seccomp filter");
    goto out;
  }
  struct sock_filter *f = hcs_xmalloc((size_t)size);
  if (pread(fd, f, (size_t)size, 0) != size) {
    free(f);
    hcs_error_make(err, errno, "read seccomp filter");
    goto out;
  }
  prog->filter = f;
  prog->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
  ret = 0;
out:
  seccomp_release(ctx);
  return ret;
}

/* A program saved by hcs_security_save_filter: whole sock_filter
 * instructions, at most BPF_MAXINSNS of them. */
static int load_filter(const char *path, struct sock_fprog *prog) {
  char *data = NULL;
  size_t len = 0;
  if (hcs_read_file(path, &data, &len, NULL) < 0) return -1;
  if (len == 0 || len % sizeof(struct sock_filter) || len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
    free(data);
    return -1;
  }
  prog->filter = (struct sock_filter *)data;
  prog->len = (unsigned short)(len / sizeof(struct sock_filter));
  return 0;
}

int hcs_security_save_filter(const struct sock_fprog *prog, const char *path, hcs_error_t *err) {
  if (prog->filter == NULL) return 0;
  return hcs_state_write(path, (const char *)prog->filter, prog->len * sizeof *prog->filter, err);
}

/* Compiling with libseccomp costs a few hundred microseconds (and loading
 * libseccomp); the program depends only on the capabilities, the extra
 * deny list and the built-in lists, so a process keeps the last
 * few it compiled, and `cache_dir` (the run root's compute directory) keeps
 * them for the next processes: an `hcs run` then never loads libseccomp. */
struct filter_cache {
  char *key;
  struct sock_filter *filter;
  unsigned short len;
};
static struct filter_cache cache[4];
static size_t cache_next;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static char *filter_key(const hcs_config_t *c) {
  size_t len = 20;
  for (size_t i = 0; c->seccomp_deny && c->seccomp_deny[i]; i++)
    len += strlen(c->seccomp_deny[i]) + 1;
  char *k = hcs_xmalloc(len), *p = k;
  /* The profile depends on every capability with a rule: key on all. */
  p += sprintf(p, "%016llx:", (unsigned long long)c->caps);
  for (size_t i = 0; c->seccomp_deny && c->seccomp_deny[i]; i++)
    p += sprintf(p, "%s,", c->seccomp_deny[i]);
  *p = '\0';
  return k;
}

/* A string and a separator: ("ab", "c") and ("a", "bc") differ. */
static uint64_t fnv1a(uint64_t h, const char *s) {
  h = hcs_fnv1a(h, s, strlen(s));
  return hcs_fnv1a(h, "\xff", 1);
}

/* The on-disk cache entry for `key`: named after the key, the version and
 * the built-in lists, so a new hcs with other lists never reads an old
 * program. */
static char *disk_path(const char *cache_dir, const char *key) {
  uint64_t h = hcs_seccomp_profile_hash(fnv1a(fnv1a(HCS_FNV1A_INIT, HCS_VERSION), key));
  return hcs_xasprintf("%s/.seccomp-%016llx.bpf", cache_dir, (unsigned long long)h);
}

static int cached_filter(const hcs_config_t *c, const char *cache_dir, struct sock_fprog *prog, hcs_error_t *err) {
  cleanup_free char *key = filter_key(c);
  pthread_mutex_lock(&cache_lock);
  for (size_t i = 0; i < HCS_ARRAY_SIZE(cache); i++)
    if (cache[i].key && strcmp(cache[i].key, key) == 0) {
      prog->len = cache[i].len;
      prog->filter = hcs_xmalloc(prog->len * sizeof *prog->filter);
      memcpy(prog->filter, cache[i].filter, prog->len * sizeof *prog->filter);
      pthread_mutex_unlock(&cache_lock);
      return 0;
    }
  pthread_mutex_unlock(&cache_lock);
  cleanup_free char *path = cache_dir ? disk_path(cache_dir, key) : NULL;
  if (!(path && load_filter(path, prog) == 0)) {
    if (build_filter(c, prog, err) < 0) return -1;
    if (path) hcs_security_save_filter(prog, path, NULL); /* best effort: a cache */
  }
  pthread_mutex_lock(&cache_lock);
  struct filter_cache *e = &cache[cache_next++ % HCS_ARRAY_SIZE(cache)];
  free(e->key);
  free(e->filter);
  e->key = steal_ptr(key);
  e->len = prog->len;
  e->filter = hcs_xmalloc(prog->len * sizeof *prog->filter);
  memcpy(e->filter, prog->filter, prog->len * sizeof *prog->filter);
  pthread_mutex_unlock(&cache_lock);
  return 0;
}

int hcs_security_prepare(const hcs_config_t *c, hcs_security_t *sec, hcs_error_t *err) {
  return hcs_security_prepare_saved(c, sec, NULL, NULL, err);
}

int hcs_security_prepare_saved(const hcs_config_t *c, hcs_security_t *sec, const char *saved, const char *cache_dir,
                               hcs_error_t *err) {
  memset(sec, 0, sizeof *sec);
  sec->caps = c->caps;
  sec->cap_sets = c->cap_sets;
  sec->cap_eff = c->cap_eff, sec->cap_perm = c->cap_perm, sec->cap_inh = c->cap_inh, sec->cap_amb = c->cap_amb;
  sec->no_new_privs = c->no_new_privs;
  if (c->n_rlimits) {
    sec->rlimits = hcs_xcalloc(c->n_rlimits, sizeof *sec->rlimits);
    memcpy(sec->rlimits, c->rlimits, c->n_rlimits * sizeof *sec->rlimits);
    sec->n_rlimits = c->n_rlimits;
  }
  sec->listener = c->seccomp && c->seccomp_listener;
  if (c->seccomp && saved && load_filter(saved, &sec->prog) == 0) return 0;
  /* A program compiled by the caller (an OCI profile, docs/runtime.md). */
  if (c->seccomp && c->seccomp_program) {
    if (load_filter(c->seccomp_program, &sec->prog) < 0)
      return hcs_error_make(err, errno ? errno : EINVAL, "load the seccomp program `%s`", c->seccomp_program);
    return 0;
  }
  if (c->seccomp && cached_filter(c, cache_dir, &sec->prog, err) < 0) return -1;
  return 0;
}

void hcs_security_release(hcs_security_t *sec) {
  free(sec->prog.filter);
  sec->prog.filter = NULL;
  free(sec->rlimits);
  sec->rlimits = NULL;
}

int hcs_security_apply(const hcs_security_t *sec, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups) {
  if (hcs_security_apply_walls(sec) < 0) return -1;
  return hcs_security_apply_user(sec, uid, gid, groups, ngroups);
}

int hcs_security_apply_walls(const hcs_security_t *sec) {
  for (int cap = 0; cap <= 63; cap++) {
    if (sec->caps & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL) break; /* past the kernel's last capability */
      return -1;
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return -1;
  if (sec->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -1;
  /* Loaded while still privileged, so it works without no_new_privs too. */
  if (sec->prog.filter) {
    /* With a listener the kernel returns its fd (close-on-exec): it stays
     * in this process until execve, for the creator to take with
     * pidfd_getfd (hcs_compute_seccomp_listener). */
    unsigned flags = sec->listener ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &sec->prog) < 0) return -1;
  }
  return 0;
}

int hcs_security_for_process(const hcs_security_t *sys, const hcs_proc_spec_t *p, hcs_security_t *out,
                             hcs_error_t *err) {
  /* A shallow copy: the program and rlimits stay owned by `sys`. */
  *out = *sys;
  /* Only init's listener reaches an agent (docs/runtime.md): a later
   * process's notifications fail with ENOSYS, as with no listener. */
  out->listener = false;
  if (!p->caps_given && !p->cap_sets) return 0;
  /* The bounding set can only shrink: nothing beyond the system's. */
  uint64_t ceiling = sys->caps;
  static const char *const names[] = {"Capabilities", "CapabilitySets.Effective", "CapabilitySets.Permitted",
                                      "CapabilitySets.Inheritable", "CapabilitySets.Ambient"};
  const uint64_t sets[] = {p->caps_given ? p->caps : 0, p->cap_eff, p->cap_perm, p->cap_inh, p->cap_amb};
  for (size_t k = 0; k < HCS_ARRAY_SIZE(sets); k++) {
    uint64_t extra = sets[k] & ~ceiling;
    if (extra == 0) continue;
    int cap = __builtin_ctzll(extra);
    cleanup_free char *name = cap_to_name(cap);
    for (char *c = name; c && *c; c++)
      *c = (char)toupper((unsigned char)*c);
    hcs_error_make(err, 0,
                   "invalid process parameters: `%s`: %s is not in the system's bounding set (a process's "
                   "capabilities can only shrink it)",
                   names[k], name ? name : "?");
    if (name) cap_free(steal_ptr(name));
    return -1;
  }
  if (p->caps_given) out->caps = p->caps;
  if (p->cap_sets) {
    out->cap_sets = true;
    out->cap_eff = p->cap_eff, out->cap_perm = p->cap_perm, out->cap_inh = p->cap_inh, out->cap_amb = p->cap_amb;
    /* Nothing outside the process's own bounding set either. */
    out->cap_eff &= out->caps, out->cap_perm &= out->caps, out->cap_inh &= out->caps, out->cap_amb &= out->caps;
  } else if (sys->cap_sets) {
    /* The system's sets, within the process's bounding set. */
    out->cap_eff &= out->caps, out->cap_perm &= out->caps, out->cap_inh &= out->caps, out->cap_amb &= out->caps;
  }
  return 0;
}

int hcs_ns_check(int fd, int type, int *got) {
  struct statfs sf;
  *got = 0;
  if (fstatfs(fd, &sf) < 0) return -1;
  if (sf.f_type != NSFS_MAGIC) {
    errno = EINVAL;
    return -1;
  }
  int t = ioctl(fd, NS_GET_NSTYPE);
  if (t < 0) return -1;
  *got = t;
  if (t != type) {
    errno = ENOTTY;
    return -1;
  }
  return 0;
}

int hcs_compute_seccomp_listener(hcs_system_t *cs, hcs_error_t *err) {
  hcs_state_t st = hcs_system_state(cs);
  if (st != HCS_STATE_CREATED)
    return hcs_error_make(err, 0, "take the seccomp listener of `%s`: the system is %s, not Created", cs->id,
                          hcs_state_name(st));
  cleanup_close int initfd = hcs_system_init_fd(cs, err);
  if (initfd < 0) return -1;
  /* Init is hcs's own code until its execve (it waits for start): its fd
   * table holds the listener, named by the kernel. */
  cleanup_free char *dir = hcs_xasprintf("/proc/%d/fd", (int)cs->pid);
  cleanup_dir DIR *d = opendir(dir);
  if (d == NULL) return hcs_error_make(err, errno, "open `%s`", dir);
  struct dirent *de;
  while ((de = readdir(d))) {
    char link[64];
    ssize_t n = readlinkat(dirfd(d), de->d_name, link, sizeof link - 1);
    if (n < 0) continue;
    link[n] = '\0';
    if (strcmp(link, "anon_inode:seccomp notify")) continue;
    int fd = (int)syscall(SYS_pidfd_getfd, initfd, atoi(de->d_name), 0);
    if (fd < 0) return hcs_error_make(err, errno, "take the seccomp listener of `%s`", cs->id);
    return fd;
  }
  return hcs_error_make(err, ENOENT,
                        "take the seccomp listener of `%s`: init has none (no Linux.Seccomp.Listener, or its setup "
                        "failed: start reports why)",
                        cs->id);
}

int hcs_security_apply_user(const hcs_security_t *sec, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups) {
  /* The user switch comes before capset: it needs CAP_SETUID/SETGID even
   * when the configured set lacks them; a non-root uid loses all caps. */
  /* Given sets (Linux.CapabilitySets) survive a switch to another user:
   * its capabilities across execve come from the ambient set. */
  if (sec->cap_sets && uid != 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return -1;
  if (setgroups(ngroups, groups) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) return -1;
  if (sec->cap_sets) {
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    for (int i = 0; i < 2; i++) {
      data[i].effective = (uint32_t)(sec->cap_eff >> (32 * i));
      data[i].permitted = (uint32_t)(sec->cap_perm >> (32 * i));
      data[i].inheritable = (uint32_t)(sec->cap_inh >> (32 * i));
    }
    if (syscall(SYS_capset, &hdr, data) < 0) return -1;
    for (int cap = 0; cap <= 63; cap++)
      if ((sec->cap_amb & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) return -1;
    return 0;
  }
  if (uid == 0) {
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    /* Inheritable stays empty (and ambient was cleared with the walls): a
     * file with inheritable file caps must not gain the set across execve
     * (CVE-2022-24769, as runc, crun and moby). */
    data[0].effective = data[0].permitted = (uint32_t)sec->caps;
    data[1].effective = data[1].permitted = (uint32_t)(sec->caps >> 32);
    if (syscall(SYS_capset, &hdr, data) < 0) return -1;
  }
  return 0;
}
