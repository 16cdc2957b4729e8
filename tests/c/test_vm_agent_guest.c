/* What hcs-agent does as the guest's PID 1, in one TCG boot: eth0 and the
 * hostname from `ip=` (a virtio-net adapter on QEMU's user network), a 9p
 * share mounted on request (read and written from both sides), a new
 * session ends the previous session's processes, a second adapter (no
 * `ip=`) configured by MAC on request (configure_interface, what a
 * hot-added adapter gets) and bad requests, and the ACPI power button
 * (QMP system_powerdown) powers the guest off. */
#include <sys/socket.h>
#include <sys/un.h>

#include "vm_util.h"

static struct vm vm;

static void test_network(hcs_vm_agent_t *a) {
  int code;
  cleanup_free char *addr = sh(a, "ip -4 addr show eth0", &code);
  has_substr(addr, "inet 10.0.2.15/24", "eth0 has the address of ip=");
  cleanup_free char *route = sh(a, "ip route", &code);
  has_substr(route, "default via 10.0.2.2 dev eth0", "the default route goes through ip='s gateway");
  cleanup_free char *name = sh(a, "hostname", &code);
  is_str(name, "hcsguest\n", "the hostname comes from ip=");
  cleanup_free char *lo = sh(a, "ip link show lo", &code);
  has_substr(lo, "UP", "lo is up");
}

/* The second adapter (MAC 02:00:00:00:03:0f on a user network 10.0.3.0/24)
 * has no `ip=`: the agent configures it by MAC, as the host asks for a
 * hot-added adapter. */
static void test_configure_interface(hcs_vm_agent_t *a) {
  hcs_error_t err = NULL;
  ok(hcs_vm_agent_configure_interface(a, "02:00:00:00:03:0F", "10.0.3.15", 24, "10.0.3.2", 10000, &err) == 0,
     "configure the link with MAC 02:00:00:00:03:0F: %s", hcs_error_message(err));
  hcs_error_release(&err);
  int code;
  cleanup_free char *addr = sh(a, "ip -4 addr show eth1", &code);
  has_substr(addr, "inet 10.0.3.15/24", "eth1 (found by its MAC) has the address");
  has_substr(addr, "UP", "... and is up");
  cleanup_free char *route = sh(a, "ip route", &code);
  has_substr(route, "default via 10.0.2.2 dev eth0", "the guest's default route stays (it had one)");
  has_substr(route, "10.0.3.0/24 dev eth1", "eth1's subnet is routed through it");
  ok(hcs_vm_agent_configure_interface(a, "02:00:00:00:03:0f", "10.0.3.15", 24, NULL, 10000, &err) == 0,
     "configuring it again is fine: %s", hcs_error_message(err));
  hcs_error_release(&err);
  ok(hcs_vm_agent_configure_interface(a, "02:00:00:00:00:99", "10.0.9.9", 24, NULL, 1000, &err) < 0,
     "a MAC no link has is refused once the wait passed");
  is_str(hcs_error_message(err),
         "configure interface: no link with MAC 02:00:00:00:00:99 appeared within 1000 ms: No such device",
         "... saying so");
  is_int(hcs_error_status(err), ENODEV, "... ENODEV");
  hcs_error_release(&err);
  struct {
    const char *mac, *addr, *gw, *want;
    int prefix;
  } bad[] = {
      {"02:00:00:00:03", "10.0.3.15", NULL, "`mac` must be a MAC address", 24},
      {"02:00:00:00:03:0f", "10.0.3", NULL, "`address` must be an IPv4 address", 24},
      {"02:00:00:00:03:0f", "10.0.3.15", NULL, "`prefix` must be an integer from 0 to 32", 33},
      {"02:00:00:00:03:0f", "10.0.3.15", "gw", "`gateway` must be an IPv4 address", 24},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ok(hcs_vm_agent_configure_interface(a, bad[i].mac, bad[i].addr, bad[i].prefix, bad[i].gw, 1000, &err) < 0,
       "a bad request is refused: %s", bad[i].want);
    has_substr(hcs_error_message(err), bad[i].want, "... saying so");
    hcs_error_release(&err);
  }
  /* The waits ran in the agent's children: it serves on. */
  cleanup_free char *up = sh(a, "echo alive", &code);
  is_str(up, "alive\n", "the agent still serves");
}

static void test_9p(hcs_vm_agent_t *a, const char *share) {
  cleanup_free char *hello = hcs_xasprintf("%s/hello.txt", share);
  ok(hcs_write_file_atomic(hello, "from the host\n", 14, 0644, NULL) == 0, "write a file in the share");
  hcs_error_t err = NULL;
  ok(hcs_vm_agent_mount_9p(a, "hostshare", "/mnt/host", false, &err) == 0, "mount the 9p share: %s",
     hcs_error_message(err));
  hcs_error_release(&err);
  int code;
  cleanup_free char *got = sh(a, "cat /mnt/host/hello.txt && echo from the guest > /mnt/host/back.txt", &code);
  is_str(got, "from the host\n", "the guest reads the host's file");
  is_int(code, 0, "and writes one back");
  cleanup_free char *back_path = hcs_xasprintf("%s/back.txt", share);
  cleanup_free char *back = NULL;
  size_t n;
  ok(hcs_read_file(back_path, &back, &n, NULL) == 0 && strcmp(back, "from the guest\n") == 0,
     "the host reads the guest's file");
  ok(hcs_vm_agent_mount_9p(a, "nosuchtag", "/mnt/none", true, &err) < 0, "an unknown tag is refused");
  has_substr(hcs_error_message(err), "mount 9p share `nosuchtag` on `/mnt/none`", "... naming the tag and the target");
  hcs_error_release(&err);
  ok(hcs_vm_agent_mount_9p(a, "hostshare", "relative", true, &err) < 0, "a relative target is refused");
  has_substr(hcs_error_message(err), "an absolute `target`", "... saying why");
  hcs_error_release(&err);
}

