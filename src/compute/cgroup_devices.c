/* The device allowlist: the default rules both backends start from, and on
 * cgroup v2 (which has no devices controller) a BPF_PROG_TYPE_CGROUP_DEVICE
 * program generated from the rules and attached to the system's cgroup, as
 * crun and runc do.
 *
 * Each requested access bit (m, r, w) is decided by the last rule that
 * matches the device and names that bit, default deny; a request is allowed
 * when all its bits are.  That is v1's behaviour for the rules v1 can
 * express (a deny takes the bits it names from an earlier allow of the same
 * device; a later allow adds bits), extended to a deny narrower than an
 * earlier allow (v1 ignores `deny c 1:3` after `allow c *:*`; here it
 * denies).  A request with no bit (a block device opened for ioctls only)
 * is decided by the last rule matching the device, as in v1 and runc, and a
 * bit this code does not know is denied. */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compute/compute.h"

/* Docker's default allowlist: mknod of any node, and the standard nodes
 * (null, zero, full, random, urandom, tty, console, ptmx, pts, tun). */
const hcs_device_rule_t hcs_default_devices[] = {
    {true, 'c', -1, -1, "m"}, {true, 'b', -1, -1, "m"}, {true, 'c', 1, 3, "rwm"},    {true, 'c', 1, 5, "rwm"},
    {true, 'c', 1, 7, "rwm"}, {true, 'c', 1, 8, "rwm"}, {true, 'c', 1, 9, "rwm"},    {true, 'c', 5, 0, "rwm"},
    {true, 'c', 5, 1, "rwm"}, {true, 'c', 5, 2, "rwm"}, {true, 'c', 136, -1, "rwm"}, {true, 'c', 10, 200, "rwm"},
};
const size_t hcs_n_default_devices = HCS_ARRAY_SIZE(hcs_default_devices);

int hcs_device_rule_format(const hcs_device_rule_t *r, char type, char *buf, size_t size) {
  char maj[24] = "*", min[24] = "*";
  if (r->major >= 0) snprintf(maj, sizeof maj, "%lld", (long long)r->major);
  if (r->minor >= 0) snprintf(min, sizeof min, "%lld", (long long)r->minor);
  return snprintf(buf, size, "%c %s:%s %s", type ? type : r->type, maj, min, r->access);
}

/* --- the program ---------------------------------------------------------- *
 *
 * The program has one chain of rules per class of access bits (bits every
 * rule names both or neither of: for the default list m, and r with w),
 * plus one for requests without a bit:
 *
 *   if the request has a bit outside m, r, w: return 0
 *   for each class (and "no bit"):
 *     if the request has the class's bits (or has none):
 *       for each rule naming them, last first, matching the device:
 *         allow: the class is allowed, go to the next class
 *         deny:  return 0
 *       return 0 (no rule)
 *   return 1
 *
 * A rule for every device ends its chain: what precedes it never decides.
 *
 * Fields are compared through a scratch copy changed by an XOR, not with
 * `if r4 != major`: the verifier would learn the field's value on one side
 * of every such jump, each rule would add states for the rules after it,
 * and 50 rules would take it ~50 ms, 200 over a second (measured here).
 * The copy is dead at the jump's target, and no register the chains read
 * ever changes, so the states there merge. */

/* Registers: R1 scratch (the context on entry), R2 the requested access
 * bits, R3 the device type, R4 the major, R5 the minor. */
enum { R0, R1, R2, R3, R4, R5 };

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  return (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
}
#define LDX_W(dst, src, off) insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
#define MOV32_REG(dst, src) insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
#define AND32_IMM(dst, imm) insn(BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, imm)
#define XOR32_IMM(dst, imm) insn(BPF_ALU | BPF_XOR | BPF_K, dst, 0, 0, imm)
#define RSH32_IMM(dst, imm) insn(BPF_ALU | BPF_RSH | BPF_K, dst, 0, 0, imm)
#define MOV64_IMM(dst, imm) insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define JNE_IMM(dst, imm) insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, 0, imm)
#define JEQ_IMM(dst, imm) insn(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, 0, imm)
#define JA() insn(BPF_JMP | BPF_JA, 0, 0, 0, 0)
#define EXIT() insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

