# Shared by scripts/test and scripts/demo: find or install moto, and start/stop it.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/skyform-target}"

# Puts a moto_server on PATH: the machine's, or one installed into .venv.
ensure_moto() {
  if [ -x "$ROOT/.venv/bin/moto_server" ]; then
    export PATH="$ROOT/.venv/bin:$PATH"
  fi
  if command -v moto_server >/dev/null 2>&1; then
    return 0
  fi
  echo "moto_server not found; installing moto[server] into $ROOT/.venv" >&2
  python3 -m venv "$ROOT/.venv"
  "$ROOT/.venv/bin/pip" install --quiet 'moto[server]>=5,<6'
  export PATH="$ROOT/.venv/bin:$PATH"
  command -v moto_server >/dev/null 2>&1 || { echo "moto_server could not be installed" >&2; return 1; }
}

# Sets CHECKOV to a checkov that the policy-check test runs on skyform's JSON plans: $CHECKOV
# if set, the machine's, or checkov installed into .venv (pinned, as the test's counts are
# checkov's; it is big, so it is installed only when missing).
ensure_checkov() {
  if [ -n "${CHECKOV:-}" ]; then return 0; fi
  if [ ! -x "$ROOT/.venv/bin/checkov" ] && ! command -v checkov >/dev/null 2>&1; then
    echo "checkov not found; installing checkov==3.3.30 into $ROOT/.venv" >&2
    [ -x "$ROOT/.venv/bin/pip" ] || python3 -m venv "$ROOT/.venv"
    "$ROOT/.venv/bin/pip" install --quiet 'checkov==3.3.30'
  fi
  if [ -x "$ROOT/.venv/bin/checkov" ]; then
    CHECKOV="$ROOT/.venv/bin/checkov"
  else
    CHECKOV="$(command -v checkov)" || { echo "checkov could not be installed" >&2; return 1; }
  fi
  export CHECKOV
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts moto on a free port; sets MOTO_PID and AWS_* for the SDK.
start_moto() {
  local port
  port="$(free_port)"
  moto_server -H 127.0.0.1 -p "$port" >"${TMPDIR:-/tmp}/skyform-moto-$port.log" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null; then break; fi
    sleep 0.1
  done
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  unset AWS_PROFILE
}

stop_moto() {
  if [ -n "${MOTO_PID:-}" ]; then kill "$MOTO_PID" 2>/dev/null; wait "$MOTO_PID" 2>/dev/null; fi
  MOTO_PID=
}

# Sets HCL_TOOLS_DIR to a directory holding @cdktf/hcl-tools (HashiCorp's hclwrite.Format for
# Node), the reference of the differential fmt test: $HCL_TOOLS_DIR if set, or .node, where it
# is installed (pinned) when missing.
ensure_hcl_tools() {
  if [ -n "${HCL_TOOLS_DIR:-}" ]; then return 0; fi
  if [ ! -f "$ROOT/.node/node_modules/@cdktf/hcl-tools/package.json" ]; then
    command -v npm >/dev/null 2>&1 || { echo "npm not found; the fmt differential test needs Node" >&2; return 1; }
    echo "hcl-tools not found; installing @cdktf/hcl-tools@0.21.0 into $ROOT/.node" >&2
    mkdir -p "$ROOT/.node"
    npm install --silent --no-audit --no-fund --prefix "$ROOT/.node" '@cdktf/hcl-tools@0.21.0' >&2
  fi
  HCL_TOOLS_DIR="$ROOT/.node"
  export HCL_TOOLS_DIR
}
