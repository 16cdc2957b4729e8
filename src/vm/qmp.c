/* A QMP client: JSON commands over QEMU's monitor socket, one connection
 * per caller (QEMU serves one client at a time; the system lock orders the
 * verbs).  Asynchronous events QEMU sends between replies are skipped. */
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "vm/vm.h"

struct hcs_qmp_s {
  int fd;
  char *buf;
  size_t len, cap;
};

void hcs_qmp_close(hcs_qmp_t *q) {
  if (q == NULL) return;
  if (q->fd >= 0) close(q->fd);
  free(q->buf);
  free(q);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One JSON line from QEMU (its replies and events end in CRLF). */
static json_t *read_message(hcs_qmp_t *q, hcs_error_t *err) {
  for (;;) {
    char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;
    if (nl) {
      size_t n = (size_t)(nl - q->buf) + 1;
      json_error_t je;
      json_t *m = json_loadb(q->buf, n, 0, &je);
      memmove(q->buf, q->buf + n, q->len - n);
      q->len -= n;
      if (m == NULL) {
        hcs_error_make(err, EPROTO, "read QMP: %s", je.text);
        return NULL;
      }
      return m;
    }
    if (q->cap - q->len < 4096) {
      if (q->cap > (64u << 20)) {
        hcs_error_make(err, EMSGSIZE, "read QMP: a message of more than 64 MiB");
        return NULL;
      }
      q->cap = q->cap ? q->cap * 2 : 16384;
      q->buf = hcs_xrealloc(q->buf, q->cap);
    }
    ssize_t r = read(q->fd, q->buf + q->len, q->cap - q->len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      hcs_error_make(err, r < 0 ? errno : ECONNRESET, "read QMP: %s",
                     r < 0 ? "read failed" : "QEMU closed the connection");
      return NULL;
    }
    q->len += (size_t)r;
  }
}

static int send_text(hcs_qmp_t *q, const char *text, int fd, hcs_error_t *err) {
  size_t len = strlen(text), off = 0;
  while (off < len) {
    struct iovec iov = {(char *)text + off, len - off};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    union {
      char buf[CMSG_SPACE(sizeof(int))];
      struct cmsghdr align;
    } u;
    if (fd >= 0 && off == 0) {
      mh.msg_control = u.buf;
      mh.msg_controllen = sizeof u.buf;
      struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    }
    ssize_t w = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return hcs_error_make(err, errno, "write QMP");
    off += (size_t)w;
  }
  return 0;
}

json_t *hcs_qmp_execute(hcs_qmp_t *q, const char *cmd, json_t *args, int fd, hcs_error_t *err) {
  cleanup_json json_t *m = json_pack("{s:s}", "execute", cmd);
  if (args) json_object_set_new(m, "arguments", args);
  cleanup_free char *text = json_dumps(m, JSON_COMPACT);
  cleanup_free char *line = hcs_xasprintf("%s\n", text);
  if (send_text(q, line, fd, err) < 0) return NULL;
  for (;;) {
    cleanup_json json_t *r = read_message(q, err);
    if (r == NULL) return NULL;
    json_t *ret = json_object_get(r, "return");
    if (ret) return json_incref(ret);
    json_t *e = json_object_get(r, "error");
    if (e) {
      const char *desc = json_string_value(json_object_get(e, "desc"));
      hcs_error_make(err, EIO, "QMP `%s`: %s", cmd, desc ? desc : "error");
      return NULL;
    }
    /* An event ("event": ...): not the reply. */
  }
}

hcs_qmp_t *hcs_qmp_connect(const char *path, int timeout_ms, hcs_error_t *err) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) {
    hcs_error_make(err, ENAMETOOLONG, "connect to QMP `%s`", path);
    return NULL;
  }
  strcpy(sa.sun_path, path);
  int64_t deadline = now_ms() + timeout_ms;
  hcs_qmp_t *q = hcs_xcalloc(1, sizeof *q);
  for (;;) {
    q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (q->fd < 0) {
      hcs_error_make(err, errno, "socket");
      goto fail;
    }
    if (connect(q->fd, (struct sockaddr *)&sa, sizeof sa) == 0) break;
    int saved = errno;
    close(q->fd);
    q->fd = -1;
    if ((saved != ENOENT && saved != ECONNREFUSED) || now_ms() >= deadline) {
      hcs_error_make(err, saved, "connect to QMP `%s`", path);
      goto fail;
    }
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  /* A client QEMU does not serve yet (another is connected) waits in the
   * backlog: bounded by the caller's timeout, and by 60 s for the verbs. */
  struct timeval tv = {.tv_sec = timeout_ms > 0 ? timeout_ms / 1000 + 60 : 60};
  setsockopt(q->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  json_t *greeting = read_message(q, err);
  if (greeting == NULL) goto fail;
  bool is_qmp = json_object_get(greeting, "QMP") != NULL;
  json_decref(greeting);
  if (!is_qmp) {
    hcs_error_make(err, EPROTO, "connect to QMP `%s`: no greeting", path);
    goto fail;
  }
  json_t *r = hcs_qmp_execute(q, "qmp_capabilities", NULL, -1, err);
  if (r == NULL) goto fail;
  json_decref(r);
  /* Long verbs (a migration) poll; no reply takes long. */
  tv.tv_sec = 60;
  setsockopt(q->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return q;
fail:
  hcs_qmp_close(q);
  return NULL;
}

json_t *hcs_qmp_call(const char *path, const char *cmd, json_t *args, hcs_error_t *err) {
  hcs_qmp_t *q = hcs_qmp_connect(path, 0, err);
  if (q == NULL) {
    json_decref(args);
    return NULL;
  }
  json_t *r = hcs_qmp_execute(q, cmd, args, -1, err);
  hcs_qmp_close(q);
  return r;
}
