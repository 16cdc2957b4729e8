/* The cgroup v2 backend against a real unified hierarchy.  This host is
 * hybrid (every other test runs the v1 backend), so in a private mount
 * namespace the cgroup2 mount at /sys/fs/cgroup/unified is bound onto
 * /sys/fs/cgroup: hcs then sees a pure v2 host, and the monitors it forks
 * inherit that view.  On a pure v2 host the checks run as they are.  The
 * cgroups made are real (the unified hierarchy is shared with the host);
 * the parent is removed at the end, which fails if anything was left. */
#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compute/compute.h"
#include "tap.h"

#define CG "/sys/fs/cgroup"

static char root[] = "/tmp/hcs-test.XXXXXX";
static char rootfs[PATH_MAX], share[PATH_MAX], parent[64], cgparent[PATH_MAX];
static bool has_memory, has_cpu, has_pids; /* controllers the parent can use */

static void msleep(int ms) { nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL); }

static bool is_fs(const char *path, unsigned long magic) {
  struct statfs sfs;
  return statfs(path, &sfs) == 0 && (unsigned long)sfs.f_type == magic;
}

static char *slurp(const char *path) {
  char *text = NULL;
  if (hcs_read_file(path, &text, NULL, NULL) < 0) return NULL;
  return text;
}

static bool has_word(const char *text, const char *word) {
  size_t n = strlen(word);
  for (const char *p = text; p && (p = strstr(p, word)) != NULL; p += n)
    if ((p == text || p[-1] == ' ' || p[-1] == '\n') && (p[n] == '\0' || p[n] == ' ' || p[n] == '\n')) return true;
  return false;
}

static char *leaf(const char *id) { return hcs_xasprintf("%s/%s", cgparent, id); }

static bool cg_has_pid(const char *id, int pid) {
  cleanup_free char *d = leaf(id);
  cleanup_free char *p = hcs_xasprintf("%s/cgroup.procs", d);
  cleanup_free char *text = slurp(p);
  char needle[32];
  snprintf(needle, sizeof needle, "%d", pid);
  return text && pid > 0 && has_word(text, needle);
}

static int64_t events_frozen(const char *id) {
  cleanup_free char *d = leaf(id);
  return hcs_cg_read_key(d, "cgroup.events", "frozen");
}

/* Directories below the parent: the systems' leaves. */
static int leaves(void) {
  cleanup_dir DIR *d = opendir(cgparent);
  struct dirent *de;
  int n = 0;
  while (d && (de = readdir(d)))
    if (de->d_type == DT_DIR && de->d_name[0] != '.') n++;
  return n;
}

/* Processes other than us in our private mount namespace: the monitors and
 * helpers libhcs forked inherit it (init and exec'd processes have their own,
 * but they are in the system's cgroup). */
static int others_in_our_mntns(void) {
  char self[64] = "", buf[64], path[64];
  if (readlink("/proc/self/ns/mnt", self, sizeof self - 1) < 0) return -1;
  cleanup_dir DIR *d = opendir("/proc");
  struct dirent *de;
  int n = 0;
  while (d && (de = readdir(d))) {
    int pid = atoi(de->d_name);
    if (pid <= 0 || pid == getpid()) continue;
    snprintf(path, sizeof path, "/proc/%d/ns/mnt", pid);
    ssize_t r = readlink(path, buf, sizeof buf - 1);
    if (r < 0) continue;
    buf[r] = '\0';
    if (strcmp(buf, self) == 0) {
      printf("#   pid %d is still in our mount namespace\n", pid);
      n++;
    }
  }
  return n;
}

static int mounts_under_root(void) {
  cleanup_free char *mi = slurp("/proc/self/mountinfo");
  int n = 0;
  for (char *p = mi; p && (p = strstr(p, root)) != NULL; p += strlen(root))
    n++;
  return n;
}

/* The document with the given extras spliced into Container and Linux. */
static char *config(const char *container, const char *linux_) {
  return hcs_xasprintf("{\"Container\":{\"Storage\":{\"Path\":\"%s\"}%s},\"Linux\":{\"CgroupParent\":\"%s\"%s}}",
                       rootfs, container ? container : "", parent, linux_ ? linux_ : "");
}

static json_t *props(hcs_system_t *cs, const char *query) {
  hcs_error_t err = NULL;
  cleanup_free char *text = hcs_compute_properties(cs, query, &err);
  if (text == NULL) {
    printf("#   properties: %s\n", hcs_error_message(err));
    hcs_error_release(&err);
    return json_object();
  }
  return json_loads(text, 0, NULL);
}

/* State as a static string (the names are fixed). */
static const char *state(hcs_system_t *cs) {
  cleanup_json json_t *p = props(cs, NULL);
  const char *s = json_string_value(json_object_get(p, "State"));
  if (s == NULL) return "(none)";
  static const char *const names[] = {"Created", "Running", "Paused", "Stopped"};
  for (size_t i = 0; i < HCS_ARRAY_SIZE(names); i++)
    if (strcmp(s, names[i]) == 0) return names[i];
  return "(other)";
}

