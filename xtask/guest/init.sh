#!/bin/sh
# PID 1 of the xtask VM (busybox sh). Mounts a normal root environment, loads the modules the
# host asked for, checks that the kernel can be traced, runs the tracer in /out, and sends /out
# and the facts below to the host as one framed archive (virtio disk when the guest has one, else
# the second serial port). The host never reads results from this console: the "xtask-vm:" lines
# only mark progress for its timings and logs. PID 1 must never exit (the kernel would panic),
# so every path ends in poweroff.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=dumb
say() { echo "xtask-vm: $*"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
fact() { echo "$1=$2" >> /vm/facts; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
# Each of these may be missing from a kernel; the checks below say what matters.
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
# Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
ulimit -l unlimited
hostname xtask-vm

mkdir -p /vm
fact release "$(uname -r)"
fact uptime_init "$(uptime_s)"
say "init at $(uptime_s)s"

ok=1
while read -r m; do
    [ -n "$m" ] || continue
    if ! err=$(insmod "$m" 2>&1); then
        fact module_error "$m: $(echo "$err" | tr '\n' ' ')"
        ok=0
        break
    fi
done < /etc/xtask-vm/modules

if [ -e /sys/kernel/btf/vmlinux ]; then fact btf yes; else fact btf no; ok=0; fi
# kprobe_events (tracefs) or the kprobe PMU (what perf_event_open-based attach uses).
if [ -e /sys/kernel/tracing/kprobe_events ] || [ -e /sys/bus/event_source/devices/kprobe ]; then
    fact kprobes yes
else
    fact kprobes no
    ok=0
fi

mkdir -p /out
if [ "$ok" = 1 ]; then
    . /etc/xtask-vm/args
    cd /out
    fact uptime_tracer_start "$(uptime_s)"
    say "tracer start"
    tracer "$@" > /out/tracer.stdout 2> /out/tracer.stderr < /dev/null
    code=$?
    say "tracer end"
    cd /
    fact uptime_tracer_end "$(uptime_s)"
    fact tracer_exit "$code"
    echo "$code" > /out/tracer.exit
fi

say "transfer at $(uptime_s)s"
tar -c -f /tmp/xfer.tar -C / out vm
if [ ! -b /dev/vda ] && [ "$(stat -c %s /tmp/xfer.tar)" -gt "$(cat /etc/xtask-vm/serial-max-bytes)" ]; then
    # Too big for the serial line: load the virtio disk drivers (when the host sent them).
    while read -r m; do
        [ -n "$m" ] && insmod "$m" 2>/dev/null
    done < /etc/xtask-vm/transfer-modules
    i=0
    while [ ! -b /dev/vda ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
fi
if [ -b /dev/vda ]; then
    dev=/dev/vda enc=tar payload=/tmp/xfer.tar
else
    # The serial line moves about 0.5 MB/s under TCG: compress first.
    gzip -1 /tmp/xfer.tar
    dev=/dev/ttyS1 enc=tar.gz payload=/tmp/xfer.tar.gz
    stty -F "$dev" raw -echo
fi
say "packed at $(uptime_s)s"
size=$(stat -c %s "$payload")
sum=$(sha256sum "$payload" | cut -d' ' -f1)
{ echo "XTASKVM1 $enc $size $sum"; cat "$payload"; } > "$dev"
sync
say "sent $size bytes over $dev at $(uptime_s)s"
poweroff -f
reboot -f
while :; do sleep 3600; done
