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

step "python test dependencies" python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/requirements.txt
step "cargo fmt --check" cargo fmt --all --check
step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
step "cargo test" cargo test --workspace --no-fail-fast
