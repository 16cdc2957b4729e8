/* The guest agent end to end: build the initramfs with hcs_vm_initrd_build
 * from the installed Debian kernel's modules, boot it under QEMU (TCG, the
 * channel as the VM compute system passes it), and drive processes through
 * src/vm/agent_client.c.  One boot for the whole file; QEMU is killed at
 * the end to check "agent gone". */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "hcs/vm_initrd.h"
#include "vm_util.h"

static struct vm vm;

static void test_exit_codes(hcs_vm_agent_t *a) {
  hcs_error_t err = NULL;
  hcs_vm_agent_process_t *p = run(a, "{\"CommandArgs\":[\"/bin/true\"]}", NULL, NULL, NULL, &err);
  ok(p != NULL, "create /bin/true: %s", hcs_error_message(err));
  if (p) is_int(exit_code(p), 0, "/bin/true exits 0");
  hcs_vm_agent_process_close(p);
  p = run(a, "{\"CommandArgs\":[\"sh\",\"-c\",\"exit 7\"]}", NULL, NULL, NULL, &err);
  ok(p != NULL, "create sh -c 'exit 7': %s", hcs_error_message(err));
  if (p) is_int(exit_code(p), 7, "sh -c 'exit 7' exits 7");
  hcs_vm_agent_process_close(p);
  p = run(a, "{\"CommandLine\":\"sh -c 'exit 3'\"}", NULL, NULL, NULL, &err);
  ok(p != NULL, "create from a CommandLine: %s", hcs_error_message(err));
  if (p) is_int(exit_code(p), 3, "the CommandLine is split into words");
  hcs_vm_agent_process_close(p);
}

static void test_stdio(hcs_vm_agent_t *a) {
  hcs_error_t err = NULL;
  int in = -1, out = -1, efd = -1;
  hcs_vm_agent_process_t *p =
      run(a,
          "{\"CommandArgs\":[\"sh\",\"-c\",\"echo to-out; echo to-err >&2; echo $GREETING $(pwd) $(id -u)\"],"
          "\"Environment\":{\"GREETING\":\"hi\"},\"WorkingDirectory\":\"/tmp\",\"User\":\"nobody\","
          "\"CreateStdOutPipe\":true,\"CreateStdErrPipe\":true}",
          &in, &out, &efd, &err);
  ok(p != NULL, "create with stdout and stderr pipes: %s", hcs_error_message(err));
  if (!p) return;
  ok(in == -1 && out >= 0 && efd >= 0, "pipes for the requested streams only");
  cleanup_free char *o = read_all(out, NULL);
  cleanup_free char *e = read_all(efd, NULL);
  is_str(o, "to-out\nhi /tmp 65534\n", "stdout carries stdout, the environment, the directory and the user");
  is_str(e, "to-err\n", "stderr is separate");
  is_int(exit_code(p), 0, "exits 0");
  close(out);
  close(efd);
  hcs_vm_agent_process_close(p);

  p = run(a, "{\"CommandArgs\":[\"cat\"],\"CreateStdInPipe\":true,\"CreateStdOutPipe\":true}", &in, &out, NULL, &err);
  ok(p != NULL, "create cat with stdin: %s", hcs_error_message(err));
  if (!p) return;
  const char msg[] = "line one\nline two\n";
  ok(write(in, msg, sizeof(msg) - 1) == (ssize_t)sizeof(msg) - 1, "write stdin");
  close(in);
  cleanup_free char *echoed = read_all(out, NULL);
  is_str(echoed, msg, "stdin reaches the process; its EOF ends cat");
  is_int(exit_code(p), 0, "cat exits 0");
  close(out);
  hcs_vm_agent_process_close(p);
}

