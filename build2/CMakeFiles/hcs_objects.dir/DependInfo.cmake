
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt-registry2/src/compute/cgroup.c" "CMakeFiles/hcs_objects.dir/src/compute/cgroup.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/compute/cgroup.c.o.d"
  "/work/wt-registry2/src/compute/cgroup_devices.c" "CMakeFiles/hcs_objects.dir/src/compute/cgroup_devices.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/compute/cgroup_devices.c.o.d"
  "/work/wt-registry2/src/compute/cgroup_v1.c" "CMakeFiles/hcs_objects.dir/src/compute/cgroup_v1.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/compute/cgroup_v1.c.o.d"
  "/work/wt-registry2/src/compute/cgroup_v2.c" "CMakeFiles/hcs_objects.dir/src/compute/cgroup_v2.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/compute/cgroup_v2.c.o.d"
  "/work/wt-registry2/src/compute/compute.c" "CMakeFiles/hcs_objects.dir/src/compute/compute.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/compute/compute.c.o.d"
  "/work/wt-registry2/src/compute/config.c" "CMakeFiles/hcs_objects.dir/src/compute/config.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/compute/config.c.o.d"
  "/work/wt-registry2/src/compute/log.c" "CMakeFiles/hcs_objects.dir/src/compute/log.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/compute/log.c.o.d"
  "/work/wt-registry2/src/compute/monitor.c" "CMakeFiles/hcs_objects.dir/src/compute/monitor.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/compute/monitor.c.o.d"
  "/work/wt-registry2/src/compute/process.c" "CMakeFiles/hcs_objects.dir/src/compute/process.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/compute/process.c.o.d"
  "/work/wt-registry2/src/compute/pty.c" "CMakeFiles/hcs_objects.dir/src/compute/pty.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/compute/pty.c.o.d"
  "/work/wt-registry2/src/compute/seccomp_profile.c" "CMakeFiles/hcs_objects.dir/src/compute/seccomp_profile.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/compute/seccomp_profile.c.o.d"
  "/work/wt-registry2/src/compute/security.c" "CMakeFiles/hcs_objects.dir/src/compute/security.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/compute/security.c.o.d"
  "/work/wt-registry2/src/compute/spawn.c" "CMakeFiles/hcs_objects.dir/src/compute/spawn.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/compute/spawn.c.o.d"
  "/work/wt-registry2/src/compute/state.c" "CMakeFiles/hcs_objects.dir/src/compute/state.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/compute/state.c.o.d"
  "/work/wt-registry2/src/core/copy.c" "CMakeFiles/hcs_objects.dir/src/core/copy.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/core/copy.c.o.d"
  "/work/wt-registry2/src/core/crash.c" "CMakeFiles/hcs_objects.dir/src/core/crash.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/core/crash.c.o.d"
  "/work/wt-registry2/src/core/error.c" "CMakeFiles/hcs_objects.dir/src/core/error.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/core/error.c.o.d"
  "/work/wt-registry2/src/core/events.c" "CMakeFiles/hcs_objects.dir/src/core/events.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/core/events.c.o.d"
  "/work/wt-registry2/src/core/fs.c" "CMakeFiles/hcs_objects.dir/src/core/fs.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/core/fs.c.o.d"
  "/work/wt-registry2/src/core/hash.c" "CMakeFiles/hcs_objects.dir/src/core/hash.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/core/hash.c.o.d"
  "/work/wt-registry2/src/core/host.c" "CMakeFiles/hcs_objects.dir/src/core/host.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/core/host.c.o.d"
  "/work/wt-registry2/src/core/json.c" "CMakeFiles/hcs_objects.dir/src/core/json.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/core/json.c.o.d"
  "/work/wt-registry2/src/core/lazy.c" "CMakeFiles/hcs_objects.dir/src/core/lazy.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/core/lazy.c.o.d"
  "/work/wt-registry2/src/core/log.c" "CMakeFiles/hcs_objects.dir/src/core/log.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/core/log.c.o.d"
  "/work/wt-registry2/src/core/operation.c" "CMakeFiles/hcs_objects.dir/src/core/operation.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/core/operation.c.o.d"
  "/work/wt-registry2/src/image/blobs.c" "CMakeFiles/hcs_objects.dir/src/image/blobs.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/image/blobs.c.o.d"
  "/work/wt-registry2/src/image/capture.c" "CMakeFiles/hcs_objects.dir/src/image/capture.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/image/capture.c.o.d"
  "/work/wt-registry2/src/image/docker.c" "CMakeFiles/hcs_objects.dir/src/image/docker.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/image/docker.c.o.d"
  "/work/wt-registry2/src/image/extract.c" "CMakeFiles/hcs_objects.dir/src/image/extract.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/image/extract.c.o.d"
  "/work/wt-registry2/src/image/gc.c" "CMakeFiles/hcs_objects.dir/src/image/gc.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/image/gc.c.o.d"
  "/work/wt-registry2/src/image/oci.c" "CMakeFiles/hcs_objects.dir/src/image/oci.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/image/oci.c.o.d"
  "/work/wt-registry2/src/image/save.c" "CMakeFiles/hcs_objects.dir/src/image/save.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/image/save.c.o.d"
  "/work/wt-registry2/src/image/store.c" "CMakeFiles/hcs_objects.dir/src/image/store.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/image/store.c.o.d"
  "/work/wt-registry2/src/layer/commit.c" "CMakeFiles/hcs_objects.dir/src/layer/commit.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/layer/commit.c.o.d"
  "/work/wt-registry2/src/layer/digest.c" "CMakeFiles/hcs_objects.dir/src/layer/digest.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/layer/digest.c.o.d"
  "/work/wt-registry2/src/layer/export.c" "CMakeFiles/hcs_objects.dir/src/layer/export.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/layer/export.c.o.d"
  "/work/wt-registry2/src/layer/fpool.c" "CMakeFiles/hcs_objects.dir/src/layer/fpool.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/layer/fpool.c.o.d"
  "/work/wt-registry2/src/layer/import.c" "CMakeFiles/hcs_objects.dir/src/layer/import.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/layer/import.c.o.d"
  "/work/wt-registry2/src/layer/overlay.c" "CMakeFiles/hcs_objects.dir/src/layer/overlay.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/layer/overlay.c.o.d"
  "/work/wt-registry2/src/layer/path.c" "CMakeFiles/hcs_objects.dir/src/layer/path.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/layer/path.c.o.d"
  "/work/wt-registry2/src/layer/reader.c" "CMakeFiles/hcs_objects.dir/src/layer/reader.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/layer/reader.c.o.d"
  "/work/wt-registry2/src/layer/store.c" "CMakeFiles/hcs_objects.dir/src/layer/store.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/layer/store.c.o.d"
  "/work/wt-registry2/src/layer/whiteout.c" "CMakeFiles/hcs_objects.dir/src/layer/whiteout.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/layer/whiteout.c.o.d"
  "/work/wt-registry2/src/layer/writer.c" "CMakeFiles/hcs_objects.dir/src/layer/writer.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/layer/writer.c.o.d"
  "/work/wt-registry2/src/net/addr.c" "CMakeFiles/hcs_objects.dir/src/net/addr.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/net/addr.c.o.d"
  "/work/wt-registry2/src/net/dns.c" "CMakeFiles/hcs_objects.dir/src/net/dns.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/net/dns.c.o.d"
  "/work/wt-registry2/src/net/endpoint.c" "CMakeFiles/hcs_objects.dir/src/net/endpoint.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/net/endpoint.c.o.d"
  "/work/wt-registry2/src/net/ipam.c" "CMakeFiles/hcs_objects.dir/src/net/ipam.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/net/ipam.c.o.d"
  "/work/wt-registry2/src/net/namespace.c" "CMakeFiles/hcs_objects.dir/src/net/namespace.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/net/namespace.c.o.d"
  "/work/wt-registry2/src/net/netlink.c" "CMakeFiles/hcs_objects.dir/src/net/netlink.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/net/netlink.c.o.d"
  "/work/wt-registry2/src/net/netns.c" "CMakeFiles/hcs_objects.dir/src/net/netns.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/net/netns.c.o.d"
  "/work/wt-registry2/src/net/network.c" "CMakeFiles/hcs_objects.dir/src/net/network.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/net/network.c.o.d"
  "/work/wt-registry2/src/net/nft.c" "CMakeFiles/hcs_objects.dir/src/net/nft.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/net/nft.c.o.d"
  "/work/wt-registry2/src/net/state.c" "CMakeFiles/hcs_objects.dir/src/net/state.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/net/state.c.o.d"
  "/work/wt-registry2/src/net/subnet.c" "CMakeFiles/hcs_objects.dir/src/net/subnet.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/net/subnet.c.o.d"
  "/work/wt-registry2/src/registry/auth.c" "CMakeFiles/hcs_objects.dir/src/registry/auth.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/registry/auth.c.o.d"
  "/work/wt-registry2/src/registry/client.c" "CMakeFiles/hcs_objects.dir/src/registry/client.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/registry/client.c.o.d"
  "/work/wt-registry2/src/registry/conf.c" "CMakeFiles/hcs_objects.dir/src/registry/conf.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/registry/conf.c.o.d"
  "/work/wt-registry2/src/registry/download.c" "CMakeFiles/hcs_objects.dir/src/registry/download.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/registry/download.c.o.d"
  "/work/wt-registry2/src/registry/manifest.c" "CMakeFiles/hcs_objects.dir/src/registry/manifest.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/registry/manifest.c.o.d"
  "/work/wt-registry2/src/registry/pull.c" "CMakeFiles/hcs_objects.dir/src/registry/pull.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/registry/pull.c.o.d"
  "/work/wt-registry2/src/registry/push.c" "CMakeFiles/hcs_objects.dir/src/registry/push.c.o" "gcc" "CMakeFiles/hcs_objects.dir/src/registry/push.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
