/* The device allowlist below the backends: the BPF program compiled from
 * rules (its size, that the kernel's verifier takes it, the error when it
 * does not), what it decides, probed by a child in a real cgroup2 cgroup
 * with the program attached (mknod and open of nodes in a scratch
 * directory, most of a major no driver has: allowed gives ENXIO, denied
 * EPERM), and the rules v1 writes (devices.list).  The cgroup2
 * hierarchy is /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host:
 * a device program runs for the tasks of its cgroup in the default
 * hierarchy either way.  Systems on v2 are checked in test_compute_v2.c. */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compute/compute.h"
#include "tap.h"

/* Local/experimental use (Documentation/admin-guide/devices.txt): no driver. */
#define FAKE 240

static char scratch[] = "/tmp/hcs-test.XXXXXX";
static char cg2[64], probe_cg[128];

static bool is_fs(const char *path, unsigned long magic) {
  struct statfs sfs;
  return statfs(path, &sfs) == 0 && (unsigned long)sfs.f_type == magic;
}

static int attach(const char *dir, int prog, uint32_t flags) {
  cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.target_fd = (uint32_t)fd;
  a.attach_bpf_fd = (uint32_t)prog;
  a.attach_type = BPF_CGROUP_DEVICE;
  a.attach_flags = flags;
  return fd < 0 ? -1 : (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof a);
}

static void rmdir_retry(const char *d) {
  for (int i = 0; i < 200 && rmdir(d) < 0 && errno == EBUSY; i++)
    nanosleep(&(struct timespec){0, 1000000}, NULL);
}

/* A fresh probe cgroup with the program for `rules` (nothing else). */
static bool use_rules(const hcs_device_rule_t *rules, size_t n) {
  rmdir_retry(probe_cg);
  if (mkdir(probe_cg, 0755) < 0) return false;
  size_t len = 0;
  hcs_error_t err = NULL;
  cleanup_free struct bpf_insn *prog = hcs_device_filter(rules, n, &len);
  cleanup_close int fd = hcs_device_filter_load(prog, len, &err);
  if (fd < 0) printf("#   %s\n", hcs_error_message(err));
  hcs_error_release(&err);
  return fd >= 0 && attach(probe_cg, fd, BPF_F_ALLOW_MULTI) == 0;
}

/* In a child in the probe cgroup: "m" mknods a node, "r"/"w"/"rw" open one
 * (made beforehand, outside).  0 or the errno. */
