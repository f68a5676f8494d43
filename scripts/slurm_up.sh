#!/usr/bin/env bash
# A real single-node Slurm on this machine, for trying the Slurm executor and for
# the tests marked `slurm`: installs Debian's slurm-wlm and munge when missing,
# writes a minimal slurm.conf (no cgroups, no systemd), starts munged, slurmctld
# and slurmd directly, and waits until `sinfo` shows the node idle.
#
#   scripts/slurm_up.sh          start (idempotent: a running cluster is left alone)
#   scripts/slurm_up.sh stop     stop the daemons this script started (sshd too)
#   scripts/slurm_up.sh sshd     start a loopback sshd for the `[slurm] host` path
#
# Needs root (apt-get, munge's key, slurmd). State lives under $WB_SLURM_DIR
# (default /var/tmp/workbench-slurm).
#
# `sshd` (installs openssh-server when missing) listens on 127.0.0.1 only, port
# $WB_SSHD_PORT (default 2222), with a host key and one client key made for it
# under $WB_SLURM_DIR/ssh: public keys only (no password, no keyboard login), and
# only the client key's owner's own account (the user who ran the script). It
# writes $WB_SLURM_DIR/ssh/config, an ssh config for `Host 127.0.0.1` with that
# port and key, to give ssh with -F (the tests set WORKBENCH_SSH_CONFIG to it).
set -euo pipefail

STATE="${WB_SLURM_DIR:-/var/tmp/workbench-slurm}"
CONF_DIR=/etc/slurm
NODE="$(hostname -s)"
SSHD_PORT="${WB_SSHD_PORT:-2222}"
SSH_DIR="$STATE/ssh"

stop() {
  for name in slurmd slurmctld; do
    if [ -f "$STATE/$name.pid" ]; then
      kill "$(cat "$STATE/$name.pid")" 2>/dev/null || true
      rm -f "$STATE/$name.pid"
    fi
  done
  if [ -f "$SSH_DIR/sshd.pid" ]; then
    kill "$(cat "$SSH_DIR/sshd.pid")" 2>/dev/null || true
    rm -f "$SSH_DIR/sshd.pid"
  fi
}

sshd_up() {
  if [ "$(id -u)" != 0 ]; then
    echo "slurm_up.sh sshd: needs root (apt-get, sshd)" >&2
    exit 1
  fi
  if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null || ! command -v ssh-keygen >/dev/null; then
    echo "slurm_up.sh: installing openssh-server and openssh-client"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq openssh-server openssh-client >/dev/null
  fi
  mkdir -p "$SSH_DIR" /run/sshd
  chmod 0700 "$SSH_DIR"
  [ -s "$SSH_DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C workbench-host -f "$SSH_DIR/host_ed25519"
  [ -s "$SSH_DIR/client_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C workbench-client -f "$SSH_DIR/client_ed25519"
  cp "$SSH_DIR/client_ed25519.pub" "$SSH_DIR/authorized_keys"
  chmod 0600 "$SSH_DIR/authorized_keys"
  local user
  user="$(id -un)"
  cat > "$SSH_DIR/sshd_config" <<SSHD
# Written by workbench scripts/slurm_up.sh: a loopback sshd for tests.
ListenAddress 127.0.0.1
Port $SSHD_PORT
HostKey $SSH_DIR/host_ed25519
PidFile $SSH_DIR/sshd.pid
AuthorizedKeysFile $SSH_DIR/authorized_keys
AllowUsers $user
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
StrictModes no
SSHD
  cat > "$SSH_DIR/config" <<SSHCONF
# Written by workbench scripts/slurm_up.sh: ssh -F this file reaches the loopback sshd.
Host 127.0.0.1
  HostName 127.0.0.1
  Port $SSHD_PORT
  User $user
  IdentityFile $SSH_DIR/client_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $SSH_DIR/known_hosts
  StrictHostKeyChecking accept-new
SSHCONF
  chmod 0600 "$SSH_DIR/config"
  if ! { [ -f "$SSH_DIR/sshd.pid" ] && kill -0 "$(cat "$SSH_DIR/sshd.pid")" 2>/dev/null; }; then
    /usr/sbin/sshd -f "$SSH_DIR/sshd_config"
  fi
  for _ in $(seq 50); do
    if ssh -F "$SSH_DIR/config" -o BatchMode=yes -o ConnectTimeout=5 127.0.0.1 true 2>/dev/null; then
      echo "slurm_up.sh: sshd on 127.0.0.1:$SSHD_PORT; ssh -F $SSH_DIR/config 127.0.0.1"
      return 0
    fi
    sleep 0.2
  done
  echo "slurm_up.sh: sshd did not answer on 127.0.0.1:$SSHD_PORT" >&2
  exit 1
}

case "${1:-start}" in
  stop) stop; exit 0 ;;
  sshd) sshd_up; exit 0 ;;
  start) ;;
  *) echo "usage: slurm_up.sh [start|stop|sshd]" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
  echo "slurm_up.sh: needs root (apt-get, munge's key, slurmd)" >&2
  exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  echo "slurm_up.sh: installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null
fi

mkdir -p "$STATE"/{spool,ctld,log} "$CONF_DIR"

# munge: a 1 KiB random key owned by munge, mode 0400; munged runs as munge.
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

CPUS="$(nproc)"
# Leave the node some memory of its own; Slurm refuses a node that reports less
# than RealMemory.
MEM_MB="$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)"
CONF="$CONF_DIR/slurm.conf"
NEW_CONF="$(mktemp)"
cat > "$NEW_CONF" <<CONF
# Written by workbench scripts/slurm_up.sh: one node, no cgroups.
ClusterName=workbench
SlurmctldHost=$NODE
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=root
SlurmdUser=root
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MinJobAge=300
KillWait=5
InactiveLimit=0
NodeName=$NODE CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
changed=0
if ! cmp -s "$NEW_CONF" "$CONF"; then
  mv "$NEW_CONF" "$CONF"
  chmod 0644 "$CONF"
  changed=1
else
  rm -f "$NEW_CONF"
fi

running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

if [ "$changed" = 1 ]; then stop; fi
running slurmctld || /usr/sbin/slurmctld -f "$CONF"
running slurmd || /usr/sbin/slurmd -f "$CONF"

# Wait until the node is idle (or mixed/allocated: already running jobs).
for _ in $(seq 120); do
  state="$(sinfo -h -N -n "$NODE" -o %t 2>/dev/null | head -1 || true)"
  case "$state" in
    idle|mix|alloc) echo "slurm_up.sh: node $NODE is $state"; exit 0 ;;
    down*|drain*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
  esac
  sleep 0.5
done
echo "slurm_up.sh: node $NODE did not become idle; see $STATE/log" >&2
sinfo >&2 || true
exit 1
