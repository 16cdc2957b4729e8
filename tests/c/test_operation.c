/* Operations (hcs/operation.h) and the event journal (hcs/events.h) from C:
 * an operation's callback fires once with the right result before wait
 * returns; a cancelled import leaves nothing in the store; events from
 * concurrent writers arrive complete and in each writer's order, across
 * rotations, through next() and through a callback thread. */
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "core/util.h"
#include "hcs/events.h"
#include "hcs/layer.h"
#include "hcs/operation.h"
#include "layer_util.h"
#include "tap.h"

static char *T, *root;

struct cb_state {
  int calls;
  int status;
  char *result;
  pthread_t thread;
};

static void on_done(hcs_operation_t *op, void *ctx) {
  struct cb_state *s = ctx;
  s->calls++;
  s->thread = pthread_self();
  hcs_error_t err = NULL;
  s->status = hcs_operation_result(op, &s->result, &err);
  hcs_error_release(&err);
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (de->d_name[0] != '.') n++;
  if (d) closedir(d);
  return n;
}

static int count_all(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
  if (d) closedir(d);
  return n;
}

static void test_operations(void) {
  hcs_error_t err = NULL;
  hcs_layer_store_t *store = hcs_layer_store_open(root, &err);
  ok(store != NULL, "open store: %s", err ? hcs_error_message(err) : "");
  char tar[4096];
  snprintf(tar, sizeof tar, "%s/small.tar", T);
  struct t_entry e[] = {{'d', "etc", NULL, 0, NULL}, {'f', "etc/hello", "hi\n", 0, NULL}};
  ok(t_write_tar(tar, e, 2, NULL) == 0, "write a layer tar");

  /* The callback fires once, on the operation's thread, with the result. */
  struct cb_state s = {0};
  hcs_operation_t *op = hcs_operation_create(on_done, &s);
  ok(op != NULL, "create an operation");
  ok(hcs_operation_wait(op, 0, &err) < 0, "wait before start is refused");
  has_substr(hcs_error_message(err), "never started", "clear error");
  hcs_error_release(&err);
  is_int(hcs_layer_import_file_async(store, tar, NULL, op, &err), 0, "import async returns at once");
  is_int(hcs_operation_wait(op, -1, &err), 1, "wait: completed");
  is_int(s.calls, 1, "callback fired once");
  ok(!pthread_equal(s.thread, pthread_self()), "callback ran on the operation's thread");
  is_int(s.status, 0, "callback saw success");
  char *result = NULL;
  is_int(hcs_operation_result(op, &result, &err), 0, "result: success");
  is_str(result, s.result, "callback saw the same result document");
  json_t *doc = json_loads(result ? result : "null", 0, NULL);
  const char *id = json_string_value(json_object_get(doc, "Id"));
  ok(id && hcs_layer_exists(store, id, &err) == 1, "the imported layer exists");
  struct pollfd p = {hcs_operation_fd(op), POLLIN, 0};
  is_int(poll(&p, 1, 0), 1, "the fd polls readable");
  ok(hcs_layer_import_file_async(store, tar, NULL, op, &err) < 0, "an operation runs one verb");
  has_substr(hcs_error_message(err), "used already", "clear error");
  hcs_error_release(&err);
  ok(hcs_operation_cancel(op, &err) < 0, "cancel after completion is refused");
  hcs_error_release(&err);
  hcs_operation_close(op);
  is_int(s.calls, 1, "no second callback on close");
  free(result);
  free(s.result);
  if (id) hcs_layer_destroy(store, id, true, NULL);
  json_decref(doc);

  /* Cancelled before its second entry: ECANCELED, nothing left. */
  char big[4096];
  snprintf(big, sizeof big, "%s/big.tar", T);
  enum { N = 400 };
  struct t_entry many[N];
  char names[N][32];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "f%03d", i);
    many[i] = (struct t_entry){'f', names[i], "data\n", 0, NULL};
  }
  ok(t_write_tar(big, many, N, NULL) == 0, "write a 400-entry tar");
  char layers[4096], tmp[4096];
  snprintf(layers, sizeof layers, "%s/layers", root);
  snprintf(tmp, sizeof tmp, "%s/layers/.tmp", root);
  int before = count_entries(layers), tmp_before = count_all(tmp);
  memset(&s, 0, sizeof s);
  op = hcs_operation_create(on_done, &s);
  is_int(hcs_operation_cancel(op, &err), 0, "cancel (before the verb runs)");
  is_int(hcs_layer_import_file_async(store, big, NULL, op, &err), 0, "start the import");
  is_int(hcs_operation_wait(op, -1, &err), 1, "completed");
  ok(hcs_operation_result(op, NULL, &err) < 0, "the import failed");
  is_int(hcs_error_status(err), ECANCELED, "with ECANCELED");
  has_substr(hcs_error_message(err), "cancelled", "saying so");
  hcs_error_release(&err);
  is_int(s.calls, 1, "callback fired once");
  is_int(count_entries(layers), before, "no layer left");
  is_int(count_all(tmp), tmp_before, "no temporary directory left");
  char *list = hcs_layer_list(store, &err);
  is_str(list, "[]", "the store lists nothing");
  free(list);
  hcs_operation_close(op);
  hcs_layer_store_close(store);
}

struct collected {
  int n;
  int last[8];
  int bad;
  pthread_mutex_t lock;
};

