/* Shared by the VM agent tests: build the initramfs from the installed
 * Debian kernel's modules (hcs_vm_initrd_build), boot it under QEMU (TCG)
 * with the agent channel as the VM compute system passes it, and small
 * helpers to run guest processes through src/vm/agent_client.c. */
#ifndef HCS_TESTS_VM_UTIL_H
#define HCS_TESTS_VM_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "hcs/vm_initrd.h"
#include "tap.h"
#include "vm/agent_client.h"

struct vm {
  char dir[64];
  char kernel[512];
  char *initrd, *sock, *qmp, *console;
  pid_t qemu;
};

/* Build the initramfs and start QEMU; extra: more QEMU arguments (NULL-ended),
 * append: more kernel command line.  0 or -1 (a failed check printed). */
__attribute__((unused)) static int vm_boot(struct vm *vm, const char *const *extra, const char *append) {
  memset(vm, 0, sizeof(*vm));
  vm->qemu = -1;
  glob_t g;
  if (glob("/boot/vmlinuz-*", 0, NULL, &g) != 0 || access("/usr/bin/qemu-system-x86_64", X_OK) != 0) {
    ok(0, "a kernel in /boot and qemu-system-x86_64 (scripts/bootstrap installs linux-image-amd64, qemu-system-x86)");
    return -1;
  }
  snprintf(vm->kernel, sizeof(vm->kernel), "%s", g.gl_pathv[g.gl_pathc - 1]);
  globfree(&g);
  const char *version = strchr(vm->kernel, '-') + 1;
  strcpy(vm->dir, "/tmp/hcs-test.vm.XXXXXX");
  if (!mkdtemp(vm->dir)) {
    ok(0, "mkdtemp: %s", strerror(errno));
    return -1;
  }
  const char *build = getenv("HCS_BUILD_DIR");
  cleanup_free char *agent = hcs_xasprintf("%s/hcs-agent", build ? build : "build");
  vm->initrd = hcs_xasprintf("%s/initrd.gz", vm->dir);
  vm->sock = hcs_xasprintf("%s/agent.sock", vm->dir);
  vm->qmp = hcs_xasprintf("%s/qmp.sock", vm->dir);
  vm->console = hcs_xasprintf("%s/console.log", vm->dir);
  hcs_vm_initrd_options_t o = {.modules_dir = "/lib/modules", .kernel_version = version, .agent = agent};
  hcs_error_t err = NULL;
  cleanup_free char *sum = hcs_vm_initrd_build(&o, vm->initrd, &err);
  ok(sum != NULL, "build the initramfs: %s", hcs_error_message(err));
  hcs_error_release(&err);
  if (!sum) return -1;
  cleanup_free char *chardev = hcs_xasprintf("socket,id=hcsagent,path=%s,server=on,wait=off", vm->sock);
  cleanup_free char *qmp = hcs_xasprintf("unix:%s,server=on,wait=off", vm->qmp);
  cleanup_free char *cmdline = hcs_xasprintf("console=ttyS0 quiet panic=-1 %s", append ? append : "");
  const char *argv[64] = {"qemu-system-x86_64",
                          "-kernel",
                          vm->kernel,
                          "-initrd",
                          vm->initrd,
                          "-append",
                          cmdline,
                          "-nographic",
                          "-m",
                          "256",
                          "-accel",
                          "tcg",
                          "-no-reboot",
                          "-nodefaults",
                          "-serial",
                          "stdio",
                          "-qmp",
                          qmp,
                          "-chardev",
                          chardev,
                          "-device",
                          "virtio-serial-pci",
                          "-device",
                          "virtserialport,chardev=hcsagent,name=org.hcs.agent"};
  int n = 0;
  while (argv[n])
    n++;
  for (int i = 0; extra && extra[i] && n < 62; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  vm->qemu = fork();
  if (vm->qemu == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a test that dies (an abort) takes its VM along */
    int fd = open(vm->console, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    execvp(argv[0], (char **)argv);
    _exit(127);
  }
  ok(hcs_vm_agent_wait_ready(vm->sock, 300000, &err) == 0, "the agent becomes ready: %s", hcs_error_message(err));
  int r = err ? -1 : 0;
  hcs_error_release(&err);
  return r;
}

__attribute__((unused)) static void vm_kill(struct vm *vm) {
  if (vm->qemu > 0) {
    kill(vm->qemu, SIGKILL);
    waitpid(vm->qemu, NULL, 0);
  }
  vm->qemu = -1;
}

/* Kill QEMU, show the console when a check failed, remove the directory. */
__attribute__((unused)) static void vm_cleanup(struct vm *vm) {
  vm_kill(vm);
  if ((tap_failed || getenv("HCS_TEST_CONSOLE")) && vm->console) {
    cleanup_free char *log = NULL;
    size_t n;
    if (hcs_read_file(vm->console, &log, &n, NULL) == 0) printf("# console:\n%s\n", log);
  }
  if (vm->dir[0]) hcs_rm_rf(vm->dir, NULL);
  free(vm->initrd);
  free(vm->sock);
  free(vm->qmp);
  free(vm->console);
}

/* Read fd to EOF; a stuck relay fails the test after a generous bound
 * instead of hanging ctest. */
__attribute__((unused)) static char *read_all(int fd, size_t *len) {
  size_t n = 0, cap = 65536;
  char *b = malloc(cap + 1);
  time_t until = time(NULL) + 600;
  for (;;) {
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, 1000) == 0) {
      if (time(NULL) > until) break;
      continue;
    }
    if (n == cap) b = realloc(b, (cap *= 2) + 1);
    ssize_t r = read(fd, b + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  b[n] = 0;
  if (len) *len = n;
  return b;
}

__attribute__((unused)) static hcs_vm_agent_process_t *run(hcs_vm_agent_t *a, const char *params, int *in, int *out,
                                                           int *err_fd, hcs_error_t *err) {
  hcs_vm_agent_process_t *p = hcs_vm_agent_create_process(a, params, err);
  if (p) hcs_vm_agent_process_take_stdio(p, in, out, err_fd);
  return p;
}

__attribute__((unused)) static int exit_code(hcs_vm_agent_process_t *p) {
  hcs_error_t err = NULL;
  if (hcs_vm_agent_process_wait(p, -1, &err) != 1) {
    printf("# wait: %s\n", hcs_error_message(err));
    hcs_error_release(&err);
    return -1;
  }
  return hcs_vm_agent_process_exit_code(p, NULL);
}

/* Run `sh -c script` in the guest: its stdout (malloc'd), *code its exit code. */
__attribute__((unused)) static char *sh(hcs_vm_agent_t *a, const char *script, int *code) {
  json_t *doc = json_pack("{s:[s,s,s],s:b}", "CommandArgs", "sh", "-c", script, "CreateStdOutPipe", 1);
  cleanup_free char *params = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  hcs_error_t err = NULL;
  int out = -1;
  hcs_vm_agent_process_t *p = run(a, params, NULL, &out, NULL, &err);
  if (!p) {
    printf("# sh -c %s: %s\n", script, hcs_error_message(err));
    hcs_error_release(&err);
    *code = -1;
    return hcs_xstrdup("");
  }
  char *o = read_all(out, NULL);
  close(out);
  *code = exit_code(p);
  hcs_vm_agent_process_close(p);
  return o;
}

#endif