static hcs_system_t *create(const char *id, const char *cfg) {
  hcs_error_t err = NULL;
  hcs_system_t *cs = hcs_compute_create(root, id, cfg, NULL, &err);
  if (cs == NULL) printf("#   create %s: %s\n", id, hcs_error_message(err));
  hcs_error_release(&err);
  return cs;
}

static long counter(void) {
  cleanup_free char *p = hcs_xasprintf("%s/c", share);
  cleanup_free char *text = slurp(p);
  return text ? atol(text) : 0;
}

/* Progress, not speed: on a loaded machine the loop may need a while. */
static bool advances(long from) {
  for (int i = 0; i < 100; i++) {
    if (counter() > from) return true;
    msleep(50);
  }
  return false;
}

static void test_exit_status(void) {
  cleanup_free char *cfg = config(NULL, ",\"Init\":{\"CommandArgs\":[\"/bin/sh\",\"-c\",\"exit 3\"]}");
  hcs_error_t err = NULL;
  hcs_system_t *cs = create("exit", cfg);
  ok(cs != NULL, "create a system on the v2 backend");
  if (cs == NULL) return;
  cleanup_free char *d = leaf("exit");
  ok(hcs_path_exists(d), "its cgroup %s exists once created", d);
  is_str(state(cs), "Created", "state Created");
  ok(hcs_compute_start(cs, &err) == 0, "start");
  is_int(hcs_compute_wait(cs, 10000, &err), 1, "wait: it stopped");
  cleanup_json json_t *p = props(cs, NULL);
  is_str(json_string_value(json_object_get(p, "State")), "Stopped", "state Stopped");
  is_int(json_integer_value(json_object_get(p, "ExitCode")), 3, "the exit status is kept");
  is_str(json_string_value(json_object_get(p, "ExitType")), "Exited", "ExitType Exited");
  ok(!hcs_path_exists(d), "the monitor removed the leaf cgroup");
  ok(hcs_compute_delete(cs, false, &err) == 0, "delete");
  hcs_error_release(&err);
  hcs_compute_close(cs);
}

/* Run a process with CreateStdOutPipe and return its output. */
static char *run_out(hcs_system_t *cs, const char *params) {
  hcs_error_t err = NULL;
  hcs_process_t *p = hcs_process_create(cs, params, &err);
  if (p == NULL) {
    printf("#   exec: %s\n", hcs_error_message(err));
    hcs_error_release(&err);
    return NULL;
  }
  int out = -1;
  hcs_process_take_stdio(p, NULL, &out, NULL);
  size_t len = 0, cap = 4096;
  char *buf = hcs_xmalloc(cap);
  ssize_t n;
  while (out >= 0 && len < cap - 1 && (n = read(out, buf + len, cap - 1 - len)) > 0)
    len += (size_t)n;
  buf[len] = '\0';
  if (out >= 0) close(out);
  hcs_process_wait(p, 10000, NULL);
  hcs_process_close(p);
  return buf;
}

/* Exec a process into the system; it must land in the system's cgroup. */
static void test_exec(hcs_system_t *cs, const char *id) {
  hcs_error_t err = NULL;
  hcs_process_t *p = hcs_process_create(cs, "{\"CommandArgs\":[\"/bin/sleep\",\"100\"]}", &err);
  ok(p != NULL, "exec a process into the running system");
  if (p == NULL) {
    printf("#   %s\n", hcs_error_message(err));
    hcs_error_release(&err);
    return;
  }
  int pid = hcs_process_pid(p);
  ok(cg_has_pid(id, pid), "the exec'd process is in the system's cgroup.procs");
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/cgroup", pid);
  cleanup_free char *own = slurp(path), *want = hcs_xasprintf("0::/%s/%s\n", parent, id);
  has_substr(own, want, "its /proc/PID/cgroup names the system's cgroup");
  ok(hcs_process_terminate(p, &err) == 0, "terminate the process");
  is_int(hcs_process_wait(p, 10000, &err), 1, "it exited");
  is_int(hcs_process_exit_code(p, &err), 128 + SIGKILL, "killed by SIGKILL");
  hcs_process_close(p);

  /* Inside, the cgroup namespace is rooted at the system's cgroup. */
  cleanup_free char *inside =
      run_out(cs, "{\"CommandArgs\":[\"/bin/cat\",\"/proc/self/cgroup\"],\"CreateStdOutPipe\":true}");
  has_substr(inside, "0::/\n", "inside, /proc/self/cgroup says 0::/ (cgroup namespace)");

  p = hcs_process_create(cs, "{\"CommandArgs\":[\"/bin/sh\",\"-c\",\"exit 7\"]}", &err);
  ok(p && hcs_process_wait(p, 10000, &err) == 1 && hcs_process_exit_code(p, &err) == 7,
     "a second process exits with its status");
  hcs_process_close(p);
  hcs_error_release(&err);
}

