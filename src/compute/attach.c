/* Attach: the server half runs inside the monitor's relay loop (log.c) and
 * keeps its state in a plain struct (no heap, no thread), so it moves with
 * the relay into a separately exec'd monitor; the client half is
 * hcs_compute_attach.  The protocol is in hcs/compute.h: one
 * SOCK_SEQPACKET socket, <system dir>/attach (0600, in a 0700 directory),
 * packets starting with a kind byte, as conmon's attach socket. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>

#include "compute/compute.h"

/* Output is cut into packets of at most this much (a SEQPACKET message must
 * fit the socket's send buffer). */
enum { PACKET = 32 * 1024 };

static bool socket_path(char *buf, size_t size, const char *dir) {
  return (size_t)snprintf(buf, size, "%s/attach", dir) < size;
}

void hcs_attach_listen(hcs_attach_server_t *a, const char *dir) {
  a->listen_fd = -1;
  a->stdin_fd = a->console = -1;
  for (int i = 0; i < HCS_ATTACH_MAX_CLIENTS; i++)
    a->clients[i] = -1;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  /* sun_path is 108 bytes: bind through the directory's /proc/self/fd
   * name, which always fits whatever the run root's length. */
  int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/attach", dfd);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  /* The socket file gets 0600 from the umask at bind (no chmod window). */
  mode_t old = umask(0177);
  bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 && listen(fd, 16) == 0;
  umask(old);
  close(dfd);
  if (!ok) {
    if (fd >= 0) close(fd);
    return;
  }
  a->listen_fd = fd;
}

int hcs_attach_pollfds(const hcs_attach_server_t *a, struct pollfd *p) {
  int n = 0;
  if (a->listen_fd < 0) return 0;
  p[n++] = (struct pollfd){a->listen_fd, POLLIN, 0};
  for (int i = 0; i < HCS_ATTACH_MAX_CLIENTS; i++)
    if (a->clients[i] >= 0) p[n++] = (struct pollfd){a->clients[i], POLLIN, 0};
  return n;
}

bool hcs_attach_has_clients(const hcs_attach_server_t *a) {
  for (int i = 0; i < HCS_ATTACH_MAX_CLIENTS; i++)
    if (a->clients[i] >= 0) return true;
  return false;
}

/* A unix socket closed with packets it never read makes its peer's next
 * recv fail with ECONNRESET ahead of the output still queued for the peer:
 * a client that closed its stdin as the system ended lost the system's last
 * words.  So: shut down (the client can queue no more), read what it
 * queued, then close. */
static void close_client(int fd) {
  shutdown(fd, SHUT_RDWR);
  char discard[64];
  while (recv(fd, discard, sizeof discard, MSG_DONTWAIT | MSG_TRUNC) > 0) {
  }
  close(fd);
}

static void drop(hcs_attach_server_t *a, int fd) {
  for (int i = 0; i < HCS_ATTACH_MAX_CLIENTS; i++)
    if (a->clients[i] == fd) {
      close_client(fd);
      a->clients[i] = -1;
    }
}

static void accept_client(hcs_attach_server_t *a) {
  int fd = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return;
  int slot = -1;
  for (int i = 0; i < HCS_ATTACH_MAX_CLIENTS && slot < 0; i++)
    if (a->clients[i] < 0) slot = i;
  if (slot < 0) { /* full: the client reads end of file at once */
    close(fd);
    return;
  }
  /* Room for bursts of output while the client's terminal is slow. */
  int size = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  char hello[2] = {HCS_ATTACH_HELLO, (char)((a->stdin_fd >= 0 ? HCS_ATTACH_HAS_STDIN : 0) |
                                            (a->console >= 0 ? HCS_ATTACH_HAS_CONSOLE : 0))};
  if (send(fd, hello, sizeof hello, MSG_NOSIGNAL) != (ssize_t)sizeof hello) {
    close(fd);
    return;
  }
  a->clients[slot] = fd;
}

/* Write all of data to init's stdin (blocking: a container that does not
 * read its stdin holds its clients back, not its output). */
static void to_stdin(hcs_attach_server_t *a, const char *data, size_t len) {
  while (len > 0 && a->stdin_fd >= 0) {
    ssize_t n = write(a->stdin_fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      struct pollfd p = {a->stdin_fd, POLLOUT, 0};
      poll(&p, 1, 100);
      continue;
    }
    if (n <= 0) return;
    data += n;
    len -= (size_t)n;
  }
}

