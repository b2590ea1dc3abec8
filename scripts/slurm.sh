#!/usr/bin/env bash
# Start a throwaway Slurm cluster on this machine for the tests and print the variable to use (stdout).
# Usage: eval "$(bash scripts/slurm.sh start)"   -> exports SLURM_CONF (and ACCELPOOL_TEST_SLURM_CONF)
#        bash scripts/slurm.sh stop
# Installs Debian's slurm-wlm and munge when missing (needs root, as on CI). Runs munged, slurmctld and
# three slurmd on this host (slurmd -N: s-gpu-0 and s-gpu-1 with gpu:h100:4 each, s-npu-0 with npu:rngd:4),
# the devices being stand-in files under the state directory. Measured facts this relies on (Slurm 22.05,
# Debian 12, a container without systemd): munged needs /run/munge to exist; SlurmUser=root;
# ProctrackType=proctrack/linuxproc; TaskPlugin=task/none; cgroup.conf CgroupPlugin=cgroup/v1 (the value
# "disabled" is refused).
set -euo pipefail
DIR=${ACCELPOOL_SLURM_DIR:-/tmp/accelpool-slurm}
CTLD_PORT=${ACCELPOOL_SLURM_PORT:-16817}
NODES="s-gpu-0 s-gpu-1 s-npu-0"

log() { echo "slurm: $*" >&2; }

install() {
  if command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 \
      && command -v munged >/dev/null 2>&1 && command -v sbatch >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian's slurm-wlm and munge"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null) >&2
  else
    log "no Slurm found and cannot install it (needs root and apt-get)"
    exit 1
  fi
}

write_conf() {
  mkdir -p "$DIR/state" "$DIR/dev" "$DIR/log"
  # Stand-in devices: character devices (Slurm refuses plain files in gres.conf) with a major number no
  # driver uses, so nothing can open them; one minor number per device.
  local minor=0
  for n in $NODES; do
    mkdir -p "$DIR/spool/$n"
    for i in 0 1 2 3; do
      [ -c "$DIR/dev/$n-$i" ] || { rm -f "$DIR/dev/$n-$i"; mknod "$DIR/dev/$n-$i" c 240 "$minor"; }
      minor=$((minor + 1))
    done
  done
  cat > "$DIR/slurm.conf" <<EOF
ClusterName=accelpool-test
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu,npu
ReturnToService=1
SlurmdTimeout=10
SlurmctldTimeout=10
MessageTimeout=5
InactiveLimit=0
KillWait=5
MinJobAge=300
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SlurmdParameters=config_overrides
NodeName=s-gpu-0 NodeHostname=localhost Port=16901 CPUs=8 RealMemory=2000 Gres=gpu:h100:4 State=UNKNOWN
NodeName=s-gpu-1 NodeHostname=localhost Port=16902 CPUs=8 RealMemory=2000 Gres=gpu:h100:4 State=UNKNOWN
NodeName=s-npu-0 NodeHostname=localhost Port=16903 CPUs=8 RealMemory=2000 Gres=npu:rngd:4 State=UNKNOWN
PartitionName=accelpool Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  cat > "$DIR/gres.conf" <<EOF
NodeName=s-gpu-0 Name=gpu Type=h100 File=$DIR/dev/s-gpu-0-[0-3]
NodeName=s-gpu-1 Name=gpu Type=h100 File=$DIR/dev/s-gpu-1-[0-3]
NodeName=s-npu-0 Name=npu Type=rngd File=$DIR/dev/s-npu-0-[0-3]
EOF
  echo "CgroupPlugin=cgroup/v1" > "$DIR/cgroup.conf"
}

start() {
  install
  write_conf
  export SLURM_CONF="$DIR/slurm.conf"
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  if id munge >/dev/null 2>&1; then chown munge: /run/munge /var/log/munge /var/lib/munge /etc/munge 2>/dev/null || true; fi
  if [ ! -S /run/munge/munge.socket.2 ] || ! munge -n </dev/null >/dev/null 2>&1; then
    if [ ! -f /etc/munge/munge.key ]; then
      mkdir -p /etc/munge
      dd if=/dev/urandom of=/etc/munge/munge.key bs=128 count=1 2>/dev/null
      chmod 600 /etc/munge/munge.key
      id munge >/dev/null 2>&1 && chown munge: /etc/munge/munge.key
    fi
    if id munge >/dev/null 2>&1; then runuser -u munge -- munged --force; else munged --force; fi
  fi
  if ! scontrol ping 2>/dev/null | grep -q UP; then
    # no -c: a controller restarted (e.g. by a test that killed it) recovers its jobs from StateSaveLocation
    slurmctld -f "$SLURM_CONF" >&2 2>&1 || { log "slurmctld failed; see $DIR/log/slurmctld.log"; exit 1; }
  fi
  for n in $NODES; do
    if [ ! -f "$DIR/slurmd-$n.pid" ] || ! kill -0 "$(cat "$DIR/slurmd-$n.pid")" 2>/dev/null; then
      slurmd -N "$n" -f "$SLURM_CONF" >&2 || { log "slurmd $n failed; see $DIR/log/slurmd-$n.log"; exit 1; }
    fi
  done
  # Wait until every node is up and idle (slurmd registered).
  for _ in $(seq 1 60); do
    if [ "$(sinfo -h -N -o '%N %t' 2>/dev/null | grep -cE ' (idle|mix|alloc)$')" = "3" ]; then
      log "up: $(sinfo -h -N -o '%N:%t' | tr '\n' ' ')"
      echo "export SLURM_CONF=$SLURM_CONF"
      echo "export ACCELPOOL_TEST_SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    for n in $NODES; do scontrol update NodeName="$n" State=RESUME >/dev/null 2>&1 || true; done
    sleep 1
  done
  log "nodes did not come up: $(sinfo -h -N -o '%N:%t' 2>&1 | tr '\n' ' ')"
  exit 1
}

stop() {
  export SLURM_CONF="$DIR/slurm.conf"
  for f in "$DIR"/slurmd-*.pid "$DIR/slurmctld.pid"; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
