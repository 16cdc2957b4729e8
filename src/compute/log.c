/* The system log: the monitor copies what init (and processes created with
 * stdio "log") write to two FIFOs in the system's directory into `ctr.log`,
 * in the Kubernetes CRI format (`TIMESTAMP stdout|stderr F|P message`), and
 * rotates it by size (ctr.log.1 ... ctr.log.<MaxFiles-1>); hcs_compute_logs
 * reads it back, optionally following it with inotify.
 *
 * The idle monitor must stay small (many systems per host): no thread, no
 * heap, only poll on the FIFOs and init's pidfd and two stack buffers. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include "compute/compute.h"

static const char *const stream_names[2] = {"stdout", "stderr"};

/* --- writer (in the monitor) ---------------------------------------------- */

int hcs_log_prepare(const char *dir, int rfd[2], int wfd[2], hcs_error_t *err) {
  rfd[0] = rfd[1] = wfd[0] = wfd[1] = -1;
  for (int i = 0; i < 2; i++) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.fifo", dir, stream_names[i]);
    if (mkfifo(path, 0600) < 0 && errno != EEXIST) return hcs_error_make(err, errno, "create `%s`", path);
    /* Read-write: the monitor is a writer too, so the FIFO never reports
     * end-of-file between two processes that write to it. */
    rfd[i] = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (rfd[i] >= 0) wfd[i] = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (rfd[i] < 0 || wfd[i] < 0) return hcs_error_make(err, errno, "open `%s`", path);
    /* A deeper FIFO (pages are only taken as it fills): a chatty writer
     * blocks, and the monitor wakes, less often.  Best effort. */
    fcntl(rfd[i], F_SETPIPE_SZ, 1 << 20);
  }
  return 0;
}

/* Records are copied into an output buffer and written in large writes.
 * (A writev of the read buffer's line slices, one iovec for the prefix and
 * one for the line, avoids that copy but was 1.5x slower: the kernel's
 * per-segment copy of 100-byte iovecs costs more than one memcpy.) */
typedef struct {
  const char *dir;
  int fd, console;
  int64_t size, max_size, max_files;
  char *out;
  size_t out_len, out_cap;
} log_writer_t;

static void open_log(log_writer_t *w) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/ctr.log", w->dir);
  w->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  struct stat st;
  w->size = w->fd >= 0 && fstat(w->fd, &st) == 0 ? st.st_size : 0;
}

/* ctr.log.<n-1> ... ctr.log.1 shift up by one (the oldest goes), ctr.log
 * becomes ctr.log.1 and a new ctr.log is made.  A follower notices the new
 * inode and drains the old one first (read_follow). */
static void rotate(log_writer_t *w) {
  char from[PATH_MAX], to[PATH_MAX];
  for (int64_t i = w->max_files - 1; i >= 1; i--) {
    if (i == 1)
      snprintf(from, sizeof from, "%s/ctr.log", w->dir);
    else
      snprintf(from, sizeof from, "%s/ctr.log.%lld", w->dir, (long long)(i - 1));
    snprintf(to, sizeof to, "%s/ctr.log.%lld", w->dir, (long long)i);
    rename(from, to);
  }
  if (w->fd >= 0) close(w->fd);
  open_log(w);
}

static void flush(log_writer_t *w) {
  size_t off = 0;
  while (off < w->out_len && w->fd >= 0) {
    ssize_t n = write(w->fd, w->out + off, w->out_len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break; /* ENOSPC and the like: the output is dropped, as conmon does */
    off += (size_t)n;
  }
  w->size += (int64_t)off;
  w->out_len = 0;
}

/* One record: prefix (timestamp, stream, tag), the line, '\n'.  A record
 * never straddles two files: it is at most MAX_RECORD bytes plus the
 * prefix, so it fits in out and in a fresh file (HCS_LOG_MIN_SIZE). */
static void append(log_writer_t *w, const char *prefix, size_t plen, const char *line, size_t len) {
  size_t need = plen + len + 1;
  if (w->out_len + need > w->out_cap || w->size + (int64_t)(w->out_len + need) > w->max_size) flush(w);
  if (w->size > 0 && w->size + (int64_t)need > w->max_size) rotate(w);
  char *o = w->out + w->out_len;
  memcpy(o, prefix, plen);
  memcpy(o + plen, line, len);
  o[plen + len] = '\n';
  w->out_len += need;
}

/* "2026-12-06T17:22:55.123456789Z stdout ": the date part is formatted
 * once a second, the nanoseconds by hand (this runs once per read). */
static size_t format_prefix(char *buf, size_t size, int stream) {
  static time_t last;
  static char date[32];
  static size_t dlen;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != last || dlen == 0) {
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    dlen = strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S.", &tm);
    last = ts.tv_sec;
  }
  if (size < dlen + 10 + 8) return 0;
  memcpy(buf, date, dlen);
  char *p = buf + dlen;
  long ns = ts.tv_nsec;
  for (int i = 8; i >= 0; i--, ns /= 10)
    p[i] = (char)('0' + ns % 10);
  p[9] = 'Z';
  p[10] = ' ';
  memcpy(p + 11, stream_names[stream], 6);
  p[17] = ' ';
  return dlen + 18;
}

