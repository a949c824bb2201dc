#!/usr/bin/env bash
# Idempotent installer for a Debian machine (run as root): system packages, the repo's
# virtualenv with kafkapy + test extras, and (with --clients) the Node.js Kafka clients
# used by tests/clients. Safe to re-run: every step checks before it works.
#
#   scripts/setup.sh            # apt packages + .venv + pip install -e '.[test]'
#   scripts/setup.sh --clients  # ... plus tests/clients/node/node_modules (kafkajs, node-rdkafka, ...)
#
# Environment: KAFKAPY_CACHE (default /var/cache/kafkapy) holds the built node_modules
# tarballs keyed by package.json/package-lock.json/node version, so a kept machine skips the
# several-minute node-rdkafka compile.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${KAFKAPY_CACHE:-/var/cache/kafkapy}"
NODE_DIR="$REPO/tests/clients/node"
WITH_CLIENTS=0

usage() { echo "usage: $0 [--clients]" >&2; exit 2; }
for arg in "$@"; do
  case "$arg" in
    --clients) WITH_CLIENTS=1 ;;
    -h|--help) usage ;;
    *) echo "setup.sh: unknown argument: $arg" >&2; usage ;;
  esac
done

log() { echo "[setup] $*"; }
die() { echo "[setup] ERROR: $*" >&2; exit 1; }

# step NAME FUNC: run FUNC and print how long it took (CI wants to see where time goes).
step() {
  local name="$1"; shift
  local t0=$SECONDS
  log "-- $name"
  "$@"
  log "-- $name: done in $((SECONDS - t0))s"
}

[[ "$(id -u)" == 0 ]] || die "run as root (it installs Debian packages)"

APT_UPDATED=0
apt_install() {
  # apt may be busy (another installer, unattended upgrades): wait for its lock, not fail.
  if [[ $APT_UPDATED == 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 update -q
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q \
    --no-install-recommends "$@"
}

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

# Where Debian's Node headers keep common.gypi (libnode-dev or a repacked nodejs).
find_node_gypi() {
  local d
  for d in /usr/include/node /usr/include/nodejs /usr/share/nodejs; do
    [[ -f "$d/common.gypi" ]] && { echo "$d"; return 0; }
  done
  return 1
}

system_packages() {
  local want=(zookeeper kcat build-essential python3-dev python3-venv python3-pip ca-certificates)
  command -v node >/dev/null || want+=(nodejs)
  command -v npm >/dev/null || want+=(npm)
  local missing=() p
  for p in "${want[@]}"; do have_pkg "$p" || missing+=("$p"); done
  if [[ $WITH_CLIENTS == 1 ]]; then
    # node-rdkafka's bundled librdkafka links these when its configure finds them: without
    # libzstd-dev it silently builds without zstd (and then cannot produce/consume zstd).
    for p in zlib1g-dev libssl-dev libzstd-dev liblz4-dev; do have_pkg "$p" || missing+=("$p"); done
    find_node_gypi >/dev/null || missing+=(libnode-dev)
  fi
  if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    apt_install "${missing[@]}"
  else
    log "all system packages present"
  fi
  [[ -x /usr/share/zookeeper/bin/zkServer.sh ]] || die "Debian zookeeper package has no /usr/share/zookeeper/bin/zkServer.sh"
  command -v kcat >/dev/null || die "kcat not on PATH after install"
  command -v java >/dev/null || die "java not on PATH (zookeeper's dependency should pull it in)"
}

# Stamp = hash of every input of `pip install -e`: if none changed, the venv is current.
python_stamp() {
  (cd "$REPO" && cat setup.cfg setup.py pyproject.toml 2>/dev/null
   find native -type f \( -name '*.c' -o -name '*.h' -o -name '*.py' \) 2>/dev/null | sort | xargs -r cat
   python3 --version) | sha256sum | cut -c1-16
}

python_env() {
  if [[ ! -x "$REPO/.venv/bin/python" ]]; then
    log "creating $REPO/.venv"
    python3 -m venv "$REPO/.venv"
  fi
  local stamp; stamp="$(python_stamp)"
  local stamp_file="$REPO/.venv/.kafkapy-install-stamp"
  if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]] \
     && "$REPO/.venv/bin/python" -c 'import kafkapy._native' 2>/dev/null; then
    log "venv is current (stamp $stamp)"
    return
  fi
  "$REPO/.venv/bin/python" -m pip install -q --upgrade pip setuptools wheel
  (cd "$REPO" && "$REPO/.venv/bin/python" -m pip install -q -e '.[test]')
  # kafka-python's optional codecs: importing them is how kafka-python detects them.
  "$REPO/.venv/bin/python" -c 'import snappy, lz4.frame, zstandard, confluent_kafka, kafka, aiokafka' \
    || die "a test dependency did not import after pip install"
  echo "$stamp" > "$stamp_file"
}

