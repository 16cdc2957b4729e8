/* Consoles and fd passing: a pty is always allocated from the container's
 * own devpts instance (inside its mount namespace), and its master is sent
 * back to the caller over a SOCK_SEQPACKET socket with SCM_RIGHTS. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#include "compute/compute.h"

int hcs_pty_open_in_container(int *master, int *slave, unsigned short rows, unsigned short cols) {
  int m = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) return -1;
  int unlock = 0;
  if (ioctl(m, TIOCSPTLCK, &unlock) < 0) goto fail;
  /* TIOCGPTPEER opens the peer without a path lookup in /dev/pts. */
  int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (s < 0) goto fail;
  if (rows || cols) {
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    ioctl(m, TIOCSWINSZ, &ws);
  }
  *master = m;
  *slave = s;
  return 0;
fail:;
  int saved = errno;
  close(m);
  errno = saved;
  return -1;
}

int hcs_pty_make_controlling(int slave) {
  if (setsid() < 0) return -1;
  if (ioctl(slave, TIOCSCTTY, 0) < 0) return -1;
  for (int fd = 0; fd < 3; fd++)
    if (dup2(slave, fd) < 0) return -1;
  if (slave > 2) close(slave);
  return 0;
}

int hcs_send_msg(int sock, int type, const void *data, size_t len, int fd) {
  char buf[4096];
  if (len > sizeof buf - 1) len = sizeof buf - 1;
  buf[0] = (char)type;
  memcpy(buf + 1, data, len);
  struct iovec iov = {buf, len + 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fd >= 0) {
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof u.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  ssize_t r;
  do
    r = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -1 : 0;
}

ssize_t hcs_recv_msg(int sock, int *type, void *out, size_t len, int *fd) {
  char buf[4096];
  struct iovec iov = {buf, sizeof buf};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  *fd = -1;
  ssize_t r;
  do
    r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r <= 0) return r;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(fd, CMSG_DATA(c), sizeof(int));
  *type = (unsigned char)buf[0];
  size_t n = (size_t)r - 1 < len - 1 ? (size_t)r - 1 : len - 1;
  memcpy(out, buf + 1, n);
  ((char *)out)[n] = '\0';
  return (ssize_t)n + 1;
}

/* An exec failure's message starts with HCS_EXEC_TAG, the errno in decimal
 * and HCS_EXEC_TAG again; no other message starts with a control byte. */
#define HCS_EXEC_TAG '\001'

void hcs_child_report_exec(int fd, int status, const char *argv0) {
  hcs_child_report(fd, status, "%cexec-errno %d%cexec `%s`", HCS_EXEC_TAG, status, HCS_EXEC_TAG, argv0);
}

int hcs_child_error(hcs_error_t *err, const char *msg, const char *prefix, const char *id) {
  int status = 0;
  if (msg[0] == HCS_EXEC_TAG) {
    char *end = NULL;
    const char *p = msg + 1 + strlen("exec-errno ");
    long v = strtol(p, &end, 10);
    if (strncmp(msg + 1, "exec-errno ", strlen("exec-errno ")) == 0 && end && *end == HCS_EXEC_TAG && v > 0 &&
        v < 4096) {
      status = (int)v;
      msg = end + 1;
    }
  }
  hcs_error_make(err, 0, "%s `%s`: %s", prefix, id, msg);
  if (err && *err) (*err)->status = status;
  return -1;
}

void hcs_child_report(int fd, int status, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (status && n >= 0 && (size_t)n < sizeof msg) snprintf(msg + n, sizeof msg - (size_t)n, ": %s", strerror(status));
  /* A socket to the caller, or init's exec fifo (plain text). */
  if (hcs_send_msg(fd, HCS_MSG_ERROR, msg, strlen(msg), -1) < 0 && errno == ENOTSOCK) {
    ssize_t w = write(fd, msg, strlen(msg));
    (void)w;
  }
}
