/* One sample of tests/bench/vm-agent.sh, the hcs side: boot QEMU (TCG) with
 * the hcs initramfs, time boot to agent ready (hcs_vm_agent_wait_ready),
 * then ROUNDS round trips of /bin/true (create, wait for the exit code,
 * close) through src/vm/agent_client.c.  Prints
 * "hcs ready_ms=N rt_ms=M1,M2,...".
 *   vm_agent_bench KERNEL INITRD ROUNDS */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "vm/agent_client.h"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc != 4) return fprintf(stderr, "usage: vm_agent_bench KERNEL INITRD ROUNDS\n"), 2;
  int rounds = atoi(argv[3]);
  char dir[] = "/tmp/hcs-bench.vm.XXXXXX";
  if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
  cleanup_free char *sock = hcs_xasprintf("%s/agent.sock", dir);
  cleanup_free char *chardev = hcs_xasprintf("socket,id=hcsagent,path=%s,server=on,wait=off", sock);
  double t0 = now_ms();
  pid_t qemu = fork();
  if (qemu == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a test that dies (an abort) takes its VM along */
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    execlp("qemu-system-x86_64", "qemu-system-x86_64", "-kernel", argv[1], "-initrd", argv[2], "-append",
           "console=ttyS0 quiet panic=-1", "-nographic", "-m", "256", "-accel", "tcg", "-no-reboot", "-nodefaults",
           "-serial", "stdio", "-chardev", chardev, "-device", "virtio-serial-pci", "-device",
           "virtserialport,chardev=hcsagent,name=org.hcs.agent", (char *)NULL);
    _exit(127);
  }
  hcs_error_t err = NULL;
  int rc = 1;
  if (hcs_vm_agent_wait_ready(sock, 300000, &err) < 0) {
    fprintf(stderr, "vm_agent_bench: %s\n", hcs_error_message(err));
    goto out;
  }
  double ready = now_ms() - t0;
  hcs_vm_agent_t *a = hcs_vm_agent_connect(sock, 60000, &err);
  if (!a) {
    fprintf(stderr, "vm_agent_bench: %s\n", hcs_error_message(err));
    goto out;
  }
  printf("hcs ready_ms=%.1f rt_ms=", ready);
  for (int i = 0; i < rounds; i++) {
    double t = now_ms();
    hcs_vm_agent_process_t *p = hcs_vm_agent_create_process(a, "{\"CommandArgs\":[\"/bin/true\"]}", &err);
    if (!p || hcs_vm_agent_process_wait(p, -1, &err) != 1 || hcs_vm_agent_process_exit_code(p, &err) != 0) {
      fprintf(stderr, "vm_agent_bench: /bin/true: %s\n", hcs_error_message(err));
      hcs_vm_agent_process_close(p);
      hcs_vm_agent_close(a);
      goto out;
    }
    hcs_vm_agent_process_close(p);
    printf("%s%.2f", i ? "," : "", now_ms() - t);
  }
  printf("\n");
  hcs_vm_agent_close(a);
  rc = 0;
out:
  kill(qemu, SIGKILL);
  waitpid(qemu, NULL, 0);
  hcs_error_release(&err);
  hcs_rm_rf(dir, NULL);
  return rc;
}
