/* OCI hooks (run with the container's state on stdin, killed at their
 * timeout) and runc's console socket protocol (the pty master passed over
 * a unix socket with SCM_RIGHTS). */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "runtime/runtime.h"

static int run_hook(json_t *h, const char *name, size_t i, const char *state, pid_t ns_pid, hcs_error_t *err) {
  const char *path = json_string_value(json_object_get(h, "path"));
  json_t *args = json_object_get(h, "args"), *env = json_object_get(h, "env"), *v;
  json_int_t timeout = json_integer_value(json_object_get(h, "timeout"));
  size_t k, na = json_array_size(args), ne = json_array_size(env);
  cleanup_free char **argv = hcs_xcalloc(na + 2, sizeof(char *));
  cleanup_free char **envp = hcs_xcalloc(ne + 1, sizeof(char *));
  argv[0] = (char *)path;
  json_array_foreach(args, k, v) argv[k] = (char *)json_string_value(v);
  if (na == 0) argv[1] = NULL;
  json_array_foreach(env, k, v) envp[k] = (char *)json_string_value(v);
  int in[2];
  if (pipe2(in, O_CLOEXEC) < 0) return hcs_error_make(err, errno, "pipe");
  int pidfd = -1;
  cleanup_close int nsfd = ns_pid > 0 ? (int)syscall(SYS_pidfd_open, ns_pid, 0) : -1;
  if (ns_pid > 0 && nsfd < 0) {
    close(in[0]), close(in[1]);
    return hcs_error_make(err, errno, "hook `hooks.%s[%zu]`: open the container's init", name, i);
  }
  /* createContainer's path resolves in the runtime's namespace and runs in
   * the container's (opened before setns, exec'd through the fd; not
   * close-on-exec so a #! script can still be read); startContainer's
   * resolves in the container. */
  cleanup_close int exe = nsfd >= 0 && strcmp(name, "createContainer") == 0 ? open(path, O_PATH) : -1;
  if (nsfd >= 0 && strcmp(name, "createContainer") == 0 && exe < 0) {
    close(in[0]), close(in[1]);
    return hcs_error_make(err, errno, "hook `hooks.%s[%zu]`: open `%s`", name, i, path);
  }
  pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, NULL, &pidfd, NULL, NULL);
  if (pid < 0) {
    close(in[0]), close(in[1]);
    return hcs_error_make(err, errno, "fork hook `%s`", path);
  }
  if (pid == 0) {
    dup2(in[0], 0);
    /* stdout and stderr go where ours do (runc does the same). */
    if (nsfd >= 0 && setns(nsfd, CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP) < 0) {
      dprintf(2, "hook %s: join the container's namespaces: %s\n", path, strerror(errno));
      _exit(126);
    }
    if (exe >= 0)
      syscall(SYS_execveat, exe, "", argv, envp, AT_EMPTY_PATH);
    else
      execve(path, argv, envp);
    dprintf(2, "hook %s: exec: %s\n", path, strerror(errno));
    _exit(127);
  }
  close(in[0]);
  signal(SIGPIPE, SIG_IGN);
  size_t len = strlen(state), off = 0;
  while (off < len) {
    ssize_t n = write(in[1], state + off, len - off);
    if (n <= 0) break;
    off += (size_t)n;
  }
  close(in[1]);
  struct pollfd p = {pidfd, POLLIN, 0};
  int r;
  do
    r = poll(&p, 1, timeout > 0 ? (int)(timeout * 1000) : -1);
  while (r < 0 && errno == EINTR);
  if (r == 0) {
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    waitpid(pid, NULL, 0);
    close(pidfd);
    return hcs_error_make(err, ETIMEDOUT, "hook `hooks.%s[%zu]` (`%s`) timed out after %llds", name, i, path,
                          (long long)timeout);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  close(pidfd);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  if (WIFSIGNALED(st))
    return hcs_error_make(err, 0, "hook `hooks.%s[%zu]` (`%s`) killed by signal %d", name, i, path, WTERMSIG(st));
  return hcs_error_make(err, 0, "hook `hooks.%s[%zu]` (`%s`) exited with status %d", name, i, path, WEXITSTATUS(st));
}

int rt_run_hooks(json_t *hooks, const char *name, json_t *state, pid_t ns_pid, hcs_error_t *err) {
  json_t *list = json_object_get(hooks, name), *h;
  size_t i;
  if (json_array_size(list) == 0) return 0;
  cleanup_free char *text = json_dumps(state, JSON_COMPACT);
  json_array_foreach(list, i, h) if (run_hook(h, name, i, text, ns_pid, err) < 0) return -1;
  return 0;
}

int rt_unix_connect(const char *path, const char *what, hcs_error_t *err) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  struct stat st;
  /* Check the type first: connecting to a FIFO or a file gives a less
   * helpful error. */
  if (stat(path, &st) < 0) return hcs_error_make(err, errno, "%s `%s`", what, path);
  if (!S_ISSOCK(st.st_mode)) return hcs_error_make(err, 0, "%s `%s`: not a unix socket", what, path);
  if (strlen(path) >= sizeof a.sun_path) return hcs_error_make(err, ENAMETOOLONG, "%s `%s`", what, path);
  strcpy(a.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return hcs_error_make(err, errno, "socket");
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    int e = errno;
    close(fd);
    return hcs_error_make(err, e, "connect to %s `%s`", what, path);
  }
  return fd;
}

int rt_console_connect(const char *path, hcs_error_t *err) { return rt_unix_connect(path, "console socket", err); }

int rt_send_fd(int sock, int fd, hcs_error_t *err) {
  /* The payload is the pty's name, as runc's utils.SendFd sends it. */
  static char name[] = "/dev/ptmx";
  struct iovec iov = {name, sizeof name - 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
    return hcs_error_make(err, errno, "send the console over the console socket");
  return 0;
}

int rt_send_console(const char *path, int fd, hcs_error_t *err) {
  cleanup_close int sock = rt_console_connect(path, err);
  if (sock < 0) return -1;
  return rt_send_fd(sock, fd, err);
}