/* Streams without a pipe go to fds of the caller's (hcs_process_create_ex). */
static void test_inherited_stdio(hcs_vm_agent_t *a) {
  int in[2], out[2], errp[2];
  if (pipe(in) < 0 || pipe(out) < 0 || pipe(errp) < 0) {
    ok(0, "pipe: %s", strerror(errno));
    return;
  }
  ok(write(in[1], "from the caller\n", 16) == 16, "the caller's stdin holds a line");
  close(in[1]);
  int stdio[3] = {in[0], out[1], errp[1]};
  hcs_error_t err = NULL;
  hcs_vm_agent_process_t *p = hcs_vm_agent_create_process_ex(
      a, "{\"CommandArgs\":[\"sh\",\"-c\",\"cat; echo on-err >&2; exit 4\"]}", stdio, &err);
  ok(p != NULL, "create with the caller's fds: %s", hcs_error_message(err));
  hcs_error_release(&err);
  close(in[0]);
  close(out[1]);
  close(errp[1]);
  if (p) {
    int tin = 0, tout = 0, terr = 0;
    hcs_vm_agent_process_take_stdio(p, &tin, &tout, &terr);
    ok(tin == -1 && tout == -1 && terr == -1, "no pipes are handed out for them");
    is_int(exit_code(p), 4, "exits 4");
    /* wait returned: the output is complete in the caller's pipes already */
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(errp[0], F_SETFL, O_NONBLOCK);
    char b1[256] = "", b2[256] = "";
    ssize_t n1 = read(out[0], b1, sizeof(b1) - 1), n2 = read(errp[0], b2, sizeof(b2) - 1);
    b1[n1 > 0 ? n1 : 0] = 0;
    b2[n2 > 0 ? n2 : 0] = 0;
    is_str(b1, "from the caller\n", "stdin came from the caller's fd, stdout went to its fd");
    is_str(b2, "on-err\n", "stderr went to the caller's fd");
    hcs_vm_agent_process_close(p);
  }
  close(out[0]);
  close(errp[0]);
}

/* Read from a tty stream until `want` shows up (or EOF). */
static bool read_until(int fd, const char *want, char *buf, size_t cap) {
  size_t n = 0;
  time_t until = time(NULL) + 300;
  while (n + 1 < cap && time(NULL) < until) {
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, 1000) <= 0) continue;
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
    buf[n] = 0;
    if (strstr(buf, want)) return true;
  }
  buf[n] = 0;
  return false;
}

static void test_tty(hcs_vm_agent_t *a) {
  hcs_error_t err = NULL;
  int in = -1, out = -1, efd = -1;
  hcs_vm_agent_process_t *p = run(a,
                                  "{\"CommandArgs\":[\"sh\",\"-c\",\"stty size; read x; stty size; exit 5\"],"
                                  "\"EmulateConsole\":true,\"ConsoleSize\":[24,80]}",
                                  &in, &out, &efd, &err);
  ok(p != NULL, "create a tty process: %s", hcs_error_message(err));
  if (!p) return;
  ok(in >= 0 && out >= 0 && efd == -1, "a tty has in and out, no separate stderr");
  char buf[4096];
  ok(read_until(out, "24 80", buf, sizeof(buf)), "the console starts at 24x80 (got \"%s\")", buf);
  hcs_error_t rerr = NULL;
  ok(hcs_vm_agent_process_resize(p, 40, 100, &rerr) == 0, "resize: %s", hcs_error_message(rerr));
  ok(write(in, "go\n", 3) == 3, "type a line");
  ok(read_until(out, "40 100", buf, sizeof(buf)), "the resize reached the terminal (got \"%s\")", buf);
  is_int(exit_code(p), 5, "the tty process exits 5");
  close(in);
  close(out);
  hcs_vm_agent_process_close(p);

  /* resize of a process without a console is refused */
  p = run(a, "{\"CommandArgs\":[\"true\"]}", NULL, NULL, NULL, &err);
  if (p) {
    ok(hcs_vm_agent_process_resize(p, 10, 10, &rerr) < 0, "resize without a console fails");
    hcs_error_release(&rerr);
    exit_code(p);
    hcs_vm_agent_process_close(p);
  }
}

