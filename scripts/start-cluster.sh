#!/usr/bin/env bash
# Start a local kafkapy cluster: Debian's ZooKeeper plus kafkapy broker(s) configured from
# config/server.properties, all on loopback, state under .run/. Stop it with
# scripts/stop-cluster.sh.
#
#   scripts/start-cluster.sh               # setup.sh, ZooKeeper on 2181, one broker on 9092
#   scripts/start-cluster.sh --brokers 3   # brokers 0..2 on 9092..9094, and a 3-member
#                                          # ZooKeeper ensemble on 2181..2183
#   scripts/start-cluster.sh --brokers 3 --zookeepers 1   # ... with one ZooKeeper instead
#   scripts/start-cluster.sh --no-setup    # skip scripts/setup.sh (already installed)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$REPO/.run"
PY="$REPO/.venv/bin/python"
CONFIG="$REPO/config/server.properties"
ZK_JAR=/usr/share/java/zookeeper.jar
BROKERS=1
ZK_NODES=""
SETUP=1
FIRST_PORT=9092
READY_TIMEOUT=${KAFKAPY_READY_TIMEOUT:-90}

usage() {
  echo "usage: $0 [--brokers N] [--zookeepers 1|3|5] [--no-setup] [--config server.properties]" >&2
  exit 2
}
while (($#)); do
  case "$1" in
    --brokers) [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || usage; BROKERS="$2"; shift 2 ;;
    --zookeepers) [[ $# -ge 2 && "$2" =~ ^[135]$ ]] || usage; ZK_NODES="$2"; shift 2 ;;
    --no-setup) SETUP=0; shift ;;
    --config) [[ $# -ge 2 ]] || usage; CONFIG="$(realpath "$2")"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "start-cluster.sh: unknown argument: $1" >&2; usage ;;
  esac
done

if [[ -z "$ZK_NODES" ]]; then  # a quorum once there are enough brokers to make it matter
  ZK_NODES=1
  ((BROKERS >= 3)) && ZK_NODES=3
fi

say() { echo "[start-cluster] $*"; }
die() { echo "[start-cluster] ERROR: $*" >&2; exit 1; }

# pid_alive FILE PATTERN: the pid in FILE runs and its command line contains PATTERN
# (guards against a recycled pid belonging to something else).
pid_alive() {
  local pid
  [[ -f "$1" ]] || return 1
  pid="$(cat "$1")"
  [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$2"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

zk_cmd() {  # zk_cmd PORT CMD: a ZooKeeper four-letter command
  local out
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf '%s' "$2" >&3
  out="$(timeout 2 cat <&3 || true)"
  exec 3>&-
  printf '%s' "$out"
}

if [[ $SETUP == 1 ]]; then
  "$REPO/scripts/setup.sh"
fi
[[ -x "$PY" ]] || die "$PY missing: run scripts/setup.sh"
[[ -f "$CONFIG" ]] || die "no broker config at $CONFIG"
[[ -f "$ZK_JAR" ]] || die "$ZK_JAR missing: install Debian's zookeeper package (scripts/setup.sh)"
mkdir -p "$RUN"
echo '*' > "$RUN/.gitignore"  # cluster state never belongs in git

# --- ZooKeeper -------------------------------------------------------------------------
# One standalone server, or with --zookeepers N (default 3 when there are 3+ brokers) a
# quorum of N QuorumPeerMain members on loopback: client ports 2181.., peer ports 2888..,
# election ports 3888.. (free ports instead when one of those is taken). The connect string
# is kept in .run/zookeeper.connect.
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

zk_wait_serving() {  # zk_wait_serving PORT PID_FILE LOG
  local deadline=$((SECONDS + READY_TIMEOUT))
  until [[ "$(zk_cmd "$1" srvr 2>/dev/null)" == *Mode:* ]]; do
    pid_alive "$2" org.apache.zookeeper.server \
      || die "ZooKeeper exited; last lines of $3:
$(tail -n 30 "$3")"
    ((SECONDS < deadline)) || die "ZooKeeper on port $1 not serving after ${READY_TIMEOUT}s (see $3)"
    sleep 0.2
  done
}

ZK_MODE=standalone
((ZK_NODES > 1)) && ZK_MODE="ensemble of $ZK_NODES"
existing_mode=""
if [[ -f "$RUN/zookeeper.mode" ]]; then
  existing_mode="$(cat "$RUN/zookeeper.mode")"
elif [[ -d "$RUN/zookeeper/data" ]]; then  # state from before zookeeper.mode was written
  existing_mode=standalone
fi
if [[ -n "$existing_mode" && "$existing_mode" != "$ZK_MODE" ]]; then
  # Brokers keep the cluster id of their ZooKeeper in meta.properties: no switching in place.
  die "$RUN holds a cluster with a ZooKeeper $existing_mode, not a $ZK_MODE: pass --zookeepers to match it, or stop it (scripts/stop-cluster.sh) and delete $RUN for a fresh cluster"
fi
ZK_PIDS=()
if ((ZK_NODES == 1)); then
  ZK_DIR="$RUN/zookeeper"
  ZK_PID_FILE="$RUN/zookeeper.pid"
  ZK_PIDS=("$ZK_PID_FILE")
  if pid_alive "$ZK_PID_FILE" ZooKeeperServerMain; then
    ZK_PORT="$(cat "$RUN/zookeeper.port")"
    say "ZooKeeper already running (pid $(cat "$ZK_PID_FILE"), port $ZK_PORT)"
  else
    ZK_PORT=2181
    if port_in_use "$ZK_PORT"; then
      ZK_PORT="$(free_port)"
      say "port 2181 is already in use by another process: starting ZooKeeper on port $ZK_PORT instead"
    fi
    mkdir -p "$ZK_DIR/data"
    cat > "$ZK_DIR/zoo.cfg" <<EOF
tickTime=2000
dataDir=$ZK_DIR/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr
maxClientCnxns=0
EOF
    setsid java -Xmx256m -XX:+UseSerialGC -Dzookeeper.admin.enableServer=false \
      -cp "$ZK_JAR" org.apache.zookeeper.server.ZooKeeperServerMain "$ZK_DIR/zoo.cfg" \
      >> "$ZK_DIR/zookeeper.log" 2>&1 < /dev/null &
    echo $! > "$ZK_PID_FILE"
    echo "$ZK_PORT" > "$RUN/zookeeper.port"
    say "starting ZooKeeper (pid $!) on 127.0.0.1:$ZK_PORT, data in $ZK_DIR/data"
    zk_wait_serving "$ZK_PORT" "$ZK_PID_FILE" "$ZK_DIR/zookeeper.log"
    say "ZooKeeper is serving"
  fi
  ZK_CONNECT="127.0.0.1:$ZK_PORT"
else
  if [[ ! -f "$RUN/zookeeper.connect" ]]; then  # first start: write every member's config
    # Ports: the conventional ones unless any is taken (then free ones for all members).
    client=() peer=() election=()
    for ((i = 0; i < ZK_NODES; i++)); do
      client+=($((2181 + i))); peer+=($((2888 + i))); election+=($((3888 + i)))
    done
    for p in "${client[@]}" "${peer[@]}" "${election[@]}"; do
      if port_in_use "$p"; then
        say "port $p is already in use by another process: the ensemble uses free ports instead"
        client=() peer=() election=()
        for ((i = 0; i < ZK_NODES; i++)); do
          client+=("$(free_port)"); peer+=("$(free_port)"); election+=("$(free_port)")
        done
        break
      fi
    done
    servers=""
    for ((i = 1; i <= ZK_NODES; i++)); do
      servers+="server.$i=127.0.0.1:${peer[i - 1]}:${election[i - 1]}"$'\n'
    done
    for ((i = 1; i <= ZK_NODES; i++)); do
      dir="$RUN/zookeeper-$i"
      mkdir -p "$dir/data"
      echo "$i" > "$dir/data/myid"
      cat > "$dir/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$dir/data
clientPort=${client[i - 1]}
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr
maxClientCnxns=0
${servers}
EOF
    done
    printf '127.0.0.1:%s,' "${client[@]}" | sed 's/,$//' > "$RUN/zookeeper.connect"
  fi
  # (Re)start every member that is not running, with the configuration it already has, so
  # a restart after stop-cluster.sh, or after one member died, keeps its ports and data.
  ZK_CONNECT="$(cat "$RUN/zookeeper.connect")"
  IFS=, read -r -a members <<< "$ZK_CONNECT"
  started_zk=0
  for ((i = 1; i <= ZK_NODES; i++)); do
    dir="$RUN/zookeeper-$i"
    ZK_PIDS+=("$RUN/zookeeper-$i.pid")
    if pid_alive "$RUN/zookeeper-$i.pid" QuorumPeerMain; then
      continue
    fi
    [[ -f "$dir/zoo.cfg" ]] || die "$dir/zoo.cfg missing: delete $RUN for a fresh cluster"
    setsid java -Xmx256m -XX:+UseSerialGC -Dzookeeper.admin.enableServer=false \
      -cp "$ZK_JAR" org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" \
      >> "$dir/zookeeper.log" 2>&1 < /dev/null &
    echo $! > "$RUN/zookeeper-$i.pid"
    say "starting ZooKeeper member $i (pid $!) on ${members[i - 1]}, data in $dir/data"
    started_zk=$((started_zk + 1))
  done
  for ((i = 1; i <= ZK_NODES; i++)); do  # a member serves once the quorum has a leader
    zk_wait_serving "${members[i - 1]##*:}" "$RUN/zookeeper-$i.pid" "$RUN/zookeeper-$i/zookeeper.log"
  done
  modes="$(for m in "${members[@]}"; do zk_cmd "${m##*:}" srvr | sed -n 's/^Mode: //p'; done \
           | sort | uniq -c | xargs)"
  if ((started_zk == 0)); then
    say "ZooKeeper ensemble already running ($modes)"
  else
    say "ZooKeeper ensemble is serving ($modes)"
  fi
fi
echo "$ZK_MODE" > "$RUN/zookeeper.mode"

# --- brokers ---------------------------------------------------------------------------
started=()
for ((id = 0; id < BROKERS; id++)); do
  port=$((FIRST_PORT + id))
  dir="$RUN/broker-$id"
  pid_file="$RUN/broker-$id.pid"
  if pid_alive "$pid_file" kafkapy.cli.server_start; then
    say "broker $id already running (pid $(cat "$pid_file"), localhost:$port)"
    continue
  fi
  port_in_use "$port" && die "port $port is already in use by another process; stop it first"
  mkdir -p "$dir/data"
  overrides=(--override "broker.id=$id"
             --override "listeners=PLAINTEXT://localhost:$port"
             --override "log.dirs=$dir/data"
             --override "zookeeper.connect=$ZK_CONNECT")
  if ((BROKERS < 3)); then  # internal topics cannot have more replicas than brokers
    overrides+=(--override "offsets.topic.replication.factor=$BROKERS"
                --override "transaction.state.log.replication.factor=$BROKERS"
                --override "transaction.state.log.min.isr=1")
  fi
  # A plain async command, so $! is the broker's own pid (setsid execs in place here).
  setsid "$PY" -m kafkapy.cli.server_start "$CONFIG" "${overrides[@]}" \
    >> "$dir/server.log" 2>&1 < /dev/null &
  echo $! > "$pid_file"
  say "starting broker $id (pid $(cat "$pid_file")) on localhost:$port, log $dir/server.log"
  started+=("$id")
done

for id in "${started[@]}"; do
  port=$((FIRST_PORT + id))
  deadline=$((SECONDS + READY_TIMEOUT))
  while true; do
    pid_alive "$RUN/broker-$id.pid" kafkapy.cli.server_start \
      || die "broker $id exited; last lines of $RUN/broker-$id/server.log:
$(tail -n 40 "$RUN/broker-$id/server.log")"
    reason="$(cd "$REPO" && "$PY" -c '
import sys
from tests.broker_fixture import probe
print(probe("127.0.0.1", int(sys.argv[1]), int(sys.argv[2])) or "")' "$port" "$id")"
    [[ -z "$reason" ]] && break
    ((SECONDS < deadline)) || die "broker $id not ready after ${READY_TIMEOUT}s: $reason (see $RUN/broker-$id/server.log)"
    sleep 0.3
  done
  say "broker $id is ready"
done

bootstrap="$(for ((id = 0; id < BROKERS; id++)); do printf 'localhost:%d,' $((FIRST_PORT + id)); done)"
echo
echo "kafkapy cluster is up."
echo "  bootstrap servers: ${bootstrap%,}"
zk_pids="$(for f in "${ZK_PIDS[@]}"; do cat "$f"; done | paste -sd, -)"
echo "  ZooKeeper:         $ZK_CONNECT ($ZK_MODE, pid $zk_pids)"
for ((id = 0; id < BROKERS; id++)); do
  echo "  broker $id:          localhost:$((FIRST_PORT + id)) (pid $(cat "$RUN/broker-$id.pid"), log .run/broker-$id/server.log)"
done
echo "  try:  kcat -b ${bootstrap%%,*} -L"
echo "  stop: scripts/stop-cluster.sh"
