#!/usr/bin/env bash
# Makes sure the system packages the tests and `make dev` need are here:
# Debian's python3-distributed (a real Dask: /usr/bin/python3 -m distributed)
# and iproute2 (`ip`, for the node agent's network namespaces). Installs
# what is missing when it can (root and apt-get); otherwise says in one line
# what to install and fails, before any test starts.
#
#   hack/ensure-deps.sh              Dask and iproute2
#   hack/ensure-deps.sh --incumbent  also the Debian packages the Python
#                                    operator's KubeCluster client needs, with
#                                    its own setup script, when
#                                    ../shared/incumbent (or $DASK_INCUMBENT) is there
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ "${1:-}" == "--incumbent" ]]; then
  "$0"
  incumbent=${DASK_INCUMBENT:-$root/../shared/incumbent}
  if [[ ! -x "$incumbent/setup.sh" ]]; then
    echo "ensure-deps: no Python operator client at $incumbent: the tests that drive it will say so" >&2
    exit 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    /usr/bin/python3 -c 'import aiohttp, cachetools, wsproto, rich' 2>/dev/null && exit 0
    echo "ensure-deps: the KubeCluster client's Debian packages are missing: run $incumbent/setup.sh as root" >&2
    exit 1
  fi
  "$incumbent/setup.sh" >/dev/null
  exit 0
fi

missing=()
/usr/bin/python3 -c 'import distributed' 2>/dev/null || missing+=(python3-distributed)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-deps: installing ${missing[*]} (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  /usr/bin/python3 -c 'import distributed' && command -v ip >/dev/null && exit 0
  echo "ensure-deps: ${missing[*]} installed, but /usr/bin/python3 still cannot import distributed or ip is missing" >&2
  exit 1
fi
echo "ensure-deps: missing ${missing[*]}: install them (as root: apt-get install ${missing[*]}) and run again" >&2
exit 1