/* A read takes up to the whole FIFO (1 MiB): one wake-up of the monitor
 * (and of a writer blocked on the full FIFO) and one read per MiB, not per
 * 64 KiB.  The buffers (in, then out) are mapped once, when the monitor
 * first wakes, so an idle monitor has none.  Longer lines are cut into P
 * records of at most MAX_RECORD bytes. */
enum { READ_SIZE = 1 << 20, OUT_SIZE = 1 << 20, MAX_RECORD = 64 * 1024 };

/* Read what the FIFO (or the console) holds; one timestamp per read (a
 * read is what the writer wrote at about that instant), and the same bytes
 * to attach clients.  Returns false once it is empty (or closed: *gone). */
static bool pump(log_writer_t *w, hcs_attach_server_t *a, int fd, int stream, char *buf, size_t size, bool *gone) {
  ssize_t n = read(fd, buf, size);
  if (n < 0 && errno == EINTR) return true;
  if (n < 0 && errno != EAGAIN) *gone = true; /* a console whose last writer closed it: EIO */
  if (n <= 0) return false;
  if (a && hcs_attach_has_clients(a)) hcs_attach_broadcast(a, stream, buf, (size_t)n);
  /* "TIMESTAMP stdout F " and "... P ". */
  char pf[96], pp[96];
  size_t plen = format_prefix(pf, sizeof pf - 2, stream);
  memcpy(pp, pf, plen);
  pf[plen] = 'F', pp[plen] = 'P';
  pf[plen + 1] = pp[plen + 1] = ' ';
  plen += 2;
  const char *p = buf, *end = buf + n;
  while (p < end) {
    size_t left = (size_t)(end - p), scan = left < MAX_RECORD ? left : MAX_RECORD;
    const char *nl = memchr(p, '\n', scan);
    if (nl == NULL) {
      /* A partial line (or a piece of a long one): recorded now as P, the
       * rest follows as its own record (CRI readers join P records up to
       * the next F). */
      append(w, pp, plen, p, scan);
      p += scan;
      continue;
    }
    /* A console ends its lines with "\r\n": the record keeps the line. */
    size_t len = (size_t)(nl - p);
    if (fd == w->console && len > 0 && p[len - 1] == '\r') len--;
    append(w, pf, plen, p, len);
    p = nl + 1;
  }
  return true;
}

