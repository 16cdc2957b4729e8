/* hcs-monitor's command line (watch.c): what the forked monitor passes
 * parses back to the same watch, and a bad command line is refused with
 * the option and the reason. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/compute.h"
#include "tap.h"

static int count(char **v) {
  int n = 0;
  while (v[n])
    n++;
  return n;
}

static void round_trip(void) {
  char *exit_cmd[] = {"/usr/bin/hcs", "rm", "web 1", NULL};
  /* The base as both monitors fill it. */
  hcs_system_t cs = {.id = "web", .run_root = "/run/hcs", .dir = "/run/hcs/compute/web", .cgroup = "hcs/web"};
  hcs_watch_t w = {.base = hcs_watch_base_of(&cs, "me", &hcs_cgroup_v2_ops, 1234, 5),
                   .log_fd = {6, -1},
                   .console = 7,
                   .stdin_w = 8,
                   .attach_fd = 9,
                   .ns_fd = {10, -1, 12},
                   .log_max_size = 1 << 20,
                   .log_max_files = 3,
                   .reaped_elsewhere = true,
                   .exit_command = exit_cmd};
  char **argv = hcs_watch_argv(&w, "/usr/libexec/hcs/hcs-monitor");
  is_str(argv[0], "/usr/libexec/hcs/hcs-monitor", "argv[0] is the program");
  hcs_watch_t b;
  hcs_error_t err = NULL;
  ok(hcs_watch_parse(count(argv), argv, &b, &err) == 0, "parses its own command line");
  if (err) printf("#   %s\n", hcs_error_message(err));
  is_str(b.base.id, "web", "id");
  is_str(b.base.dir, w.base.dir, "dir");
  is_str(b.base.run_root, w.base.run_root, "run root");
  is_str(b.base.owner, "me", "owner");
  is_str(b.base.cgroup, "hcs/web", "cgroup");
  ok(hcs_watch_cgroup_ops(b.base.cgroup_driver) == &hcs_cgroup_v2_ops, "the v2 driver");
  is_int(b.base.pid, 1234, "pid");
  is_int(b.base.pidfd, 5, "pidfd");
  is_int(b.log_fd[0], 6, "stdout FIFO");
  is_int(b.log_fd[1], -1, "no stderr FIFO");
  ok(b.console == 7 && b.stdin_w == 8 && b.attach_fd == 9, "console, stdin and attach socket");
  ok(b.ns_fd[0] == 10 && b.ns_fd[1] == -1 && b.ns_fd[2] == 12, "init's namespaces");
  ok(b.log_max_size == 1 << 20 && b.log_max_files == 3, "log limits");
  ok(b.reaped_elsewhere, "caller reaps init");
  ok(b.exit_command && count(b.exit_command) == 3 && strcmp(b.exit_command[2], "web 1") == 0,
     "the exit command, word for word");
  for (char **a = argv; *a; a++)
    free(*a);
  free(argv);

  /* The minimal one: no owner, cgroup, logs or exit command (a system's
   * cgroup is left out without a backend). */
  hcs_system_t mcs = {.id = "x", .run_root = "/r", .dir = "/d", .cgroup = "hcs/x"};
  hcs_watch_t m = {.base = hcs_watch_base_of(&mcs, NULL, NULL, 7, -1),
                   .log_fd = {-1, -1},
                   .console = -1,
                   .stdin_w = -1,
                   .attach_fd = -1,
                   .ns_fd = {-1, -1, -1}};
  argv = hcs_watch_argv(&m, "hcs-monitor");
  ok(hcs_watch_parse(count(argv), argv, &b, &err) == 0, "parses a minimal command line");
  ok(b.base.owner == NULL && b.base.cgroup == NULL && b.exit_command == NULL && b.base.pidfd == -1 &&
         b.log_fd[0] == -1 && b.console == -1 && b.stdin_w == -1 && b.attach_fd == -1 && b.ns_fd[0] == -1 &&
         !b.reaped_elsewhere,
     "nothing more than given");
  for (char **a = argv; *a; a++)
    free(*a);
  free(argv);
}

static void refuse(const char *want, const char *what, ...) {
  char *argv[32] = {"hcs-monitor"};
  int argc = 1;
  va_list ap;
  va_start(ap, what);
  for (char *a; argc < 31 && (a = va_arg(ap, char *)) != NULL;)
    argv[argc++] = a;
  va_end(ap);
  hcs_watch_t w;
  hcs_error_t err = NULL;
  ok(hcs_watch_parse(argc, argv, &w, &err) < 0, "refuses %s", what);
  has_substr(hcs_error_message(err), want, "message for %s", what);
  hcs_error_release(&err);
}

#define BASE "--id", "x", "--dir", "/d", "--run-root", "/r"

int main(void) {
  round_trip();
  refuse("`--id`, `--dir`, `--run-root` and `--pid` are required", "no pid", BASE, NULL);
  refuse("option `--pid`: `0` is not an integer", "pid 0", BASE, "--pid", "0", NULL);
  refuse("option `--pid`: `12x` is not an integer", "a pid with garbage", BASE, "--pid", "12x", NULL);
  refuse("option `--pidfd`: a value is missing", "a missing value", BASE, "--pid", "3", "--pidfd", NULL);
  refuse("unknown option `--frobnicate`", "an unknown option", BASE, "--pid", "3", "--frobnicate", "1", NULL);
  refuse("option `--cgroup-driver`: unknown driver `v3`", "an unknown cgroup driver", BASE, "--pid", "3", "--cgroup",
         "a", "--cgroup-driver", "v3", NULL);
  refuse("`--cgroup` needs `--cgroup-driver`", "a cgroup without driver", BASE, "--pid", "3", "--cgroup", "a", NULL);
  refuse("option `--log-fds`: `3` is not FD,FD", "one log fd", BASE, "--pid", "3", "--pidfd", "4", "--log-fds", "3",
         NULL);
  refuse("`--pidfd` is required with `--caller-reaps`, `--log-fds`, `--console` and `--stdin`", "logs without a pidfd",
         BASE, "--pid", "3", "--log-fds", "3,4", NULL);
  refuse("`--pidfd` is required", "a console without a pidfd", BASE, "--pid", "3", "--console", "5", NULL);
  refuse("option `--ns-fds`: `3,4` is not FD,FD,FD", "two namespace fds", BASE, "--pid", "3", "--ns-fds", "3,4", NULL);
  refuse("option `--attach`: `x` is not an integer", "an attach socket that is no fd", BASE, "--pid", "3", "--attach",
         "x", NULL);
  refuse("`--pidfd` is required", "caller-reaps without a pidfd", BASE, "--pid", "3", "--caller-reaps", NULL);
  return tap_done();
}
