/* Operations (hcs/operation.h): each `_async` verb runs the synchronous
 * verb on a thread of its own and completes the operation.  Cancellation is
 * cooperative: the verbs that can stop safely ask hcs_operation_cancelled()
 * (the running operation is thread-local) or poll hcs_operation_cancel_fd()
 * in their waits. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "core/util.h"
#include "hcs/operation.h"

enum kind {
  OP_CREATE,
  OP_START,
  OP_SHUTDOWN,
  OP_TERMINATE,
  OP_PAUSE,
  OP_RESUME,
  OP_MODIFY,
  OP_DELETE,
  OP_PROCESS,
  OP_LAYER_IMPORT,
  OP_LAYER_EXPORT,
  OP_IMAGE_IMPORT
};

struct hcs_operation_s {
  hcs_operation_callback_t cb;
  void *ctx;
  int done_fd, cancel_fd; /* eventfds: written once each */
  pthread_t thread;
  bool started, stored, completed; /* stored: the outcome (before the callback) */
  pthread_mutex_t lock;
  /* the job */
  enum kind kind;
  char *root, *id, *text;
  hcs_compute_stdio_t stdio;
  bool has_stdio, flag;
  int ms;
  hcs_system_t *cs;
  void *store;
  const void *opts;
  /* the outcome */
  int status;
  char *error, *result;
  int error_code;
  hcs_system_t *new_system;
  hcs_process_t *new_process;
};

static __thread hcs_operation_t *current;

