/* Version and host capability probe: kernel, cgroup mode, overlayfs,
 * namespaces, seccomp.  `hcs info` and validation use this. */
#include <linux/magic.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>

#include "core/util.h"
#include "hcs/host.h"

#ifndef HCS_VERSION
#define HCS_VERSION "0.0.0"
#endif

const char *hcs_version(void) { return HCS_VERSION; }

static bool is_fs(const char *path, unsigned long magic) {
  struct statfs sfs;
  return statfs(path, &sfs) == 0 && (unsigned long)sfs.f_type == magic;
}

hcs_cgroup_mode_t hcs_host_cgroup_mode(void) {
  if (is_fs("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC)) return HCS_CGROUP_V2;
  if (!is_fs("/sys/fs/cgroup", TMPFS_MAGIC)) return HCS_CGROUP_NONE;
  if (is_fs("/sys/fs/cgroup/unified", CGROUP2_SUPER_MAGIC)) return HCS_CGROUP_HYBRID;
  return HCS_CGROUP_V1;
}

const char *hcs_cgroup_mode_name(hcs_cgroup_mode_t mode) {
  switch (mode) {
  case HCS_CGROUP_V1: return "v1";
  case HCS_CGROUP_V2: return "v2";
  case HCS_CGROUP_HYBRID: return "hybrid";
  default: return "none";
  }
}

static bool file_has_word(const char *path, const char *word) {
  cleanup_free char *text = NULL;
  if (hcs_read_file(path, &text, NULL, NULL) < 0) return false;
  for (char *p = text; (p = strstr(p, word)) != NULL; p += strlen(word)) {
    bool start = p == text || p[-1] == '\t' || p[-1] == ' ' || p[-1] == '\n';
    char end = p[strlen(word)];
    if (start && (end == '\0' || end == '\n' || end == ' ' || end == '\t')) return true;
  }
  return false;
}

static json_t *cgroup_info(void) {
  hcs_cgroup_mode_t mode = hcs_host_cgroup_mode();
  json_t *cg = json_pack("{s:s}", "Mode", hcs_cgroup_mode_name(mode));
  const char *v2 = mode == HCS_CGROUP_V2       ? "/sys/fs/cgroup"
                   : mode == HCS_CGROUP_HYBRID ? "/sys/fs/cgroup/unified"
                                               : NULL;
  if (v2) json_object_set_new(cg, "V2Path", json_string(v2));
  json_t *ctl = json_array();
  if (mode == HCS_CGROUP_V2) {
    cleanup_free char *text = NULL;
    if (hcs_read_file("/sys/fs/cgroup/cgroup.controllers", &text, NULL, NULL) == 0)
      for (char *save = NULL, *t = strtok_r(text, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
        json_array_append_new(ctl, json_string(t));
  } else {
    static const char *const v1[] = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"};
    for (size_t i = 0; i < HCS_ARRAY_SIZE(v1); i++) {
      cleanup_free char *p = hcs_xasprintf("/sys/fs/cgroup/%s", v1[i]);
      if (is_fs(p, CGROUP_SUPER_MAGIC)) json_array_append_new(ctl, json_string(v1[i]));
    }
  }
  json_object_set_new(cg, "Controllers", ctl);
  return cg;
}

char *hcs_host_capabilities(hcs_error_t *err) {
  struct utsname u;
  if (uname(&u) < 0) {
    hcs_error_make(err, errno, "uname");
    return NULL;
  }
  cleanup_json json_t *doc = json_object();
  json_object_set_new(doc, "Version", json_string(hcs_version()));
  json_object_set_new(doc, "Kernel",
                      json_pack("{s:s,s:s,s:s}", "Release", u.release, "Version", u.version, "Machine", u.machine));
  json_object_set_new(doc, "Cgroup", cgroup_info());
  bool overlay = file_has_word("/proc/filesystems", "overlay") || hcs_path_exists("/sys/module/overlay");
  json_object_set_new(doc, "Overlayfs", json_boolean(overlay));
  json_t *ns = json_object();
  static const char *const names[] = {"mnt", "pid", "uts", "ipc", "net", "cgroup", "user", "time"};
  for (size_t i = 0; i < HCS_ARRAY_SIZE(names); i++) {
    cleanup_free char *p = hcs_xasprintf("/proc/self/ns/%s", names[i]);
    json_object_set_new(ns, names[i], json_boolean(hcs_path_exists(p)));
  }
  json_object_set_new(doc, "Namespaces", ns);
  json_object_set_new(doc, "Seccomp", json_boolean(hcs_path_exists("/proc/sys/kernel/seccomp/actions_avail")));
  json_object_set_new(doc, "Root", json_boolean(geteuid() == 0));
  return hcs_json_dumps(doc);
}
