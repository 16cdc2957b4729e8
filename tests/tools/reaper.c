/* reaper: run a command as a child subreaper that reaps every process
 * orphaned below it as soon as it exits, as the containerd shim and conmon
 * do for the containers they start (their init is cloned with CLONE_PARENT
 * and adopted here).  Exits with the command's status once it has exited.
 *   reaper command args... */
#include <errno.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: reaper command args...\n");
    return 2;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
    perror("reaper: prctl PR_SET_CHILD_SUBREAPER");
    return 125;
  }
  pid_t cmd = fork();
  if (cmd < 0) {
    perror("reaper: fork");
    return 125;
  }
  if (cmd == 0) {
    execvp(argv[1], argv + 1);
    fprintf(stderr, "reaper: exec `%s`: %m\n", argv[1]);
    _exit(127);
  }
  for (;;) {
    int st;
    pid_t r = waitpid(-1, &st, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return 125;
    if (r == cmd) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
}