static void test_running(void) {
  cleanup_free char *mapped =
      hcs_xasprintf(",\"MappedDirectories\":[{\"HostPath\":\"%s\",\"ContainerPath\":\"/share\"}]", share);
  cleanup_free char *cfg = config(
      mapped, ",\"Init\":{\"CommandArgs\":[\"/bin/sh\",\"-c\",\"i=0; while :; do i=$((i+1)); echo $i > /share/c.tmp; "
              "mv /share/c.tmp /share/c; done\"]}");
  hcs_error_t err = NULL;
  const char *id = "run";
  hcs_system_t *cs = create(id, cfg);
  ok(cs != NULL, "create a system with a counter");
  if (cs == NULL) return;
  ok(hcs_compute_start(cs, &err) == 0, "start it");
  cleanup_json json_t *p = props(cs, NULL);
  int pid = (int)json_integer_value(json_object_get(p, "Pid"));
  is_str(json_string_value(json_object_get(p, "State")), "Running", "state Running");
  cleanup_free char *rel = hcs_xasprintf("%s/%s", parent, id);
  is_str(json_string_value(json_object_get(p, "Cgroup")), rel, "Cgroup is <parent>/<id>");
  ok(cg_has_pid(id, pid), "init (pid %d) is in the system's cgroup.procs", pid);
  cleanup_free char *d = leaf(id);
  is_int(hcs_cg_read_key(d, "cgroup.events", "populated"), 1, "cgroup.events: populated 1");
  ok(advances(0), "the counter runs");

  /* Pause: cgroup.freeze, and the tasks really stop. */
  ok(hcs_compute_pause(cs, &err) == 0, "pause");
  if (err) printf("#   %s\n", hcs_error_message(err)), hcs_error_release(&err);
  is_int(events_frozen(id), 1, "cgroup.events: frozen 1");
  is_int(hcs_cg_read_int(d, "cgroup.freeze"), 1, "cgroup.freeze: 1");
  is_str(state(cs), "Paused", "state Paused");
  long frozen = counter();
  msleep(300);
  is_int(counter(), frozen, "the counter stopped while paused");
  ok(hcs_compute_pause(cs, &err) < 0, "pausing a paused system fails");
  hcs_error_release(&err);
  ok(hcs_process_create(cs, "{\"CommandArgs\":[\"/bin/true\"]}", &err) == NULL, "no exec into a paused system");
  hcs_error_release(&err);
  ok(hcs_compute_resume(cs, &err) == 0, "resume");
  is_int(events_frozen(id), 0, "cgroup.events: frozen 0");
  is_str(state(cs), "Running", "state Running again");
  ok(advances(frozen), "the counter runs again");

  /* Statistics: cpu.stat is a core file on v2; the memory files exist only
   * when the memory controller is enabled for the parent. */
  cleanup_json json_t *s = props(cs, "{\"PropertyTypes\":[\"Statistics\",\"ProcessList\"]}");
  json_t *st = json_object_get(s, "Statistics");
  ok(json_is_object(st), "Statistics are reported");
  ok(json_integer_value(json_object_get(json_object_get(st, "Processor"), "TotalRuntime100ns")) > 0,
     "Processor.TotalRuntime100ns > 0 (cpu.stat usage_usec)");
  json_int_t usage = json_integer_value(json_object_get(json_object_get(st, "Memory"), "UsageBytes"));
  if (has_memory)
    ok(usage > 0, "Memory.UsageBytes > 0 (memory.current)");
  else
    is_int(usage, 0, "Memory.UsageBytes is 0 without the memory controller");
  ok(json_is_object(json_object_get(st, "Pids")) == has_pids, "Pids only with the pids controller");
  json_t *list = json_object_get(s, "ProcessList"), *e;
  size_t i;
  bool found = false;
  json_array_foreach(list, i, e) found |= json_integer_value(json_object_get(e, "ProcessId")) == pid;
  ok(found, "the ProcessList (cgroup.procs) has init");

  test_exec(cs, id);

  /* Limits that need a controller the hierarchy lacks fail clearly. */
  int r = hcs_compute_modify(cs, "{\"Memory\":{\"SizeInMB\":64}}", &err);
  if (has_memory) {
    ok(r == 0, "modify Memory.SizeInMB");
    is_int(hcs_cg_read_int(d, "memory.max"), 64 << 20, "memory.max is 64 MiB");
  } else {
    ok(r < 0, "modify Memory.SizeInMB fails without the memory controller");
    printf("#   %s\n", hcs_error_message(err));
    has_substr(hcs_error_message(err), "memory controller", "the error names the controller");
    has_substr(hcs_error_message(err), d, "the error names the cgroup");
  }
  hcs_error_release(&err);
  r = hcs_compute_modify(cs, "{\"Processor\":{\"Maximum\":5000}}", &err);
  if (has_cpu) {
    ok(r == 0, "modify Processor.Maximum");
  } else {
    ok(r < 0, "modify Processor.Maximum fails without the cpu controller");
    has_substr(hcs_error_message(err), "cpu controller", "the error names the controller");
  }
  hcs_error_release(&err);
  is_str(state(cs), "Running", "still Running after the failed modify");

  /* A process that joined the cgroup only (outside the system's pid
   * namespace) dies with the system: the monitor uses cgroup.kill. */
  int sync[2];
  if (pipe(sync) < 0) return;
  pid_t joiner = fork();
  if (joiner == 0) {
    close(sync[0]);
    if (hcs_cg_write(d, "cgroup.procs", "0") < 0) _exit(1);
    if (write(sync[1], "j", 1) != 1) _exit(1);
    for (;;)
      pause();
  }
  close(sync[1]);
  char b = 0;
  ok(read(sync[0], &b, 1) == 1 && cg_has_pid(id, joiner), "a host process joined the system's cgroup");
  close(sync[0]);

  /* Terminate a paused system: everything dies, the status is kept. */
  ok(hcs_compute_pause(cs, &err) == 0, "pause before terminate");
  ok(hcs_compute_terminate(cs, &err) == 0, "terminate the paused system");
  if (err) printf("#   %s\n", hcs_error_message(err)), hcs_error_release(&err);
  int status = 0;
  ok(waitpid(joiner, &status, 0) == joiner && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
     "the joined host process was killed");
  cleanup_json json_t *q = props(cs, NULL);
  is_str(json_string_value(json_object_get(q, "State")), "Stopped", "state Stopped");
  is_str(json_string_value(json_object_get(q, "ExitType")), "Terminated", "ExitType Terminated");
  is_int(json_integer_value(json_object_get(q, "ExitCode")), 128 + SIGKILL, "ExitCode 137");
  ok(!hcs_path_exists(d), "the leaf cgroup is gone");
  ok(hcs_compute_delete(cs, false, &err) == 0, "delete");
  hcs_error_release(&err);
  hcs_compute_close(cs);
}