#define ACC_ALL (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)

static int32_t access_bits(const char *access) {
  int32_t bits = 0;
  for (const char *p = access; *p; p++)
    bits |= *p == 'r' ? BPF_DEVCG_ACC_READ : *p == 'w' ? BPF_DEVCG_ACC_WRITE : *p == 'm' ? BPF_DEVCG_ACC_MKNOD : 0;
  return bits;
}

typedef struct {
  struct bpf_insn *p;
  size_t n, cap;
  bool too_far; /* a jump beyond the 16-bit offset */
} prog_t;

static size_t emit(prog_t *g, struct bpf_insn i) {
  if (g->n == g->cap) g->p = hcs_xrealloc(g->p, (g->cap = g->cap ? 2 * g->cap : 256) * sizeof *g->p);
  g->p[g->n] = i;
  return g->n++;
}

/* Point the jump at `at` to the next instruction emitted. */
static void land(prog_t *g, size_t at) {
  size_t off = g->n - (at + 1);
  if (off > INT16_MAX) g->too_far = true;
  g->p[at].off = (int16_t)off;
}

/* The chain for requests with the bits `bits` (0: with none). */
static void emit_chain(prog_t *g, const hcs_device_rule_t *rules, size_t n, int32_t bits) {
  size_t skip;
  if (bits == 0) {
    skip = emit(g, JNE_IMM(R2, 0));
  } else {
    emit(g, MOV32_REG(R1, R2));
    emit(g, AND32_IMM(R1, bits));
    skip = emit(g, JEQ_IMM(R1, 0));
  }
  size_t *allowed = hcs_xcalloc(n + 1, sizeof *allowed), nallowed = 0;
  bool decided = false;
  for (size_t i = n; i-- > 0 && !decided;) {
    const hcs_device_rule_t *r = &rules[i];
    if (bits && !(access_bits(r->access) & bits)) continue;
    const struct {
      bool check;
      uint8_t reg;
      int32_t value;
    } fields[] = {
        {r->type == 'b' || r->type == 'c', R3, r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR},
        {r->major >= 0, R4, (int32_t)r->major},
        {r->minor >= 0, R5, (int32_t)r->minor},
    };
    size_t next[3], nnext = 0;
    for (size_t f = 0; f < HCS_ARRAY_SIZE(fields); f++) {
      if (!fields[f].check) continue;
      emit(g, MOV32_REG(R1, fields[f].reg));
      emit(g, XOR32_IMM(R1, fields[f].value));
      next[nnext++] = emit(g, JNE_IMM(R1, 0));
    }
    decided = nnext == 0; /* every device: the end of the chain */
    if (!r->allow) {
      emit(g, MOV64_IMM(R0, 0));
      emit(g, EXIT());
    } else if (!decided) {
      allowed[nallowed++] = emit(g, JA());
    } /* else falls through to the next chain */
    for (size_t k = 0; k < nnext; k++)
      land(g, next[k]);
  }
  if (!decided) { /* no rule matched */
    emit(g, MOV64_IMM(R0, 0));
    emit(g, EXIT());
  }
  land(g, skip);
  for (size_t k = 0; k < nallowed; k++)
    land(g, allowed[k]);
  free(allowed);
}

