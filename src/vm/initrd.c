/* `hcs vm initrd`: the guest initramfs (hcs/vm_initrd.h).  A cpio newc
 * archive built in memory, gzip'd with libdeflate, written atomically.
 * modules.dep is text from a kernel package: its paths are resolved beneath
 * the modules directory with openat2(RESOLVE_BENEATH), opened before they
 * are checked (regular files only). */
#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/util.h"
#include "hcs/vm_initrd.h"

/* What a VM needs; the first ones are required (the agent's channel). */
static const char *const wanted_modules[] = {
    "virtio_pci",   "virtio_console", /* required */
    "virtio",       "virtio_ring",    "virtio_blk", "virtio_scsi",    "sd_mod", "virtio_net", "9p",
    "9pnet_virtio", "overlay",        "ext4",       "crc32c_generic", "evdev",  "button",
};
#define REQUIRED_MODULES 2

struct cpio {
  unsigned char *d;
  size_t len, cap;
  unsigned ino;
};

static void cpio_put(struct cpio *c, const void *p, size_t n) {
  if (c->len + n + 3 > c->cap) {
    while (c->len + n + 3 > c->cap)
      c->cap = c->cap ? c->cap * 2 : 1 << 20;
    c->d = hcs_xrealloc(c->d, c->cap);
  }
  memcpy(c->d + c->len, p, n);
  c->len += n;
  while (c->len % 4)
    c->d[c->len++] = 0;
}

static void cpio_entry(struct cpio *c, const char *name, unsigned mode, unsigned rmaj, unsigned rmin, const void *data,
                       size_t size) {
  char hdr[160];
  size_t namesize = strlen(name) + 1;
  int n = snprintf(hdr, sizeof(hdr), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ++c->ino, mode, 0u,
                   0u, S_ISDIR(mode) ? 2u : 1u, 0u, (unsigned)size, 0u, 0u, rmaj, rmin, (unsigned)namesize, 0u);
  /* the header (110 bytes) and the name are padded together to 4 bytes */
  if (c->len + (size_t)n + namesize + 3 > c->cap) {
    c->cap = (c->len + (size_t)n + namesize + 3) * 2;
    c->d = hcs_xrealloc(c->d, c->cap);
  }
  memcpy(c->d + c->len, hdr, (size_t)n);
  memcpy(c->d + c->len + n, name, namesize);
  c->len += (size_t)n + namesize;
  while (c->len % 4)
    c->d[c->len++] = 0;
  if (size) cpio_put(c, data, size);
}

/* Directories of `path` not yet written (paths are added in an order where
 * this only has to look at the previous directories). */
static void cpio_dirs(struct cpio *c, json_t *made, const char *path) {
  char buf[PATH_MAX];
  snprintf(buf, sizeof(buf), "%s", path);
  for (char *s = strchr(buf, '/'); s; s = strchr(s + 1, '/')) {
    *s = 0;
    if (!json_object_get(made, buf)) {
      json_object_set_new(made, buf, json_true());
      cpio_entry(c, buf, S_IFDIR | 0755, 0, 0, NULL, 0);
    }
    *s = '/';
  }
}

/* Read a whole regular file opened by the caller. */
static int read_fd(int fd, const char *what, unsigned char **out, size_t *len, hcs_error_t *err) {
  struct stat st;
  if (fstat(fd, &st) < 0) return hcs_error_make(err, errno, "stat `%s`", what);
  if (!S_ISREG(st.st_mode)) return hcs_error_make(err, 0, "read `%s`: not a regular file", what);
  unsigned char *d = hcs_xmalloc((size_t)st.st_size + 1);
  size_t n = 0;
  while (n < (size_t)st.st_size) {
    ssize_t r = read(fd, d + n, (size_t)st.st_size - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      free(d);
      return hcs_error_make(err, r < 0 ? errno : EIO, "read `%s`", what);
    }
    n += (size_t)r;
  }
  *out = d;
  *len = n;
  return 0;
}