static int probe(const char *op, char type, unsigned maj, unsigned min) {
  char node[PATH_MAX];
  snprintf(node, sizeof node, "%s/node", scratch);
  unlink(node);
  mode_t kind = type == 'b' ? S_IFBLK : S_IFCHR;
  bool mk = strcmp(op, "m") == 0;
  if (!mk && mknod(node, kind | 0600, makedev(maj, min)) < 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    if (hcs_cg_write(probe_cg, "cgroup.procs", "0") < 0) _exit(255);
    int r;
    if (mk) {
      r = mknod(node, kind | 0600, makedev(maj, min));
    } else {
      int flags = strcmp(op, "rw") == 0 ? O_RDWR : strcmp(op, "w") == 0 ? O_WRONLY : O_RDONLY;
      r = open(node, flags | O_CLOEXEC | O_NONBLOCK);
    }
    _exit(r >= 0 ? 0 : errno);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  unlink(node);
  return WEXITSTATUS(status);
}

#define ALLOWED(e) ((e) == 0 || (e) == ENXIO)
#define R(allow, type, maj, min, acc) ((hcs_device_rule_t){allow, type, maj, min, acc})

static bool has_code(const struct bpf_insn *p, size_t len, uint8_t code) {
  for (size_t i = 0; i < len; i++)
    if (p[i].code == code) return true;
  return false;
}

static void test_program(void) {
  size_t len = 0, n = hcs_n_default_devices;
  cleanup_free struct bpf_insn *prog = hcs_device_filter(hcs_default_devices, n, &len);
  /* 11 to load the context and refuse unknown bits; 3 chains (no bit, m,
   * r+w) of at most 3 + 11 per rule + 2; 2 to allow. */
  ok(len > 13 + 3 * 5 && len <= 13 + 3 * (5 + n * 11), "the default list is %zu instructions for %zu rules", len, n);
  hcs_error_t err = NULL;
  cleanup_close int fd = hcs_device_filter_load(prog, len, &err);
  ok(fd >= 0, "the verifier takes it");
  if (err) printf("#   %s\n", hcs_error_message(err)), hcs_error_release(&err);

  /* A last rule matching everything decides alone: nothing before it is compiled. */
  hcs_device_rule_t all[] = {R(true, 'c', 1, 3, "rwm"), R(false, 'a', -1, -1, "mwr")};
  cleanup_free struct bpf_insn *deny = hcs_device_filter(all, 2, &len);
  ok(!has_code(deny, len, BPF_ALU | BPF_XOR | BPF_K) && len < 30,
     "a last `deny a *:* rwm`: no device compared, %zu instructions", len);
  cleanup_close int dfd = hcs_device_filter_load(deny, len, &err);
  ok(dfd >= 0, "the verifier takes it");
  hcs_error_release(&err);

  /* Every shape: types a/b/c, wildcards, partial access, deny, many rules
   * (none for every device, which would end the chains early). */
  hcs_device_rule_t *many = hcs_xcalloc(4000, sizeof *many);
  for (int i = 0; i < 4000; i++) {
    many[i] = R(i % 3 != 0, i % 105 ? "abc"[i % 3] : 'c', i % 5 ? i % 4096 : -1, i % 7 ? i : -1, "m");
    if (i % 2) strcpy(many[i].access, "rw");
  }
  cleanup_free struct bpf_insn *big = hcs_device_filter(many, 600, &len);
  cleanup_close int bfd = hcs_device_filter_load(big, len, &err);
  ok(bfd >= 0, "600 rules of every shape load (%zu instructions)", len);
  if (err) printf("#   %s\n", hcs_error_message(err)), hcs_error_release(&err);
  errno = 0;
  ok(hcs_device_filter(many, 4000, &len) == NULL && errno == E2BIG, "4000 rules: too far to jump, E2BIG");
  free(many);

  /* A program the verifier refuses: the error says why. */
  struct bpf_insn bad = {.code = BPF_JMP | BPF_EXIT};
  ok(hcs_device_filter_load(&bad, 1, &err) < 0, "a program returning an unset R0 is refused");
  has_substr(hcs_error_message(err), "load the device filter", "the error says what failed");
  has_substr(hcs_error_message(err), "verifier: ", "and quotes the verifier");
  has_substr(hcs_error_message(err), "R0", "which names R0");
  printf("#   %s\n", hcs_error_message(err));
  hcs_error_release(&err);
}

static void test_decisions(void) {
  /* The defaults alone. */
  ok(use_rules(hcs_default_devices, hcs_n_default_devices), "probe cgroup with the default list");
  is_int(probe("rw", 'c', 1, 3), 0, "defaults: /dev/null (c 1:3) opens read-write");
  ok(probe("rw", 'c', 136, 9) != EPERM, "defaults: c 136:9 (a pts) is allowed");
  is_int(probe("r", 'c', FAKE, 0), EPERM, "defaults: c %d:0 cannot be opened", FAKE);
  is_int(probe("r", 'c', 1, 1), EPERM, "defaults: c 1:1 (/dev/mem) cannot be opened");
  is_int(probe("r", 'b', FAKE, 0), EPERM, "defaults: b %d:0 cannot be opened", FAKE);
  is_int(probe("m", 'b', FAKE, 0), 0, "defaults: any node can be made (b *:* m)");
  is_int(probe("m", 'c', FAKE, 0), 0, "defaults: any node can be made (c *:* m)");

  /* A deny after a broader allow wins, for its device only. */
  hcs_device_rule_t narrow[] = {R(true, 'c', FAKE, -1, "rwm"), R(false, 'c', FAKE, 1, "rwm")};
  ok(use_rules(narrow, 2), "probe cgroup: allow c %d:* rwm, deny c %d:1 rwm", FAKE, FAKE);
  ok(ALLOWED(probe("rw", 'c', FAKE, 0)), "c %d:0 opens (the driver is missing: ENXIO)", FAKE);
  is_int(probe("r", 'c', FAKE, 1), EPERM, "c %d:1 is denied by the later rule", FAKE);
  is_int(probe("m", 'c', FAKE, 1), EPERM, "and cannot be made");
  is_int(probe("r", 'b', FAKE, 0), EPERM, "a block device of that major is not allowed");

  /* Access bits are decided one by one: the last rule naming each wins. */
  hcs_device_rule_t bits[] = {R(true, 'c', FAKE, 0, "r"), R(true, 'c', FAKE, 0, "w"), R(true, 'c', FAKE, 1, "rwm"),
                              R(false, 'c', FAKE, 1, "w")};
  ok(use_rules(bits, 4), "probe cgroup: r and w of c %d:0 in two rules; w of c %d:1 taken back", FAKE, FAKE);
  ok(ALLOWED(probe("rw", 'c', FAKE, 0)), "c %d:0 opens read-write (r and w from two rules)", FAKE);
  is_int(probe("m", 'c', FAKE, 0), EPERM, "c %d:0 cannot be made (no rule names m)", FAKE);
  ok(ALLOWED(probe("r", 'c', FAKE, 1)), "c %d:1 opens read-only", FAKE);
  is_int(probe("w", 'c', FAKE, 1), EPERM, "c %d:1 cannot be opened for writing", FAKE);
  is_int(probe("rw", 'c', FAKE, 1), EPERM, "nor read-write");
  is_int(probe("m", 'c', FAKE, 1), 0, "but can be made");

  /* Type a: both kinds, for the given device only. */
  hcs_device_rule_t a[] = {R(true, 'a', FAKE, 3, "r")};
  ok(use_rules(a, 1), "probe cgroup: allow a %d:3 r", FAKE);
  ok(ALLOWED(probe("r", 'c', FAKE, 3)) && ALLOWED(probe("r", 'b', FAKE, 3)), "c and b %d:3 open read-only", FAKE);
  is_int(probe("w", 'c', FAKE, 3), EPERM, "not for writing");
  is_int(probe("r", 'c', FAKE, 4), EPERM, "another minor is denied");
  is_int(probe("rw", 'c', 1, 3), EPERM, "and so is /dev/null: nothing else is allowed");

  /* Everything but block devices; then a last deny of everything. */
  hcs_device_rule_t most[] = {R(true, 'a', -1, -1, "rwm"), R(false, 'b', -1, -1, "rwm")};
  ok(use_rules(most, 2), "probe cgroup: allow a *:* rwm, deny b *:* rwm");
  ok(ALLOWED(probe("rw", 'c', FAKE, 7)), "a char device opens");
  is_int(probe("r", 'b', FAKE, 7), EPERM, "a block device does not");
  hcs_device_rule_t none[] = {R(true, 'a', -1, -1, "rwm"), R(false, 'a', -1, -1, "rwm")};
  ok(use_rules(none, 2), "probe cgroup: allow a *:* rwm, deny a *:* rwm");
  is_int(probe("rw", 'c', 1, 3), EPERM, "/dev/null is denied");
  is_int(probe("m", 'c', FAKE, 7), EPERM, "nothing can be made");
  rmdir_retry(probe_cg);
}

/* v1 writes `a` rules narrower than everything as their b and c halves:
 * the kernel takes any `a` as all devices. */
static void test_v1_rules(void) {
  if (access("/sys/fs/cgroup/devices/cgroup.procs", F_OK) < 0) {
    ok(1, "# SKIP no v1 devices hierarchy");
    return;
  }
  hcs_device_rule_t rules[] = {R(true, 'a', FAKE, 3, "r"), R(false, 'c', 1, 5, "w")};
  hcs_config_t c = {.devices = rules, .n_devices = 2};
  hcs_resources_t res = {0};
  cleanup_free char *rel = hcs_xasprintf("hcs-test-devices-%d", (int)getpid());
  hcs_error_t err = NULL;
  ok(hcs_cgroup_v1_ops.create(rel, &res, &err) == 0 && hcs_cgroup_v1_ops.set_devices(rel, &c, &err) == 0,
     "v1: a cgroup with allow a %d:3 r and deny c 1:5 w", FAKE);
  if (err) printf("#   %s\n", hcs_error_message(err)), hcs_error_release(&err);
  cleanup_free char *list = hcs_xasprintf("/sys/fs/cgroup/devices/%s/devices.list", rel), *text = NULL;
  hcs_read_file(list, &text, NULL, NULL);
  char want[64];
  snprintf(want, sizeof want, "b %d:3 r\nc %d:3 r\n", FAKE, FAKE);
  has_substr(text, want, "devices.list has the b and c halves of the a rule");
  ok(text && !strstr(text, "a *:* rwm"), "and does not allow everything");
  has_substr(text, "c 1:5 rm\n", "the deny took w from c 1:5");
  hcs_cgroup_v1_ops.destroy(rel, NULL);

  /* Rules v1 would not enforce as given are refused, not half applied. */
  struct {
    hcs_device_rule_t rules[2];
    size_t n;
    bool ok;
    const char *what;
  } cases[] = {
      {{R(true, 'c', FAKE, -1, "rwm"), R(false, 'c', FAKE, 1, "rwm")}, 2, false, "a deny narrower than an allow"},
      {{R(false, 'c', -1, -1, "rwm")}, 1, false, "a deny wider than the default allows (c *:*)"},
      {{R(true, 'c', FAKE, 1, "rwm"), R(false, 'c', FAKE, 1, "w")}, 2, true, "a deny of exactly an allowed device"},
      {{R(true, 'a', -1, -1, "rwm"), R(false, 'c', FAKE, 1, "rwm")}, 2, true, "a deny after allowing everything"},
      {{R(false, 'c', FAKE, 9, "rw")}, 1, true, "a deny of access nothing allowed"},
      /* The defaults allow mknod of any node (c *:* m): v1 cannot take m
       * from one device of it. */
      {{R(false, 'c', FAKE, 9, "rwm")}, 1, false, "a deny of m for one device (the defaults allow c *:* m)"},
  };
  for (size_t i = 0; i < HCS_ARRAY_SIZE(cases); i++) {
    hcs_config_t cc = {.devices = cases[i].rules, .n_devices = cases[i].n};
    ok(hcs_cgroup_v1_ops.create(rel, &res, &err) == 0, "v1: a cgroup for case %zu", i);
    int r = hcs_cgroup_v1_ops.set_devices(rel, &cc, &err);
    if (cases[i].ok) {
      ok(r == 0, "v1 takes %s", cases[i].what);
      if (err) printf("#   %s\n", hcs_error_message(err));
    } else {
      ok(r < 0 && hcs_error_status(err) == ENOTSUP, "v1 refuses %s", cases[i].what);
      has_substr(hcs_error_message(err), "cannot be enforced on a cgroup v1 host", "saying why");
    }
    hcs_error_release(&err);
    hcs_cgroup_v1_ops.destroy(rel, NULL);
  }
}

int main(void) {
  if (geteuid() != 0) {
    printf("1..0 # SKIP needs root\n");
    return 0;
  }
  const char *base = is_fs("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC)           ? "/sys/fs/cgroup"
                     : is_fs("/sys/fs/cgroup/unified", CGROUP2_SUPER_MAGIC) ? "/sys/fs/cgroup/unified"
                                                                            : NULL;
  if (base == NULL || mkdtemp(scratch) == NULL) {
    printf("1..0 # SKIP no cgroup2 hierarchy\n");
    return 0;
  }
  snprintf(cg2, sizeof cg2, "%s/hcs-test-devices-%d", base, (int)getpid());
  snprintf(probe_cg, sizeof probe_cg, "%s/probe", cg2);
  if (mkdir(cg2, 0755) < 0) return 1;
  test_program();
  test_decisions();
  test_v1_rules();
  rmdir_retry(cg2);
  ok(rmdir(scratch) == 0 || errno == ENOENT, "nothing left in the scratch directory");
  return tap_done();
}
