#!/usr/bin/env bash
# Builds, once, the file system roots the process node (hack/nodeagent) runs
# Dask images in, into the user cache dir, and prints a file that lists them,
# one "GENERATION VERSION ROOT" line each, oldest first:
#
#   bookworm 2022.12.1 /          Debian 12's Dask (hack/ensure-deps.sh installs it on the host)
#   trixie   2024.12.1 <cache>/…  a Debian 13 root (debootstrap), with its own Dask
#   current  2026.7.1  <cache>/…  that root with Debian's Dask replaced by ../shared/dask-current:
#                                 no dask-scheduler / dask-worker commands, as in Dask's images
#                                 since 2026.6
#
# pkg/testenv maps image names to these roots (README, "Dask versions").
# The trixie root also has what the Python KubeCluster client needs
# (../shared/incumbent/setup.sh's Debian packages), so that the client runs
# beside the same Dask as the cluster.
#
#   hack/dask-images.sh     build what is missing, print the list file
#
# DASK_CURRENT names the dask-current folder (default ../shared/dask-current
# beside the clone); without it there is no "current" line.
# DASK_OPERATOR_IMAGES_CACHE overrides the cache folder; DEBIAN_MIRROR the mirror.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${DASK_OPERATOR_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dask-operator/images}
current_src=${DASK_CURRENT:-$root/../shared/dask-current}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

packages=(
  python3-distributed python3-numpy
  # the KubeCluster client (kr8s) and the Python operator, as ../shared/incumbent/setup.sh lists them
  python3-aiohttp python3-click python3-iso8601 python3-pythonjsonlogger python3-yaml
  python3-cachetools python3-cryptography python3-packaging python3-sniffio python3-certifi
  python3-idna python3-wsproto python3-rich python3-setuptools
  python3-cffi-backend  # debootstrap does not resolve the virtual package python3-cryptography needs
)
# Bump when a change below must rebuild the roots (other edits reuse them).
layout=1
key=$(echo "$layout ${packages[*]}" | sha256sum | cut -c1-12)

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

if [[ ! -x /usr/bin/python3 ]] || ! /usr/bin/python3 -c 'import distributed' 2>/dev/null; then
  echo "dask-images: Debian 12's Dask is missing on the host: run hack/ensure-deps.sh" >&2
  exit 1
fi
host_version=$(/usr/bin/python3 -c 'import distributed; print(distributed.__version__.split("+")[0])')

trixie="$cache/trixie-$key"
if [[ ! -f "$trixie/.complete" ]]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
      echo "dask-images: debootstrap is missing: install it (as root: apt-get install debootstrap)" >&2
      exit 1
    fi
    echo "dask-images: installing debootstrap (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  echo "dask-images: building a Debian 13 root with its Dask into $trixie (first time only, a minute or two)" >&2
  rm -rf "$trixie.tmp"
  if ! debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" trixie "$trixie.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1; then
    echo "dask-images: debootstrap failed; the last lines of $cache/debootstrap.log:" >&2
    tail -n 20 "$cache/debootstrap.log" >&2
    exit 1
  fi
  rm -f "$trixie.tmp"/var/cache/apt/archives/*.deb
  touch "$trixie.tmp/.complete"
  rm -rf "$trixie"
  mv "$trixie.tmp" "$trixie"
  # Roots of earlier versions of this script go.
  for old in "$cache"/trixie-* "$cache"/current-*; do
    [[ -d "$old" && "$old" != "$trixie" && "$old" != "$cache/current-$key-"* ]] && rm -rf "$old"
  done
fi
trixie_version=$(sed -n 's/^Version: *//p' "$trixie"/usr/lib/python3/dist-packages/distributed-*-info/METADATA 2>/dev/null | head -1)
trixie_version=${trixie_version:-$(ls -d "$trixie"/usr/lib/python3/dist-packages/distributed-*-info | sed 's/.*distributed-\([0-9.]*\).*/\1/')}

list="$cache/images-$key.txt"
{
  echo "bookworm $host_version /"
  echo "trixie $trixie_version $trixie"
} >"$list.tmp"

if [[ -d "$current_src/pylib/distributed" && -d "$current_src/pylib/dask" ]]; then
  current_src=$(cd "$current_src" && pwd)
  ckey=$(cd "$current_src/pylib" && find . -name '*.py' -o -name 'METADATA' -o -name 'entry_points.txt' | sort | xargs cat | sha256sum | cut -c1-12)
  current="$cache/current-$key-$ckey"
  if [[ ! -f "$current/.complete" ]]; then
    echo "dask-images: making the current Dask's root $current from $current_src" >&2
    rm -rf "$current.tmp"
    # Hard links: the copy costs no room, and what it removes stays in the trixie root.
    cp -al "$trixie" "$current.tmp"
    rm -f "$current.tmp/.complete"
    # As in Dask's images since 2026.6: one Dask, and only its `dask` command.
    rm -rf "$current.tmp"/usr/lib/python3/dist-packages/{dask,distributed} \
      "$current.tmp"/usr/lib/python3/dist-packages/{dask,distributed}-*-info \
      "$current.tmp"/usr/bin/dask "$current.tmp"/usr/bin/dask-*
    site=$(ls -d "$current.tmp"/usr/lib/python3.* | head -1)
    site="$current.tmp/usr/local/lib/$(basename "$site")/dist-packages"
    mkdir -p "$site"
    cp -r "$current_src"/pylib/dask "$current_src"/pylib/distributed "$current_src"/pylib/*.dist-info "$site/"
    # The console script pip writes for dask's [project.scripts] dask = "dask.__main__:main".
    cat >"$current.tmp/usr/bin/dask" <<'EOF'
#!/usr/bin/python3
import sys
from dask.__main__ import main
if __name__ == "__main__":
    sys.exit(main())
EOF
    chmod 755 "$current.tmp/usr/bin/dask"
    touch "$current.tmp/.complete"
    rm -rf "$current"
    mv "$current.tmp" "$current"
    for old in "$cache"/current-*; do
      [[ -d "$old" && "$old" != "$current" ]] && rm -rf "$old"
    done
  fi
  version=$(sed -n 's/^Version: *//p' "$current"/usr/local/lib/python3.*/dist-packages/distributed-*.dist-info/METADATA | head -1)
  echo "current ${version:-unknown} $current" >>"$list.tmp"
else
  echo "dask-images: no current Dask at $current_src (set DASK_CURRENT): images of Dask 2026 are not on the process node" >&2
fi
mv "$list.tmp" "$list"
for old in "$cache"/images-*.txt; do
  [[ "$old" != "$list" ]] && rm -f "$old"
done
echo "$list"
