#!/usr/bin/env bash
# Kafka-compatible: kafka-consumer-groups.sh --bootstrap-server H:P (--list | --describe
# --group G [--audit]). kafkapy's --audit lists commits beyond what the group was served
# and commits that moved backwards (exit status 2 when there are any).
#
# Runs the `kafkapy-consumer-groups` console script ($VIRTUAL_ENV/bin, the repository's
# .venv/bin, then $PATH); without it (an editable install made before the script existed),
# the module through the repository's python.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for candidate in "${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/kafkapy-consumer-groups}" \
                 "$REPO/.venv/bin/kafkapy-consumer-groups"; do
  if [[ -n "$candidate" && -x "$candidate" ]]; then
    exec "$candidate" "$@"
  fi
done
if command -v kafkapy-consumer-groups >/dev/null 2>&1; then
  exec kafkapy-consumer-groups "$@"
fi
PY="$REPO/.venv/bin/python"
[[ -x "$PY" ]] || PY="$(command -v python3)"
exec "$PY" -m kafkapy.cli.consumer_groups "$@"
