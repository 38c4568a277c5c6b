#!/usr/bin/env bash
# `make docker`: build the image `mtst`. A Docker daemon that already answers (Docker Desktop, a rootless daemon, a
# system service) is used as it is. Where none answers, one is started only where that can work: as root with dockerd
# installed, or installable with apt-get (these machines, CI); elsewhere this stops and says how to get one.
# Where the base image can be pulled (a laptop), the image is built the plain way (`docker build`, PyPI and PyTorch's
# CPU index inside the build). Where no image registry is reachable (these machines), the base image is made from
# Debian packages (tools/docker_base.sh) and a wheelhouse of the lock's exact pins with this host's pip (docker/wheels/,
# git-ignored; the CPU build of torch among them), and the build runs with no network.
#   usage: tools/docker_build.sh [TAG]          (default TAG: mtst; BASE_IMAGE=... to build on another base)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-mtst}
py=${PY:-$root/.venv/bin/python}
no_daemon() {
  cat >&2 <<MSG
docker: no Docker daemon answers$1. The container tests need one:
  - macOS or Windows: start Docker Desktop;
  - Linux: start the service (sudo systemctl start docker), or a rootless daemon (dockerd-rootless-setuptool.sh install),
    and make sure \`docker info\` works as this user.
Then run the same make command again. (make lab and the other tests need no Docker.)
MSG
  exit 4
}
if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || no_daemon " and this user is not root, so none is started here"
  if ! command -v dockerd >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || no_daemon ", dockerd is not installed and there is no apt-get to install it"
    apt-get install -y -q docker.io || { apt-get update -q && apt-get install -y -q docker.io; }
  fi
  echo "docker: starting dockerd (log: /tmp/dockerd.log)"
  (setsid dockerd > /tmp/dockerd.log 2>&1 &)
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 /tmp/dockerd.log >&2; no_daemon ": dockerd did not start (log above)"; }
fi
cd "$root"
mkdir -p docker/wheels
if [ -z "${BASE_IMAGE:-}" ] && { docker image inspect python:3.11-slim-bookworm >/dev/null 2>&1 || timeout 30 docker pull -q python:3.11-slim-bookworm >/dev/null 2>&1; }; then
  rm -f docker/wheels/*.whl  # no wheelhouse: the build installs from PyPI and PyTorch's CPU index, for Linux
  docker build -t "$tag" .
else
  base=${BASE_IMAGE:-mtst-base:bookworm}
  docker image inspect "$base" >/dev/null 2>&1 || bash "$root/tools/docker_base.sh" "$base"
  "$py" -m pip wheel -q --no-deps -r requirements.lock -r requirements-data.txt -w docker/wheels
  DOCKER_BUILDKIT=0 docker build --network none --build-arg BASE_IMAGE="$base" -t "$tag" .
fi
docker image inspect "$tag" --format "built $tag: {{.Size}} bytes" | awk '{printf "%s %s %.0f MiB\n", $1, $2, $3 / 1048576}'