/* A new connection is a new session: the old session's processes are gone. */
static hcs_vm_agent_t *test_sessions(hcs_vm_agent_t *a) {
  hcs_error_t err = NULL;
  hcs_vm_agent_process_t *p = run(a, "{\"CommandArgs\":[\"sleep\",\"4242\"]}", NULL, NULL, NULL, &err);
  ok(p != NULL, "start a process in the first session: %s", hcs_error_message(err));
  hcs_error_release(&err);
  hcs_vm_agent_process_close(p);
  hcs_vm_agent_close(a);
  a = hcs_vm_agent_connect(vm.sock, 60000, &err);
  ok(a != NULL, "connect again: %s", hcs_error_message(err));
  hcs_error_release(&err);
  if (!a) return NULL;
  int code;
  cleanup_free char *ps = sh(a, "ps -o args | grep -c '^sleep 4242'", &code);
  is_str(ps, "0\n", "the first session's process was killed when it ended");
  return a;
}

static int qmp_command(const char *path, const char *cmd) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) return -1;
  char buf[4096];
  const char caps[] = "{\"execute\":\"qmp_capabilities\"}\n";
  ssize_t r = read(fd, buf, sizeof(buf)); /* the greeting */
  if (r <= 0 || write(fd, caps, sizeof(caps) - 1) < 0 || read(fd, buf, sizeof(buf)) <= 0) return close(fd), -1;
  cleanup_free char *c = hcs_xasprintf("{\"execute\":\"%s\"}\n", cmd);
  if (write(fd, c, strlen(c)) < 0) return close(fd), -1;
  /* events (POWERDOWN, SHUTDOWN) may come before the answer */
  size_t n = 0;
  while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0) {
    n += (size_t)r;
    buf[n] = 0;
    if (strstr(buf, "\"return\"")) break;
  }
  buf[n] = 0;
  close(fd);
  return strstr(buf, "\"return\"") ? 0 : -1;
}

static void test_power_button(hcs_vm_agent_t *a) {
  hcs_error_t err = NULL;
  hcs_vm_agent_process_t *p = run(a, "{\"CommandArgs\":[\"sleep\",\"1000\"]}", NULL, NULL, NULL, &err);
  ok(qmp_command(vm.qmp, "system_powerdown") == 0, "press the ACPI power button (QMP system_powerdown)");
  int status = 0;
  pid_t r = 0;
  for (int i = 0; i < 600 && r == 0; i++) { /* a bound so a broken agent fails instead of hanging */
    r = waitpid(vm.qemu, &status, WNOHANG);
    if (r == 0) usleep(200000);
  }
  ok(r == vm.qemu && WIFEXITED(status) && WEXITSTATUS(status) == 0, "the guest powers off and QEMU exits 0");
  if (r == vm.qemu) vm.qemu = -1;
  if (p) {
    is_int(hcs_vm_agent_process_wait(p, -1, &err), -1, "the session's process wait ends");
    has_substr(hcs_error_message(err), "agent gone", "... with \"agent gone\"");
    hcs_error_release(&err);
    hcs_vm_agent_process_close(p);
  }
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  char share[] = "/tmp/hcs-test.vmshare.XXXXXX";
  if (!mkdtemp(share)) return perror("mkdtemp"), 1;
  cleanup_free char *fsdev = hcs_xasprintf("local,id=fs0,path=%s,security_model=none", share);
  const char *extra[] = {"-netdev", "user,id=n0",
                         "-device", "virtio-net-pci,netdev=n0",
                         "-netdev", "user,id=n1,net=10.0.3.0/24",
                         "-device", "virtio-net-pci,netdev=n1,mac=02:00:00:00:03:0f",
                         "-fsdev",  fsdev,
                         "-device", "virtio-9p-pci,fsdev=fs0,mount_tag=hostshare",
                         NULL};
  if (vm_boot(&vm, extra, "ip=10.0.2.15::10.0.2.2:255.255.255.0:hcsguest:eth0:off") == 0) {
    hcs_error_t err = NULL;
    hcs_vm_agent_t *a = hcs_vm_agent_connect(vm.sock, 60000, &err);
    ok(a != NULL, "connect: %s", hcs_error_message(err));
    hcs_error_release(&err);
    if (a) {
      test_network(a);
      test_configure_interface(a);
      test_9p(a, share);
      a = test_sessions(a);
    }
    if (a) test_power_button(a);
    hcs_vm_agent_close(a);
  }
  vm_cleanup(&vm);
  hcs_rm_rf(share, NULL);
  return tap_done();
}
