#!/usr/bin/env bash
# The whole test suite: installs everything (scripts/setup.sh --clients), then runs pytest
# with every marker (unit, integration, clients, container) and exits with pytest's code.
# Arguments go to pytest:  scripts/test.sh -m unit    scripts/test.sh tests/clients -x
# KAFKAPY_SKIP_SETUP=1 skips the installer (for quick re-runs on a prepared machine).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

if [[ "${KAFKAPY_SKIP_SETUP:-0}" != 1 ]]; then
  "$REPO/scripts/setup.sh" --clients
fi

echo "[test] pytest $* (started $(date -u +%H:%M:%S) UTC)"
t0=$SECONDS
rc=0
"$REPO/.venv/bin/python" -m pytest "$@" || rc=$?
echo "[test] pytest exited $rc after $((SECONDS - t0))s"
exit "$rc"