/* BPF_CGROUP_DEVICE programs attached to the system's cgroup itself. */
static int device_progs(const char *dir) {
  cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.query.target_fd = (uint32_t)fd;
  a.query.attach_type = BPF_CGROUP_DEVICE;
  if (fd < 0 || syscall(SYS_bpf, BPF_PROG_QUERY, &a, sizeof a) < 0) return -1;
  return (int)a.query.prog_cnt;
}

/* The id of the first BPF_CGROUP_DEVICE program on `dir`, or 0. */
static uint32_t device_prog_id(const char *dir) {
  cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  uint32_t ids[4] = {0};
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.query.target_fd = (uint32_t)fd;
  a.query.attach_type = BPF_CGROUP_DEVICE;
  a.query.prog_ids = (uint64_t)(uintptr_t)ids;
  a.query.prog_cnt = 4;
  if (fd < 0 || syscall(SYS_bpf, BPF_PROG_QUERY, &a, sizeof a) < 0) return 0;
  return ids[0];
}

static char *sh(hcs_system_t *cs, const char *script) {
  cleanup_json json_t *p = json_pack("{s:[s,s,s],s:b}", "CommandArgs", "/bin/sh", "-c", script, "CreateStdOutPipe", 1);
  cleanup_free char *params = json_dumps(p, 0);
  return run_out(cs, params);
}

/* The device allowlist on v2: a BPF program on the system's cgroup, in
 * force for init and exec'd processes.  The defaults let any node be made
 * (as Docker's) but opened only for the standard ones; Linux.Devices adds
 * c 240:* (local use: no driver, so an allowed open gives ENXIO), takes
 * c 240:1 back and forbids making b 240:2. */