void hcs_log_relay(const char *dir, const hcs_config_t *cfg, const int rfd[2], int console, int stdin_w, int pidfd,
                   hcs_attach_server_t *attach) {
  log_writer_t w = {.dir = dir,
                    .fd = -1,
                    .console = console,
                    .max_size = cfg->log_max_size > 0 ? cfg->log_max_size : HCS_LOG_DEFAULT_SIZE,
                    .max_files = cfg->log_max_files > 0 ? cfg->log_max_files : HCS_LOG_DEFAULT_FILES};
  /* Mapped at the first wake-up; without a mapping, smaller stack buffers. */
  char small_in[MAX_RECORD], small_out[2 * MAX_RECORD], *in = NULL;
  size_t in_size = sizeof small_in;
  open_log(&w);
  if (console >= 0) fcntl(console, F_SETFL, fcntl(console, F_GETFL) | O_NONBLOCK);
  if (stdin_w >= 0) fcntl(stdin_w, F_SETFL, fcntl(stdin_w, F_GETFL) | O_NONBLOCK);
  hcs_attach_server_t none = {.listen_fd = -1}, *a = attach ? attach : &none;
  if (a->listen_fd < 0) /* no server: no clients (not fd 0 of a zeroed struct) */
    for (int i = 0; i < HCS_ATTACH_MAX_CLIENTS; i++)
      a->clients[i] = -1;
  a->stdin_fd = console >= 0 ? console : stdin_w;
  a->console = console;
  /* pidfd, the FIFOs, the console, then the attach socket and its clients. */
  int src[3] = {rfd[0], rfd[1], console};
  struct pollfd p[4 + 1 + HCS_ATTACH_MAX_CLIENTS];
  bool mapped = false, used = false;
  for (bool done = false; !done;) {
    p[0] = (struct pollfd){pidfd, POLLIN, 0};
    for (int i = 0; i < 3; i++)
      p[i + 1] = (struct pollfd){src[i], POLLIN, 0};
    int na = hcs_attach_pollfds(a, p + 4);
    /* After a burst, a second of quiet gives the buffers' pages back: an
     * idle monitor stays small (they fault in again with the next output). */
    int r = poll(p, (nfds_t)(4 + na), used ? 1000 : -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (r == 0) {
      madvise(in, READ_SIZE + OUT_SIZE, MADV_DONTNEED);
      used = false;
      continue;
    }
    /* Init is gone, and with it its pid namespace: what is left in the
     * FIFOs and the console is all there will be. */
    done = p[0].revents != 0;
    if (in == NULL) {
      char *m = mmap(NULL, READ_SIZE + OUT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      mapped = m != MAP_FAILED;
      in = mapped ? m : small_in;
      in_size = mapped ? READ_SIZE : sizeof small_in;
      w.out = mapped ? m + READ_SIZE : small_out;
      w.out_cap = mapped ? OUT_SIZE : sizeof small_out;
    }
    for (int i = 0; i < 3; i++) {
      if (src[i] < 0 || !(p[i + 1].revents || done)) continue;
      bool gone = false;
      for (int k = 0; (k < 4 || done) && pump(&w, a, src[i], i == 1 ? 1 : 0, in, in_size, &gone); k++) {
      }
      if (gone || (p[i + 1].revents & (POLLHUP | POLLERR) && !(p[i + 1].revents & POLLIN))) src[i] = -1;
    }
    flush(&w);
    used = mapped;
    if (na) hcs_attach_handle(a, p + 4, na);
  }
  if (w.fd >= 0) close(w.fd);
}

void hcs_log_run(const char *dir, const hcs_config_t *cfg, const int rfd[2], int pidfd) {
  hcs_log_relay(dir, cfg, rfd, -1, -1, pidfd, NULL);
}

/* --- processes writing to the log ---------------------------------------- */

int hcs_log_open_writer(const char *dir, int stream, hcs_error_t *err) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s.fifo", dir, stream_names[stream]);
  /* Non-blocking: ENXIO when no monitor reads it (the system stopped, or
   * was created without a log); then a FIFO check on the fd. */
  int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && (errno == ENOENT || errno == ENXIO))
    return hcs_error_make(err, errno,
                          "open the log of `%s`: the system has no log reader (created without stdio "
                          "\"log\", or stopped)",
                          dir);
  if (fd < 0) return hcs_error_make(err, errno, "open `%s`", path);
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode) || fcntl(fd, F_SETFL, 0) < 0) {
    close(fd);
    return hcs_error_make(err, EINVAL, "open `%s`: not a FIFO", path);
  }
  return fd;
}

/* --- reader --------------------------------------------------------------- */

/* "2026-12-06T17:22:55.123456789Z" -> ns since the epoch, -1 if malformed. */
int64_t hcs_log_parse_time(const char *s, size_t len) {
  struct tm tm = {0};
  char tmp[64];
  if (len >= sizeof tmp) return -1;
  memcpy(tmp, s, len);
  tmp[len] = '\0';
  char *rest = strptime(tmp, "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == NULL) return -1;
  int64_t ns = 0;
  if (*rest == '.') {
    int digits = 0;
    for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++)
      if (digits < 9) ns = ns * 10 + (*rest - '0');
    for (; digits < 9; digits++)
      ns *= 10;
  }
  if (strcmp(rest, "Z") != 0) return -1;
  return (int64_t)timegm(&tm) * 1000000000LL + ns;
}

