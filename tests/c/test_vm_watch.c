/* hcs-monitor --vm (src/vm/watch.c), the VM's monitor once QEMU runs,
 * without a VM: its command line parses back to the same watch and a bad
 * one is refused; the real program ($HCS_MONITOR) refuses a well-formed
 * command line that is not its own (QEMU not its child, a state.json that
 * names another monitor, another Pid or cgroup, fds that are not the VM's
 * sockets) with one line and status 2; given its own (a shell stands in
 * for QEMU, this test for the guest agent), it relays a caller's hello
 * once the agent answered the monitor's, and records the exit when its
 * "QEMU" is killed: exit.json, the exited event, the sockets removed. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "vm/agent_proto.h"
#include "vm/vm.h"

static int count(char **v) {
  int n = 0;
  while (v[n])
    n++;
  return n;
}

static void free_argv(char **argv) {
  for (char **a = argv; *a; a++)
    free(*a);
  free(argv);
}

static void round_trip(void) {
  hcs_vm_watch_t w = {.base = {.id = "vm1",
                               .dir = "/run/hcs/compute/vm1",
                               .run_root = "/run/hcs",
                               .owner = "me",
                               .cgroup = "hcs/vm1",
                               .cgroup_driver = "v1",
                               .pid = 4321,
                               .pidfd = 3},
                      .exec_fd = 4,
                      .agent_fd = 6,
                      .nonce = "monitor-1-2"};
  char **argv = hcs_vm_watch_argv(&w, "/usr/libexec/hcs/hcs-monitor");
  is_str(argv[1], "--vm", "--vm comes first");
  hcs_vm_watch_t b;
  hcs_error_t err = NULL;
  ok(hcs_vm_watch_parse(count(argv), argv, &b, &err) == 0, "parses its own command line: %s",
     err ? hcs_error_message(err) : "");
  hcs_error_release(&err);
  is_str(b.base.id, "vm1", "id");
  is_str(b.base.dir, "/run/hcs/compute/vm1", "dir");
  is_str(b.base.run_root, "/run/hcs", "run root");
  is_str(b.base.owner, "me", "owner");
  is_str(b.base.cgroup, "hcs/vm1", "cgroup");
  is_str(b.base.cgroup_driver, "v1", "cgroup driver");
  is_int(b.base.pid, 4321, "QEMU's pid");
  is_int(b.base.pidfd, 3, "its pidfd");
  is_int(b.exec_fd, 4, "exec.sock");
  is_int(b.agent_fd, 6, "the agent connection");
  is_str(b.nonce, "monitor-1-2", "the hello's nonce");
  free_argv(argv);
  /* A minimal one: no owner, cgroup, pidfd or relay. */
  hcs_vm_watch_t m = {.base = {.id = "v", .dir = "/r/compute/v", .run_root = "/r", .pid = 9, .pidfd = -1},
                      .exec_fd = -1,
                      .agent_fd = -1};
  argv = hcs_vm_watch_argv(&m, "hcs-monitor");
  ok(hcs_vm_watch_parse(count(argv), argv, &b, &err) == 0, "parses a minimal command line");
  hcs_error_release(&err);
  ok(b.base.owner == NULL && b.base.cgroup == NULL && b.base.pidfd == -1 && b.exec_fd == -1 && b.agent_fd == -1 &&
         !b.nonce,
     "nothing more");
  free_argv(argv);
}

static void refuse(const char *want, const char *what, ...) {
  char *argv[32] = {"hcs-monitor", "--vm"};
  int argc = 2;
  va_list ap;
  va_start(ap, what);
  for (char *a; argc < 31 && (a = va_arg(ap, char *)) != NULL;)
    argv[argc++] = a;
  va_end(ap);
  hcs_vm_watch_t w;
  hcs_error_t err = NULL;
  ok(hcs_vm_watch_parse(argc, argv, &w, &err) < 0, "refuses %s", what);
  has_substr(hcs_error_message(err), want, "message for %s", what);
  hcs_error_release(&err);
}

#define BASE "--id", "x", "--dir", "/r/compute/x", "--run-root", "/r"