static void test_devices(void) {
  /* The host's root disk, and the first loop device (which, unlike the
   * disk on some hosts, the host itself may open): a container must read
   * neither through a node it made. */
  struct stat st;
  unsigned maj = 8, min = 0;
  if (stat("/", &st) == 0 && major(st.st_dev) != 0) maj = major(st.st_dev), min = minor(st.st_dev);
  cleanup_free char *mapped =
      hcs_xasprintf(",\"MappedDirectories\":[{\"HostPath\":\"%s\",\"ContainerPath\":\"/share\"}]", share);
  cleanup_free char *init = hcs_xasprintf(
      ",\"Init\":{\"CommandArgs\":[\"/bin/sh\",\"-c\",\"mknod /tmp/dv-disk b %u %u; mknod /tmp/dv-loop b 7 0; "
      "head -c1 /tmp/dv-disk /tmp/dv-loop >/dev/null 2>/share/dev.tmp; mv /share/dev.tmp /share/dev; "
      "exec sleep 1000\"]}",
      maj, min);
  cleanup_free char *lx = hcs_xasprintf(
      "%s,\"Devices\":[{\"Type\":\"c\",\"Major\":240,\"Access\":\"rwm\"},"
      "{\"Allow\":false,\"Type\":\"c\",\"Major\":240,\"Minor\":1},{\"Allow\":false,\"Type\":\"b\",\"Major\":240,"
      "\"Minor\":2,\"Access\":\"m\"}]",
      init);
  cleanup_free char *cfg = config(mapped, lx);
  hcs_error_t err = NULL;
  hcs_system_t *cs = create("dev", cfg);
  ok(cs && hcs_compute_start(cs, &err) == 0, "start a system with Linux.Devices rules");
  if (cs == NULL) return;
  cleanup_free char *d = leaf("dev");
  is_int(device_progs(d), 1, "one BPF_CGROUP_DEVICE program is attached to its cgroup");
  cleanup_free char *result = hcs_xasprintf("%s/dev", share), *out = NULL;
  for (int i = 0; i < 200 && (out = slurp(result)) == NULL; i++)
    msleep(25);
  printf("#   init: %s", out ? out : "(nothing)\n");
  cleanup_free char *want = hcs_xasprintf("head: /tmp/dv-disk: Operation not permitted\n"
                                          "head: /tmp/dv-loop: Operation not permitted\n");
  is_str(out, want, "init made nodes for b %u:%u (the host's disk) and b 7:0 but cannot read them", maj, min);
  cleanup_free char *node = hcs_xasprintf("%s/tmp/dv-loop", rootfs);
  int fd = open(node, O_RDONLY | O_CLOEXEC);
  ok(fd >= 0 || errno != EPERM, "the host is not refused b 7:0 (%s): the filter refused it",
     fd >= 0 ? "opened" : strerror(errno));
  if (fd >= 0) close(fd);

  cleanup_free char *disk = sh(cs, "head -c1 /tmp/dv-disk /tmp/dv-loop 2>&1 >/dev/null");
  is_str(disk, want, "nor can an exec'd process");
  cleanup_free char *std =
      sh(cs, "head -c4 /dev/zero | wc -c; echo x >/dev/null && echo null-ok; head -c2 /dev/urandom "
             "| wc -c; echo x 2>&1 >/dev/full; { true </dev/tty; } 2>&1");
  has_substr(std, "4\nnull-ok\n2\n", "/dev/zero, /dev/null and /dev/urandom work");
  has_substr(std, "write error: No space left on device", "/dev/full opens (ENOSPC on write)");
  has_substr(std, "/dev/tty: No such device or address", "/dev/tty opens (ENXIO: no terminal)");
  cleanup_free char *kmsg = sh(cs, "mknod /tmp/dv-kmsg c 1 11 && echo made; { echo hcs-test >/tmp/dv-kmsg; } 2>&1");
  has_substr(kmsg, "made", "a node for /dev/kmsg (c 1:11) can be made");
  has_substr(kmsg, "Operation not permitted", "but not written (the host can without any capability)");
  cleanup_free char *mem = sh(cs, "mknod /tmp/dv-mem c 1 1 && head -c1 /tmp/dv-mem 2>&1 >/dev/null");
  has_substr(mem, "Operation not permitted", "/dev/mem (c 1:1) cannot be opened");
  cleanup_free char *f0 = sh(cs, "mknod /tmp/dv-f0 c 240 0 && head -c1 /tmp/dv-f0 2>&1 >/dev/null");
  has_substr(f0, "No such device or address", "c 240:0, allowed by Linux.Devices, opens (ENXIO: no driver)");
  /* c 240:1 made outside: the deny takes m too. */
  cleanup_free char *f1node = hcs_xasprintf("%s/tmp/dv-f1", rootfs);
  ok(mknod(f1node, S_IFCHR | 0666, makedev(240, 1)) == 0, "the host makes a node for c 240:1");
  cleanup_free char *f1 = sh(cs, "head -c1 /tmp/dv-f1 2>&1 >/dev/null; mknod /tmp/dv-f1b c 240 1 2>&1");
  is_str(f1, "head: /tmp/dv-f1: Operation not permitted\nmknod: /tmp/dv-f1b: Operation not permitted\n",
         "the later deny of c 240:1 wins over the allow of c 240:*: no open, no mknod");
  cleanup_free char *b2 = sh(cs, "mknod /tmp/dv-b2 b 240 2 2>&1; mknod /tmp/dv-b3 b 240 3 && echo b3-made");
  is_str(b2, "mknod: /tmp/dv-b2: Operation not permitted\nb3-made\n", "b 240:2 cannot be made, b 240:3 can");

  /* The same rules in another system of this process: the program loaded
   * for the first is attached again, not loaded and verified anew; other
   * rules get their own. */
  cleanup_free char *same_lx = hcs_xasprintf(
      ",\"Devices\":[{\"Type\":\"c\",\"Major\":240,\"Access\":\"rwm\"},"
      "{\"Allow\":false,\"Type\":\"c\",\"Major\":240,\"Minor\":1},{\"Allow\":false,\"Type\":\"b\",\"Major\":240,"
      "\"Minor\":2,\"Access\":\"m\"}]");
  cleanup_free char *same_cfg = config("", same_lx), *plain_cfg = config("", "");
  hcs_system_t *same = create("dev-same", same_cfg), *plain = create("dev-plain", plain_cfg);
  cleanup_free char *ds = leaf("dev-same"), *dp = leaf("dev-plain");
  uint32_t id1 = device_prog_id(d), id2 = device_prog_id(ds), id3 = device_prog_id(dp);
  ok(id1 != 0 && id1 == id2, "a second system with the same rules gets the same loaded program (ids %u, %u)", id1, id2);
  ok(id3 != 0 && id3 != id1, "a system with other rules gets another program (id %u)", id3);
  for (hcs_system_t **p = (hcs_system_t *[]){same, plain, NULL}; *p; p++) {
    ok(hcs_compute_delete(*p, true, &err) == 0, "delete %s", hcs_compute_id(*p));
    hcs_error_release(&err);
    hcs_compute_close(*p);
  }

  ok(hcs_compute_terminate(cs, &err) == 0, "terminate it");
  ok(hcs_compute_delete(cs, false, &err) == 0, "delete");
  if (err) printf("#   %s\n", hcs_error_message(err));
  hcs_error_release(&err);
  hcs_compute_close(cs);
  cleanup_free char *cleanup = hcs_xasprintf("rm -f '%s'/tmp/dv-* '%s'", rootfs, result);
  if (system(cleanup) != 0) printf("#   could not remove the nodes\n");
}

