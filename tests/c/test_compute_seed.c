/* The seed mount namespace (src/compute/seed.c): a system's init namespace
 * is copied from a small template, not from the creator's, so its cost
 * does not grow with the host's mounts; what users see stays the same.
 * The test runs in a mount namespace of its own, a slave of the host's
 * (nothing it mounts reaches the host; the monitors inherit it), whose
 * test root is a shared mount as / is on a systemd host: mounts and
 * unmounts under it propagate to the systems' slave copies.  Real
 * systems, real mounts: busybox rootfs, idle inits, /proc/PID/mountinfo. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compute/compute.h"
#include "tap.h"

static char root[] = "/tmp/hcs-test.XXXXXX";
static char rootfs[PATH_MAX], share[PATH_MAX], parent[64], pin[PATH_MAX + 32], mntns[PATH_MAX];

static char *slurp(const char *path) {
  char *text = NULL;
  if (hcs_read_file(path, &text, NULL, NULL) < 0) return NULL;
  return text;
}

static int lines(const char *text) {
  int n = 0;
  for (const char *p = text; p && *p; p++)
    n += *p == '\n';
  return n;
}

static bool is_mount_root(const char *path) {
  struct statx stx;
  return statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, 0, &stx) == 0 &&
         (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* Mounts of our namespace whose mount point (the 5th field) is `dir` or
 * below it. */
static int mounts_under(const char *dir) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  char line[4096], point[PATH_MAX];
  size_t len = strlen(dir);
  int n = 0;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1 && strncmp(point, dir, len) == 0 &&
        (point[len] == '\0' || point[len] == '/'))
      n++;
  if (f) fclose(f);
  return n;
}