struct bpf_insn *hcs_device_filter(const hcs_device_rule_t *rules, size_t n, size_t *len) {
  /* Classes of access bits: one chain decides all the bits of a class. */
  int32_t classes[4] = {0}, first[4] = {0};
  size_t nclasses = 1; /* classes[0] = 0: requests without a bit */
  static const int32_t bits[] = {BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE};
  for (size_t b = 0; b < HCS_ARRAY_SIZE(bits); b++) {
    size_t c = 1;
    for (; c < nclasses; c++) {
      bool same = true;
      for (size_t i = 0; i < n && same; i++)
        same = !(access_bits(rules[i].access) & bits[b]) == !(access_bits(rules[i].access) & first[c]);
      if (same) break;
    }
    if (c == nclasses) first[nclasses++] = bits[b];
    classes[c] |= bits[b];
  }
  prog_t g = {0};
  emit(&g, LDX_W(R2, R1, offsetof(struct bpf_cgroup_dev_ctx, access_type)));
  emit(&g, MOV32_REG(R3, R2));
  emit(&g, AND32_IMM(R3, 0xffff));
  emit(&g, RSH32_IMM(R2, 16));
  emit(&g, LDX_W(R4, R1, offsetof(struct bpf_cgroup_dev_ctx, major)));
  emit(&g, LDX_W(R5, R1, offsetof(struct bpf_cgroup_dev_ctx, minor)));
  emit(&g, MOV32_REG(R1, R2));
  emit(&g, AND32_IMM(R1, ~ACC_ALL));
  size_t known = emit(&g, JEQ_IMM(R1, 0));
  emit(&g, MOV64_IMM(R0, 0));
  emit(&g, EXIT());
  land(&g, known);
  for (size_t c = 0; c < nclasses; c++)
    emit_chain(&g, rules, n, classes[c]);
  emit(&g, MOV64_IMM(R0, 1));
  emit(&g, EXIT());
  if (g.too_far) {
    free(g.p);
    errno = E2BIG;
    return NULL;
  }
  *len = g.n;
  return g.p;
}

/* --- loading and attaching ------------------------------------------------ */

static long sys_bpf(int cmd, union bpf_attr *a) { return syscall(SYS_bpf, cmd, a, sizeof *a); }

/* The last lines of the verifier's log, on one line. */
static void log_tail(char *log, char *out, size_t size) {
  size_t len = strlen(log);
  while (len && (log[len - 1] == '\n' || log[len - 1] == ' '))
    log[--len] = '\0';
  const char *start = len > size - 1 ? log + len - (size - 1) : log;
  snprintf(out, size, "%s", start);
  for (char *c = out; *c; c++)
    if (*c == '\n') *c = ';';
}

int hcs_device_filter_load(const struct bpf_insn *prog, size_t len, hcs_error_t *err) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  a.insns = (uint64_t)(uintptr_t)prog;
  a.insn_cnt = (uint32_t)len;
  a.license = (uint64_t)(uintptr_t) "GPL";
  int fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
  if (fd >= 0) return fd;
  int e = errno;
  /* Again with the verifier's log, only to say why. */
  size_t logsize = 1 << 16;
  cleanup_free char *log = hcs_xcalloc(1, logsize);
  a.log_buf = (uint64_t)(uintptr_t)log;
  a.log_size = (uint32_t)logsize;
  a.log_level = 1;
  fd = (int)sys_bpf(BPF_PROG_LOAD, &a);
  if (fd >= 0) return fd; /* it loaded this time: the first failure was transient */
  char tail[512];
  log_tail(log, tail, sizeof tail);
  return hcs_error_make(err, e, "load the device filter (%zu instructions)%s%s", len, *tail ? ", verifier: " : "",
                        tail);
}

/* The program for the default rules and c's (*len instructions). */
static struct bpf_insn *program_for(const hcs_config_t *c, size_t *len, hcs_error_t *err) {
  size_t n = hcs_n_default_devices + c->n_devices;
  cleanup_free hcs_device_rule_t *rules = hcs_xcalloc(n, sizeof *rules);
  memcpy(rules, hcs_default_devices, sizeof hcs_default_devices);
  if (c->n_devices) memcpy(rules + hcs_n_default_devices, c->devices, c->n_devices * sizeof *rules);
  struct bpf_insn *prog = hcs_device_filter(rules, n, len);
  if (prog == NULL) hcs_error_make(err, errno, "device allowlist: %zu rules are too many", n);
  return prog;
}

/* Loading costs the verifier about a millisecond for the default list. */
static struct {
  struct bpf_insn *prog;
  size_t len;
  int fd;
} loaded[8];
static size_t loaded_next;
static pthread_mutex_t loaded_lock = PTHREAD_MUTEX_INITIALIZER;

/* Across processes (each `hcs run` is one): programs pinned in the BPF
 * filesystem at /sys/fs/bpf when it is mounted there (systemd does), named
 * after their instructions.  Like the loaded programs, pins live until the
 * reboot; the directory is root's. */
