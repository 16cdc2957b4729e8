/* The attach server (src/compute/attach.c) with raw clients: what a client
 * sent and the server never read must not cost it the output the server
 * sent before closing (a unix socket closed with unread packets makes the
 * peer's next recv fail with ECONNRESET, ahead of its queued data). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "compute/compute.h"
#include "tap.h"

static int connect_client(const char *dir) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s/attach", dir);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) return -1;
  return fd;
}

/* One round of the relay's loop for the attach part: accept or read. */
static void serve_once(hcs_attach_server_t *a) {
  struct pollfd p[1 + HCS_ATTACH_MAX_CLIENTS];
  int n = hcs_attach_pollfds(a, p);
  if (poll(p, (nfds_t)n, 1000) > 0) hcs_attach_handle(a, p, n);
}

static ssize_t recv_packet(int fd, char *buf, size_t size) {
  ssize_t n;
  do
    n = recv(fd, buf, size, 0);
  while (n < 0 && errno == EINTR);
  return n;
}

static void output_survives_unread_packets(const char *dir) {
  hcs_attach_server_t a;
  hcs_attach_listen(&a, dir);
  ok(a.listen_fd >= 0, "the server listens on %s/attach", dir);
  int c = connect_client(dir);
  ok(c >= 0, "a client connects");
  serve_once(&a);
  ok(hcs_attach_has_clients(&a), "the server accepted it");
  char buf[64];
  ssize_t n = recv_packet(c, buf, sizeof buf);
  ok(n == 2 && buf[0] == HCS_ATTACH_HELLO, "the client gets the hello");
  /* The client closes its stdin just as the system ends: the server sends
   * the last output and closes without reading that packet. */
  char close_stdin = HCS_ATTACH_CLOSE_STDIN;
  is_int(send(c, &close_stdin, 1, MSG_NOSIGNAL), 1, "the client sends close-stdin");
  hcs_attach_broadcast(&a, 0, "last words\n", 11);
  hcs_attach_close(&a, dir);
  n = recv_packet(c, buf, sizeof buf);
  if (n < 0) printf("#   recv: %s\n", strerror(errno));
  ok(n == 12 && buf[0] == HCS_ATTACH_STDOUT && memcmp(buf + 1, "last words\n", 11) == 0,
     "the client still reads the output sent before the close");
  is_int(recv_packet(c, buf, sizeof buf), 0, "then the end of the output");
  is_int(send(c, &close_stdin, 1, MSG_NOSIGNAL), -1, "a send after the close fails");
  close(c);
}

static void many_clients_many_packets(const char *dir) {
  hcs_attach_server_t a;
  hcs_attach_listen(&a, dir);
  int c[3];
  for (int i = 0; i < 3; i++) {
    c[i] = connect_client(dir);
    serve_once(&a);
  }
  char buf[64];
  for (int i = 0; i < 3; i++)
    recv_packet(c[i], buf, sizeof buf);
  /* Several packets queued by each client, none read. */
  char pkt[8] = {HCS_ATTACH_STDIN, 'x'};
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 4; k++)
      send(c[i], pkt, 2, MSG_NOSIGNAL);
  hcs_attach_broadcast(&a, 1, "err\n", 4);
  hcs_attach_close(&a, dir);
  int good = 0;
  for (int i = 0; i < 3; i++) {
    ssize_t n = recv_packet(c[i], buf, sizeof buf);
    if (n == 5 && buf[0] == HCS_ATTACH_STDERR && recv_packet(c[i], buf, sizeof buf) == 0) good++;
    close(c[i]);
  }
  is_int(good, 3, "each of three clients with unread packets gets the output, then the end");
}

static void exit_record_before_the_end(const char *dir) {
  hcs_attach_server_t a;
  hcs_attach_listen(&a, dir);
  int c = connect_client(dir);
  serve_once(&a);
  char buf[128];
  recv_packet(c, buf, sizeof buf);
  hcs_attach_broadcast(&a, 0, "bye\n", 4);
  hcs_attach_send_exit(&a, "{\"ExitCode\":3,\"ExitType\":\"Exited\"}");
  hcs_attach_close(&a, dir);
  ssize_t n = recv_packet(c, buf, sizeof buf);
  ok(n == 5 && buf[0] == HCS_ATTACH_STDOUT, "the output comes first");
  n = recv_packet(c, buf, sizeof buf - 1);
  ok(n > 0 && buf[0] == HCS_ATTACH_EXIT, "then the exit record");
  buf[n > 0 ? n : 0] = '\0';
  is_str(n > 0 ? buf + 1 : "", "{\"ExitCode\":3,\"ExitType\":\"Exited\"}", "as the monitor wrote it");
  is_int(recv_packet(c, buf, sizeof buf), 0, "then the end");
  close(c);
}

int main(void) {
  char dir[] = "/tmp/hcs-test-attach-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  output_survives_unread_packets(dir);
  many_clients_many_packets(dir);
  exit_record_before_the_end(dir);
  char path[sizeof dir + 16];
  snprintf(path, sizeof path, "%s/attach", dir);
  ok(access(path, F_OK) != 0, "the socket file is removed");
  rmdir(dir);
  printf("1..%d\n", tap_count);
  return tap_failed != 0;
}