static void test_signal(hcs_vm_agent_t *a) {
  hcs_error_t err = NULL;
  hcs_vm_agent_process_t *p = run(a, "{\"CommandArgs\":[\"sleep\",\"1000\"]}", NULL, NULL, NULL, &err);
  ok(p != NULL, "create sleep: %s", hcs_error_message(err));
  if (!p) return;
  is_int(hcs_vm_agent_process_wait(p, 0, &err), 0, "sleep is running");
  ok(hcs_vm_agent_process_signal(p, SIGTERM, &err) == 0, "signal SIGTERM: %s", hcs_error_message(err));
  is_int(exit_code(p), 128 + SIGTERM, "killed by SIGTERM: 143");
  ok(hcs_vm_agent_process_signal(p, SIGTERM, &err) < 0, "signalling an exited process fails");
  has_substr(hcs_error_message(err), "exited", "... saying it exited");
  hcs_error_release(&err);
  hcs_vm_agent_process_close(p);
}

static void test_concurrent(hcs_vm_agent_t *a) {
  enum { N = 20 };
  hcs_vm_agent_process_t *p[N];
  int out[N];
  hcs_error_t err = NULL;
  int created = 0;
  for (int i = 0; i < N; i++) {
    cleanup_free char *doc = hcs_xasprintf(
        "{\"CommandArgs\":[\"sh\",\"-c\",\"i=0; while [ $i -lt 200 ]; do echo %d-$i; i=$((i+1)); done; exit %d\"],"
        "\"CreateStdOutPipe\":true}",
        i, i);
    p[i] = run(a, doc, NULL, &out[i], NULL, &err);
    if (p[i])
      created++;
    else
      printf("# create %d: %s\n", i, hcs_error_message(err));
  }
  is_int(created, N, "20 processes at once");
  int good_out = 0, good_code = 0;
  for (int i = 0; i < N; i++) {
    if (!p[i]) continue;
    cleanup_free char *o = read_all(out[i], NULL);
    size_t want_len = 0;
    for (int k = 0; k < 200; k++)
      want_len += (size_t)snprintf(NULL, 0, "%d-%d\n", i, k);
    cleanup_free char *first = hcs_xasprintf("%d-0\n", i);
    cleanup_free char *last = hcs_xasprintf("\n%d-199\n", i);
    if (strlen(o) == want_len && strncmp(o, first, strlen(first)) == 0 && strstr(o, last)) good_out++;
    if (exit_code(p[i]) == i) good_code++;
    close(out[i]);
    hcs_vm_agent_process_close(p[i]);
  }
  is_int(good_out, N, "each got its own complete output");
  is_int(good_code, N, "each got its own exit code");
}

/* A process whose output nobody reads holds only its own window: others run. */
static void test_flow_control(hcs_vm_agent_t *a) {
  hcs_error_t err = NULL;
  int out = -1;
  hcs_vm_agent_process_t *hog = run(a, "{\"CommandArgs\":[\"yes\"],\"CreateStdOutPipe\":true}", NULL, &out, NULL, &err);
  ok(hog != NULL, "create yes (never read): %s", hcs_error_message(err));
  hcs_vm_agent_process_t *p = run(a, "{\"CommandArgs\":[\"sh\",\"-c\",\"exit 9\"]}", NULL, NULL, NULL, &err);
  ok(p != NULL, "create another process meanwhile: %s", hcs_error_message(err));
  if (p) is_int(exit_code(p), 9, "it runs and exits while yes is stalled");
  hcs_vm_agent_process_close(p);
  if (hog) {
    ok(hcs_vm_agent_process_signal(hog, SIGKILL, &err) == 0, "kill yes: %s", hcs_error_message(err));
    close(out); /* the relay discards the rest */
    is_int(exit_code(hog), 128 + SIGKILL, "yes ends killed");
    hcs_vm_agent_process_close(hog);
  }
}

