#!/usr/bin/env bash
# A one-node Slurm cluster for the sweep test (see ../../../shared/notes/slurm.md):
#   cluster.sh start STATE   starts munged (unless running), slurmctld and slurmd with a
#                            config under STATE; prints SLURM_CONF=STATE/slurm.conf
#   cluster.sh config STATE  only munged and the config: the caller runs `slurmctld -D` and
#                            `slurmd -D` itself (the Go test does, so that they die with it)
#   cluster.sh stop STATE    stops what start started (by the pid files under STATE)
# Needs root and Debian's slurm-wlm and munge (./test.sh installs them).
set -euo pipefail
cmd=${1:?start or stop}
state=$(realpath -m "${2:?state folder}")

stop_pid() { # pidfile
  [ -s "$1" ] || return 0
  local pid; pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

case $cmd in
start | config)
  [ "$(id -u)" = 0 ] || { echo "cluster.sh: must run as root (slurmctld and slurmd run as root here)" >&2; exit 1; }
  for b in munged munge slurmctld slurmd sbatch; do
    command -v $b >/dev/null || { echo "cluster.sh: $b missing; install slurm-wlm and munge (./test.sh does)" >&2; exit 1; }
  done
  mkdir -p "$state"/{spool,statesave,log}
  rm -f "$state"/*.pid
  # munge: the package's key; run dirs owned by munge; munged refuses to run as root.
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
    [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
    runuser -u munge -- munged
    # Record the pid only when we started it, so stop leaves another one alone.
    pgrep -n -u munge -x munged > "$state/munged.pid"
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  munge -n | unmunge | grep -q 'STATUS: *Success' || { echo "cluster.sh: munge does not work" >&2; exit 1; }
  host=$(hostname -s)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  cat > "$state/slurm.conf" <<CONF
ClusterName=dpsflowtest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/statesave
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldPort=$((16817 + RANDOM % 1000))
SlurmdPort=$((17818 + RANDOM % 1000))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=30
NodeName=$host CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$state/slurm.conf
  if [ "$cmd" = config ]; then echo "SLURM_CONF=$SLURM_CONF"; exit 0; fi
  slurmctld
  slurmd
  for _ in $(seq 100); do
    sinfo -h -o '%t' 2>/dev/null | grep -Eq '^(idle|mix|alloc)' && { echo "SLURM_CONF=$SLURM_CONF"; exit 0; }
    sleep 0.2
  done
  echo "cluster.sh: the node did not come up; logs in $state/log" >&2
  sinfo >&2 || true
  exit 1
  ;;
stop)
  stop_pid "$state/slurmd.pid"
  stop_pid "$state/slurmctld.pid"
  stop_pid "$state/munged.pid"
  ;;
*) echo "usage: cluster.sh start|config|stop STATE" >&2; exit 2 ;;
esac