static void refusals(void) {
  char *no_vm[] = {"hcs-monitor", "--id", "x", NULL};
  hcs_vm_watch_t w;
  hcs_error_t err = NULL;
  ok(hcs_vm_watch_parse(3, no_vm, &w, &err) < 0, "refuses a command line without --vm");
  has_substr(hcs_error_message(err), "`--vm` must come first", "message without --vm");
  hcs_error_release(&err);
  refuse("`--id`, `--dir`, `--run-root` and `--pid` are required", "no pid", BASE, NULL);
  refuse("option `--pid`: `0` is not an integer", "pid 0", BASE, "--pid", "0", NULL);
  refuse("option `--pidfd`: `2` is not an integer in [3,", "a pidfd on stdio", BASE, "--pid", "3", "--pidfd", "2",
         NULL);
  refuse("option `--pidfd`: a value is missing", "a missing value", BASE, "--pid", "3", "--pidfd", NULL);
  refuse("unknown option `--log-fds`", "a container's option", BASE, "--pid", "3", "--log-fds", "3,4", NULL);
  refuse("option `--id`: invalid system id `../x`", "an id that is a path", "--id", "../x", "--dir", "/r/compute/x",
         "--run-root", "/r", "--pid", "3", NULL);
  refuse("option `--dir`: `/etc` is not `/r/compute/x`", "a directory that is not the system's", "--id", "x", "--dir",
         "/etc", "--run-root", "/r", "--pid", "3", NULL);
  refuse("`--exec-fd`, `--agent-fd` and `--nonce` go together", "a relay without its agent", BASE, "--pid", "3",
         "--exec-fd", "4", "--nonce", "n", NULL);
  refuse("`--exec-fd`, `--agent-fd` and `--nonce` go together", "a relay without a nonce", BASE, "--pid", "3",
         "--exec-fd", "4", "--agent-fd", "5", NULL);
  refuse("option `--cgroup-driver`: unknown driver `v3`", "an unknown cgroup driver", BASE, "--pid", "3", "--cgroup",
         "a", "--cgroup-driver", "v3", NULL);
  refuse("`--cgroup` needs `--cgroup-driver`", "a cgroup without driver", BASE, "--pid", "3", "--cgroup", "a", NULL);
  refuse("`--cgroup-driver` needs `--cgroup`", "a driver without cgroup", BASE, "--pid", "3", "--cgroup-driver", "v2",
         NULL);
}

/* --- the real program ------------------------------------------------------ */

static char root[] = "/tmp/hcs-test.vmwatch.XXXXXX";
static char dir[256];

/* What a run gets wrong on purpose. */
typedef struct {
  bool not_child;     /* --pid names a process that is not the monitor's child */
  int monitor_delta;  /* state.json's MonitorPid = the monitor's pid + this */
  int qemu_delta;     /* state.json's Pid = QEMU's pid + this */
  const char *cgroup; /* --cgroup (state.json says "hcs-test/vm1"), with driver v2 */
  int exec_kind;      /* 0 none, 1 the relay's own sockets, 2 a pipe as --exec-fd, 3 exec.sock of another dir */
  bool pidfd_self;    /* --pidfd of the monitor itself */
} variant_t;

typedef struct {
  pid_t monitor;
  int err_r;   /* the monitor's stderr */
  int qemu_w;  /* a line here makes "QEMU" SIGKILL itself */
  int agent_l; /* the listening agent.sock (the test is the guest agent) */
} run_t;

static int unix_listen(const char *path) {
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sun.sun_path) return -1;
  strcpy(sun.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  unlink(path);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 || listen(fd, 4) < 0) return -1;
  return fd;
}

