#!/usr/bin/env bash
# Make a base image where no image registry is reachable: Debian bookworm from Debian's packages (mmdebstrap) with
# CPython 3.11 at /usr/local, laid out as python:3.11-slim-bookworm has it, imported with `docker import`.
#   usage: tools/docker_base.sh [TAG]          (default TAG: mtst-base:bookworm; make docker calls it when needed)
# Debian bookworm's own python3 is 3.11.2, older than the lock allows (soupsieve 4.1.3 needs >= 3.11.5), so the
# interpreter and its standard library come from this machine's CPython 3.11 build (PYTHON_PREFIX, default: the
# prefix of python3.11 on PATH), without its site-packages: no package or setting of the host goes in. pip comes
# from the interpreter's own ensurepip.
set -euo pipefail
tag=${1:-mtst-base:bookworm}
prefix=${PYTHON_PREFIX:-$(python3.11 -c 'import sys; print(sys.base_prefix)')}
"$prefix/bin/python3.11" -c 'import sys; assert sys.version_info >= (3, 11, 5), sys.version' \
  || { echo "$prefix/bin/python3.11 is older than 3.11.5; set PYTHON_PREFIX to a newer CPython 3.11" >&2; exit 1; }
command -v mmdebstrap >/dev/null || apt-get install -y -q mmdebstrap
# The shared libraries the interpreter's extension modules load (ssl, sqlite3, ctypes, bz2, lzma, readline, uuid, zlib).
libs=libssl3,libsqlite3-0,libffi8,libbz2-1.0,liblzma5,libreadline8,libuuid1,zlib1g,libncursesw6,libtinfo6,libexpat1
copy_python='tar -C "'"$prefix"'" --exclude=./lib/python3.11/site-packages --exclude=./lib/python3.11/test \
  --exclude="./lib/python3.11/config-*" --exclude=__pycache__ -cf - ./bin/python3.11 ./lib ./include | tar -C "$1/usr/local" -xf -'
mmdebstrap --variant=minbase --include="$libs" \
  --customize-hook="$copy_python" \
  --customize-hook='ln -sf python3.11 "$1/usr/local/bin/python3" && ln -sf python3.11 "$1/usr/local/bin/python"' \
  --customize-hook='chroot "$1" ldconfig && chroot "$1" /usr/local/bin/python3.11 -m ensurepip --default-pip >/dev/null' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  bookworm - \
  | docker import -c 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' -c 'ENV LANG=C.UTF-8' \
      -c 'CMD ["python3"]' - "$tag"
docker run --rm --network none "$tag" python3 -c 'import sys, ssl, sqlite3, ctypes, pip; print("base image: Python", sys.version.split()[0])'