static void client_packet(hcs_attach_server_t *a, int fd) {
  char buf[PACKET + 1];
  ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) { /* detached */
    drop(a, fd);
    return;
  }
  switch (buf[0]) {
  case HCS_ATTACH_STDIN: to_stdin(a, buf + 1, (size_t)n - 1); break;
  case HCS_ATTACH_RESIZE:
    if (n == 5 && a->console >= 0) {
      uint16_t rc[2];
      memcpy(rc, buf + 1, sizeof rc);
      struct winsize ws = {.ws_row = rc[0], .ws_col = rc[1]};
      ioctl(a->console, TIOCSWINSZ, &ws);
    }
    break;
  case HCS_ATTACH_CLOSE_STDIN:
    /* A console has no end of file: its EOF character, as a terminal. */
    if (a->console >= 0) {
      struct termios t;
      char eof = tcgetattr(a->console, &t) == 0 ? (char)t.c_cc[VEOF] : 4;
      to_stdin(a, &eof, 1);
    } else if (a->stdin_fd >= 0) {
      close(a->stdin_fd);
      a->stdin_fd = -1;
    }
    break;
  default: break; /* unknown kinds are ignored (newer clients) */
  }
}

void hcs_attach_handle(hcs_attach_server_t *a, const struct pollfd *p, int n) {
  for (int i = 0; i < n; i++) {
    if (!p[i].revents) continue;
    if (p[i].fd == a->listen_fd)
      accept_client(a);
    else
      client_packet(a, p[i].fd);
  }
}

/* data to every client as packets of `kind`, cut at PACKET bytes. */
static void send_to_all(hcs_attach_server_t *a, char kind, const char *data, size_t len) {
  bool late[HCS_ATTACH_MAX_CLIENTS] = {false}; /* timed out once: not waited for again in this call */
  for (size_t off = 0; off < len; off += PACKET) {
    size_t n = len - off < PACKET ? len - off : PACKET;
    struct iovec v[2] = {{&kind, 1}, {(void *)(data + off), n}};
    struct msghdr m = {.msg_iov = v, .msg_iovlen = 2};
    for (int i = 0; i < HCS_ATTACH_MAX_CLIENTS; i++) {
      if (a->clients[i] < 0) continue;
      ssize_t r;
      /* A full client (a slow terminal) holds the output back for up to a
       * second (its socket buffer is large), then misses this packet: a
       * stuck client must not stop the container.  The log has it all. */
      for (int tries = 0;; tries++) {
        r = sendmsg(a->clients[i], &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r >= 0 || (errno != EAGAIN && errno != EINTR)) break;
        if (late[i] || tries == 10) {
          late[i] = true;
          break;
        }
        struct pollfd p = {a->clients[i], POLLOUT, 0};
        poll(&p, 1, 100);
      }
      if (r < 0 && errno != EAGAIN && errno != EINTR) drop(a, a->clients[i]);
    }
  }
}

void hcs_attach_broadcast(hcs_attach_server_t *a, int stream, const char *data, size_t len) {
  send_to_all(a, stream == 0 ? HCS_ATTACH_STDOUT : HCS_ATTACH_STDERR, data, len);
}

void hcs_attach_send_exit(hcs_attach_server_t *a, const char *record) {
  size_t len = strlen(record);
  if (len < PACKET) send_to_all(a, HCS_ATTACH_EXIT, record, len); /* an exit record is a few fields */
}

void hcs_attach_close(hcs_attach_server_t *a, const char *dir) {
  for (int i = 0; i < HCS_ATTACH_MAX_CLIENTS; i++)
    if (a->clients[i] >= 0) close_client(a->clients[i]), a->clients[i] = -1;
  if (a->listen_fd >= 0) {
    char path[PATH_MAX];
    if (socket_path(path, sizeof path, dir)) unlink(path);
    close(a->listen_fd);
    a->listen_fd = -1;
  }
}

/* --- client --------------------------------------------------------------- */

int hcs_compute_attach(hcs_system_t *cs, int *flags, hcs_error_t *err) {
  hcs_state_t st = hcs_system_state(cs);
  if (st == HCS_STATE_STOPPED)
    return hcs_error_make(err, 0, "attach `%s`: the system is Stopped (its output is in `hcs logs`)", cs->id);
  cleanup_close int dfd = open(cs->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return hcs_error_make(err, errno, "open `%s`", cs->dir);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/attach", dfd);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return hcs_error_make(err, errno, "socket");
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int e = errno;
    close(fd);
    if (e == ENOENT || e == ECONNREFUSED)
      return hcs_error_make(err, e,
                            "attach `%s`: the system has no attach socket (created without stdio \"log\": its "
                            "output goes to its creator)",
                            cs->id);
    return hcs_error_make(err, e, "attach `%s`: connect", cs->id);
  }
  char hello[2];
  ssize_t n;
  do
    n = recv(fd, hello, sizeof hello, 0);
  while (n < 0 && errno == EINTR);
  if (n != 2 || hello[0] != HCS_ATTACH_HELLO) {
    int e = n < 0 ? errno : 0;
    close(fd);
    return hcs_error_make(err, e, "attach `%s`: %s", cs->id,
                          n == 0 ? "the monitor refused the connection (too many clients, or the system stopped)"
                                 : "no answer from the monitor");
  }
  if (flags) *flags = (unsigned char)hello[1];
  return fd;
}
