/* A minimal seccomp agent for the runtime tests: listens on a unix socket
 * (linux.seccomp.listenerPath), receives the container process state and
 * the listener fd (SCM_RIGHTS), writes the state to a file, then answers
 * every notification with a fixed errno (0: the syscall "succeeds" without
 * being run) until the container has no task left.
 *
 * usage: seccomp_agent SOCKET STATE_FILE ERRNO */
#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: seccomp_agent SOCKET STATE_FILE ERRNO\n");
    return 2;
  }
  int answer = atoi(argv[3]);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", argv[1]);
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 1) < 0) {
    perror("seccomp_agent: listen");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) {
    perror("seccomp_agent: accept");
    return 1;
  }
  static char buf[65536];
  union {
    char b[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {buf, sizeof buf - 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
  ssize_t n = recvmsg(c, &m, MSG_CMSG_CLOEXEC);
  struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
  if (n <= 0 || cm == NULL || cm->cmsg_type != SCM_RIGHTS) {
    fprintf(stderr, "seccomp_agent: no listener received\n");
    return 1;
  }
  int fd;
  memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  buf[n] = '\0';
  FILE *f = fopen(argv[2], "w");
  if (f == NULL) return 1;
  fputs(buf, f);
  fclose(f);
  struct seccomp_notif_sizes sz;
  if (syscall(__NR_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) < 0) return 1;
  struct seccomp_notif *req = calloc(1, sz.seccomp_notif > sizeof *req ? sz.seccomp_notif : sizeof *req);
  struct seccomp_notif_resp *resp =
      calloc(1, sz.seccomp_notif_resp > sizeof *resp ? sz.seccomp_notif_resp : sizeof *resp);
  for (;;) {
    /* POLLHUP once every task of the filter is gone. */
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (p.revents & POLLHUP) break;
    memset(req, 0, sz.seccomp_notif);
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
      if (errno == EINTR || errno == ENOENT) continue;
      break;
    }
    memset(resp, 0, sz.seccomp_notif_resp);
    resp->id = req->id;
    resp->error = answer ? -answer : 0;
    resp->val = 0;
    /* ENOENT: the task was killed while we answered. */
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, resp) < 0 && errno != ENOENT) break;
    fprintf(stderr, "seccomp_agent: answered syscall %d\n", req->data.nr);
  }
  return 0;
}
