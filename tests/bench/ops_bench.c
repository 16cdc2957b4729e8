/* Driver for tests/bench/ops.sh: event latency (init killed -> the exited
 * event's callback, through the journal) and log throughput (init writes
 * SIZE bytes to stdout -> all of it in the system log).
 *   ops_bench ROOT ROOTFS latency N      -> "median_us p99_us"
 *   ops_bench ROOT ROOTFS log MIB [CMD]  -> "seconds log_bytes" */
#include <hcs/hcs.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void die(hcs_error_t *err, const char *what) {
  fprintf(stderr, "ops_bench: %s: %s\n", what, err && *err ? hcs_error_message(*err) : "failed");
  exit(1);
}

struct hit {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  double at;
};

static void on_exit_event(const char *event, void *ctx) {
  (void)event;
  struct hit *h = ctx;
  double t = now_us();
  pthread_mutex_lock(&h->lock);
  h->at = t;
  pthread_cond_signal(&h->cond);
  pthread_mutex_unlock(&h->lock);
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static char *config(const char *rootfs, const char *cmd, long long log_max) {
  json_t *doc = json_pack("{s:{s:i,s:i},s:{s:{s:s}},s:{s:s,s:{s:[s,s,s]}}}", "SchemaVersion", "Major", 2, "Minor", 1,
                          "Container", "Storage", "Path", rootfs, "Linux", "CgroupParent", "hcs-bench", "Init",
                          "CommandArgs", "/bin/sh", "-c", cmd);
  if (log_max)
    json_object_set_new(json_object_get(doc, "Linux"), "Log",
                        json_pack("{s:I,s:i}", "MaxSize", (json_int_t)log_max, "MaxFiles", 2));
  char *s = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  return s;
}

int main(int argc, char **argv) {
  if (argc < 5) return fprintf(stderr, "usage: ops_bench ROOT ROOTFS latency N | log MIB\n"), 2;
  const char *root = argv[1], *rootfs = argv[2], *mode = argv[3];
  long n = atol(argv[4]);
  hcs_error_t err = NULL;
  if (strcmp(mode, "latency") == 0) {
    double *lat = calloc((size_t)n, sizeof *lat);
    char *cfg = config(rootfs, "exec sleep 1000", 0);
    for (long i = 0; i < n; i++) {
      char id[64], filter[128];
      snprintf(id, sizeof id, "lat%ld", i);
      snprintf(filter, sizeof filter, "{\"Ids\":[\"%s\"],\"Actions\":[\"exited\"]}", id);
      hcs_system_t *cs = hcs_compute_create(root, id, cfg, NULL, &err);
      if (!cs || hcs_compute_start(cs, &err) < 0) die(&err, "create");
      char *props = hcs_compute_properties(cs, NULL, &err);
      json_t *p = json_loads(props, 0, NULL);
      pid_t pid = (pid_t)json_integer_value(json_object_get(p, "Pid"));
      json_decref(p);
      free(props);
      struct hit h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
      hcs_events_t *sub = hcs_events_subscribe(root, filter, &err);
      if (!sub || hcs_events_set_callback(sub, on_exit_event, &h, &err) < 0) die(&err, "subscribe");
      double t0 = now_us();
      kill(pid, SIGKILL);
      pthread_mutex_lock(&h.lock);
      while (h.at == 0)
        pthread_cond_wait(&h.cond, &h.lock);
      pthread_mutex_unlock(&h.lock);
      lat[i] = h.at - t0;
      hcs_events_close(sub);
      if (hcs_compute_delete(cs, true, &err) < 0) die(&err, "delete");
      hcs_compute_close(cs);
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("%.0f %.0f\n", lat[n / 2], lat[(size_t)((n - 1) * 0.99)]);
    return 0;
  }
  /* CMD (the 5th argument) writes about MIB MiB to stdout. */
  const char *cmd = argc > 5 ? argv[5] : "cat /lines.txt";
  char *cfg = config(rootfs, cmd, 4LL << 30);
  hcs_compute_stdio_t log = {-1, HCS_STDIO_LOG, HCS_STDIO_LOG};
  double t0 = now_us(); /* create included (a few ms), as podman's set-up is not */
  hcs_system_t *cs = hcs_compute_create(root, "logbench", cfg, &log, &err);
  if (!cs) die(&err, "create");
  if (hcs_compute_start(cs, &err) < 0) die(&err, "start");
  /* The monitor exits once the FIFOs are drained into the log. */
  if (hcs_compute_wait(cs, -1, &err) < 0) die(&err, "wait");
  double t1 = now_us();
  char *run = getenv("HCS_RUN_ROOT"), path[4096];
  snprintf(path, sizeof path, "%s/compute/logbench/ctr.log", run ? run : root);
  struct stat st;
  long long size = stat(path, &st) == 0 ? (long long)st.st_size : -1;
  printf("%.3f %lld\n", (t1 - t0) / 1e6, size);
  hcs_compute_delete(cs, true, NULL);
  hcs_compute_close(cs);
  return 0;
}