/* The seed's mount table, read by a child that joined it (-1: no pin). */
static int seed_mounts(void) {
  int fd = open(pin, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int p[2];
  if (pipe(p) < 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    if (setns(fd, CLONE_NEWNS) < 0) _exit(1);
    int mi = open("/proc/self/mountinfo", O_RDONLY);
    char buf[4096];
    ssize_t n;
    while (mi >= 0 && (n = read(mi, buf, sizeof buf)) > 0)
      if (write(p[1], buf, (size_t)n) != n) _exit(1);
    _exit(0);
  }
  close(p[1]);
  close(fd);
  char buf[4096];
  ssize_t n;
  int count = 0;
  while ((n = read(p[0], buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; i++)
      count += buf[i] == '\n';
  close(p[0]);
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? count : -1;
}

static bool pin_is_mntns(void) {
  int fd = open(pin, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  bool yes = fd >= 0 && ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNS;
  if (fd >= 0) close(fd);
  return yes;
}

/* An idle system (the built-in init) with the given extras in Container and Linux. */
static hcs_system_t *make(const char *id, const char *container, const char *linux_) {
  cleanup_free char *cfg =
      hcs_xasprintf("{\"Container\":{\"Storage\":{\"Path\":\"%s\"}%s},\"Linux\":{\"CgroupParent\":\"%s\"%s}}", rootfs,
                    container ? container : "", parent, linux_ ? linux_ : "");
  hcs_error_t err = NULL;
  hcs_system_t *cs = hcs_compute_create(root, id, cfg, NULL, &err);
  if (cs == NULL) printf("#   create `%s`: %s\n", id, hcs_error_message(err));
  if (cs && hcs_compute_start(cs, &err) < 0) {
    printf("#   start `%s`: %s\n", id, hcs_error_message(err));
    hcs_compute_delete(cs, true, NULL);
    hcs_compute_close(cs);
    cs = NULL;
  }
  hcs_error_release(&err);
  return cs;
}

static void drop(hcs_system_t *cs) {
  if (cs == NULL) return;
  hcs_error_t err = NULL;
  if (hcs_compute_delete(cs, true, &err) < 0) printf("#   delete: %s\n", hcs_error_message(err));
  hcs_error_release(&err);
  hcs_compute_close(cs);
}

static int init_pid(hcs_system_t *cs) {
  cleanup_free char *text = hcs_compute_properties(cs, NULL, NULL);
  cleanup_json json_t *p = text ? json_loads(text, 0, NULL) : NULL;
  return p ? (int)json_integer_value(json_object_get(p, "Pid")) : -1;
}

static char *mountinfo_of(hcs_system_t *cs) {
  cleanup_free char *path = hcs_xasprintf("/proc/%d/mountinfo", init_pid(cs));
  return slurp(path);
}

/* A file of the system's tree, read through /proc/PID/root. */
static char *read_inside(hcs_system_t *cs, const char *rel) {
  cleanup_free char *path = hcs_xasprintf("/proc/%d/root/%s", init_pid(cs), rel);
  return slurp(path);
}

static bool write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  bool done = f && fputs(text, f) >= 0;
  return f && fclose(f) == 0 && done;
}

/* The seed is made once, pinned, and stays the same size however many
 * systems (and host mounts) there are; a new system's table does not
 * change with 200 more host mounts either. */
static void test_seed_size(void) {
  hcs_system_t *a = make("seed-a", NULL, NULL);
  ok(a != NULL, "create and start a system");
  if (a == NULL) return;
  ok(pin_is_mntns(), "its seed is pinned at %s (NS_GET_NSTYPE: a mount namespace)", pin);
  int seed0 = seed_mounts();
  ok(seed0 > 0 && seed0 < 40, "the seed holds a few mounts (%d)", seed0);
  cleanup_free char *mi_a = mountinfo_of(a);
  int sys0 = lines(mi_a);

  /* 200 bind mounts in the host, under the (shared) test root. */
  cleanup_free char *many = hcs_xasprintf("%s/many", root);
  mkdir(many, 0755);
  int made = 0;
  for (int i = 0; i < 200; i++) {
    cleanup_free char *d = hcs_xasprintf("%s/%d", many, i);
    if (mkdir(d, 0755) == 0 && mount(share, d, NULL, MS_BIND, NULL) == 0) made++;
  }
  is_int(made, 200, "200 bind mounts made in the host");
  hcs_system_t *sys[3] = {NULL, NULL, NULL};
  for (int i = 0; i < 3; i++) {
    char id[32];
    snprintf(id, sizeof id, "seed-%d", i);
    sys[i] = make(id, NULL, NULL);
  }
  ok(sys[0] && sys[1] && sys[2], "three more systems");
  cleanup_free char *mi_b = sys[2] ? mountinfo_of(sys[2]) : NULL;
  is_int(lines(mi_b), sys0, "a new system's mount table has as many mounts as before the 200 host mounts");
  ok(mi_b && !strstr(mi_b, "/many/"), "and none of them");
  is_int(seed_mounts(), seed0, "the seed's table keeps its size after creating systems with 200 more host mounts");
  for (int i = 0; i < 3; i++)
    drop(sys[i]);
  cleanup_free char *cmd = hcs_xasprintf("umount %s/*", many);
  ok(system(cmd) == 0, "unmount the 200 binds");
  drop(a);
  ok(!pin_is_mntns() && !is_mount_root(mntns), "the last delete takes the seed and its directory down");
  is_int(mounts_under(mntns), 0, "no mount left under %s", mntns);
}

/* What init reaches from the host is opened in the host when the system is
 * made: a mapped directory mounted after the seed existed is seen with its
 * content; a host unmount below a mapped directory reaches the system; a
 * mount made inside the system stays there. */
static void test_mapped(void) {
  hcs_system_t *first = make("map-0", NULL, NULL);
  ok(first && pin_is_mntns(), "a seed exists");
  cleanup_free char *late = hcs_xasprintf("%s/late", root);
  cleanup_free char *late_file = hcs_xasprintf("%s/late/hello", root);
  cleanup_free char *sub = hcs_xasprintf("%s/sub", share);
  cleanup_free char *marker = hcs_xasprintf("%s/sub/marker", share);
  cleanup_free char *file = hcs_xasprintf("%s/file", root);
  mkdir(late, 0755);
  mkdir(sub, 0755);
  ok(mount("late", late, "tmpfs", 0, "size=64k") == 0 && write_file(late_file, "late content\n"),
     "mount a tmpfs in the host after the seed was made, write a file in it");
  ok(mount("sub", sub, "tmpfs", 0, "size=64k") == 0 && write_file(marker, "sub marker\n"),
     "mount a tmpfs below the shared directory, with a marker");
  ok(write_file(file, "a file\n"), "a host file to bind");
  cleanup_free char *container =
      hcs_xasprintf(",\"MappedDirectories\":[{\"HostPath\":\"%s\",\"ContainerPath\":\"/late\"},"
                    "{\"HostPath\":\"%s\",\"ContainerPath\":\"/data\"},{\"HostPath\":\"%s\",\"ContainerPath\":\"/"
                    "ro\",\"ReadOnly\":true}]",
                    late, share, share);
  cleanup_free char *linux_ = hcs_xasprintf(",\"Mounts\":[{\"Destination\":\"/etc/bound\",\"Type\":\"bind\","
                                            "\"Source\":\"%s\",\"Options\":[\"bind\",\"ro\"]},"
                                            "{\"Destination\":\"/scratch\",\"Type\":\"tmpfs\",\"Source\":\"tmpfs\"}]",
                                            file);
  hcs_system_t *cs = make("map-1", container, linux_);
  ok(cs != NULL, "create a system with mapped directories and Linux.Mounts");
  if (cs == NULL) {
    drop(first);
    return;
  }
  /* The idle init never execs: the trees it attached are closed. */
  cleanup_free char *fds = hcs_xasprintf("/proc/%d/fd", init_pid(cs));
  cleanup_dir DIR *d = opendir(fds);
  struct dirent *de;
  int open_trees = 0;
  while (d && (de = readdir(d)) != NULL) {
    char link[PATH_MAX], target[PATH_MAX];
    snprintf(link, sizeof link, "%s/%s", fds, de->d_name);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    if (!strcmp(target, "/late") || !strcmp(target, "/data") || !strcmp(target, "/ro") || !strcmp(target, "/etc/bound"))
      open_trees++;
  }
  is_int(open_trees, 0, "init holds no fd of an attached tree");
  cleanup_free char *got = read_inside(cs, "late/hello");
  is_str(got, "late content\n", "the late mapped directory is seen with its content");
  cleanup_free char *got_sub = read_inside(cs, "data/sub/marker");
  is_str(got_sub, "sub marker\n", "the host's mount below the mapped directory is there too");
  cleanup_free char *got_file = read_inside(cs, "etc/bound");
  is_str(got_file, "a file\n", "a file bound by Linux.Mounts");
  cleanup_free char *mi = mountinfo_of(cs);
  has_substr(mi, " /ro ro,", "a ReadOnly mapped directory is read-only");
  has_substr(mi, " /etc/bound ro,", "a read-only bind of Linux.Mounts is read-only");
  has_substr(mi, " /scratch rw,", "a tmpfs of Linux.Mounts is there");

  ok(umount(sub) == 0, "unmount the tmpfs below the mapped directory in the host");
  cleanup_free char *gone = read_inside(cs, "data/sub/marker");
  ok(gone == NULL, "the unmount reached the system (the marker is gone)");
  cleanup_free char *mi2 = mountinfo_of(cs);
  ok(mi2 && !strstr(mi2, " /data/sub "), "its mount table no longer has /data/sub");

  /* A mount made in the system's namespace (by a child that joined it). */
  pid_t pid = fork();
  if (pid == 0) {
    char ns[64];
    snprintf(ns, sizeof ns, "/proc/%d/ns/mnt", init_pid(cs));
    int fd = open(ns, O_RDONLY);
    if (fd < 0 || setns(fd, CLONE_NEWNS) < 0) _exit(1);
    if (mkdir("/data/inside", 0755) < 0 || mount("inside", "/data/inside", "tmpfs", 0, "size=64k") < 0) _exit(2);
    if (mount("inside", "/scratch", "tmpfs", 0, "size=64k") < 0) _exit(3);
    _exit(0);
  }
  int st = -1;
  waitpid(pid, &st, 0);
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "mount tmpfs on /data/inside and /scratch inside the system");
  cleanup_free char *inside = hcs_xasprintf("%s/inside", share);
  ok(!is_mount_root(inside), "the mount made inside does not appear in the host");
  cleanup_free char *host_mi = slurp("/proc/self/mountinfo");
  ok(host_mi && !strstr(host_mi, "/share/inside ") && !strstr(host_mi, " /scratch "),
     "the host's mount table has neither of them");
  cleanup_free char *mi3 = mountinfo_of(first);
  ok(mi3 && !strstr(mi3, "inside"), "nor in another system");
  rmdir(inside);
  drop(cs);
  drop(first);
  ok(umount(late) == 0, "unmount the late tmpfs");
}

/* A mapped directory holding mount namespace pins: hcs's own (the test
 * root holds the run root; its pin directory is unbindable) and another
 * tool's (`unshare --mount=FILE`, which the system is then made without
 * the seed for).  Both used to be left out by the copy of the host's
 * namespace; move_mount refuses a tree with one (ELOOP). */
static void test_pins_below(void) {
  hcs_system_t *first = make("pins-0", NULL, NULL);
  ok(first && pin_is_mntns(), "a seed exists");
  cleanup_free char *container =
      hcs_xasprintf(",\"MappedDirectories\":[{\"HostPath\":\"%s\",\"ContainerPath\":\"/host\"}]", root);
  hcs_system_t *cs = make("pins-1", container, NULL);
  ok(cs != NULL, "a system mapping the directory that holds the run root and its seed pin");
  cleanup_free char *mi = cs ? mountinfo_of(cs) : NULL;
  ok(mi && !strstr(mi, "mnt:["), "its table has no mount namespace file");
  drop(cs);

  /* Another tool's pin: its namespace must be newer than ours (per-CPU ids),
   * so unshare(1) is tried on each CPU. */
  cleanup_free char *pins = hcs_xasprintf("%s/pins", share);
  cleanup_free char *foreign = hcs_xasprintf("%s/pins/foreign", share);
  mkdir(pins, 0755);
  bool made = mount(pins, pins, NULL, MS_BIND, NULL) == 0 && mount(NULL, pins, NULL, MS_PRIVATE, NULL) == 0;
  int fd = open(foreign, O_RDONLY | O_CREAT, 0400);
  if (fd >= 0) close(fd);
  bool pinned = false;
  for (int cpu = 0; made && !pinned && cpu < 8; cpu++) {
    cleanup_free char *cmd = hcs_xasprintf("taskset -c %d unshare --mount='%s' true 2>/dev/null", cpu, foreign);
    pinned = system(cmd) == 0;
  }
  ok(pinned, "another tool's mount namespace pinned below the mapped directory");
  cleanup_free char *data =
      hcs_xasprintf(",\"MappedDirectories\":[{\"HostPath\":\"%s\",\"ContainerPath\":\"/data\"}]", share);
  cs = make("pins-2", data, NULL);
  ok(cs != NULL, "a system mapping it starts");
  cleanup_free char *mi2 = cs ? mountinfo_of(cs) : NULL;
  ok(mi2 && strstr(mi2, " /data ") && !strstr(mi2, "mnt:["), "with the directory, without the pin");
  drop(cs);
  umount2(foreign, MNT_DETACH);
  umount2(pins, MNT_DETACH);
  unlink(foreign);
  rmdir(pins);
  drop(first);
}

/* A user-namespaced system keeps the copy of the creator's namespace (its
 * mounts locked by the kernel); it still starts and sees its mapped
 * directory. */
static void test_userns(void) {
  cleanup_free char *container =
      hcs_xasprintf(",\"MappedDirectories\":[{\"HostPath\":\"%s\",\"ContainerPath\":\"/data\"}]", share);
  hcs_system_t *cs = make("userns", container,
                          ",\"UidMappings\":[{\"ContainerId\":0,\"HostId\":200000,\"Size\":65536}],"
                          "\"GidMappings\":[{\"ContainerId\":0,\"HostId\":200000,\"Size\":65536}]");
  ok(cs != NULL, "a user-namespaced system starts");
  if (cs == NULL) return;
  cleanup_free char *mi = mountinfo_of(cs);
  has_substr(mi, " /data ", "with its mapped directory");
  has_substr(mi, " /proc ", "and its /proc");
  drop(cs);
}

/* A create killed between the pin file and its bind leaves an empty file;
 * one killed between the directory's self-bind and MS_PRIVATE leaves a
 * shared mount: the next create makes the seed again in both. */
static void test_stale_pin(void) {
  ok(!is_mount_root(mntns), "no seed before the test");
  ok(hcs_mkdir_p(mntns, 0700, NULL) == 0 && mount(mntns, mntns, NULL, MS_BIND, NULL) == 0 &&
         mount(NULL, mntns, NULL, MS_SHARED, NULL) == 0,
     "a self-bind of the seed directory left shared");
  int fd = open(pin, O_RDONLY | O_CREAT, 0400);
  ok(fd >= 0, "an empty pin file");
  if (fd >= 0) close(fd);
  ok(!pin_is_mntns(), "the empty pin is no namespace");
  hcs_system_t *cs = make("stale", NULL, NULL);
  ok(cs != NULL, "a create after them succeeds");
  ok(pin_is_mntns(), "the pin holds a mount namespace now");
  ok(seed_mounts() > 0, "the seed can be entered");
  drop(cs);
  ok(!is_mount_root(mntns) && !hcs_path_exists(pin), "and goes with the last system");
}

/* The kernel binds a mount namespace file only into an older namespace
 * than the new one, and namespace ids come from per-CPU batches: a creator
 * whose namespace was made on one CPU and whose seed is made on another may
 * see its bind refused.  Both orders on two CPUs, each in a namespace of
 * its own (one of them hits the refusal): the seed is made anyway. */
static void test_cpu_order(void) {
  cpu_set_t all;
  int cpus[2], n = 0;
  if (sched_getaffinity(0, sizeof all, &all) == 0)
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
      if (CPU_ISSET(c, &all)) cpus[n++] = c;
  if (n < 2) {
    printf("ok %d # SKIP needs two CPUs\n", ++tap_count);
    return;
  }
  for (int order = 0; order < 2; order++) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus[order], &one);
      if (sched_setaffinity(0, sizeof one, &one) < 0 || unshare(CLONE_NEWNS) < 0 ||
          mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
        _exit(2);
      CPU_ZERO(&one);
      CPU_SET(cpus[1 - order], &one);
      if (sched_setaffinity(0, sizeof one, &one) < 0) _exit(2);
      hcs_system_t *cs = make(order ? "cpu-1" : "cpu-0", NULL, NULL);
      drop(cs);
      fflush(stdout);
      _exit(cs == NULL);
    }
    int st = -1;
    waitpid(pid, &st, 0);
    ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
       "a creator whose namespace was made on CPU %d creates a system from CPU %d", cpus[order], cpus[1 - order]);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) printf("#   status %#x\n", st);
  }
}