/* Across processes: with a BPF filesystem at /sys/fs/bpf (systemd mounts
 * one; here one is mounted in the test's mount namespace), the first `hcs
 * run` pins its device program and the next one attaches the same program
 * instead of loading and verifying it again. */
static void test_device_pin(void) {
  if (!is_fs("/sys/fs/bpf", 0xcafe4a11) && mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=700") < 0) {
    printf("# SKIP device program pinning: no BPF filesystem (%s)\n", strerror(errno));
    return;
  }
  const char *build = getenv("HCS_BUILD_DIR");
  if (build == NULL) {
    printf("# SKIP device program pinning: HCS_BUILD_DIR is not set\n");
    return;
  }
  const char *ids[] = {"pin1", "pin2"};
  for (size_t i = 0; i < 2; i++) {
    cleanup_free char *cmd = hcs_xasprintf("'%s/hcs' --root '%s' run -d --name %s --cgroup-parent %s '%s' >/dev/null",
                                           build, root, ids[i], parent, rootfs);
    ok(system(cmd) == 0, "hcs run -d %s (its own process)", ids[i]);
  }
  cleanup_free char *d1 = leaf("pin1"), *d2 = leaf("pin2");
  uint32_t id1 = device_prog_id(d1), id2 = device_prog_id(d2);
  ok(id1 != 0 && id1 == id2, "the second process attached the program the first pinned (ids %u, %u)", id1, id2);
  glob_t g;
  ok(glob("/sys/fs/bpf/hcs-devices-*", 0, NULL, &g) == 0 && g.gl_pathc >= 1, "a pinned program in /sys/fs/bpf");
  globfree(&g);
  for (size_t i = 0; i < 2; i++) {
    hcs_error_t err = NULL;
    hcs_system_t *cs = hcs_compute_open(root, ids[i], &err);
    ok(cs && hcs_compute_delete(cs, true, &err) == 0, "delete %s", ids[i]);
    hcs_error_release(&err);
    hcs_compute_close(cs);
  }
}

/* A parent whose device program forbids more below it (attached without
 * BPF_F_ALLOW_MULTI or OVERRIDE): create fails, naming the cgroup, and
 * leaves nothing. */
static void test_devices_refused(void) {
  cleanup_free char *locked = hcs_xasprintf("%s/locked", cgparent);
  ok(mkdir(locked, 0755) == 0, "a parent `locked`");
  hcs_device_rule_t all = {true, 'a', -1, -1, "rwm"};
  size_t len = 0;
  hcs_error_t err = NULL;
  cleanup_free struct bpf_insn *prog = hcs_device_filter(&all, 1, &len);
  cleanup_close int fd = hcs_device_filter_load(prog, len, &err);
  cleanup_close int dir = open(locked, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.target_fd = (uint32_t)dir;
  a.attach_bpf_fd = (uint32_t)fd;
  a.attach_type = BPF_CGROUP_DEVICE;
  ok(fd >= 0 && dir >= 0 && syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof a) == 0,
     "with a device program that allows no other below it");
  cleanup_free char *cfg = hcs_xasprintf(
      "{\"Container\":{\"Storage\":{\"Path\":\"%s\"}},\"Linux\":{\"CgroupParent\":\"%s/locked\"}}", rootfs, parent);
  hcs_system_t *cs = hcs_compute_create(root, "refused", cfg, NULL, &err);
  ok(cs == NULL, "create under it fails");
  printf("#   %s\n", hcs_error_message(err));
  cleanup_free char *want = hcs_xasprintf("attach the device filter to `%s/refused`", locked);
  has_substr(hcs_error_message(err), want, "the error says what failed where");
  has_substr(hcs_error_message(err), "Operation not permitted", "and why");
  cleanup_free char *d = hcs_xasprintf("%s/refused", locked), *dir2 = hcs_xasprintf("%s/run/compute/refused", root);
  ok(!hcs_path_exists(d) && !hcs_path_exists(dir2), "no cgroup and no system directory are left");
  hcs_compute_close(cs);
  hcs_error_release(&err);
  ok(rmdir(locked) == 0, "the parent is empty");
}

static void test_shutdown(void) {
  cleanup_free char *cfg = config(NULL, NULL);
  hcs_error_t err = NULL;
  hcs_system_t *cs = create("idle", cfg);
  ok(cs && hcs_compute_start(cs, &err) == 0, "start an idle system");
  if (cs == NULL) return;
  cleanup_json json_t *p = props(cs, NULL);
  ok(cg_has_pid("idle", (int)json_integer_value(json_object_get(p, "Pid"))), "its init is in its cgroup");
  ok(hcs_compute_shutdown(cs, 10000, &err) == 0, "shut it down");
  cleanup_json json_t *q = props(cs, NULL);
  is_str(json_string_value(json_object_get(q, "ExitType")), "Shutdown", "ExitType Shutdown");
  is_int(json_integer_value(json_object_get(q, "ExitCode")), 0, "ExitCode 0");
  cleanup_free char *d = leaf("idle");
  ok(!hcs_path_exists(d), "the leaf cgroup is gone");
  ok(hcs_compute_delete(cs, false, &err) == 0, "delete");
  hcs_error_release(&err);
  hcs_compute_close(cs);
}

