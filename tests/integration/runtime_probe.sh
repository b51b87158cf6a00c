#!/bin/sh
# runtime_probe.sh DIR — run by runtime.bats inside a RUN step: writes what
# the step sees of its container into DIR, one file per fact, with commands
# that busybox and Debian's coreutils both have.  The tests read DIR back
# from the image's layer.
set -u
f=$1
mkdir -p "$f"

# processes: the shell, its parent, pid 1, everything /proc shows
echo $$ >"$f/shell_pid"
echo "$PPID" >"$f/ppid"
cat /proc/1/comm >"$f/pid1_comm"
for p in /proc/[0-9]*; do
    [ -r "$p/cmdline" ] || continue
    printf '%s ' "${p#/proc/}"
    tr '\0' ' ' <"$p/cmdline"
    echo
done >"$f/procs"
# an orphan that exits: pid 1 must reap it
sh -c 'sleep 0.1 & exit 0'
sleep 0.5
zombies=0
for s in /proc/[0-9]*/stat; do
    line=$(cat "$s" 2>/dev/null) || continue
    case "${line##*) }" in Z*) zombies=$((zombies + 1)) ;; esac
done
echo "$zombies" >"$f/zombies"

# what an earlier RUN left in its tmpfs and IPC namespace (nothing: each RUN
# has its own), then a mark of this one
ls -A /dev/shm /dev/mqueue >"$f/inherited" 2>&1
echo "$f" >/dev/shm/left-by-run
touch /dev/mqueue/left-by-run 2>/dev/null || echo "no mqueue" >>"$f/inherited"

# identity
id -u >"$f/uid"
id -g >"$f/gid"

# names
hostname >"$f/hostname"
cat /proc/sys/kernel/hostname >"$f/kernel_hostname"
cat /etc/hosts >"$f/hosts"
cat /etc/resolv.conf >"$f/resolv"

# namespaces
for n in user mnt pid ipc uts net; do
    echo "$n $(readlink /proc/self/ns/$n)"
done >"$f/ns"

# privileges
grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status |
    tr -s '\t ' ' ' >"$f/status"
syscalls >"$f/syscalls" 2>&1

# mounts
cat /proc/self/mountinfo >"$f/mountinfo"
ls -A /dev | sort >"$f/dev_names"
for d in null zero full random urandom tty; do
    if [ -c "/dev/$d" ]; then
        echo "$d $(stat -c '%t,%T' "/dev/$d")"
    else
        echo "$d missing"
    fi
done >"$f/devs"
for l in fd stdin stdout stderr ptmx; do
    echo "$l $(readlink "/dev/$l")"
done >"$f/dev_links"
{
    [ -c /dev/pts/ptmx ] && echo "pts/ptmx char"
    echo x >/dev/null && echo "null writable"
    [ "$(head -c 4 /dev/zero | tr '\0' z)" = zzzz ] && echo "zero reads zeros"
    echo x 2>/dev/null >/dev/full || echo "full is full"
    [ "$(head -c 16 /dev/urandom | wc -c)" -eq 16 ] && echo "urandom reads"
    echo data >/dev/shm/probe && [ "$(cat /dev/shm/probe)" = data ] && echo "shm writable"
    if touch /sys/kiln-probe 2>/dev/null; then echo "sys writable"; else echo "sys read-only"; fi
    [ -r /proc/self/status ] && echo "proc mounted"
} >"$f/dev_checks"
stat -c '%a' /tmp >"$f/tmp_mode"
echo "written in RUN" >/tmp/from-run

# environment, stdin
env | sort >"$f/env"
readlink /proc/self/fd/0 >"$f/stdin"
cat >"$f/stdin_data"
pwd >"$f/cwd"
exit 0
