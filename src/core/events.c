/* The event journal (hcs/events.h): writers append one JSON line per event
 * to <run root>/events/events.log with a single O_APPEND write (whole
 * records, never interleaved: the kernel serializes appends to a file), and
 * rotate it to events.log.1 past a size; subscribers follow it with inotify,
 * by inode across rotations. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>

#include "core/util.h"
#include "hcs/events.h"

enum { DEFAULT_MAX_SIZE = 4 * 1024 * 1024 };

/* $HCS_EVENTS_MAX_SIZE (bytes) for tests of the rotation. */
static off_t max_size(void) {
  const char *e = getenv("HCS_EVENTS_MAX_SIZE");
  long long n = e ? atoll(e) : 0;
  return n >= 4096 ? (off_t)n : DEFAULT_MAX_SIZE;
}

/* Past the size, rename the file we wrote to (if it is still the current
 * one: two writers past the size rotate once).  Called with the lock held
 * exclusively: no append is in flight, so the old file is final once
 * renamed and a reader that drains it loses nothing. */
static void rotate(const char *path, const char *old, int fd) {
  struct stat mine, cur;
  if (fstat(fd, &mine) == 0 && stat(path, &cur) == 0 && cur.st_ino == mine.st_ino && cur.st_size > max_size())
    rename(path, old);
}