/* Limits at create: with the controller, the file is written; without, create
 * fails with the controller and the cgroup named, and leaves nothing. */
static void test_create_limits(void) {
  static const struct {
    const char *what, *container, *linux_, *ctrl, *file;
    bool *has;
    int64_t want;
  } cases[] = {
      {"Memory.SizeInMB", ",\"Memory\":{\"SizeInMB\":32}", NULL, "memory", "memory.max", &has_memory, 32 << 20},
      {"Linux.PidsLimit", NULL, ",\"PidsLimit\":50", "pids", "pids.max", &has_pids, 50},
      {"Processor.Maximum", ",\"Processor\":{\"Maximum\":5000}", NULL, "cpu", "cpu.max", &has_cpu, -1},
  };
  for (size_t i = 0; i < HCS_ARRAY_SIZE(cases); i++) {
    cleanup_free char *cfg = config(cases[i].container, cases[i].linux_);
    hcs_error_t err = NULL;
    hcs_system_t *cs = hcs_compute_create(root, "lim", cfg, NULL, &err);
    cleanup_free char *d = leaf("lim");
    if (*cases[i].has) {
      ok(cs != NULL, "create with %s", cases[i].what);
      if (cases[i].want >= 0) is_int(hcs_cg_read_int(d, cases[i].file), cases[i].want, "%s is set", cases[i].file);
      if (cs) ok(hcs_compute_delete(cs, true, &err) == 0, "delete it");
    } else {
      ok(cs == NULL, "create with %s fails without the %s controller", cases[i].what, cases[i].ctrl);
      printf("#   %s\n", hcs_error_message(err));
      cleanup_free char *want = hcs_xasprintf("%s controller", cases[i].ctrl);
      has_substr(hcs_error_message(err), want, "the error names the %s controller", cases[i].ctrl);
      has_substr(hcs_error_message(err), d, "the error names the cgroup");
      ok(!hcs_path_exists(d), "no cgroup is left by the failed create");
      cleanup_free char *dir = hcs_xasprintf("%s/run/compute/lim", root);
      ok(!hcs_path_exists(dir), "no system directory is left by the failed create");
    }
    hcs_error_release(&err);
    hcs_compute_close(cs);
  }
}

/* Deleting a system that was created but never started removes its cgroup
 * (init joined it before create returned). */
static void test_delete_created(void) {
  cleanup_free char *cfg = config(NULL, NULL);
  hcs_error_t err = NULL;
  hcs_system_t *cs = create("created", cfg);
  ok(cs != NULL, "create a system and leave it Created");
  if (cs == NULL) return;
  cleanup_json json_t *p = props(cs, NULL);
  ok(cg_has_pid("created", (int)json_integer_value(json_object_get(p, "Pid"))), "init is in the cgroup before start");
  ok(hcs_compute_delete(cs, true, &err) == 0, "force-delete it");
  cleanup_free char *d = leaf("created");
  ok(!hcs_path_exists(d), "its cgroup is gone");
  hcs_error_release(&err);
  hcs_compute_close(cs);
}

/* A parent two levels deep (made on first use) and a user-namespaced init,
 * which the monitor moves into the cgroup by pid. */
static void test_nested_userns(void) {
  cleanup_free char *nested = hcs_xasprintf("%s/nested", cgparent);
  cleanup_free char *cfg =
      hcs_xasprintf("{\"Container\":{\"Storage\":{\"Path\":\"%s\"}},\"Linux\":{\"CgroupParent\":\"%s/nested\","
                    "\"UidMappings\":[{\"ContainerId\":0,\"HostId\":100000,\"Size\":65536}],"
                    "\"GidMappings\":[{\"ContainerId\":0,\"HostId\":100000,\"Size\":65536}]}}",
                    rootfs, parent);
  hcs_error_t err = NULL;
  hcs_system_t *cs = create("userns", cfg);
  ok(cs && hcs_compute_start(cs, &err) == 0, "start a user-namespaced system under <parent>/nested");
  if (cs == NULL) return;
  cleanup_json json_t *p = props(cs, NULL);
  int pid = (int)json_integer_value(json_object_get(p, "Pid"));
  cleanup_free char *procs = hcs_xasprintf("%s/userns/cgroup.procs", nested), *text = slurp(procs);
  char needle[32];
  snprintf(needle, sizeof needle, "%d", pid);
  ok(text && has_word(text, needle), "its init is in <parent>/nested/userns");
  cleanup_free char *ids = run_out(cs, "{\"CommandArgs\":[\"/bin/sh\",\"-c\",\"id -u; cat /proc/self/cgroup\"],"
                                       "\"CreateStdOutPipe\":true}");
  has_substr(ids, "0\n", "root inside the user namespace");
  has_substr(ids, "0::/\n", "and in its own cgroup namespace");
  ok(hcs_compute_delete(cs, true, &err) == 0, "force-delete it");
  if (err) printf("#   %s\n", hcs_error_message(err));
  cleanup_free char *d = hcs_xasprintf("%s/userns", nested);
  ok(!hcs_path_exists(d), "its cgroup is gone");
  ok(rmdir(nested) == 0, "the nested parent is empty");
  hcs_error_release(&err);
  hcs_compute_close(cs);
}