typedef struct {
  const hcs_compute_log_options_t *o;
  char *pending[2]; /* P records waiting for their F */
  size_t pending_len[2];
  char pending_ts[2][40];
  long count, skip; /* messages seen; messages to skip (tail) */
  bool counting;
  char *buf; /* unparsed bytes of the current file */
  size_t len, cap;
} reader_t;

static void emit(reader_t *r, int stream, const char *ts, const char *msg, size_t len) {
  if (r->counting) return;
  if (r->skip > 0) {
    r->skip--;
    return;
  }
  int fd = stream == 0 ? r->o->out_fd : r->o->err_fd;
  if (fd < 0) return;
  struct iovec v[4] = {{(void *)ts, strlen(ts)}, {(void *)" ", 1}, {(void *)msg, len}, {(void *)"\n", 1}};
  struct iovec *iov = r->o->timestamps ? v : v + 2;
  int n = r->o->timestamps ? 4 : 2;
  while (writev(fd, iov, n) < 0 && errno == EINTR) {
  }
}

/* One record "TS STREAM TAG MSG"; malformed lines are skipped. */
static void record(reader_t *r, const char *line, size_t len) {
  const char *sp1 = memchr(line, ' ', len);
  if (sp1 == NULL) return;
  const char *s = sp1 + 1, *end = line + len;
  int stream = -1;
  if ((size_t)(end - s) >= 9 && memcmp(s, "stdout ", 7) == 0) stream = 0;
  if ((size_t)(end - s) >= 9 && memcmp(s, "stderr ", 7) == 0) stream = 1;
  if (stream < 0 || (s[7] != 'F' && s[7] != 'P') || s[8] != ' ') return;
  char tag = s[7];
  const char *msg = s + 9;
  size_t mlen = (size_t)(end - msg), tslen = (size_t)(sp1 - line);
  if (r->pending_len[stream] == 0 && r->pending[stream] == NULL) {
    size_t n = tslen < sizeof r->pending_ts[0] ? tslen : sizeof r->pending_ts[0] - 1;
    memcpy(r->pending_ts[stream], line, n);
    r->pending_ts[stream][n] = '\0';
  }
  if (tag == 'P' || r->pending[stream]) {
    r->pending[stream] = hcs_xrealloc(r->pending[stream], r->pending_len[stream] + mlen + 1);
    memcpy(r->pending[stream] + r->pending_len[stream], msg, mlen);
    r->pending_len[stream] += mlen;
    if (tag == 'P') return;
    msg = r->pending[stream];
    mlen = r->pending_len[stream];
  }
  const char *ts = r->pending_ts[stream];
  int64_t t = hcs_log_parse_time(ts, strlen(ts));
  bool in_range = (r->o->since_ns <= 0 || t >= r->o->since_ns) && (r->o->until_ns <= 0 || t <= r->o->until_ns);
  if (in_range) {
    r->count++;
    emit(r, stream, ts, msg, mlen);
  }
  free(r->pending[stream]);
  r->pending[stream] = NULL;
  r->pending_len[stream] = 0;
}

/* Read what fd has now; complete lines become records. */
static void read_more(reader_t *r, int fd) {
  for (;;) {
    if (r->cap - r->len < 65536) {
      r->cap = r->cap ? r->cap * 2 : 131072;
      r->buf = hcs_xrealloc(r->buf, r->cap);
    }
    ssize_t n = read(fd, r->buf + r->len, r->cap - r->len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    r->len += (size_t)n;
    char *p = r->buf, *end = r->buf + r->len, *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
      record(r, p, (size_t)(nl - p));
      p = nl + 1;
    }
    r->len = (size_t)(end - p);
    memmove(r->buf, p, r->len);
  }
}

