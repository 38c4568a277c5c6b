#!/usr/bin/env bash
# `make docker`: build the image `mtst` here, where no image registry is reachable and PyPI only through this host's
# own settings. Starts dockerd if no daemon answers, makes the base image from Debian packages if it is missing
# (tools/docker_base.sh), makes a wheelhouse of the lock's exact pins with this host's pip (docker/wheels/, git-ignored;
# the CPU build of torch among them), then builds with no network inside the build.
#   usage: tools/docker_build.sh [TAG]          (default TAG: mtst; BASE_IMAGE=... to build on another base)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-mtst}
base=${BASE_IMAGE:-mtst-base:bookworm}
py=${PY:-$root/.venv/bin/python}
if ! command -v dockerd >/dev/null; then
  apt-get install -y -q docker.io || { apt-get update -q && apt-get install -y -q docker.io; }
fi
if ! docker info >/dev/null 2>&1; then
  echo "docker: starting dockerd (log: /tmp/dockerd.log)"
  (setsid dockerd > /tmp/dockerd.log 2>&1 &)
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 /tmp/dockerd.log >&2; echo "dockerd did not start" >&2; exit 1; }
fi
docker image inspect "$base" >/dev/null 2>&1 || bash "$root/tools/docker_base.sh" "$base"
mkdir -p "$root/docker/wheels"
"$py" -m pip wheel -q --no-deps -r "$root/requirements.lock" -r "$root/requirements-data.txt" -w "$root/docker/wheels"
cd "$root"
DOCKER_BUILDKIT=0 docker build --network none --build-arg BASE_IMAGE="$base" -t "$tag" .
docker image inspect "$tag" --format "built $tag: {{.Size}} bytes" | awk '{printf "%s %s %.0f MiB\n", $1, $2, $3 / 1048576}'
