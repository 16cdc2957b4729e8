/* Shared by the VM tests (test_vm.c, test_vm_uefi.c): the test root, the
 * kernel, the cgroup parent, console and property readers, running a
 * command in the guest through the agent, and the final leak checks. */
#ifndef HCS_TEST_VM_TEST_H
#define HCS_TEST_VM_TEST_H

#include <dirent.h>
#include <glob.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "hcs/hcs.h"
#include "tap.h"

static char root[] = "/tmp/hcs-test.XXXXXX";
static char kernel[PATH_MAX], cgparent[64];

static __attribute__((unused)) char *slurp(const char *path) {
  char *s = NULL;
  if (hcs_read_file(path, &s, NULL, NULL) < 0) return hcs_xstrdup("");
  return s;
}

static __attribute__((unused)) size_t console_size(const char *path) {
  cleanup_free char *s = slurp(path);
  return strlen(s);
}

/* Wait (bounded generously: TCG on a loaded CI host) until the console
 * file holds `needle` after byte `from`. */
static __attribute__((unused)) bool wait_console(const char *path, const char *needle, size_t from) {
  for (int i = 0; i < 1800; i++) {
    cleanup_free char *s = slurp(path);
    if (strlen(s) > from && strstr(s + from, needle)) return true;
    usleep(100 * 1000);
  }
  return false;
}

static __attribute__((unused)) json_t *props(hcs_system_t *cs) {
  hcs_error_t e = NULL;
  cleanup_free char *p = hcs_compute_properties(cs, "{\"PropertyTypes\":[\"Statistics\"]}", &e);
  hcs_error_release(&e);
  return p ? json_loads(p, 0, NULL) : json_object();
}

static __attribute__((unused)) const char *prop_str(json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

static __attribute__((unused)) char *share_req(const char *type, const char *name, const char *path, bool ro) {
  if (path == NULL)
    return hcs_xasprintf("{\"ResourcePath\":\"VirtualMachine/Devices/Plan9/Shares\",\"RequestType\":\"%s\","
                         "\"Settings\":{\"Name\":\"%s\"}}",
                         type, name);
  return hcs_xasprintf("{\"ResourcePath\":\"VirtualMachine/Devices/Plan9/Shares\",\"RequestType\":\"%s\","
                       "\"Settings\":{\"Name\":\"%s\",\"Path\":\"%s\",\"ReadOnly\":%s}}",
                       type, name, path, ro ? "true" : "false");
}

/* Does /proc/PID/mountinfo (0: ours) mention `needle`? */
static __attribute__((unused)) bool mountinfo_has(pid_t pid, const char *needle) {
  char path[64];
  if (pid > 0)
    snprintf(path, sizeof path, "/proc/%d/mountinfo", (int)pid);
  else
    snprintf(path, sizeof path, "/proc/self/mountinfo");
  cleanup_free char *text = slurp(path);
  return text && strstr(text, needle) != NULL;
}

static __attribute__((unused)) pid_t qemu_pid(hcs_system_t *cs) {
  json_t *p = props(cs);
  pid_t pid = (pid_t)json_integer_value(json_object_get(p, "Pid"));
  json_decref(p);
  return pid;
}

/* A guest command's stdout (up to size - 1 bytes) and its exit code (-1
 * when it could not run). */
static __attribute__((unused)) int guest_run(hcs_system_t *cs, const char *cmd, char *buf, size_t size) {
  hcs_error_t e = NULL;
  json_t *params = json_pack("{s:[s,s,s],s:b}", "CommandArgs", "sh", "-c", cmd, "CreateStdOutPipe", 1);
  cleanup_free char *text = json_dumps(params, JSON_COMPACT);
  json_decref(params);
  buf[0] = '\0';
  hcs_process_t *pr = hcs_process_create(cs, text, &e);
  if (pr == NULL) {
    printf("# run `%s`: %s\n", cmd, hcs_error_message(e));
    hcs_error_release(&e);
    return -1;
  }
  int out = -1;
  hcs_process_take_stdio(pr, NULL, &out, NULL);
  size_t n = 0;
  ssize_t r;
  while (out >= 0 && n < size - 1 && (r = read(out, buf + n, size - 1 - n)) > 0)
    n += (size_t)r;
  buf[n] = '\0';
  if (out >= 0) close(out);
  int code = hcs_process_wait(pr, 60000, &e) == 1 ? hcs_process_exit_code(pr, &e) : -1;
  hcs_error_release(&e);
  hcs_process_close(pr);
  return code;
}

static __attribute__((unused)) void nothing_left(void) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/run/compute", root);
  int n = 0;
  DIR *d = opendir(path);
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (de->d_name[0] != '.') n++;
  if (d) closedir(d);
  is_int(n, 0, "no system state is left");
  int cg = 0;
  glob_t g;
  for (int k = 0; k < 2; k++) {
    snprintf(path, sizeof path, "/sys/fs/cgroup/%s%s/*", k ? "" : "*/", cgparent);
    if (glob(path, GLOB_ONLYDIR, NULL, &g) != 0) continue;
    struct stat st;
    for (size_t i = 0; i < g.gl_pathc; i++)
      if (stat(g.gl_pathv[i], &st) == 0 && S_ISDIR(st.st_mode)) cg++;
    globfree(&g);
  }
  ok(!cg, "no VM cgroup is left under %s", cgparent);
  char cmd[PATH_MAX + 64];
  /* [q]: the pattern must not match the shell that runs pgrep. */
  snprintf(cmd, sizeof cmd, "pgrep -f '[q]emu-system.*%s' >/dev/null", root);
  ok(system(cmd) != 0, "no QEMU process of this root is left");
}

/* The newest kernel in /boot and QEMU, or a TAP skip; then the test root
 * and the cgroup parent named after `name`.  false: skip (printed). */
static __attribute__((unused)) bool vm_test_setup(const char *name) {
  glob_t g;
  if (glob("/boot/vmlinuz-*", 0, NULL, &g) != 0 || system("command -v qemu-system-x86_64 >/dev/null") != 0) {
    printf("1..0 # SKIP no kernel in /boot or no QEMU (scripts/bootstrap installs them)\n");
    return false;
  }
  snprintf(kernel, sizeof kernel, "%s", g.gl_pathv[g.gl_pathc - 1]);
  globfree(&g);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (mkdtemp(root) == NULL) exit(1);
  setenv("HCS_VM_ACCEL", "tcg", 1);
  snprintf(cgparent, sizeof cgparent, "hcs-test-%s-%d", name, (int)getpid());
  return true;
}

/* The leak checks, then the parent cgroups and the root removed. */
static __attribute__((unused)) int vm_test_done(void) {
  nothing_left();
  char cmd[PATH_MAX * 2];
  snprintf(cmd, sizeof cmd,
           "for d in /sys/fs/cgroup/*/%s /sys/fs/cgroup/%s; do [ -d \"$d\" ] && rmdir \"$d\"; done; "
           "rm -rf %s",
           cgparent, cgparent, root);
  if (system(cmd) < 0) return 1;
  return tap_done();
}

#endif
