/* Benchmark driver for tests/bench/net.sh: endpoint set-up (namespace, veth
 * with its peer created in the namespace, address, routes, up) and
 * tear-down through libhcs, N times; prints the medians in ms.
 *   net_driver ROOT N                  hcs only
 *   net_driver ROOT N IPDIR PREFIX     alternating with the ip -batch
 *     sequence of net.sh (IPDIR/up.I, IPDIR/in.batch in netns PREFIX-I,
 *     IPDIR/down.I), one of each per iteration, so both see the same load;
 *     prints the ip medians on a second line */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/wait.h>

#include "hcs/hcs.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

extern char **environ;

static void run_ip(char **argv) {
  pid_t pid;
  int st;
  if (posix_spawnp(&pid, "ip", NULL, NULL, argv, environ) != 0 || waitpid(pid, &st, 0) < 0 || st != 0) {
    fprintf(stderr, "net_driver: ip %s %s failed\n", argv[1], argv[2]);
    exit(1);
  }
}

static void die(const char *what, hcs_error_t *err) {
  fprintf(stderr, "net_driver: %s: %s\n", what, hcs_error_message(*err));
  exit(1);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: net_driver ROOT N\n");
    return 2;
  }
  int n = atoi(argv[2]);
  const char *ipdir = argc > 4 ? argv[3] : NULL, *prefix = argc > 4 ? argv[4] : NULL;
  hcs_error_t err = NULL;
  hcs_net_t *net = hcs_net_open(argv[1], &err);
  if (net == NULL) die("open", &err);
  char *doc = hcs_net_network_create(
      net, "{\"Name\":\"bench\",\"Ipams\":[{\"Subnets\":[{\"IpAddressPrefix\":\"10.98.0.0/24\"}]}]}", &err);
  if (doc == NULL) die("network", &err);
  free(doc);
  double *up = calloc((size_t)n, sizeof *up), *down = calloc((size_t)n, sizeof *down),
         *total = calloc((size_t)n, sizeof *total);
  double *ip_up = calloc((size_t)n, sizeof *up), *ip_down = calloc((size_t)n, sizeof *down),
         *ip_total = calloc((size_t)n, sizeof *total);
  for (int i = 0; i < n; i++) {
    if (ipdir) {
      char upf[4096], downf[4096], inf[4096], ns[256];
      snprintf(upf, sizeof upf, "%s/up.%d", ipdir, i);
      snprintf(downf, sizeof downf, "%s/down.%d", ipdir, i);
      snprintf(inf, sizeof inf, "%s/in.batch", ipdir);
      snprintf(ns, sizeof ns, "%s-%d", prefix, i);
      double p0 = now_ms();
      run_ip((char *[]){"ip", "-batch", upf, NULL});
      run_ip((char *[]){"ip", "-n", ns, "-batch", inf, NULL});
      double p1 = now_ms();
      run_ip((char *[]){"ip", "-batch", downf, NULL});
      double p2 = now_ms();
      ip_up[i] = p1 - p0;
      ip_down[i] = p2 - p1;
      ip_total[i] = p2 - p0;
    }
    double t0 = now_ms();
    char *ns = hcs_net_namespace_create(net, "{\"Id\":\"bench\"}", &err);
    if (ns == NULL) die("namespace", &err);
    char *ep = hcs_net_endpoint_create(
        net, "{\"Name\":\"bench\",\"HostComputeNetwork\":\"bench\",\"HostComputeNamespace\":\"bench\"}", &err);
    if (ep == NULL) die("endpoint", &err);
    double t1 = now_ms();
    /* Compartment first: its veth dies with the netns (see namespace.c). */
    if (hcs_net_namespace_delete(net, "bench", &err) < 0) die("delete namespace", &err);
    if (hcs_net_endpoint_delete(net, "bench", &err) < 0) die("delete endpoint", &err);
    double t2 = now_ms();
    free(ns);
    free(ep);
    up[i] = t1 - t0;
    down[i] = t2 - t1;
    total[i] = t2 - t0;
  }
  if (hcs_net_network_delete(net, "bench", true, &err) < 0) die("delete network", &err);
  hcs_net_close(net);
  qsort(up, (size_t)n, sizeof *up, cmp);
  qsort(down, (size_t)n, sizeof *down, cmp);
  qsort(total, (size_t)n, sizeof *total, cmp);
  printf("%.3f %.3f %.3f\n", up[n / 2], down[n / 2], total[n / 2]);
  if (ipdir) {
    qsort(ip_up, (size_t)n, sizeof *up, cmp);
    qsort(ip_down, (size_t)n, sizeof *down, cmp);
    qsort(ip_total, (size_t)n, sizeof *total, cmp);
    printf("%.3f %.3f %.3f\n", ip_up[n / 2], ip_down[n / 2], ip_total[n / 2]);
  }
  free(ip_up);
  free(ip_down);
  free(ip_total);
  free(up);
  free(down);
  free(total);
  return 0;
}
