#!/usr/bin/env bash
# Kafka-compatible launcher: kafka-server-start.sh [-daemon] server.properties [--override k=v]*
#
# Runs the `kafkapy-server-start` console script, looked up in this order: next to the python
# of an active virtualenv ($VIRTUAL_ENV/bin), the repository's .venv/bin, then $PATH.
# With -daemon the broker runs under nohup, its output goes to ${LOG_DIR:-logs}/kafkapy-server.out
# and the pid is printed (as with Kafka's script, the console is left free).
set -euo pipefail

usage() {
  echo "USAGE: $0 [-daemon] server.properties [--override property=value]*" >&2
  exit 1
}

[[ $# -ge 1 ]] || usage

DAEMON=0
if [[ "$1" == "-daemon" ]]; then
  DAEMON=1
  shift
fi
[[ $# -ge 1 ]] || usage
case "$1" in
  -h|--help) usage ;;
esac

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

find_launcher() {
  local candidate
  if [[ -n "${VIRTUAL_ENV:-}" && -x "$VIRTUAL_ENV/bin/kafkapy-server-start" ]]; then
    echo "$VIRTUAL_ENV/bin/kafkapy-server-start"; return 0
  fi
  if [[ -x "$REPO/.venv/bin/kafkapy-server-start" ]]; then
    echo "$REPO/.venv/bin/kafkapy-server-start"; return 0
  fi
  if candidate="$(command -v kafkapy-server-start 2>/dev/null)"; then
    echo "$candidate"; return 0
  fi
  return 1
}

if ! LAUNCHER="$(find_launcher)"; then
  cat >&2 <<EOF
kafka-server-start.sh: cannot find the 'kafkapy-server-start' command.
Looked in: \$VIRTUAL_ENV/bin (${VIRTUAL_ENV:-no virtualenv active}), $REPO/.venv/bin, and \$PATH.
Install kafkapy first, e.g.:  python3 -m venv $REPO/.venv && $REPO/.venv/bin/pip install -e $REPO
EOF
  exit 1
fi

if [[ $DAEMON -eq 1 ]]; then
  LOG_DIR="${LOG_DIR:-logs}"
  mkdir -p "$LOG_DIR"
  OUT="$LOG_DIR/kafkapy-server.out"
  nohup "$LAUNCHER" "$@" >"$OUT" 2>&1 </dev/null &
  PID=$!
  echo "$PID"
  exit 0
fi

exec "$LAUNCHER" "$@"