/* A create that fails once the seed was made for it leaves no seed when
 * no system is left. */
static void test_failed_create(void) {
  ok(!is_mount_root(mntns), "no seed before the test");
  hcs_system_t *cs =
      make("fails", ",\"MappedDirectories\":[{\"HostPath\":\"/tmp\",\"ContainerPath\":\"/bin/busybox/x\"}]", NULL);
  ok(cs == NULL, "a create whose init fails (a mount point below a file) fails");
  drop(cs);
  ok(!is_mount_root(mntns) && !hcs_path_exists(pin), "and leaves no seed behind");
}

int main(void) {
  if (geteuid() != 0) {
    printf("1..0 # SKIP needs root\n");
    return 0;
  }
  /* Our own namespace, a slave of the host's: what we mount stays here. */
  if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
    perror("mount namespace");
    return 1;
  }
  /* 0755: a user-namespaced init must reach the rootfs. */
  if (mkdtemp(root) == NULL || chmod(root, 0755) < 0) return 1;
  if (mount(root, root, NULL, MS_BIND, NULL) < 0 || mount(NULL, root, NULL, MS_SHARED, NULL) < 0) {
    perror("shared test root");
    return 1;
  }
  snprintf(rootfs, sizeof rootfs, "%s/rootfs", root);
  snprintf(share, sizeof share, "%s/share", root);
  snprintf(parent, sizeof parent, "hcs-test-seed-%d", (int)getpid());
  snprintf(mntns, sizeof mntns, "%s/run/mntns", root);
  struct stat self;
  if (stat("/proc/self/ns/mnt", &self) < 0) return 1;
  snprintf(pin, sizeof pin, "%s/seed-%llu", mntns, (unsigned long long)self.st_ino);
  cleanup_free char *src = tap_source_dir();
  cleanup_free char *mk = hcs_xasprintf("'%s/tests/fixtures/make-busybox-rootfs.sh' '%s'", src, rootfs);
  cleanup_free char *data = hcs_xasprintf("%s/data", rootfs);
  if (system(mk) != 0 || mkdir(share, 0755) < 0 || mkdir(data, 0755) < 0) {
    printf("# could not build the busybox rootfs\n");
    return 1;
  }

  test_seed_size();
  test_mapped();
  test_pins_below();
  test_userns();
  test_stale_pin();
  test_cpu_order();
  test_failed_create();

  is_int(mounts_under(root), 1, "only the test root's own mount is left under it");
  if (mounts_under(root) != 1) {
    cleanup_free char *mi = slurp("/proc/self/mountinfo");
    printf("# %s", mi);
  }
  umount2(root, MNT_DETACH);
  hcs_error_t err = NULL;
  ok(hcs_rm_rf(root, &err) == 0, "remove the test root");
  hcs_error_release(&err);
  cleanup_free char *rm =
      hcs_xasprintf("find /sys/fs/cgroup -maxdepth 2 -type d -name '%s' -exec rmdir {} + 2>/dev/null", parent);
  if (system(rm) != 0) printf("# removing the cgroup parent %s failed\n", parent);
  return tap_done();
}
