#!/usr/bin/env bash
# Fails when a process of the local control plane outlived the tests.
set -euo pipefail
bin=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && hack/tools.sh)
if pgrep -f "^$bin/" >/dev/null; then
  echo "processes of the test control plane are still running:" >&2
  pgrep -af "^$bin/" >&2
  exit 1
fi
echo "no control plane process left behind"
