#!/usr/bin/env bash
# `make` (lab, test, ...): create .venv from requirements.lock, on these machines and on a learner's own.
#   usage: tools/setup_venv.sh [VENV]       (default .venv; PYTHON=... picks the interpreter, TORCH_INDEX=... the index
#                                            that serves PyTorch's CPU build when pip's own indexes do not)
# Python: the lock's pins are for Python 3.11; anything else stops here with how to get 3.11.
# torch: the CPU build. On Linux that is torch==2.13.0+cpu, which PyPI never serves (PyPI's Linux torch is the
# multi-GB CUDA build): pip first tries its own configuration (a machine that keeps the wheel on disk finds it there,
# and never waits on another index), and only if that has no such build asks PyTorch's CPU index, for torch alone.
# On macOS, PyPI's torch==2.13.0 is the CPU build. The rest of the lock then installs from pip's own indexes; its
# `torch==2.13.0` is satisfied by the build already installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$root/.venv}
need=3.11
torch_version=2.13.0
torch_index=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}

find_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  for p in "python$need" python3 python; do
    if command -v "$p" >/dev/null 2>&1 && [ "$("$p" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$need" ]; then
      command -v "$p"; return
    fi
  done
}

if ! [ -x "$venv/bin/python" ]; then
  python=$(find_python || true)
  version=$([ -n "$python" ] && "$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
  if [ "$version" != "$need" ]; then
    found=$(command -v python3 >/dev/null 2>&1 && python3 -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo none)
    cat >&2 <<EOF
mtst needs Python $need: requirements.lock pins every package for $need (found: ${PYTHON:+PYTHON=$PYTHON is ${version:-not a Python}, }python3 is $found).
Get Python $need one of these ways, then run the same make command again:
  - uv:      uv python install $need && make PYTHON="\$(uv python find $need)" ...
  - conda:   conda create -n py$need python=$need && make PYTHON="\$(conda run -n py$need which python)" ...
  - Debian/Ubuntu: apt install python$need python$need-venv   (Ubuntu: from the deadsnakes PPA)
  - macOS:   brew install python@$need
  - pyenv:   pyenv install $need && pyenv local $need
EOF
    exit 2
  fi
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)

case "$(uname -s)" in
  Darwin) torch_spec="torch==$torch_version" ;;  # PyPI's macOS wheels are the CPU build
  *) torch_spec="torch==$torch_version+cpu" ;;
esac
if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__ != sys.argv[1].split('==')[1])" "$torch_spec" 2>/dev/null; then
  if ! "${pip[@]}" --no-deps "$torch_spec" 2>/dev/null; then
    echo "setup: pip's own indexes have no $torch_spec; asking PyTorch's CPU index ($torch_index) for torch alone"
    if ! "${pip[@]}" --no-deps --index-url "$torch_index" --timeout 20 --retries 1 "$torch_spec"; then
      cat >&2 <<EOF
setup: could not install $torch_spec, the CPU build of PyTorch that requirements.lock needs.
It comes from PyTorch's CPU wheel index, $torch_index, which did not answer or does not serve this platform.
Check that this machine reaches it, or point TORCH_INDEX at a mirror of it (or a folder: pip's --find-links works too,
e.g. PIP_FIND_LINKS=/path/to/wheels), then run the same make command again.
EOF
      exit 3
    fi
  fi
fi
"${pip[@]}" -r "$root/requirements.lock"
"${pip[@]}" --no-deps -r "$root/requirements-data.txt"
"${pip[@]}" --no-deps --no-build-isolation -e "$root"
"$venv/bin/python" -c "import torch; assert not torch.version.cuda, 'expected the CPU build of torch, got CUDA ' + torch.version.cuda"
