#!/usr/bin/env bash
# The project's test command (the README's second command; .ci/run calls it).
# It installs and starts what the tests need beyond the services the machine
# already runs, then runs formatting, lints and every test suite, printing the
# time each step took.
set -euo pipefail
cd "$(dirname "$0")/.."

step() {
  local name=$1
  shift
  local start=$SECONDS
  echo "==> $name"
  "$@"
  echo "<== $name: $((SECONDS - start)) s"
}

# promtool and prometheus for the operations tests (Debian's package; its
# service is not started, the tests run their own).
install_prometheus() {
  if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null; }
  fi
}
step "prometheus (promtool)" install_prometheus
step "python test dependencies" python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/requirements.txt
step "cargo fmt --check" cargo fmt --all --check
step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
step "cargo test" cargo test --workspace --no-fail-fast
