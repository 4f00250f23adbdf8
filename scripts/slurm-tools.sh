#!/usr/bin/env bash
# A real single-node Slurm cluster for the cluster tests (test/cluster): installs Debian's slurm-wlm and
# munge when sbatch is missing, then starts munged, slurmctld and slurmd (as root, no systemd) unless
# the cluster already answers. State, spool and logs live in /tmp/clipcurate-slurm; stop it with
#   kill $(cat /tmp/clipcurate-slurm/slurmd.pid) $(cat /tmp/clipcurate-slurm/slurmctld.pid)
set -euo pipefail
S=/tmp/clipcurate-slurm
if ! command -v sbatch >/dev/null 2>&1 || [ ! -x /usr/sbin/slurmctld ] || [ ! -x /usr/sbin/munged ]; then
  echo "slurm-tools: installing slurm-wlm and munge (Debian packages)" >&2
  apt-get -o DPkg::Lock::Timeout=120 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq slurm-wlm munge >&2
fi
node_ready() { sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; }
if node_ready; then exit 0; fi
mkdir -p "$S"/{state,spool,log} /etc/slurm /run/munge /var/log/munge /var/lib/munge /etc/munge
[ -f /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 400 /etc/munge/munge.key
if ! munge -n >/dev/null 2>&1; then runuser -u munge -- /usr/sbin/munged --force; fi
H=$(hostname -s)
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=local
SlurmctldHost=$H
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
JobCompType=jobcomp/none
MinJobAge=3600
NodeName=$H CPUs=$(nproc) RealMemory=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10)) State=UNKNOWN
PartitionName=main Nodes=$H Default=YES MaxTime=INFINITE State=UP
CONF
for pid in "$S/slurmctld.pid" "$S/slurmd.pid"; do
  [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
done
sleep 1
slurmctld
slurmd
for _ in $(seq 1 60); do
  if node_ready; then
    echo "slurm-tools: single-node Slurm up ($(sinfo -h -o '%P %T %N'))" >&2
    exit 0
  fi
  sleep 1
done
echo "slurm-tools: Slurm did not come up; logs in $S/log" >&2
tail -20 "$S/log/slurmctld.log" "$S/log/slurmd.log" >&2 || true
exit 1
