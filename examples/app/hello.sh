#!/bin/sh
# A small shell "app" installed by the authoring examples.
echo "${GREETING:-Hello} from $(hostname) (pid $$, uid $(id -u))"
if [ -r /proc/self/cgroup ] && [ -r /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
  echo "memory limit: $(( $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes) / 1048576 )) MB"
fi
ip -4 -o addr show 2>/dev/null | awk '$2 != "lo" {print "address: " $4 " on " $2}'
