#!/usr/bin/env bash
# Stop what scripts/start-cluster.sh started: brokers first (SIGTERM = controlled shutdown,
# SIGKILL after a timeout), then ZooKeeper (the standalone server or every ensemble member).
# Processes are found by the pid files in .run/ and checked by command line, so a recycled
# pid is never signalled. Data stays in .run/ (delete it for a fresh cluster).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$REPO/.run"
TIMEOUT=${KAFKAPY_STOP_TIMEOUT:-30}

say() { echo "[stop-cluster] $*"; }

# stop_pid FILE PATTERN NAME
stop_pid() {
  local file="$1" pattern="$2" name="$3" pid
  [[ -f "$file" ]] || return 0
  pid="$(cat "$file")"
  if ! { [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$pattern"; }; then
    say "$name (pid $pid) is not running"
    rm -f "$file"
    return 0
  fi
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      say "$name did not stop within ${TIMEOUT}s: sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$file"
}

[[ -d "$RUN" ]] || { say "nothing to stop ($RUN does not exist)"; exit 0; }
shopt -s nullglob
for f in "$RUN"/broker-*.pid; do
  id="${f##*/broker-}"; id="${id%.pid}"
  stop_pid "$f" kafkapy.cli.server_start "broker $id"
done
for f in "$RUN"/zookeeper.pid "$RUN"/zookeeper-*.pid; do
  name="${f##*/}"; name="${name%.pid}"
  stop_pid "$f" org.apache.zookeeper.server "ZooKeeper${name#zookeeper}"
done
say "stopped"