static run_t start(const variant_t *v) {
  run_t r = {.monitor = -1, .err_r = -1, .qemu_w = -1, .agent_l = -1};
  char path[512];
  snprintf(path, sizeof path, "%s/agent.sock", dir);
  r.agent_l = unix_listen(path);
  int errp[2], qp[2];
  if (pipe2(errp, O_CLOEXEC) < 0 || pipe2(qp, O_CLOEXEC) < 0) return r;
  r.monitor = fork();
  if (r.monitor == 0) {
    /* The VM's monitor before its exec: QEMU, its child, is a shell that
     * kills itself when told. */
    pid_t self = getpid();
    pid_t qemu = fork();
    if (qemu == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(qp[0], 0);
      execl("/bin/sh", "sh", "-c", "read x; kill -9 $$", (char *)NULL);
      _exit(127);
    }
    snprintf(path, sizeof path, "%s/state.json", dir);
    json_t *st = json_pack("{s:s,s:s,s:s,s:i,s:i,s:s,s:s}", "Id", "vm1", "Owner", "me", "SystemType", "VirtualMachine",
                           "Pid", (int)qemu + v->qemu_delta, "MonitorPid", (int)self + v->monitor_delta, "Cgroup",
                           "hcs-test/vm1", "CgroupDriver", v->cgroup ? "v2" : "none");
    json_dump_file(st, path, 0);
    json_decref(st);
    hcs_vm_watch_t w = {.base = {.id = "vm1",
                                 .dir = dir,
                                 .run_root = root,
                                 .owner = "me",
                                 .cgroup = v->cgroup,
                                 .cgroup_driver = v->cgroup ? "v2" : NULL,
                                 .pid = v->not_child ? getppid() : qemu,
                                 .pidfd = (int)syscall(SYS_pidfd_open, v->pidfd_self ? self : qemu, 0)},
                        .exec_fd = -1,
                        .agent_fd = -1};
    char nonce[HCS_VM_NONCE_SIZE] = "n";
    hcs_error_t err = NULL;
    if (v->exec_kind == 1) {
      w.exec_fd = hcs_vm_relay_listen(dir, &err);
      w.agent_fd = hcs_vm_relay_agent(dir, nonce, &err);
    } else if (v->exec_kind == 2) {
      int p[2];
      if (pipe(p) == 0) w.exec_fd = p[0];
      w.agent_fd = hcs_vm_relay_agent(dir, nonce, &err);
    } else if (v->exec_kind == 3) {
      snprintf(path, sizeof path, "%s/exec.sock", root);
      w.exec_fd = unix_listen(path);
      w.agent_fd = hcs_vm_relay_agent(dir, nonce, &err);
    }
    if (err) dprintf(errp[1], "setup: %s\n", hcs_error_message(err)), _exit(3);
    w.nonce = v->exec_kind ? nonce : NULL;
    int pass[3] = {w.base.pidfd, w.exec_fd, w.agent_fd};
    dup2(errp[1], 2);
    /* As the fork does: nothing but these reaches the program. */
    for (int fd = 3; fd < 1024; fd++)
      if (fd != pass[0] && fd != pass[1] && fd != pass[2]) close(fd);
    for (int i = 0; i < 3; i++)
      if (pass[i] >= 0) fcntl(pass[i], F_SETFD, 0);
    const char *program = getenv("HCS_MONITOR");
    char **argv = hcs_vm_watch_argv(&w, program ? program : "hcs-monitor");
    execv(argv[0], argv);
    dprintf(2, "exec `%s`: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(errp[1]);
  close(qp[0]);
  r.err_r = errp[0];
  r.qemu_w = qp[1];
  return r;
}

/* The monitor's status and what it wrote on stderr. */
static int finish(run_t *r, char *msg, size_t cap) {
  size_t n = 0;
  for (ssize_t k; n + 1 < cap && (k = read(r->err_r, msg + n, cap - 1 - n)) > 0;)
    n += (size_t)k;
  msg[n] = '\0';
  int st = 0;
  while (waitpid(r->monitor, &st, 0) < 0 && errno == EINTR) {
  }
  close(r->err_r);
  if (r->qemu_w >= 0) close(r->qemu_w);
  if (r->agent_l >= 0) close(r->agent_l);
  return st;
}

static void refused(const variant_t *v, const char *want, const char *what) {
  run_t r = start(v);
  char msg[1024];
  int st = finish(&r, msg, sizeof msg);
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 2, "hcs-monitor --vm refuses %s (status %d)", what,
     WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
  has_substr(msg, want, "says why for %s", what);
  bool one_line = strchr(msg, '\n') == msg + strlen(msg) - 1;
  if (one_line) msg[strlen(msg) - 1] = '\0';
  ok(one_line, "in one line: %s", msg);
}

static int send_ctrl(int fd, const char *json) {
  unsigned char hdr[HCS_AGENT_HDR];
  hcs_agent_put_hdr(hdr, HCS_AGENT_CTRL, 0, (uint32_t)strlen(json));
  return write(fd, hdr, sizeof hdr) == (ssize_t)sizeof hdr && write(fd, json, strlen(json)) == (ssize_t)strlen(json)
             ? 0
             : -1;
}

/* One control frame's JSON (blocking, 10 s at most). */
static json_t *recv_ctrl(int fd) {
  unsigned char hdr[HCS_AGENT_HDR];
  size_t got = 0;
  char *body = NULL;
  uint32_t n = 0;
  unsigned type;
  uint32_t stream;
  while (got < sizeof hdr) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) return NULL;
    ssize_t k = read(fd, hdr + got, sizeof hdr - got);
    if (k <= 0) return NULL;
    got += (size_t)k;
  }
  if (hcs_agent_check_hdr(hdr, &type, &stream, &n) < 0 || type != HCS_AGENT_CTRL) return NULL;
  body = calloc(1, n + 1);
  for (got = 0; got < n;) {
    struct pollfd p = {fd, POLLIN, 0};
    ssize_t k = poll(&p, 1, 10000) > 0 ? read(fd, body + got, n - got) : -1;
    if (k <= 0) break;
    got += (size_t)k;
  }
  json_t *m = got == n ? json_loadb(body, n, 0, NULL) : NULL;
  free(body);
  return m;
}

static bool exists(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return access(path, F_OK) == 0;
}

