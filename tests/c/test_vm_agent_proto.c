/* The agent client against a scripted agent on a real unix socket (no VM):
 * the hello finds its answer behind garbage and a stale session's frames,
 * and a guest that ignores its flow-control window ends the session
 * ("agent gone") instead of making the host buffer without bound. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "tap.h"
#include "vm/agent_client.h"
#include "vm/agent_proto.h"

static char dir[] = "/tmp/hcs-test.vmproto.XXXXXX";
static int listener = -1;

static int read_full(int fd, void *b, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t r = read(fd, (char *)b + off, n - off);
    if (r <= 0) return -1;
    off += (size_t)r;
  }
  return 0;
}

/* The next CTRL frame's JSON (skipping other frames), NULL at EOF. */
static json_t *read_ctrl(int fd) {
  for (;;) {
    unsigned char h[HCS_AGENT_HDR];
    unsigned type;
    uint32_t stream, n;
    if (read_full(fd, h, sizeof(h)) < 0 || hcs_agent_check_hdr(h, &type, &stream, &n) < 0) return NULL;
    char *p = malloc(n + 1);
    if (read_full(fd, p, n) < 0) return free(p), NULL;
    json_t *j = type == HCS_AGENT_CTRL ? json_loadb(p, n, 0, NULL) : NULL;
    free(p);
    if (j) return j;
  }
}

static void send_frame(int fd, unsigned type, uint32_t stream, const void *p, uint32_t n) {
  unsigned char h[HCS_AGENT_HDR];
  hcs_agent_put_hdr(h, type, stream, n);
  if (write(fd, h, sizeof(h)) < 0 || (n && write(fd, p, n) < 0)) return;
}

static void send_json(int fd, json_t *j) {
  char *s = json_dumps(j, JSON_COMPACT);
  send_frame(fd, HCS_AGENT_CTRL, 0, s, (uint32_t)strlen(s));
  free(s);
  json_decref(j);
}

static void *fake_agent(void *arg) {
  (void)arg;
  int fd = accept(listener, NULL, NULL);
  if (fd < 0) return NULL;
  json_t *hello = read_ctrl(fd);
  /* garbage, a stray magic, then a stale session's answer */
  const char junk[] = "zzzHA\x01\x00garbage";
  if (write(fd, junk, sizeof(junk) - 1) < 0) {
  }
  send_json(fd, json_pack("{s:i,s:b,s:s}", "seq", 0, "ok", 1, "nonce", "someone-else"));
  send_json(fd, json_pack("{s:O,s:b,s:O}", "seq", json_object_get(hello, "seq"), "ok", 1, "nonce",
                          json_object_get(hello, "nonce")));
  json_decref(hello);
  json_t *create = read_ctrl(fd);
  send_json(fd, json_pack("{s:O,s:b,s:i,s:i}", "seq", json_object_get(create, "seq"), "ok", 1, "id", 1, "pid", 5));
  json_decref(create);
  /* more stdout than the window and the caller's pipe can take, never
   * waiting for credit (bytes the pipe took are credited back) */
  /* a byte, then an empty DATA frame (regression, found by
   * fuzz_vm_agent_frames: realloc to 0 bytes freed the stream's buffer,
   * which was used and freed again later) */
  send_frame(fd, HCS_AGENT_DATA, HCS_AGENT_STREAM(1, 1), "x", 1);
  send_frame(fd, HCS_AGENT_DATA, HCS_AGENT_STREAM(1, 1), NULL, 0);
  static unsigned char data[HCS_AGENT_MAX_DATA];
  memset(data, 'x', sizeof(data));
  for (uint32_t sent = 0; sent <= HCS_AGENT_WINDOW + (1u << 20); sent += sizeof(data))
    send_frame(fd, HCS_AGENT_DATA, HCS_AGENT_STREAM(1, 1), data, sizeof(data));
  /* wait for the client to hang up */
  char b[4096];
  while (read(fd, b, sizeof(b)) > 0) {
  }
  close(fd);
  return NULL;
}

/* A hello the agent never answers on the first connection: the client
 * tries a new connection and a new hello (the VM's port then hangs up and
 * opens again), and this one is answered. */