/* The rotated files, oldest first, then ctr.log. */
static void read_all(reader_t *r, const char *dir, int *last_fd) {
  int n = 0;
  char path[PATH_MAX];
  for (;; n++) {
    snprintf(path, sizeof path, "%s/ctr.log.%d", dir, n + 1);
    if (access(path, F_OK) < 0) break;
  }
  for (int i = n; i >= 0; i--) {
    if (i)
      snprintf(path, sizeof path, "%s/ctr.log.%d", dir, i);
    else
      snprintf(path, sizeof path, "%s/ctr.log", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    r->len = 0;
    read_more(r, fd);
    if (i == 0 && last_fd)
      *last_fd = fd;
    else
      close(fd);
  }
}

/* The file written after the one with inode `ino`: the writer may have
 * rotated more than once since we looked, so the next newer of the
 * rotated files, by inode; the oldest one if ours is gone already (a
 * reader slower than MaxFiles rotations loses what was dropped). */
static int open_successor(const char *dir, ino_t ino) {
  char path[PATH_MAX];
  int n = 0;
  for (;; n++) {
    snprintf(path, sizeof path, "%s/ctr.log.%d", dir, n + 1);
    if (access(path, F_OK) < 0) break;
  }
  int next = n; /* not found: the oldest */
  for (int i = 1; i <= n; i++) {
    struct stat st;
    snprintf(path, sizeof path, "%s/ctr.log.%d", dir, i);
    if (stat(path, &st) == 0 && st.st_ino == ino) {
      next = i - 1;
      break;
    }
  }
  if (next)
    snprintf(path, sizeof path, "%s/ctr.log.%d", dir, next);
  else
    snprintf(path, sizeof path, "%s/ctr.log", dir);
  return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

static int follow(reader_t *r, hcs_system_t *cs, int fd, hcs_error_t *err) {
  cleanup_close int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (in < 0) return hcs_error_make(err, errno, "inotify");
  if (inotify_add_watch(in, cs->dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF) < 0)
    return hcs_error_make(err, errno, "watch `%s`", cs->dir);
  hcs_error_t e = NULL;
  int ev = hcs_system_monitor_fd(cs, &e);
  hcs_error_release(&e);
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/ctr.log", cs->dir);
  bool done = false;
  for (;;) {
    read_more(r, fd);
    /* Rotated: drain the old file, go on with the new one. */
    struct stat a, b;
    if (stat(path, &a) == 0 && fstat(fd, &b) == 0 && a.st_ino != b.st_ino) {
      read_more(r, fd);
      int nfd = open_successor(cs->dir, b.st_ino);
      if (nfd >= 0) {
        close(fd);
        fd = nfd;
        r->len = 0;
        continue;
      }
    }
    if (done) break;
    struct pollfd p[2] = {{in, POLLIN, 0}, {ev, POLLIN, 0}};
    int k = poll(p, ev >= 0 ? 2 : 1, -1);
    if (k < 0) {
      int saved = errno;
      close(fd);
      /* EINTR: a signal (Ctrl-C) ends the follow; the caller decides. */
      return hcs_error_make(err, saved, "follow the log of `%s`", cs->id);
    }
    char drain[4096];
    while (read(in, drain, sizeof drain) > 0) {
    }
    /* The monitor has exited: it drained the FIFOs before; one last read. */
    if (ev >= 0 && p[1].revents) done = true;
  }
  close(fd);
  return 0;
}

int hcs_compute_logs(hcs_system_t *cs, const hcs_compute_log_options_t *o, hcs_error_t *err) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/ctr.log", cs->dir);
  if (access(path, F_OK) < 0)
    return hcs_error_make(err, errno == ENOENT ? 0 : errno, "read the log of `%s`: %s", cs->id,
                          errno == ENOENT ? "the system has none (created without stdio \"log\")" : strerror(errno));
  reader_t r = {.o = o};
  if (o->tail >= 0) {
    r.counting = true;
    read_all(&r, cs->dir, NULL);
    r.skip = r.count > o->tail ? r.count - o->tail : 0;
    r.counting = false;
    for (int i = 0; i < 2; i++)
      free(r.pending[i]), r.pending[i] = NULL, r.pending_len[i] = 0;
  }
  int fd = -1;
  read_all(&r, cs->dir, o->follow ? &fd : NULL);
  int ret = 0;
  if (o->follow && fd >= 0) ret = follow(&r, cs, fd, err);
  for (int i = 0; i < 2; i++)
    free(r.pending[i]);
  free(r.buf);
  return ret;
}
