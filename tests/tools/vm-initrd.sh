#!/bin/sh
# Build the test guests' initramfs (tests/c/test_vm.c, tests/bench/vm.sh):
# busybox-static, the virtio/ACPI modules of the installed kernel, and an
# /init that reports on the serial console (ttyS0) and does what
# `hcs.mode=` on the kernel command line asks: counter (a tick every 0.2 s),
# disk-write / disk-read (a token in the first sector of /dev/vda), http
# (busybox httpd on port 80 serving the token; then `HCS-NET [links]` on
# each change of /sys/class/net; `hcs.fetch=ADDR:PORT` fetches a page from
# there and prints `HCS-FETCH PAGE`), idle.  `ip=` configures eth0.
# The ACPI power button powers the guest off (unless `hcs.nopb=1`: a guest
# that ignores it).  Usage: vm-initrd.sh OUT [KVER]
set -eu
out=$1
kver=${2:-$(ls /lib/modules | sort -V | tail -n 1)}
mods=/lib/modules/$kver/kernel
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/lib/modules" "$tmp/mnt"
cp /bin/busybox "$tmp/bin/busybox"
for m in virtio/virtio_ring virtio/virtio virtio/virtio_pci_legacy_dev virtio/virtio_pci_modern_dev \
         virtio/virtio_pci virtio/virtio_balloon block/virtio_blk acpi/button input/evdev \
         net/core/failover net/net_failover net/virtio_net; do
  f=$(find "$mods" -path "*/$m.ko*" | head -n 1)
  [ -n "$f" ] || { echo "vm-initrd: module $m not found under $mods" >&2; exit 1; }
  case $f in
    *.xz) xz -dc "$f" > "$tmp/lib/modules/$(basename "$m").ko" ;;
    *.zst) zstd -qdc "$f" > "$tmp/lib/modules/$(basename "$m").ko" ;;
    *) cp "$f" "$tmp/lib/modules/$(basename "$m").ko" ;;
  esac
done
cat > "$tmp/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_balloon virtio_blk button evdev \
         failover net_failover virtio_net; do
  insmod /lib/modules/$m.ko 2>/dev/null || echo "HCS-VM-INSMOD-FAILED $m" > /dev/ttyS0
done
con=/dev/ttyS0
mode=idle token=none
for w in $(cat /proc/cmdline); do
  case $w in hcs.mode=*) mode=${w#hcs.mode=} ;; hcs.token=*) token=${w#hcs.token=} ;; hcs.fetch=*) fetch=${w#hcs.fetch=} ;; ip=*) ipconf=${w#ip=} ;; hcs.nopb=1) nopb=1 ;; esac
done
# ip=ADDR::GW:MASK::eth0:off (hcs puts the endpoint's address there).
if [ -n "${ipconf:-}" ]; then
  IFS=: read -r addr _ gw mask _ dev _ <<EOIP
$ipconf
EOIP
  ifconfig lo up
  ifconfig "$dev" "$addr" netmask "$mask" up
  [ -n "$gw" ] && route add default gw "$gw"
fi
pb=
for e in /sys/class/input/event*; do
  grep -q "Power Button" "$e/device/name" 2>/dev/null && pb=/dev/input/${e##*/}
done
if [ -n "$pb" ] && [ -z "${nopb:-}" ]; then
  (head -c 1 "$pb" > /dev/null; echo HCS-VM-POWERBUTTON > $con; poweroff -f) &
fi
echo "HCS-VM-BOOTED mode=$mode" > $con
case $mode in
  counter)
    i=0
    while :; do echo "tick $i" > $con; i=$((i + 1)); sleep 0.2; done ;;
  disk-*)
    [ -b /dev/vda ] || echo "HCS-VM-NO-DISK $(ls /sys/block)" > $con ;;
esac
case $mode in
  disk-write)
    printf 'HCSDATA:%s:END' "$token" | dd of=/dev/vda bs=512 conv=sync,fsync 2>/dev/null
    sync
    echo "HCS-DISK-WRITTEN" > $con ;;
  http)
    mkdir -p /www
    echo "hcs-vm-web $token" > /www/index.html
    httpd -p 80 -h /www
    echo "HCS-HTTP-READY $(ifconfig eth0 | grep 'inet addr')" > $con
    # hcs.fetch=ADDR:PORT: fetch a page from there until it answers.
    # (nc, not wget: the static busybox's wget crashes without /etc.)
    [ -n "${fetch:-}" ] && (until page=$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 "${fetch%:*}" "${fetch#*:}" 2>/dev/null) &&
      [ -n "$page" ]; do sleep 1; done; echo "HCS-FETCH $(echo "$page" | tail -n 1)" > $con) &
    # Report the guest's links as they change (hot-added adapters).
    (old=; while :; do now=$(echo $(ls /sys/class/net)); [ "$now" = "$old" ] || echo "HCS-NET [$now]" > $con; old=$now; sleep 0.5; done) & ;;
  disk-read)
    echo "HCS-DISK-READ $(dd if=/dev/vda bs=512 count=1 2>/dev/null | tr -d '\000')" > $con ;;
esac
while :; do sleep 3600; done
INIT
chmod 755 "$tmp/init"
(cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