static int open_beneath(int dirfd, const char *path) {
  struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
                         .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/* A static executable has no PT_INTERP program header. */
static int check_static(const unsigned char *d, size_t n, const char *what, hcs_error_t *err) {
  if (n < 64 || memcmp(d, "\177ELF", 4) != 0 || d[4] != 2)
    return hcs_error_make(err, 0, "use `%s` in the initramfs: not a 64-bit ELF executable", what);
  uint64_t phoff;
  uint16_t phentsize, phnum;
  memcpy(&phoff, d + 32, 8);
  memcpy(&phentsize, d + 54, 2);
  memcpy(&phnum, d + 56, 2);
  for (unsigned i = 0; i < phnum; i++) {
    uint64_t at = phoff + (uint64_t)i * phentsize;
    if (phentsize < 4 || at + 4 > n) break;
    uint32_t type;
    memcpy(&type, d + at, 4);
    if (type == 3 /* PT_INTERP */)
      return hcs_error_make(err, 0, "use `%s` in the initramfs: it is dynamically linked (a static build is needed)",
                            what);
  }
  return 0;
}

static int load_host_file(const char *path, const char *what, unsigned char **d, size_t *n, hcs_error_t *err) {
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return hcs_error_make(err, errno, "open %s `%s`", what, path);
  if (read_fd(fd, path, d, n, err) < 0) return -1;
  return check_static(*d, *n, path, err);
}

static char *default_agent(void) {
  const char *env = getenv("HCS_AGENT");
  if (env && *env) return hcs_xstrdup(env);
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = 0;
      char *cand = hcs_xasprintf("%s/hcs-agent", exe);
      if (access(cand, X_OK) == 0) return cand;
      free(cand);
    }
  }
#ifdef HCS_AGENT_INSTALLED
  return hcs_xstrdup(HCS_AGENT_INSTALLED);
#else
  return hcs_xstrdup("/usr/local/libexec/hcs/hcs-agent");
#endif
}

/* The module's name from its path: basename without .ko[.xz|.zst|.gz], '-' as '_'. */
static char *module_name(const char *path) {
  const char *b = strrchr(path, '/');
  char *name = hcs_xstrdup(b ? b + 1 : path);
  char *ko = strstr(name, ".ko");
  if (ko) *ko = 0;
  for (char *p = name; *p; p++)
    if (*p == '-') *p = '_';
  return name;
}

static bool safe_module_path(const char *p) {
  if (!*p || *p == '/' || strlen(p) >= PATH_MAX / 2) return false;
  for (const char *s = p; *s; s++)
    if ((unsigned char)*s < 0x21 || (unsigned char)*s == 0x7f) return false;
  return !(strcmp(p, "..") == 0 || strncmp(p, "../", 3) == 0 || strstr(p, "/../") ||
           (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0));
}

/* Resolve the modules directory: DIR itself (it has modules.dep), DIR/VERSION, or the only version in DIR. */
static int resolve_modules_dir(const hcs_vm_initrd_options_t *o, char **dir, char **version, hcs_error_t *err) {
  if (o->kernel_version && (!*o->kernel_version || strchr(o->kernel_version, '/') ||
                            strcmp(o->kernel_version, ".") == 0 || strcmp(o->kernel_version, "..") == 0))
    return hcs_error_make(err, 0, "invalid kernel version `%s`", o->kernel_version);
  cleanup_free char *dep = hcs_xasprintf("%s/modules.dep", o->modules_dir);
  if (hcs_path_exists(dep)) {
    *dir = hcs_xstrdup(o->modules_dir);
    const char *b = strrchr(o->modules_dir, '/');
    *version = hcs_xstrdup(o->kernel_version ? o->kernel_version : b && b[1] ? b + 1 : o->modules_dir);
    return 0;
  }
  if (o->kernel_version) {
    *dir = hcs_xasprintf("%s/%s", o->modules_dir, o->kernel_version);
    free(dep);
    dep = hcs_xasprintf("%s/modules.dep", *dir);
    if (!hcs_path_exists(dep)) {
      free(*dir);
      *dir = NULL;
      return hcs_error_make(err, ENOENT, "find the modules of kernel `%s` in `%s` (no modules.dep)", o->kernel_version,
                            o->modules_dir);
    }
    *version = hcs_xstrdup(o->kernel_version);
    return 0;
  }
  cleanup_dir DIR *d = opendir(o->modules_dir);
  if (!d) return hcs_error_make(err, errno, "open kernel modules directory `%s`", o->modules_dir);
  cleanup_json json_t *found = json_array();
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    cleanup_free char *p = hcs_xasprintf("%s/%s/modules.dep", o->modules_dir, e->d_name);
    if (hcs_path_exists(p)) json_array_append_new(found, json_string(e->d_name));
  }
  if (json_array_size(found) != 1) {
    cleanup_free char *list = json_dumps(found, JSON_COMPACT);
    return hcs_error_make(err, 0, "choose a kernel with --kernel: `%s` holds %zu kernels' modules %s", o->modules_dir,
                          json_array_size(found), list ? list : "");
  }
  *version = hcs_xstrdup(json_string_value(json_array_get(found, 0)));
  *dir = hcs_xasprintf("%s/%s", o->modules_dir, *version);
  return 0;
}