static void watches(void) {
  run_t r = start(&(variant_t){.exec_kind = 1});
  /* The guest agent's side: the monitor's hello, answered. */
  int agent = accept4(r.agent_l, NULL, NULL, SOCK_CLOEXEC);
  json_t *hello = agent >= 0 ? recv_ctrl(agent) : NULL;
  const char *nonce = json_string_value(json_object_get(hello, "nonce"));
  ok(nonce && strncmp(nonce, "monitor-", 8) == 0, "the monitor's hello reaches the agent (%s)", nonce ? nonce : "-");
  char answer[256];
  snprintf(answer, sizeof answer, "{\"seq\":0,\"ok\":true,\"nonce\":\"%s\",\"version\":1}", nonce ? nonce : "");
  ok(send_ctrl(agent, answer) == 0, "the agent answers");
  json_decref(hello);
  /* A caller on exec.sock: its hello is answered once the agent's is in. */
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  snprintf(sun.sun_path, sizeof sun.sun_path, "%.64s/exec.sock", dir);
  int caller = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ok(connect(caller, (struct sockaddr *)&sun, sizeof sun) == 0, "a caller connects to exec.sock");
  send_ctrl(caller, "{\"op\":\"hello\",\"seq\":7,\"nonce\":\"caller-1\"}");
  json_t *got = recv_ctrl(caller);
  is_str(json_string_value(json_object_get(got, "nonce")), "caller-1", "the relay answers the caller's hello");
  is_int(json_integer_value(json_object_get(got, "seq")), 7, "with its seq");
  json_decref(got);
  ok(exists("agent.ready"), "agent.ready says the agent answered");
  /* Only the fds it was given (and stdio). */
  char fds[64];
  snprintf(fds, sizeof fds, "/proc/%d/fd", (int)r.monitor);
  int nfd = 0;
  DIR *d = opendir(fds);
  for (struct dirent *e; d && (e = readdir(d));)
    nfd += e->d_name[0] != '.';
  if (d) closedir(d);
  is_int(nfd, 7, "the monitor holds stdio, QEMU's pidfd, the relay's two sockets and the caller's connection");
  /* "QEMU" is killed: the exit is recorded and the sockets go. */
  ok(write(r.qemu_w, "\n", 1) == 1, "kill QEMU");
  char msg[1024];
  int st = finish(&r, msg, sizeof msg);
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the monitor exits 0 once the exit is recorded: %s", msg);
  char exit_path[512];
  snprintf(exit_path, sizeof exit_path, "%s/exit.json", dir);
  json_t *e = json_load_file(exit_path, 0, NULL);
  is_str(json_string_value(json_object_get(e, "ExitType")), "Killed", "ExitType Killed");
  is_int(json_integer_value(json_object_get(e, "ExitCode")), 137, "ExitCode 137");
  is_int(json_integer_value(json_object_get(e, "ExitSignal")), 9, "ExitSignal 9");
  json_decref(e);
  ok(!exists("exec.sock") && !exists("agent.ready") && !exists("agent.sock"),
     "exec.sock, agent.ready, agent.sock gone");
  char ev[512], *log = NULL;
  snprintf(ev, sizeof ev, "%s/events/events.log", root);
  hcs_read_file(ev, &log, NULL, NULL);
  has_substr(log, "\"exited\"", "the exited event is in the journal");
  has_substr(log, "\"vm1\"", "for the system");
  free(log);
  /* The caller's session ends with the agent's. */
  char b;
  ok(read(caller, &b, 1) == 0, "the caller sees the end");
  close(caller);
  close(agent);
}

int main(void) {
  round_trip();
  refusals();
  if (geteuid() != 0 || mkdtemp(root) == NULL) {
    printf("# skipping the program's checks (not root, or no temporary directory)\n");
    return tap_done();
  }
  snprintf(dir, sizeof dir, "%s/compute/vm1", root);
  char compute[300];
  snprintf(compute, sizeof compute, "%s/compute", root);
  mkdir(compute, 0700);
  mkdir(dir, 0700);
  refused(&(variant_t){.not_child = true}, "option `--pid`: ", "a QEMU that is not its child");
  refused(&(variant_t){.monitor_delta = 1}, "names monitor ", "a state.json of another monitor");
  refused(&(variant_t){.qemu_delta = 1}, "is not the `Pid` of ", "a state.json of another QEMU");
  refused(&(variant_t){.cgroup = "hcs-test/other"}, "option `--cgroup`: `hcs-test/other` is not the `Cgroup` of",
          "another cgroup");
  refused(&(variant_t){.pidfd_self = true}, "is not a pidfd of QEMU", "a pidfd of another");
  refused(&(variant_t){.exec_kind = 2}, "option `--exec-fd`: fd ", "a pipe as exec.sock");
  refused(&(variant_t){.exec_kind = 3}, "is bound to `", "the exec.sock of another directory");
  ok(!exists("exit.json"), "nothing recorded by a refused monitor");
  watches();
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf %s", root);
  ok(system(cmd) == 0, "clean up");
  return tap_done();
}