static void test_large_output(hcs_vm_agent_t *a) {
  hcs_error_t err = NULL;
  int out = -1, efd = -1;
  hcs_vm_agent_process_t *p =
      run(a,
          "{\"CommandArgs\":[\"sh\",\"-c\",\"head -c 52428800 /dev/urandom > /tmp/big && sha256sum /tmp/big >&2 && "
          "cat /tmp/big && rm /tmp/big\"],\"CreateStdOutPipe\":true,\"CreateStdErrPipe\":true}",
          NULL, &out, &efd, &err);
  ok(p != NULL, "create the 50 MB writer: %s", hcs_error_message(err));
  if (!p) return;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  size_t total = 0;
  char buf[65536];
  for (;;) {
    ssize_t r = read(out, buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    EVP_DigestUpdate(md, buf, (size_t)r);
    total += (size_t)r;
  }
  unsigned char dg[32];
  EVP_DigestFinal_ex(md, dg, NULL);
  EVP_MD_CTX_free(md);
  char hex[65];
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", dg[i]);
  cleanup_free char *e = read_all(efd, NULL);
  is_int(total, 52428800, "50 MB relayed");
  ok(strncmp(e, hex, 64) == 0, "the checksum matches the guest's (%s vs %.64s)", hex, e);
  is_int(exit_code(p), 0, "the writer exits 0");
  close(out);
  close(efd);
  hcs_vm_agent_process_close(p);
}

static void test_bad_requests(hcs_vm_agent_t *a) {
  hcs_error_t err = NULL;
  ok(hcs_vm_agent_create_process(a, "{\"Environment\":{}}", &err) == NULL, "no command is refused");
  has_substr(hcs_error_message(err), "`CommandArgs` or `CommandLine` is missing", "... naming the field");
  hcs_error_release(&err);
  ok(hcs_vm_agent_create_process(a, "{\"CommandArgs\":[\"true\"],\"User\":\"nosuch\"}", &err) == NULL,
     "an unknown user is refused");
  has_substr(hcs_error_message(err), "user `nosuch`: not found in the guest's /etc/passwd", "... naming the user");
  hcs_error_release(&err);
  ok(hcs_vm_agent_create_process(a, "{\"CommandArgs\":[\"/no/such/binary\"]}", &err) == NULL,
     "a missing binary is refused");
  has_substr(hcs_error_message(err), "exec `/no/such/binary`: No such file or directory", "... with the exec error");
  is_int(hcs_error_status(err), ENOENT, "... and its errno (the CLI's 127)");
  hcs_error_release(&err);
  ok(hcs_vm_agent_create_process(a, "{\"CommandArgs\":[\"true\"],\"WorkingDirectory\":\"/nowhere\"}", &err) == NULL,
     "a missing working directory is refused");
  has_substr(hcs_error_message(err), "working directory `/nowhere`", "... naming it");
  hcs_error_release(&err);
  ok(hcs_vm_agent_create_process(a, "[1]", &err) == NULL, "a document that is not an object is refused");
  hcs_error_release(&err);
}

static void test_agent_gone(hcs_vm_agent_t *a) {
  hcs_error_t err = NULL;
  hcs_vm_agent_process_t *p =
      run(a, "{\"CommandArgs\":[\"sleep\",\"1000\"],\"CreateStdOutPipe\":true}", NULL, NULL, NULL, &err);
  ok(p != NULL, "create sleep before QEMU dies: %s", hcs_error_message(err));
  vm_kill(&vm);
  if (p) {
    is_int(hcs_vm_agent_process_wait(p, -1, &err), -1, "wait fails when QEMU is killed");
    has_substr(hcs_error_message(err), "agent gone", "... with \"agent gone\"");
    hcs_error_release(&err);
    hcs_vm_agent_process_close(p);
  }
  ok(hcs_vm_agent_create_process(a, "{\"CommandArgs\":[\"true\"]}", &err) == NULL, "create fails afterwards");
  has_substr(hcs_error_message(err), "agent gone", "... with \"agent gone\"");
  hcs_error_release(&err);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  if (vm_boot(&vm, NULL, NULL) == 0) {
    hcs_error_t err = NULL;
    hcs_vm_agent_t *a = hcs_vm_agent_connect(vm.sock, 60000, &err);
    ok(a != NULL, "connect: %s", hcs_error_message(err));
    hcs_error_release(&err);
    if (a) {
      test_exit_codes(a);
      test_stdio(a);
      test_inherited_stdio(a);
      test_bad_requests(a);
      test_tty(a);
      test_signal(a);
      test_concurrent(a);
      test_flow_control(a);
      test_large_output(a);
      test_agent_gone(a);
      hcs_vm_agent_close(a);
    }
  }
  vm_cleanup(&vm);
  return tap_done();
}