void hcs_event_emit(const char *run_root, const char *type, const char *action, const char *id, const char *owner,
                    json_t *attrs) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[64];
  size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + n, sizeof when - n, ".%09ldZ", ts.tv_nsec);
  json_t *rec = json_pack("{s:s,s:I,s:s,s:s,s:s}", "Time", when, "TimeNano",
                          (json_int_t)ts.tv_sec * 1000000000 + ts.tv_nsec, "Type", type, "Action", action, "Id", id);
  if (rec == NULL) {
    json_decref(attrs);
    return;
  }
  if (owner) json_object_set_new(rec, "Owner", json_string(owner));
  if (attrs) json_object_set_new(rec, "Attributes", attrs);
  char *text = json_dumps(rec, JSON_COMPACT);
  json_decref(rec);
  if (text == NULL) return;
  size_t len = strlen(text);
  text[len++] = '\n'; /* in place of the NUL: the text is written by length */
  char dir[PATH_MAX], path[PATH_MAX + 32], lock[PATH_MAX + 32], old[PATH_MAX + 32];
  snprintf(dir, sizeof dir, "%s/events", run_root);
  snprintf(path, sizeof path, "%s/events.log", dir);
  snprintf(lock, sizeof lock, "%s/events.lock", dir);
  snprintf(old, sizeof old, "%s/events.log.1", dir);
  /* Appends share the lock, a rotation takes it alone. */
  int l = open(lock, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (l < 0 && errno == ENOENT && hcs_mkdir_p(dir, 0700, NULL) == 0)
    l = open(lock, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (l < 0) {
    free(text);
    return;
  }
  while (flock(l, LOCK_SH) < 0 && errno == EINTR) {
  }
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  bool big = false;
  if (fd >= 0) {
    /* One write: a reader never sees half a record (it reads up to the
     * last newline). */
    while (write(fd, text, len) < 0 && errno == EINTR) {
    }
    struct stat st;
    big = fstat(fd, &st) == 0 && st.st_size > max_size();
  }
  flock(l, LOCK_UN);
  if (big && flock(l, LOCK_EX) == 0) rotate(path, old, fd);
  if (fd >= 0) close(fd);
  close(l);
  free(text);
}

/* --- subscriptions -------------------------------------------------------- */

struct hcs_events_s {
  char *dir, *path;
  int in, fd, stop;
  ino_t ino;
  char *buf;
  size_t len, cap;
  json_t *ids, *owners, *types, *actions;
  long long since, until;
  bool ended;
  json_t *queue; /* matching records read but not delivered */
  size_t head;
  pthread_t thread;
  bool threaded;
  hcs_event_callback_t cb;
  void *ctx;
};

static bool in_list(json_t *list, json_t *v) {
  if (list == NULL) return true;
  const char *s = json_string_value(v);
  if (s == NULL) return false;
  size_t i;
  json_t *e;
  json_array_foreach(list, i, e) if (json_is_string(e) && strcmp(json_string_value(e), s) == 0) return true;
  return false;
}

static void take_line(hcs_events_t *s, const char *line, size_t len) {
  json_t *rec = json_loadb(line, len, 0, NULL);
  if (!json_is_object(rec)) {
    json_decref(rec);
    return;
  }
  long long t = (long long)json_integer_value(json_object_get(rec, "TimeNano"));
  if (s->until > 0 && t > s->until) s->ended = true;
  bool match = (s->since <= 0 || t >= s->since) && (s->until <= 0 || t <= s->until) &&
               in_list(s->ids, json_object_get(rec, "Id")) && in_list(s->owners, json_object_get(rec, "Owner")) &&
               in_list(s->types, json_object_get(rec, "Type")) && in_list(s->actions, json_object_get(rec, "Action"));
  if (match && !s->ended)
    json_array_append_new(s->queue, rec);
  else
    json_decref(rec);
}

static void read_more(hcs_events_t *s) {
  if (s->fd < 0) return;
  for (;;) {
    if (s->cap - s->len < 16384) {
      s->cap = s->cap ? s->cap * 2 : 65536;
      s->buf = hcs_xrealloc(s->buf, s->cap);
    }
    ssize_t n = read(s->fd, s->buf + s->len, s->cap - s->len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s->len += (size_t)n;
    char *p = s->buf, *end = s->buf + s->len, *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
      take_line(s, p, (size_t)(nl - p));
      p = nl + 1;
    }
    s->len = (size_t)(end - p);
    memmove(s->buf, p, s->len);
  }
}

static void open_file(hcs_events_t *s, const char *path, bool at_end) {
  if (s->fd >= 0) close(s->fd);
  s->len = 0;
  s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  s->ino = s->fd >= 0 && fstat(s->fd, &st) == 0 ? st.st_ino : 0;
  if (s->fd >= 0 && at_end) lseek(s->fd, 0, SEEK_END);
}

/* Rotated away from under us: drain our file, then go to its successor
 * (events.log when ours is events.log.1; events.log.1 when ours is gone,
 * i.e. we were more than one rotation behind). */
static void follow_rotation(hcs_events_t *s) {
  struct stat cur;
  if (stat(s->path, &cur) < 0) return;
  if (s->fd >= 0 && cur.st_ino == s->ino) return;
  read_more(s);
  char old[PATH_MAX];
  snprintf(old, sizeof old, "%s.1", s->path);
  struct stat o;
  bool ours_is_old = s->fd >= 0 && stat(old, &o) == 0 && o.st_ino == s->ino;
  if (s->fd >= 0 && !ours_is_old && stat(old, &o) == 0) {
    open_file(s, old, false);
    read_more(s);
  }
  open_file(s, s->path, false);
}

hcs_events_t *hcs_events_subscribe(const char *root, const char *filter, hcs_error_t *err) {
  cleanup_json json_t *f = NULL;
  if (filter && *filter) {
    f = hcs_json_parse(filter, "event filter", err);
    if (f == NULL) return NULL;
    if (!json_is_object(f)) {
      hcs_error_make(err, EINVAL, "event filter: expected an object");
      return NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(f, key, v) {
      bool list = strcmp(key, "Ids") == 0 || strcmp(key, "Owners") == 0 || strcmp(key, "Types") == 0 ||
                  strcmp(key, "Actions") == 0;
      bool time = strcmp(key, "Since") == 0 || strcmp(key, "Until") == 0;
      if (!list && !time) {
        hcs_error_make(err, EINVAL,
                       "event filter: `%s`: unknown field (expected one of Ids, Owners, Types, Actions, Since, Until)",
                       key);
        return NULL;
      }
      if ((list && !json_is_array(v)) || (time && !json_is_integer(v))) {
        hcs_error_make(err, EINVAL, "event filter: `%s`: expected %s", key,
                       list ? "an array of strings" : "an integer (ns since the epoch)");
        return NULL;
      }
    }
  }
  cleanup_free char *run = hcs_run_root_resolve(root);
  hcs_events_t *s = hcs_xcalloc(1, sizeof *s);
  s->dir = hcs_xasprintf("%s/events", run);
  s->path = hcs_xasprintf("%s/events.log", s->dir);
  s->fd = s->stop = s->in = -1;
  s->queue = json_array();
  if (f) {
    s->ids = json_incref(json_object_get(f, "Ids"));
    s->owners = json_incref(json_object_get(f, "Owners"));
    s->types = json_incref(json_object_get(f, "Types"));
    s->actions = json_incref(json_object_get(f, "Actions"));
    s->since = (long long)json_integer_value(json_object_get(f, "Since"));
    s->until = (long long)json_integer_value(json_object_get(f, "Until"));
  }
  if (hcs_mkdir_p(s->dir, 0700, err) < 0) goto fail;
  s->in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (s->in < 0) {
    hcs_error_make(err, errno, "inotify");
    goto fail;
  }
  /* The watch comes first: a record appended after it is never missed. */
  if (inotify_add_watch(s->in, s->dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
    hcs_error_make(err, errno, "watch `%s`", s->dir);
    goto fail;
  }
  if (s->since > 0) {
    char old[PATH_MAX];
    snprintf(old, sizeof old, "%s.1", s->path);
    open_file(s, old, false);
    read_more(s);
    open_file(s, s->path, false);
  } else {
    open_file(s, s->path, true);
  }
  return s;
fail:
  hcs_events_close(s);
  return NULL;
}

int hcs_events_fd(hcs_events_t *s) { return s->in; }
bool hcs_events_ended(hcs_events_t *s) { return s->ended; }

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static json_t *pop(hcs_events_t *s) {
  if (s->head >= json_array_size(s->queue)) {
    if (s->head) json_array_clear(s->queue), s->head = 0;
    return NULL;
  }
  return json_incref(json_array_get(s->queue, s->head++));
}

static long long mono_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The next record, or NULL: time-out, ended, stopped (*rc 0) or an error
 * (*rc -1). */
static json_t *next(hcs_events_t *s, int timeout_ms, int *rc, hcs_error_t *err) {
  long long deadline = timeout_ms > 0 ? mono_ms() + timeout_ms : 0;
  *rc = 0;
  for (;;) {
    json_t *e = pop(s);
    if (e) return e;
    if (s->ended) return NULL;
    read_more(s);
    /* Rotated: the rest of the old file, then what the new one has (the
     * write that created it may be all there will be for a while). */
    follow_rotation(s);
    read_more(s);
    if ((e = pop(s)) != NULL) return e;
    if (s->until > 0 && now_ns() > s->until) {
      s->ended = true;
      return NULL;
    }
    if (timeout_ms == 0) return NULL;
    long long wait = -1;
    if (timeout_ms > 0) {
      wait = deadline - mono_ms();
      if (wait <= 0) return NULL;
    }
    /* With an Until, wake up by then even if nothing is written. */
    if (s->until > 0) {
      long long left = (s->until - now_ns()) / 1000000 + 1;
      if (wait < 0 || left < wait) wait = left;
    }
    if (wait > INT32_MAX) wait = INT32_MAX;
    struct pollfd p[2] = {{s->in, POLLIN, 0}, {s->stop, POLLIN, 0}};
    if (poll(p, s->stop >= 0 ? 2 : 1, (int)wait) < 0) {
      *rc = hcs_error_make(err, errno, "wait for events");
      return NULL;
    }
    if (s->stop >= 0 && p[1].revents) return NULL;
    char drain[4096];
    while (read(s->in, drain, sizeof drain) > 0) {
    }
  }
}

char *hcs_events_next(hcs_events_t *s, int timeout_ms, hcs_error_t *err) {
  int rc;
  json_t *e = next(s, timeout_ms, &rc, err);
  if (e == NULL) return NULL;
  char *text = json_dumps(e, JSON_COMPACT);
  json_decref(e);
  return text;
}

static void *callback_thread(void *arg) {
  hcs_events_t *s = arg;
  for (;;) {
    int rc;
    hcs_error_t err = NULL;
    json_t *e = next(s, -1, &rc, &err);
    if (e == NULL) {
      bool interrupted = rc < 0 && hcs_error_status(err) == EINTR;
      hcs_error_release(&err);
      if (interrupted) continue;
      break; /* stopped, ended, or an error */
    }
    char *text = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    if (text) s->cb(text, s->ctx);
    free(text);
  }
  return NULL;
}

int hcs_events_set_callback(hcs_events_t *s, hcs_event_callback_t cb, void *ctx, hcs_error_t *err) {
  if (s->threaded) return hcs_error_make(err, EBUSY, "set an event callback: one is set already");
  s->stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->stop < 0) return hcs_error_make(err, errno, "eventfd");
  s->cb = cb;
  s->ctx = ctx;
  int r = pthread_create(&s->thread, NULL, callback_thread, s);
  if (r != 0) return hcs_error_make(err, r, "start the event callback thread");
  s->threaded = true;
  return 0;
}

void hcs_events_close(hcs_events_t *s) {
  if (s == NULL) return;
  if (s->threaded) {
    uint64_t one = 1;
    while (write(s->stop, &one, sizeof one) < 0 && errno == EINTR) {
    }
    pthread_join(s->thread, NULL);
  }
  if (s->stop >= 0) close(s->stop);
  if (s->in >= 0) close(s->in);
  if (s->fd >= 0) close(s->fd);
  json_decref(s->ids);
  json_decref(s->owners);
  json_decref(s->types);
  json_decref(s->actions);
  json_decref(s->queue);
  free(s->buf);
  free(s->dir);
  free(s->path);
  free(s);
}