static void on_event(const char *event, void *ctx) {
  struct collected *c = ctx;
  json_t *e = json_loads(event, 0, NULL);
  int w = (int)json_integer_value(json_object_get(json_object_get(e, "Attributes"), "Writer"));
  int k = (int)json_integer_value(json_object_get(json_object_get(e, "Attributes"), "Seq"));
  pthread_mutex_lock(&c->lock);
  if (w < 0 || w >= 8 || k != c->last[w] + 1) c->bad++;
  if (w >= 0 && w < 8) c->last[w] = k;
  c->n++;
  pthread_mutex_unlock(&c->lock);
  json_decref(e);
}

static void test_events(void) {
  hcs_error_t err = NULL;
  char *run = hcs_run_root_resolve(root);
  /* The writers are forked first, while this process has one thread: a
   * fork taken while the callback thread allocates would leave the child's
   * allocator locked.  They wait for a first byte on their pipe to begin. */
  setenv("HCS_EVENTS_MAX_SIZE", "32768", 1);
  int ack[4][2];
  for (int w = 0; w < 4; w++) {
    if (pipe(ack[w]) < 0) abort();
    if (fork() == 0) {
      char b;
      if (read(ack[w][0], &b, 1) != 1) _exit(1);
      for (int k = 1; k <= 250; k++) {
        hcs_event_emit(run, "system", "modified", "w", "me", json_pack("{s:i,s:i}", "Writer", w, "Seq", k));
        if (k % 25 == 0 && k < 250 && read(ack[w][0], &b, 1) != 1) _exit(1);
      }
      _exit(0);
    }
  }
  /* A subscription from now on, by id; another by callback. */
  hcs_events_t *sub = hcs_events_subscribe(root, "{\"Ids\": [\"w\"], \"Types\": [\"system\"]}", &err);
  ok(sub != NULL, "subscribe: %s", err ? hcs_error_message(err) : "");
  struct collected c = {.lock = PTHREAD_MUTEX_INITIALIZER};
  hcs_events_t *cbsub = hcs_events_subscribe(root, "{\"Ids\": [\"w\"], \"Actions\": [\"modified\"]}", &err);
  is_int(hcs_events_set_callback(cbsub, on_event, &c, &err), 0, "set a callback");
  char *none = hcs_events_next(sub, 0, &err);
  ok(none == NULL && err == NULL, "nothing yet");
  /* Other ids and types are filtered out. */
  hcs_event_emit(run, "system", "created", "other", NULL, NULL);
  hcs_event_emit(run, "network", "created", "w", NULL, NULL);
  /* 4 writers x 250 events, concurrently, in rounds of 25 each; the reader
   * catches up between rounds (a subscriber must stay within one rotation:
   * a round is ~20 KiB, the journal rotates at 32 KiB). */
  for (int w = 0; w < 4; w++)
    if (write(ack[w][1], "", 1) != 1) abort();
  int last[4] = {0}, got = 0, bad = 0;
  while (got < 1000) {
    char *e = hcs_events_next(sub, 60000, &err);
    if (e == NULL) break;
    json_t *j = json_loads(e, 0, NULL);
    json_t *a = json_object_get(j, "Attributes");
    int w = (int)json_integer_value(json_object_get(a, "Writer")),
        k = (int)json_integer_value(json_object_get(a, "Seq"));
    if (w < 0 || w > 3 || k != last[w] + 1 || strcmp(json_string_value(json_object_get(j, "Owner")), "me")) bad++;
    if (w >= 0 && w <= 3) last[w] = k;
    got++;
    json_decref(j);
    free(e);
    if (got % 100 == 0) {
      /* The callback subscription catches up too before the next round. */
      for (;;) {
        pthread_mutex_lock(&c.lock);
        int n = c.n;
        pthread_mutex_unlock(&c.lock);
        if (n >= got) break;
        usleep(1000);
      }
      for (int i = 0; i < 4; i++)
        if (write(ack[i][1], "", 1) != 1) abort();
    }
  }
  while (wait(NULL) > 0) {
  }
  is_int(got, 1000, "every event arrived");
  is_int(bad, 0, "each writer's events in order, whole");
  char old[4096];
  snprintf(old, sizeof old, "%s/events/events.log.1", run);
  is_int(access(old, F_OK), 0, "the journal was rotated");
  hcs_events_close(cbsub); /* joins the callback thread */
  is_int(c.n, 1000, "the callback saw every event");
  is_int(c.bad, 0, "in each writer's order");
  /* Since: the history still in the journal, then new events. */
  hcs_events_t *hist =
      hcs_events_subscribe(root, "{\"Ids\": [\"w\"], \"Since\": 1, \"Actions\": [\"modified\"]}", &err);
  char *first = hcs_events_next(hist, 0, &err);
  ok(first != NULL, "Since replays the journal");
  free(first);
  hcs_events_close(hist);
  hcs_events_t *bad_filter = hcs_events_subscribe(root, "{\"Idz\": []}", &err);
  ok(bad_filter == NULL, "a bad filter is refused");
  has_substr(hcs_error_message(err), "`Idz`: unknown field", "naming the field");
  hcs_error_release(&err);
  hcs_events_close(sub);
  unsetenv("HCS_EVENTS_MAX_SIZE");
  free(run);
}

int main(void) {
  T = t_tmpdir();
  if (asprintf(&root, "%s/root", T) < 0) abort();
  test_operations();
  test_events();
  t_rmroot(T);
  return tap_done();
}