bool hcs_operation_cancelled(void) {
  if (current == NULL) return false;
  struct pollfd p = {current->cancel_fd, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

int hcs_operation_cancel_fd(void) { return current ? current->cancel_fd : -1; }

hcs_operation_t *hcs_operation_create(hcs_operation_callback_t cb, void *ctx) {
  hcs_operation_t *op = hcs_xcalloc(1, sizeof *op);
  op->cb = cb;
  op->ctx = ctx;
  op->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  op->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (op->done_fd < 0 || op->cancel_fd < 0) {
    if (op->done_fd >= 0) close(op->done_fd);
    if (op->cancel_fd >= 0) close(op->cancel_fd);
    free(op);
    return NULL;
  }
  pthread_mutex_init(&op->lock, NULL);
  return op;
}

static char *id_doc(const char *id) {
  json_t *d = json_pack("{s:s}", "Id", id);
  char *t = json_dumps(d, JSON_COMPACT);
  json_decref(d);
  return t;
}

static int run(hcs_operation_t *op, hcs_error_t *err) {
  char *out = NULL;
  int r = 0;
  switch (op->kind) {
  case OP_CREATE:
    op->new_system = hcs_compute_create(op->root, op->id, op->text, op->has_stdio ? &op->stdio : NULL, err);
    if (op->new_system == NULL) return -1;
    op->result = id_doc(op->id);
    return 0;
  case OP_START: return hcs_compute_start(op->cs, err);
  case OP_SHUTDOWN: return hcs_compute_shutdown(op->cs, op->ms, err);
  case OP_TERMINATE: return hcs_compute_terminate(op->cs, err);
  case OP_PAUSE: return hcs_compute_pause(op->cs, err);
  case OP_RESUME: return hcs_compute_resume(op->cs, err);
  case OP_MODIFY: return hcs_compute_modify(op->cs, op->text, err);
  case OP_DELETE: return hcs_compute_delete(op->cs, op->flag, err);
  case OP_PROCESS:
    op->new_process = hcs_process_create_ex(op->cs, op->text, op->has_stdio ? &op->stdio : NULL, err);
    return op->new_process ? 0 : -1;
  case OP_LAYER_IMPORT:
    out = hcs_layer_import_file(op->store, op->text, op->opts, err);
    if (out == NULL) return -1;
    op->result = id_doc(out);
    free(out);
    return 0;
  case OP_LAYER_EXPORT: {
    hcs_layer_export_result_t res;
    r = hcs_layer_export_file(op->store, op->id, op->text, op->opts, &res, err);
    if (r == 0) {
      json_t *d = json_pack("{s:s,s:s,s:I,s:I}", "DiffId", res.diff_id, "Digest", res.digest, "Size",
                            (json_int_t)res.size, "UncompressedSize", (json_int_t)res.uncompressed_size);
      op->result = json_dumps(d, JSON_COMPACT);
      json_decref(d);
    }
    return r;
  }
  case OP_IMAGE_IMPORT: op->result = hcs_image_import(op->store, op->text, op->opts, err); return op->result ? 0 : -1;
  }
  return hcs_error_make(err, EINVAL, "unknown operation");
}

static void *worker(void *arg) {
  hcs_operation_t *op = arg;
  current = op;
  hcs_error_t err = NULL;
  int status = run(op, &err);
  current = NULL;
  pthread_mutex_lock(&op->lock);
  op->status = status;
  if (status < 0) {
    op->error = hcs_xstrdup(err ? hcs_error_message(err) : "operation failed");
    op->error_code = err ? hcs_error_status(err) : 0;
  }
  op->stored = true;
  pthread_mutex_unlock(&op->lock);
  hcs_error_release(&err);
  /* The callback first: a waiter that wakes sees it has run. */
  if (op->cb) op->cb(op, op->ctx);
  pthread_mutex_lock(&op->lock);
  op->completed = true;
  pthread_mutex_unlock(&op->lock);
  uint64_t one = 1;
  while (write(op->done_fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
  return NULL;
}

/* The outcome is there (in the callback, or once completed). */
static bool stored(hcs_operation_t *op) {
  pthread_mutex_lock(&op->lock);
  bool done = op->stored;
  pthread_mutex_unlock(&op->lock);
  return done;
}

static int start(hcs_operation_t *op, enum kind kind, hcs_error_t *err) {
  if (op == NULL) return hcs_error_make(err, EINVAL, "start an operation: no operation given");
  if (op->started) return hcs_error_make(err, EBUSY, "start an operation: this one was used already");
  op->kind = kind;
  int r = pthread_create(&op->thread, NULL, worker, op);
  if (r != 0) return hcs_error_make(err, r, "start an operation: create its thread");
  op->started = true;
  return 0;
}

int hcs_operation_wait(hcs_operation_t *op, int timeout_ms, hcs_error_t *err) {
  if (!op->started) return hcs_error_make(err, EINVAL, "wait for an operation that was never started");
  struct pollfd p = {op->done_fd, POLLIN, 0};
  int r = poll(&p, 1, timeout_ms);
  if (r < 0) return hcs_error_make(err, errno, "wait for an operation");
  return r > 0;
}

int hcs_operation_result(hcs_operation_t *op, char **result, hcs_error_t *err) {
  if (result) *result = NULL;
  if (!stored(op)) return hcs_error_make(err, EAGAIN, "operation not completed");
  if (op->status < 0) return hcs_error_make(err, op->error_code, "%s", op->error);
  if (result && op->result) *result = hcs_xstrdup(op->result);
  return 0;
}

hcs_system_t *hcs_operation_take_system(hcs_operation_t *op) {
  if (!stored(op)) return NULL;
  hcs_system_t *cs = op->new_system;
  op->new_system = NULL;
  return cs;
}

hcs_process_t *hcs_operation_take_process(hcs_operation_t *op) {
  if (!stored(op)) return NULL;
  hcs_process_t *p = op->new_process;
  op->new_process = NULL;
  return p;
}

int hcs_operation_fd(hcs_operation_t *op) { return op->done_fd; }

bool hcs_operation_completed(hcs_operation_t *op) {
  pthread_mutex_lock(&op->lock);
  bool done = op->completed;
  pthread_mutex_unlock(&op->lock);
  return done;
}

int hcs_operation_cancel(hcs_operation_t *op, hcs_error_t *err) {
  if (hcs_operation_completed(op)) return hcs_error_make(err, EALREADY, "cancel an operation: it has completed");
  uint64_t one = 1;
  while (write(op->cancel_fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
  return 0;
}

void hcs_operation_close(hcs_operation_t *op) {
  if (op == NULL) return;
  if (op->started) pthread_join(op->thread, NULL);
  close(op->done_fd);
  close(op->cancel_fd);
  pthread_mutex_destroy(&op->lock);
  hcs_compute_close(op->new_system);
  hcs_process_close(op->new_process);
  free(op->root);
  free(op->id);
  free(op->text);
  free(op->error);
  free(op->result);
  free(op);
}

/* --- the verbs ------------------------------------------------------------- */

int hcs_compute_create_async(const char *root, const char *id, const char *config, const hcs_compute_stdio_t *stdio,
                             hcs_operation_t *op, hcs_error_t *err) {
  if (op && !op->started) {
    op->root = root ? hcs_xstrdup(root) : NULL;
    op->id = hcs_xstrdup(id);
    op->text = hcs_xstrdup(config ? config : "");
    if (stdio) op->stdio = *stdio, op->has_stdio = true;
  }
  return start(op, OP_CREATE, err);
}

static int system_verb(hcs_operation_t *op, hcs_system_t *cs, enum kind kind, hcs_error_t *err) {
  if (op && !op->started) op->cs = cs;
  return start(op, kind, err);
}

int hcs_compute_start_async(hcs_system_t *cs, hcs_operation_t *op, hcs_error_t *err) {
  return system_verb(op, cs, OP_START, err);
}
int hcs_compute_shutdown_async(hcs_system_t *cs, int timeout_ms, hcs_operation_t *op, hcs_error_t *err) {
  if (op && !op->started) op->ms = timeout_ms;
  return system_verb(op, cs, OP_SHUTDOWN, err);
}
int hcs_compute_terminate_async(hcs_system_t *cs, hcs_operation_t *op, hcs_error_t *err) {
  return system_verb(op, cs, OP_TERMINATE, err);
}
int hcs_compute_pause_async(hcs_system_t *cs, hcs_operation_t *op, hcs_error_t *err) {
  return system_verb(op, cs, OP_PAUSE, err);
}
int hcs_compute_resume_async(hcs_system_t *cs, hcs_operation_t *op, hcs_error_t *err) {
  return system_verb(op, cs, OP_RESUME, err);
}
int hcs_compute_modify_async(hcs_system_t *cs, const char *request, hcs_operation_t *op, hcs_error_t *err) {
  if (op && !op->started) op->text = hcs_xstrdup(request ? request : "");
  return system_verb(op, cs, OP_MODIFY, err);
}
int hcs_compute_delete_async(hcs_system_t *cs, bool force, hcs_operation_t *op, hcs_error_t *err) {
  if (op && !op->started) op->flag = force;
  return system_verb(op, cs, OP_DELETE, err);
}

int hcs_process_create_async(hcs_system_t *cs, const char *params, const hcs_compute_stdio_t *stdio,
                             hcs_operation_t *op, hcs_error_t *err) {
  if (op && !op->started) {
    op->text = hcs_xstrdup(params ? params : "null");
    if (stdio) op->stdio = *stdio, op->has_stdio = true;
  }
  return system_verb(op, cs, OP_PROCESS, err);
}

int hcs_layer_import_file_async(hcs_layer_store_t *store, const char *path, const hcs_layer_import_opts_t *opts,
                                hcs_operation_t *op, hcs_error_t *err) {
  if (op && !op->started) op->store = store, op->text = hcs_xstrdup(path), op->opts = opts;
  return start(op, OP_LAYER_IMPORT, err);
}

int hcs_layer_export_file_async(hcs_layer_store_t *store, const char *id, const char *path,
                                const hcs_layer_export_opts_t *opts, hcs_operation_t *op, hcs_error_t *err) {
  if (op && !op->started) op->store = store, op->id = hcs_xstrdup(id), op->text = hcs_xstrdup(path), op->opts = opts;
  return start(op, OP_LAYER_EXPORT, err);
}

int hcs_image_import_async(hcs_image_store_t *store, const char *path, const hcs_image_import_opts_t *opts,
                           hcs_operation_t *op, hcs_error_t *err) {
  if (op && !op->started) op->store = store, op->text = hcs_xstrdup(path), op->opts = opts;
  return start(op, OP_IMAGE_IMPORT, err);
}