static void test_capabilities(const char *ctl) {
  hcs_error_t err = NULL;
  cleanup_free char *text = hcs_host_capabilities(&err);
  cleanup_json json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
  json_t *cg = json_object_get(doc, "Cgroup"), *c;
  is_str(json_string_value(json_object_get(cg, "Mode")), "v2", "host capabilities: Cgroup.Mode v2");
  size_t i, n = 0;
  bool all = true;
  json_array_foreach(json_object_get(cg, "Controllers"), i, c) {
    all &= json_is_string(c) && has_word(ctl, json_string_value(c));
    n++;
  }
  ok(all && n > 0, "Cgroup.Controllers are the root's cgroup.controllers");
  hcs_error_release(&err);
}

static void test_cycles(int n) {
  cleanup_free char *cfg = config(NULL, ",\"Init\":{\"CommandArgs\":[\"/bin/true\"]}");
  int failed = 0;
  for (int i = 0; i < n; i++) {
    char id[32];
    snprintf(id, sizeof id, "cycle%d", i);
    hcs_error_t err = NULL;
    hcs_system_t *cs = hcs_compute_create(root, id, cfg, NULL, &err);
    if (cs == NULL || hcs_compute_start(cs, &err) < 0 || hcs_compute_wait(cs, 10000, &err) != 1 ||
        hcs_compute_delete(cs, false, &err) < 0) {
      printf("#   cycle %d: %s\n", i, err ? hcs_error_message(err) : "wait timed out");
      failed++;
    }
    hcs_error_release(&err);
    hcs_compute_close(cs);
  }
  is_int(failed, 0, "%d create/start/wait/delete cycles", n);
  is_int(leaves(), 0, "no cgroup left below the parent");
  is_int(mounts_under_root(), 0, "no mount left under the root");
  int others = 0;
  for (int t = 0; t < 100 && (others = others_in_our_mntns()) != 0; t++)
    msleep(20); /* a monitor may still be exiting after its pidfd fired */
  is_int(others, 0, "no monitor or helper process left");
  cleanup_free char *procs = hcs_xasprintf("%s/cgroup.procs", cgparent);
  cleanup_free char *text = slurp(procs);
  is_str(text, "", "no process in the parent cgroup");
}

int main(void) {
  if (geteuid() != 0) {
    printf("1..0 # SKIP needs root\n");
    return 0;
  }
  bool pure = is_fs(CG, CGROUP2_SUPER_MAGIC), hybrid = !pure && is_fs(CG "/unified", CGROUP2_SUPER_MAGIC);
  if (!pure && !hybrid) {
    printf("1..0 # SKIP no cgroup2 hierarchy at " CG " or " CG "/unified\n");
    return 0;
  }
  /* Our own mount namespace either way: the monitors inherit it, which is
   * how the leftover check finds them. */
  if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
    perror("private mount namespace");
    return 1;
  }
  if (hybrid && mount(CG "/unified", CG, NULL, MS_BIND, NULL) < 0) {
    perror("bind " CG "/unified on " CG);
    return 1;
  }
  is_int(hcs_host_cgroup_mode(), HCS_CGROUP_V2, "hcs sees a v2 host (%s)", pure ? "pure v2" : "unified bound on " CG);
  ok(hcs_cgroup_ops() == &hcs_cgroup_v2_ops, "the v2 backend is picked");
  if (hcs_cgroup_ops() != &hcs_cgroup_v2_ops) return tap_done();
  cleanup_free char *ctl = slurp(CG "/cgroup.controllers");
  has_memory = has_word(ctl, "memory"), has_cpu = has_word(ctl, "cpu"), has_pids = has_word(ctl, "pids");
  printf("# root cgroup.controllers: %s", ctl && *ctl ? ctl : "(none)\n");

  /* 0755: a user-namespaced init must reach the rootfs. */
  if (mkdtemp(root) == NULL || chmod(root, 0755) < 0) return 1;
  snprintf(rootfs, sizeof rootfs, "%s/rootfs", root);
  snprintf(share, sizeof share, "%s/share", root);
  snprintf(parent, sizeof parent, "hcs-test-v2-%d", (int)getpid());
  snprintf(cgparent, sizeof cgparent, CG "/%s", parent);
  cleanup_free char *src = tap_source_dir();
  cleanup_free char *mk = hcs_xasprintf("'%s/tests/fixtures/make-busybox-rootfs.sh' '%s'", src, rootfs);
  if (system(mk) != 0 || mkdir(share, 0755) < 0) {
    printf("# could not build the busybox rootfs\n");
    return 1;
  }

  test_capabilities(ctl);
  test_exit_status();
  test_running();
  test_devices();
  test_devices_refused();
  test_device_pin();
  test_shutdown();
  test_create_limits();
  test_delete_created();
  test_nested_userns();
  test_cycles(20);

  int rm = rmdir(cgparent), rm_errno = errno;
  ok(rm == 0, "remove the parent cgroup %s (nothing left in it)", cgparent);
  if (rm < 0) printf("#   rmdir: %s\n", strerror(rm_errno));
  hcs_error_t err = NULL;
  ok(hcs_rm_rf(root, &err) == 0, "remove the test root");
  hcs_error_release(&err);
  return tap_done();
}
