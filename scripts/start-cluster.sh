#!/usr/bin/env bash
# Start a local kafkapy cluster: Debian's ZooKeeper plus kafkapy broker(s) configured from
# config/server.properties, all on loopback, state under .run/. Stop it with
# scripts/stop-cluster.sh.
#
#   scripts/start-cluster.sh               # setup.sh, ZooKeeper on 2181, one broker on 9092
#   scripts/start-cluster.sh --brokers 3   # brokers 0..2 on 9092..9094
#   scripts/start-cluster.sh --no-setup    # skip scripts/setup.sh (already installed)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$REPO/.run"
PY="$REPO/.venv/bin/python"
CONFIG="$REPO/config/server.properties"
ZK_JAR=/usr/share/java/zookeeper.jar
BROKERS=1
SETUP=1
FIRST_PORT=9092
READY_TIMEOUT=${KAFKAPY_READY_TIMEOUT:-90}

usage() {
  echo "usage: $0 [--brokers N] [--no-setup] [--config server.properties]" >&2
  exit 2
}
while (($#)); do
  case "$1" in
    --brokers) [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || usage; BROKERS="$2"; shift 2 ;;
    --no-setup) SETUP=0; shift ;;
    --config) [[ $# -ge 2 ]] || usage; CONFIG="$(realpath "$2")"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "start-cluster.sh: unknown argument: $1" >&2; usage ;;
  esac
done

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
ZK_DIR="$RUN/zookeeper"
ZK_PID_FILE="$RUN/zookeeper.pid"
if pid_alive "$ZK_PID_FILE" ZooKeeperServerMain; then
  ZK_PORT="$(cat "$RUN/zookeeper.port")"
  say "ZooKeeper already running (pid $(cat "$ZK_PID_FILE"), port $ZK_PORT)"
else
  ZK_PORT=2181
  if port_in_use "$ZK_PORT"; then
    ZK_PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
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
  deadline=$((SECONDS + READY_TIMEOUT))
  until [[ "$(zk_cmd "$ZK_PORT" srvr 2>/dev/null)" == *Mode:* ]]; do
    pid_alive "$ZK_PID_FILE" ZooKeeperServerMain \
      || die "ZooKeeper exited; last lines of $ZK_DIR/zookeeper.log:
$(tail -n 30 "$ZK_DIR/zookeeper.log")"
    ((SECONDS < deadline)) || die "ZooKeeper not serving after ${READY_TIMEOUT}s (see $ZK_DIR/zookeeper.log)"
    sleep 0.2
  done
  say "ZooKeeper is serving"
fi

# --- brokers ---------------------------------------------------------------------------
ZK_CONNECT="127.0.0.1:$ZK_PORT"
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
  if ((BROKERS == 1)); then
    overrides+=(--override offsets.topic.replication.factor=1)
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
echo "  ZooKeeper:         $ZK_CONNECT (pid $(cat "$ZK_PID_FILE"))"
for ((id = 0; id < BROKERS; id++)); do
  echo "  broker $id:          localhost:$((FIRST_PORT + id)) (pid $(cat "$RUN/broker-$id.pid"), log .run/broker-$id/server.log)"
done
echo "  try:  kcat -b ${bootstrap%%,*} -L"
echo "  stop: scripts/stop-cluster.sh"