static void *deaf_then_answering_agent(void *arg) {
  (void)arg;
  int first = accept(listener, NULL, NULL);
  if (first < 0) return NULL;
  json_t *ignored = read_ctrl(first);
  /* the client closes `first` first (a client that gives up connects no more) */
  struct pollfd pl = {.fd = listener, .events = POLLIN};
  int fd = poll(&pl, 1, 15000) == 1 ? accept(listener, NULL, NULL) : -1;
  close(first);
  json_t *hello = fd >= 0 ? read_ctrl(fd) : NULL;
  if (hello) {
    /* the old hello's answer comes late, then the new one's */
    send_json(fd, json_pack("{s:i,s:b,s:O}", "seq", 0, "ok", 1, "nonce", json_object_get(ignored, "nonce")));
    send_json(fd, json_pack("{s:O,s:b,s:O}", "seq", json_object_get(hello, "seq"), "ok", 1, "nonce",
                            json_object_get(hello, "nonce")));
    char b[256];
    while (read(fd, b, sizeof(b)) > 0) {
    }
  }
  if (ignored && hello)
    ok(!json_equal(json_object_get(ignored, "nonce"), json_object_get(hello, "nonce")),
       "the new hello has a new nonce");
  json_decref(ignored);
  json_decref(hello);
  if (fd >= 0) close(fd);
  return NULL;
}

static void test_hello_retry(const char *sock) {
  pthread_t t;
  pthread_create(&t, NULL, deaf_then_answering_agent, NULL);
  hcs_error_t err = NULL;
  hcs_vm_agent_t *a = hcs_vm_agent_connect(sock, 6000, &err);
  ok(a != NULL, "a hello unanswered on one connection is answered on the next: %s", hcs_error_message(err));
  hcs_error_release(&err);
  hcs_vm_agent_close(a);
  pthread_join(t, NULL);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
  cleanup_free char *sock = hcs_xasprintf("%s/agent.sock", dir);
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
  listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ok(listener >= 0 && bind(listener, (struct sockaddr *)&sun, sizeof(sun)) == 0 && listen(listener, 1) == 0,
     "a fake agent listens");
  pthread_t t;
  pthread_create(&t, NULL, fake_agent, NULL);
  hcs_error_t err = NULL;
  hcs_vm_agent_t *a = hcs_vm_agent_connect(sock, 30000, &err);
  ok(a != NULL, "the hello finds its answer behind garbage and a stale answer: %s", hcs_error_message(err));
  hcs_error_release(&err);
  if (a) {
    int out = -1;
    hcs_vm_agent_process_t *p =
        hcs_vm_agent_create_process(a, "{\"CommandArgs\":[\"yes\"],\"CreateStdOutPipe\":true}", &err);
    ok(p != NULL, "create: %s", hcs_error_message(err));
    hcs_error_release(&err);
    if (p) {
      hcs_vm_agent_process_take_stdio(p, NULL, &out, NULL);
      /* nobody reads `out`: the window is all the guest may send */
      /* a bound, not a timing: an unbounded host would wait forever */
      int r = hcs_vm_agent_process_wait(p, 60000, &err);
      is_int(r, -1, "a guest overrunning its window ends the session");
      has_substr(hcs_error_message(err), "agent gone (the agent sent more than its window)", "... saying so");
      hcs_error_release(&err);
      size_t got = 0;
      char b[65536];
      ssize_t k;
      while (r < 0 && (k = read(out, b, sizeof(b))) > 0)
        got += (size_t)k;
      ok(got >= 1 && got <= HCS_AGENT_WINDOW, "the caller's pipe got the data, no more than a window (%zu bytes)", got);
      close(out);
      hcs_vm_agent_process_close(p);
    }
    hcs_vm_agent_close(a);
  }
  pthread_join(t, NULL);
  test_hello_retry(sock);
  close(listener);
  hcs_error_t rerr = NULL;
  ok(hcs_rm_rf(dir, &rerr) == 0, "remove the test directory: %s", hcs_error_message(rerr));
  hcs_error_release(&rerr);
  return tap_done();
}
