/* cgroups: pick the backend for this host and the helpers the backends
 * share.  v1 and hybrid hosts use the v1 controllers (on a systemd hybrid
 * host the unified mount carries no controllers); v2 hosts the unified
 * hierarchy. */
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/sysinfo.h>

#include "compute/compute.h"

const hcs_cgroup_ops_t *hcs_cgroup_ops(void) {
  switch (hcs_host_cgroup_mode()) {
  case HCS_CGROUP_V2: return &hcs_cgroup_v2_ops;
  case HCS_CGROUP_V1:
  case HCS_CGROUP_HYBRID: return &hcs_cgroup_v1_ops;
  default: return NULL;
  }
}

char *hcs_cgroup_path(const char *parent, const char *id) { return hcs_xasprintf("%s/%s", parent, id); }

int hcs_cgroup_host_cpus(void) {
  int n = get_nprocs_conf();
  return n > 0 ? n : 1;
}

/* Open with O_WRONLY and write once: cgroup files take one value per write. */
int hcs_cg_write(const char *dir, const char *file, const char *fmt, ...) {
  char path[PATH_MAX], buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t w = write(fd, buf, (size_t)n);
  int saved = errno;
  close(fd);
  errno = saved;
  return w == n ? 0 : -1;
}

int64_t hcs_cg_read_int(const char *dir, const char *file) {
  char path[PATH_MAX], buf[64];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t r = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (r <= 0) return -1;
  buf[r] = '\0';
  if (strncmp(buf, "max", 3) == 0) return INT64_MAX;
  return strtoll(buf, NULL, 10);
}

/* "key value" lines (memory.stat, cpu.stat, memory.events, oom_control). */
int64_t hcs_cg_read_key(const char *dir, const char *file, const char *key) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  cleanup_free char *text = NULL;
  if (hcs_read_file(path, &text, NULL, NULL) < 0) return -1;
  size_t kl = strlen(key);
  for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
    if (strncmp(line, key, kl) == 0 && line[kl] == ' ') return strtoll(line + kl + 1, NULL, 10);
  return -1;
}

json_t *hcs_cg_read_pids(const char *dir, hcs_error_t *err) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  cleanup_free char *text = NULL;
  if (hcs_read_file(path, &text, NULL, err) < 0) return NULL;
  json_t *arr = json_array();
  for (char *save = NULL, *t = strtok_r(text, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
    json_array_append_new(arr, json_integer(strtoll(t, NULL, 10)));
  return arr;
}
