/* Benchmark driver for libhcs compute: times N iterations of one operation
 * in-process (no Lua start-up) and prints the median in ms.
 *   compute_bench ROOT ROOTFS run N          create+start+wait+delete of /bin/true
 *   compute_bench ROOT ROOTFS run N BUNDLE   the same, alternating with `crun run` of BUNDLE (spawned
 *                                            and timed like hyperfine -N does): both see the same load
 *   compute_bench ROOT ROOTFS exec N         exec /bin/true into a running system
 *   compute_bench ROOT ROOTFS pause N        pause+resume of a running system
 *   compute_bench ROOT ROOTFS idle N         start N idle systems, print monitor RSS/PSS (kB), delete
 * With $HCS_BENCH_SAMPLES set, every sample (ms) is appended to that file.
 * Built by tests/bench/compute.sh (not part of the normal build). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>

#include <hcs/hcs.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

extern char **environ;

/* One `crun run` of the bundle, timed from spawn to exit. */
static double crun_run(const char *bundle) {
  char *argv[] = {"crun", "run", "-b", (char *)bundle, "bench-r", NULL};
  pid_t pid;
  int st;
  double t0 = now_ms();
  if (posix_spawnp(&pid, "crun", NULL, NULL, argv, environ) != 0 || waitpid(pid, &st, 0) < 0 || st != 0) {
    fprintf(stderr, "crun run failed\n");
    exit(1);
  }
  return now_ms() - t0;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void die(const char *what, hcs_error_t err) {
  fprintf(stderr, "%s: %s\n", what, hcs_error_message(err));
  exit(1);
}

static long smaps_field(int pid, const char *key) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
  FILE *f = fopen(path, "r");
  long v = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, key, strlen(key)) == 0) v = atol(line + strlen(key));
  if (f) fclose(f);
  return v;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: compute_bench ROOT ROOTFS run|exec|pause|idle N\n");
    return 2;
  }
  const char *root = argv[1], *rootfs = argv[2], *what = argv[3];
  int n = atoi(argv[4]);
  char cfg[1024];
  hcs_error_t err = NULL;
  double *t = calloc((size_t)n, sizeof *t), *peer = calloc((size_t)n, sizeof *peer);
  const char *bundle = argc > 5 ? argv[5] : NULL;
  if (strcmp(what, "run") == 0) {
    snprintf(cfg, sizeof cfg,
             "{\"Container\":{\"Storage\":{\"Path\":\"%s\"}},\"Linux\":{\"CgroupParent\":\"hcs-bench\","
             "\"Init\":{\"CommandArgs\":[\"/bin/true\"]}}}",
             rootfs);
    for (int i = -2; i < n; i++) { /* two warm-up runs, like hyperfine -w */
      char id[32];
      snprintf(id, sizeof id, "bench%d", i + 2);
      if (bundle) {
        double p = crun_run(bundle);
        if (i >= 0) peer[i] = p;
      }
      double t0 = now_ms();
      hcs_system_t *cs = hcs_compute_create(root, id, cfg, NULL, &err);
      if (!cs) die("create", err);
      if (hcs_compute_start(cs, &err) < 0) die("start", err);
      if (hcs_compute_wait(cs, -1, &err) < 0) die("wait", err);
      if (hcs_compute_delete(cs, false, &err) < 0) die("delete", err);
      hcs_compute_close(cs);
      if (i >= 0) t[i] = now_ms() - t0;
    }
  } else if (strcmp(what, "exec") == 0 || strcmp(what, "pause") == 0) {
    snprintf(cfg, sizeof cfg,
             "{\"Container\":{\"Storage\":{\"Path\":\"%s\"}},\"Linux\":{\"CgroupParent\":\"hcs-bench\"}}", rootfs);
    hcs_system_t *cs = hcs_compute_create(root, "bench-sys", cfg, NULL, &err);
    if (!cs || hcs_compute_start(cs, &err) < 0) die("create", err);
    for (int i = 0; i < n; i++) {
      double t0 = now_ms();
      if (what[0] == 'e') {
        hcs_process_t *p = hcs_process_create(cs, "{\"CommandArgs\":[\"/bin/true\"]}", &err);
        if (!p) die("exec", err);
        if (hcs_process_wait(p, -1, &err) < 0) die("wait", err);
        hcs_process_close(p);
      } else {
        if (hcs_compute_pause(cs, &err) < 0) die("pause", err);
        if (hcs_compute_resume(cs, &err) < 0) die("resume", err);
      }
      t[i] = now_ms() - t0;
    }
    if (hcs_compute_delete(cs, true, &err) < 0) die("delete", err);
    hcs_compute_close(cs);
  } else if (strcmp(what, "idle") == 0) {
    snprintf(cfg, sizeof cfg,
             "{\"Container\":{\"Storage\":{\"Path\":\"%s\"}},\"Linux\":{\"CgroupParent\":\"hcs-bench\"}}", rootfs);
    hcs_system_t **s = calloc((size_t)n, sizeof *s);
    long rss = 0, pss = 0;
    for (int i = 0; i < n; i++) {
      char id[32];
      snprintf(id, sizeof id, "idle%d", i);
      s[i] = hcs_compute_create(root, id, cfg, NULL, &err);
      if (!s[i] || hcs_compute_start(s[i], &err) < 0) die("create", err);
    }
    for (int i = 0; i < n; i++) {
      char *props = hcs_compute_properties(s[i], NULL, &err);
      char *m = props ? strstr(props, "\"MonitorPid\":") : NULL;
      int pid = m ? atoi(m + 13) : 0;
      rss += smaps_field(pid, "Rss:");
      pss += smaps_field(pid, "Pss:");
      free(props);
    }
    printf("monitor_rss_kb %ld\nmonitor_pss_kb %ld\n", rss / n, pss / n);
    for (int i = 0; i < n; i++) {
      hcs_compute_delete(s[i], true, &err);
      hcs_compute_close(s[i]);
    }
    return 0;
  }
  const char *samples = getenv("HCS_BENCH_SAMPLES");
  FILE *sf = samples ? fopen(samples, "a") : NULL;
  for (int i = 0; sf && i < n; i++)
    fprintf(sf, "%.6f\n", t[i]);
  if (sf) fclose(sf);
  qsort(t, (size_t)n, sizeof *t, cmp);
  printf("%s median_ms %.3f min_ms %.3f\n", what, t[n / 2], t[0]);
  if (bundle) {
    qsort(peer, (size_t)n, sizeof *peer, cmp);
    printf("crun median_ms %.3f min_ms %.3f\n", peer[n / 2], peer[0]);
  }
  free(t);
  free(peer);
  return 0;
}