# A directory laid out the way node-gyp wants npm_config_nodedir: include/node + *.gypi.
node_headers_dir() {
  local src; src="$(find_node_gypi)" || die "no Node headers with common.gypi (need libnode-dev)"
  local hdr=/usr/include/node
  [[ -f "$hdr/node.h" ]] || hdr="$src"
  [[ -f "$hdr/node.h" ]] || die "node.h not found under /usr/include/node or $src"
  local dir="$CACHE_DIR/nodedir"
  mkdir -p "$dir/include"
  ln -sfn "$hdr" "$dir/include/node"
  ln -sfn "$src/common.gypi" "$dir/common.gypi"
  [[ -f "$src/config.gypi" ]] && ln -sfn "$src/config.gypi" "$dir/config.gypi"
  echo "$dir"
}

node_stamp() {
  (cd "$NODE_DIR" && cat package.json package-lock.json 2>/dev/null; node --version; uname -m) \
    | sha256sum | cut -c1-16
}

node_clients() {
  command -v node >/dev/null || die "node not installed"
  local stamp; stamp="$(node_stamp)"
  local stamp_file="$NODE_DIR/node_modules/.kafkapy-stamp"
  local tarball="$CACHE_DIR/node-$stamp.tgz"
  if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]]; then
    log "node_modules is current (stamp $stamp)"
  elif [[ -f "$tarball" ]]; then
    log "restoring node_modules from $tarball"
    rm -rf "$NODE_DIR/node_modules"
    tar -xzf "$tarball" -C "$NODE_DIR"
  else
    local nodedir; nodedir="$(node_headers_dir)"
    log "npm install in $NODE_DIR (node-rdkafka compiles librdkafka: several minutes)"
    rm -rf "$NODE_DIR/node_modules"
    local cmd=(install)
    [[ -f "$NODE_DIR/package-lock.json" ]] && cmd=(ci)
    # package.json's allowScripts approves the native builds (npm 11 warns about, and later
    # npm versions block, unapproved install scripts).
    # CXXFLAGS: @kafkajs/zstd's cppzst forces -std=c++11, but Node 20's headers need C++17;
    # a later -std on the command line wins, and C++17 is what node-rdkafka uses anyway.
    (cd "$NODE_DIR" && CXXFLAGS="-std=c++17" npm_config_nodedir="$nodedir" \
      nice -n 10 npm "${cmd[@]}" --no-audit --no-fund --loglevel=warn) \
      || die "npm ${cmd[*]} failed in $NODE_DIR"
    # Key the cache on the lock file npm just wrote too (the next run hashes it).
    stamp="$(node_stamp)"; tarball="$CACHE_DIR/node-$stamp.tgz"
    echo "$stamp" > "$stamp_file"
    mkdir -p "$CACHE_DIR"
    tar -czf "$tarball.tmp" -C "$NODE_DIR" node_modules && mv "$tarball.tmp" "$tarball"
    log "cached node_modules as $tarball"
  fi
  (cd "$NODE_DIR" && node -e '
    require("kafkajs"); require("kafkajs-snappy"); require("kafkajs-lz4"); require("@kafkajs/zstd");
    const rd = require("node-rdkafka"); require("kafka-node");
    const missing = ["gzip", "snappy", "lz4", "zstd"].filter((c) => !rd.features.includes(c));
    if (missing.length) { console.error("[setup] node-rdkafka lacks codecs: " + missing); process.exit(1); }
    console.log("[setup] node clients load; librdkafka " + rd.librdkafkaVersion + ", features " + rd.features.join(","));
  ') || die "node clients installed but do not load"
}

T0=$SECONDS
step "system packages" system_packages
step "python venv" python_env
if [[ $WITH_CLIENTS == 1 ]]; then step "node clients" node_clients; fi
log "setup complete in $((SECONDS - T0))s"
