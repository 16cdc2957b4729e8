/* The documents hcs-runtime prints: `features` (runtime-spec features.md)
 * and the config.json template of `spec`. */
#include "runtime/runtime.h"

json_t *rt_features(void) {
  return json_pack(
      "{s:s,s:s,s:s,s:[s,s,s,s,s,s],s:[s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s],"
      "s:{s:[s,s,s,s,s,s,s],s:{s:b,s:b,s:b,s:b},s:{s:b},s:{s:b,s:[s,s,s,s,s,s,s,s],s:[],s:[]},s:{s:b},s:{s:b}},"
      "s:{s:s}}",
      "ociVersionMin", "1.0.0", "ociVersionMax", "1.1.0", "$comment",
      "hcs-runtime: the hcs compute system as an OCI runtime", "hooks", "prestart", "createRuntime", "createContainer",
      "startContainer", "poststart", "poststop", "mountOptions", "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec",
      "exec", "sync", "async", "noatime", "atime", "nodiratime", "diratime", "relatime", "norelatime", "strictatime",
      "bind", "rbind", "private", "rprivate", "slave", "rslave", "unbindable", "linux", "namespaces", "cgroup", "ipc",
      "mount", "network", "pid", "user", "uts", "cgroup", "v1", 1, "v2", 1, "systemd", 0, "systemdUser", 0, "apparmor",
      "enabled", 0, "seccomp", "enabled", 1, "actions", "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
      "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP", "operators",
      "archs", "selinux", "enabled", 0, "intelRdt", "enabled", 0, "annotations", "io.github.hcs.runtime",
      "hcs-runtime");
}

json_t *rt_spec_template(bool rootless) {
  json_t *spec = json_loads(
      "{\"ociVersion\":\"1.1.0\",\"process\":{\"terminal\":true,\"user\":{\"uid\":0,\"gid\":0},"
      "\"args\":[\"sh\"],\"env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\","
      "\"TERM=xterm\"],\"cwd\":\"/\",\"capabilities\":{\"bounding\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\","
      "\"CAP_NET_BIND_SERVICE\"],\"effective\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
      "\"permitted\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"]},\"rlimits\":[{\"type\":"
      "\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":1024}],\"noNewPrivileges\":true},\"root\":{\"path\":\"rootfs\","
      "\"readonly\":true},\"hostname\":\"hcs\",\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\","
      "\"source\":\"proc\"},{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":"
      "[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]},{\"destination\":\"/dev/pts\",\"type\":"
      "\"devpts\",\"source\":\"devpts\",\"options\":[\"nosuid\",\"noexec\",\"newinstance\",\"ptmxmode=0666\","
      "\"mode=0620\",\"gid=5\"]},{\"destination\":\"/dev/shm\",\"type\":\"tmpfs\",\"source\":\"shm\",\"options\":"
      "[\"nosuid\",\"noexec\",\"nodev\",\"mode=1777\",\"size=65536k\"]},{\"destination\":\"/dev/mqueue\","
      "\"type\":\"mqueue\",\"source\":\"mqueue\",\"options\":[\"nosuid\",\"noexec\",\"nodev\"]},{\"destination\":"
      "\"/sys\",\"type\":\"sysfs\",\"source\":\"sysfs\",\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"ro\"]}],"
      "\"linux\":{\"resources\":{\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]},\"namespaces\":[{\"type\":"
      "\"pid\"},{\"type\":\"network\"},{\"type\":\"ipc\"},{\"type\":\"uts\"},{\"type\":\"mount\"},{\"type\":"
      "\"cgroup\"}],\"maskedPaths\":[\"/proc/acpi\",\"/proc/asound\",\"/proc/kcore\",\"/proc/keys\","
      "\"/proc/latency_stats\",\"/proc/timer_list\",\"/proc/timer_stats\",\"/proc/sched_debug\",\"/sys/firmware\","
      "\"/proc/scsi\"],\"readonlyPaths\":[\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\","
      "\"/proc/sysrq-trigger\"]}}",
      0, NULL);
  if (rootless && spec) {
    json_t *lx = json_object_get(spec, "linux");
    json_array_append_new(json_object_get(lx, "namespaces"), json_pack("{s:s}", "type", "user"));
    json_object_set_new(lx, "uidMappings",
                        json_pack("[{s:i,s:i,s:i}]", "containerID", 0, "hostID", (int)getuid(), "size", 1));
    json_object_set_new(lx, "gidMappings",
                        json_pack("[{s:i,s:i,s:i}]", "containerID", 0, "hostID", (int)getgid(), "size", 1));
  }
  return spec;
}