/* Add `path` (a modules.dep key) and its dependencies, deepest first. */
static int add_module(json_t *deps, json_t *chosen, const char *path, int depth, hcs_error_t *err) {
  if (json_object_get(chosen, path)) return 0;
  if (depth > 64) return hcs_error_make(err, 0, "read modules.dep: dependencies of `%s` nest too deep", path);
  json_t *list = json_object_get(deps, path);
  if (!list) return hcs_error_make(err, 0, "read modules.dep: `%s` is a dependency but has no line", path);
  json_object_set_new(chosen, path, json_true());
  size_t i;
  json_t *dep;
  json_array_foreach(list, i, dep) if (add_module(deps, chosen, json_string_value(dep), depth + 1, err) < 0) return -1;
  return 0;
}

char *hcs_vm_initrd_build(const hcs_vm_initrd_options_t *o, const char *output, hcs_error_t *err) {
  if (!o || !o->modules_dir || !output) {
    hcs_error_make(err, EINVAL, "build initramfs: the kernel modules directory and the output are required");
    return NULL;
  }
  cleanup_free char *dir = NULL, *version = NULL;
  if (resolve_modules_dir(o, &dir, &version, err) < 0) return NULL;
  cleanup_close int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) {
    hcs_error_make(err, errno, "open kernel modules directory `%s`", dir);
    return NULL;
  }
  /* modules.dep: "path: dep dep ..."; modules.builtin: paths built in */
  cleanup_json json_t *deps = json_object(), *byname = json_object(), *builtin = json_object();
  cleanup_free unsigned char *text = NULL;
  size_t len = 0;
  {
    cleanup_close int fd = open_beneath(dirfd, "modules.dep");
    if (fd < 0 || read_fd(fd, "modules.dep", &text, &len, err) < 0) {
      if (fd < 0) hcs_error_make(err, errno, "open `%s/modules.dep`", dir);
      return NULL;
    }
    text[len] = 0;
  }
  char *save = NULL;
  for (char *line = strtok_r((char *)text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *colon = strchr(line, ':');
    if (!colon) continue;
    *colon = 0;
    if (!safe_module_path(line)) {
      hcs_error_make(err, 0, "read `%s/modules.dep`: unsafe module path `%.100s`", dir, line);
      return NULL;
    }
    json_t *list = json_array();
    char *s2 = NULL;
    for (char *t = strtok_r(colon + 1, " \t", &s2); t; t = strtok_r(NULL, " \t", &s2)) {
      if (!safe_module_path(t)) {
        json_decref(list);
        hcs_error_make(err, 0, "read `%s/modules.dep`: unsafe module path `%.100s`", dir, t);
        return NULL;
      }
      json_array_append_new(list, json_string(t));
    }
    json_object_set_new(deps, line, list);
    cleanup_free char *name = module_name(line);
    json_object_set_new(byname, name, json_string(line));
  }
  {
    cleanup_free unsigned char *b = NULL;
    size_t blen = 0;
    cleanup_close int fd = open_beneath(dirfd, "modules.builtin");
    if (fd >= 0 && read_fd(fd, "modules.builtin", &b, &blen, NULL) == 0) {
      b[blen] = 0;
      char *s3 = NULL;
      for (char *line = strtok_r((char *)b, "\n", &s3); line; line = strtok_r(NULL, "\n", &s3)) {
        cleanup_free char *name = module_name(line);
        json_object_set_new(builtin, name, json_true());
      }
    }
  }
  cleanup_json json_t *chosen = json_object(), *names = json_array(), *builtins = json_array();
  for (size_t i = 0; i < HCS_ARRAY_SIZE(wanted_modules); i++) {
    const char *name = wanted_modules[i];
    const char *path = json_string_value(json_object_get(byname, name));
    if (path) {
      if (add_module(deps, chosen, path, 0, err) < 0) {
        hcs_error_wrap(err, "resolve module `%s`", name);
        return NULL;
      }
    } else if (json_object_get(builtin, name)) {
      json_array_append_new(builtins, json_string(name));
    } else if (i < REQUIRED_MODULES) {
      hcs_error_make(err, 0, "find module `%s` in `%s`: neither in modules.dep nor built in (modules.builtin)", name,
                     dir);
      return NULL;
    }
  }
  /* the agent and busybox */
  cleanup_free char *agent = o->agent ? hcs_xstrdup(o->agent) : default_agent();
  const char *busybox = o->busybox ? o->busybox : "/bin/busybox";
  cleanup_free unsigned char *agent_d = NULL, *bb_d = NULL;
  size_t agent_n = 0, bb_n = 0;
  if (load_host_file(agent, "the guest agent", &agent_d, &agent_n, err) < 0) return NULL;
  if (load_host_file(busybox, "busybox (Debian's busybox-static)", &bb_d, &bb_n, err) < 0) return NULL;

  struct cpio c = {0};
  cleanup_json json_t *made = json_object();
  static const char *const dirs[] = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys",
                                     "tmp", "run",  "etc", "root",    "mnt",      "lib", "var"};
  cpio_entry(&c, ".", S_IFDIR | 0755, 0, 0, NULL, 0);
  for (size_t i = 0; i < HCS_ARRAY_SIZE(dirs); i++) {
    json_object_set_new(made, dirs[i], json_true());
    cpio_entry(&c, dirs[i], S_IFDIR | (strcmp(dirs[i], "tmp") == 0 ? 01777 : 0755), 0, 0, NULL, 0);
  }
  cpio_entry(&c, "dev/console", S_IFCHR | 0600, 5, 1, NULL, 0); /* the kernel opens it for init's stdio */
  cpio_entry(&c, "dev/null", S_IFCHR | 0666, 1, 3, NULL, 0);
  cpio_entry(&c, "init", S_IFREG | 0755, 0, 0, agent_d, agent_n);
  cpio_entry(&c, "bin/busybox", S_IFREG | 0755, 0, 0, bb_d, bb_n);
  static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
  static const char group[] = "root:x:0:\nnogroup:x:65534:\n";
  cpio_entry(&c, "etc/passwd", S_IFREG | 0644, 0, 0, passwd, sizeof(passwd) - 1);
  cpio_entry(&c, "etc/group", S_IFREG | 0644, 0, 0, group, sizeof(group) - 1);
  /* modules, and a modules.dep of just them */
  size_t deplen = 0, depcap = 4096;
  cleanup_free char *dep = hcs_xmalloc(depcap);
  const char *path;
  json_t *v;
  json_object_foreach(chosen, path, v) {
    cleanup_close int fd = open_beneath(dirfd, path);
    cleanup_free unsigned char *d = NULL;
    size_t n = 0;
    if (fd < 0) {
      hcs_error_make(err, errno, "open module `%s/%s`", dir, path);
      free(c.d);
      return NULL;
    }
    if (read_fd(fd, path, &d, &n, err) < 0) {
      hcs_error_wrap(err, "read module in `%s`", dir);
      free(c.d);
      return NULL;
    }
    cleanup_free char *dest = hcs_xasprintf("lib/modules/%s/%s", version, path);
    cpio_dirs(&c, made, dest);
    cpio_entry(&c, dest, S_IFREG | 0644, 0, 0, d, n);
    cleanup_free char *name = module_name(path);
    json_array_append_new(names, json_string(name));
    cleanup_free char *line = hcs_xasprintf("%s:", path);
    size_t i;
    json_t *d2;
    json_array_foreach(json_object_get(deps, path), i, d2) {
      char *l2 = hcs_xasprintf("%s %s", line, json_string_value(d2));
      free(line);
      line = l2;
    }
    size_t ll = strlen(line);
    while (deplen + ll + 2 > depcap)
      dep = hcs_xrealloc(dep, depcap *= 2);
    memcpy(dep + deplen, line, ll);
    deplen += ll;
    dep[deplen++] = '\n';
  }
  cleanup_free char *depname = hcs_xasprintf("lib/modules/%s/modules.dep", version);
  cpio_dirs(&c, made, depname);
  cpio_entry(&c, depname, S_IFREG | 0644, 0, 0, dep, deplen);
  cpio_entry(&c, "TRAILER!!!", 0, 0, 0, NULL, 0);

  struct libdeflate_compressor *z = libdeflate_alloc_compressor(6);
  if (!z) {
    free(c.d);
    hcs_error_make(err, ENOMEM, "build initramfs: allocate a compressor");
    return NULL;
  }
  size_t bound = libdeflate_gzip_compress_bound(z, c.len);
  cleanup_free unsigned char *gz = hcs_xmalloc(bound);
  size_t gzlen = libdeflate_gzip_compress(z, c.d, c.len, gz, bound);
  libdeflate_free_compressor(z);
  free(c.d);
  if (!gzlen) {
    hcs_error_make(err, 0, "build initramfs: gzip failed");
    return NULL;
  }
  if (hcs_write_file_atomic(output, gz, gzlen, 0644, err) < 0) return NULL;
  cleanup_json json_t *sum = json_pack("{s:s,s:s,s:I,s:O,s:O,s:s}", "Path", output, "KernelVersion", version, "Size",
                                       (json_int_t)gzlen, "Modules", names, "Builtin", builtins, "Agent", agent);
  return hcs_json_dumps(sum);
}