#define BPF_FS "/sys/fs/bpf"
#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

static char *pin_path(const struct bpf_insn *prog, size_t len) {
  struct statfs fs;
  if (statfs(BPF_FS, &fs) < 0 || (unsigned long)fs.f_type != BPF_FS_MAGIC) return NULL;
  uint64_t h = hcs_fnv1a(HCS_FNV1A_INIT, prog, len * sizeof *prog);
  return hcs_xasprintf(BPF_FS "/hcs-devices-%016llx-%zu", (unsigned long long)h, len);
}

/* The pinned program, if it is there and is a device program. */
static int pinned_get(const char *path) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.pathname = (uint64_t)(uintptr_t)path;
  int fd = (int)sys_bpf(BPF_OBJ_GET, &a);
  if (fd < 0) return -1;
  struct bpf_prog_info info;
  memset(&info, 0, sizeof info);
  memset(&a, 0, sizeof a);
  a.info.bpf_fd = (uint32_t)fd;
  a.info.info_len = sizeof info;
  a.info.info = (uint64_t)(uintptr_t)&info;
  if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a) < 0 || info.type != BPF_PROG_TYPE_CGROUP_DEVICE) {
    close(fd);
    return -1;
  }
  return fd;
}

static void pin(int fd, const char *path) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.pathname = (uint64_t)(uintptr_t)path;
  a.bpf_fd = (uint32_t)fd;
  if (sys_bpf(BPF_OBJ_PIN, &a) < 0 && errno != EEXIST) hcs_debug("pin `%s`: %s", path, strerror(errno));
}

int hcs_device_filter_get(const hcs_config_t *c, hcs_error_t *err) {
  size_t len = 0;
  struct bpf_insn *prog = program_for(c, &len, err);
  if (prog == NULL) return -1;
  pthread_mutex_lock(&loaded_lock);
  for (size_t i = 0; i < HCS_ARRAY_SIZE(loaded); i++)
    if (loaded[i].prog && loaded[i].len == len && memcmp(loaded[i].prog, prog, len * sizeof *prog) == 0) {
      int fd = loaded[i].fd;
      pthread_mutex_unlock(&loaded_lock);
      free(prog);
      return fd;
    }
  cleanup_free char *path = pin_path(prog, len);
  int fd = path ? pinned_get(path) : -1;
  if (fd < 0) {
    fd = hcs_device_filter_load(prog, len, err);
    if (fd < 0) {
      pthread_mutex_unlock(&loaded_lock);
      free(prog);
      return -1;
    }
    if (path) pin(fd, path);
  }
  /* The oldest entry makes room; systems it was attached to keep it. */
  size_t slot = loaded_next++ % HCS_ARRAY_SIZE(loaded);
  free(loaded[slot].prog);
  if (loaded[slot].prog) close(loaded[slot].fd);
  loaded[slot].prog = prog;
  loaded[slot].len = len;
  loaded[slot].fd = fd;
  pthread_mutex_unlock(&loaded_lock);
  return fd;
}

int hcs_device_filter_attach(const char *dir, const hcs_config_t *c, hcs_error_t *err) {
  cleanup_close int cgfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cgfd < 0) return hcs_error_make(err, errno, "open cgroup `%s`", dir);
  cleanup_close int own = -1;
  int fd = c->device_filter_fd;
  if (fd < 0) {
    size_t len = 0;
    cleanup_free struct bpf_insn *prog = program_for(c, &len, err);
    if (prog == NULL || (own = fd = hcs_device_filter_load(prog, len, err)) < 0)
      return hcs_error_wrap(err, "device allowlist of `%s`", dir);
  }
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.target_fd = (uint32_t)cgfd;
  a.attach_bpf_fd = (uint32_t)fd;
  a.attach_type = BPF_CGROUP_DEVICE;
  /* Multi: programs of the parents still run too (all must allow), and
   * another program can be added here later. */
  a.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf(BPF_PROG_ATTACH, &a) < 0) return hcs_error_make(err, errno, "attach the device filter to `%s`", dir);
  /* The attachment holds the program until the cgroup is removed. */
  return 0;
}
