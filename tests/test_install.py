"""The two README commands off these machines: the set-up scripts behind `make`, run as a learner's laptop would run them
(pip with its defaults, a stand-in for PyTorch's CPU index), and with the tools a laptop may lack hidden from PATH."""

import functools
import http.server
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"
# What the scripts may call besides the tools a test hides: a PATH of exactly these.
BASICS = ("bash", "sh", "env", "id", "uname", "cat", "dirname", "mkdir", "rm", "ls", "seq", "sleep", "timeout", "awk",
          "tail", "setsid", "grep", "sed", "touch", "tr", "head")


def bare_path(tmp_path: Path, **stubs: str) -> str:
    """A folder holding only BASICS (linked) and the given stub scripts: a PATH without apt-get, docker, chromium, python."""
    bin_ = tmp_path / "bin"
    bin_.mkdir(exist_ok=True)
    for name in BASICS:
        if (found := shutil.which(name)) and not (bin_ / name).exists():
            (bin_ / name).symlink_to(found)
    for name, body in stubs.items():
        (bin_ / name).write_text("#!/bin/bash\n" + body + "\n")
        (bin_ / name).chmod(0o755)
    return str(bin_)


def run(cmd, tmp_path, env=None, timeout=120, **stubs) -> subprocess.CompletedProcess:
    env = {"HOME": str(tmp_path), "PATH": bare_path(tmp_path, **stubs), **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=tmp_path)


# --------------------------------------------------------------------------- Python


def test_another_python_stops_at_once_naming_the_version_and_how_to_get_it(tmp_path):
    stub = 'echo 3.12'  # answers the version probe as Python 3.12 would
    out = run(["bash", str(TOOLS / "setup_venv.sh"), str(tmp_path / "venv")], tmp_path, python3=stub)
    assert out.returncode == 2, out.stderr
    assert "mtst needs Python 3.11" in out.stderr and "python3 is" in out.stderr
    for how in ("uv python install 3.11", "conda create", "apt install python3.11", "brew install python@3.11"):
        assert how in out.stderr
    assert not (tmp_path / "venv").exists()  # nothing was made


def test_a_named_python_of_another_version_is_refused(tmp_path):
    stub = tmp_path / "python3.13"
    stub.write_text("#!/bin/bash\necho 3.13\n")
    stub.chmod(0o755)
    out = run(["bash", str(TOOLS / "setup_venv.sh"), str(tmp_path / "venv")], tmp_path, env={"PYTHON": str(stub)})
    assert out.returncode == 2 and f"PYTHON={stub} is 3.13" in out.stderr


# --------------------------------------------------------------------------- Chromium


def test_without_chromium_or_apt_the_browser_is_playwrights_own(tmp_path):
    log = tmp_path / "calls"
    playwright = tmp_path / "playwright"
    playwright.write_text(f'#!/bin/bash\necho "$@" >> {log}\n')
    playwright.chmod(0o755)
    out = run(["bash", str(TOOLS / "need_chromium.sh"), str(playwright)], tmp_path)
    assert out.returncode == 0, out.stderr
    assert log.read_text().split("\n")[0] == "install chromium" and "Playwright's own Chromium" in out.stdout


def test_when_no_chromium_can_be_had_the_message_names_the_ways(tmp_path):
    out = run(["bash", str(TOOLS / "need_chromium.sh"), str(tmp_path / "no-playwright")], tmp_path)
    assert out.returncode == 1
    assert "could not get a Chromium" in out.stderr and "MTST_CHROMIUM" in out.stderr and "install chromium" in out.stderr


def test_a_chromium_on_path_is_used_and_nothing_installed(tmp_path):
    out = run(["bash", str(TOOLS / "need_chromium.sh"), str(tmp_path / "no-playwright")], tmp_path, chromium="exit 0")
    assert out.returncode == 0 and out.stdout == ""


# --------------------------------------------------------------------------- Docker


def test_without_a_docker_daemon_or_apt_the_container_tests_stop_naming_how_to_get_one(tmp_path):
    out = run(["bash", str(TOOLS / "docker_build.sh")], tmp_path)
    assert out.returncode == 4, out.stderr
    assert "no Docker daemon answers" in out.stderr and "Docker Desktop" in out.stderr and "systemctl start docker" in out.stderr


def test_a_running_docker_daemon_is_used_as_it_is(tmp_path):
    log = tmp_path / "calls"
    docker = f'echo "$@" >> {log}; [ "$1" = image ] && [ "$2" = inspect ] && [ "${{4:-}}" = --format ] && echo "built mtst: 1048576 bytes"; exit 0'
    out = run(["bash", str(TOOLS / "docker_build.sh")], tmp_path, docker=docker,
              dockerd=f'echo dockerd >> {log}', **{"apt-get": f'echo apt-get >> {log}'})
    assert out.returncode == 0, out.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "info" and "dockerd" not in calls and "apt-get" not in calls
    assert "build -t mtst ." in calls  # the plain build: the base image was there, PyPI inside the build
    assert "built mtst: 1 MiB" in out.stdout


# --------------------------------------------------------------------------- the install itself, from a fresh clone


def _torch_wheel() -> Path | None:
    """The CPU torch wheel this machine keeps on disk (where pip's find-links point), if any."""
    for folder in filter(None, os.environ.get("PIP_FIND_LINKS", "").split() + ["/opt/wheels"]):
        for wheel in sorted(Path(folder).glob("torch-2.13.0+cpu-*.whl")) if Path(folder).is_dir() else []:
            return wheel
    return None


class _Index(http.server.SimpleHTTPRequestHandler):
    """A stand-in for PyTorch's CPU index (PEP 503): /torch/ lists the wheel, which it serves; every request is logged."""

    def __init__(self, *a, wheel: Path, log: list, **kw):
        self.wheel, self.requests = wheel, log
        super().__init__(*a, **kw)

    def do_GET(self):
        self.requests.append(self.path)
        if self.path.rstrip("/") == "/torch":
            body = f'<html><body><a href="/files/{self.wheel.name}">{self.wheel.name}</a></body></html>'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == f"/files/{self.wheel.name}".replace("+", "%2B") or self.path == f"/files/{self.wheel.name}":
            self.send_response(200)
            self.send_header("Content-Length", str(self.wheel.stat().st_size))
            self.end_headers()
            with self.wheel.open("rb") as f:
                shutil.copyfileobj(f, self.wfile)
        else:
            self.send_error(404)

    def log_message(self, *_):
        pass


def _fresh_clone(tmp_path: Path) -> Path:
    """The checkout's tracked and untracked (not ignored) files, as a clone of this tree would hold them."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    dest = tmp_path / "mtst"
    for name in filter(None, files.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _laptop_env(tmp_path: Path, index: str) -> dict:
    """pip with its defaults, as on a laptop: no config file, no find-links (this machine's wheels on disk), PyPI only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV", "MAKE", "MFLAGS"))}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "TORCH_INDEX": index, "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PATH": ":".join(p for p in env["PATH"].split(":") if ".venv" not in p)}


@pytest.mark.install
@pytest.mark.skipif(_torch_wheel() is None, reason="no torch-2.13.0+cpu wheel on this machine's disk to serve")
def test_make_sets_up_a_fresh_clone_from_pypi_and_a_stand_in_for_pytorchs_cpu_index(tmp_path):
    requests: list[str] = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()),
                                             functools.partial(_Index, wheel=_torch_wheel(), log=requests))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        clone = _fresh_clone(tmp_path)
        env = _laptop_env(tmp_path, f"http://127.0.0.1:{server.server_port}/")
        t0 = time.perf_counter()
        out = subprocess.run(["make", ".venv/.installed"], cwd=clone, env=env, capture_output=True, text=True, timeout=1500)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        print(f"fresh install in {time.perf_counter() - t0:.0f} s")
    finally:
        server.shutdown()
    assert "pip's own indexes have no torch==2.13.0+cpu" in out.stdout  # PyPI alone has no CPU build: the index was asked
    assert any(r.startswith("/files/torch-2.13.0") for r in requests)  # and the wheel came from it
    probe = "import torch, mtst; print(torch.__version__, torch.version.cuda)"
    got = subprocess.run([str(clone / ".venv/bin/python"), "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert got.stdout.split() == ["2.13.0+cpu", "None"], got.stderr[-2000:]


@pytest.mark.install
def test_with_pytorchs_index_unreachable_the_install_stops_soon_naming_it(tmp_path):
    clone = _fresh_clone(tmp_path)
    dead = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    t0 = time.perf_counter()
    out = subprocess.run(["make", ".venv/.installed"], cwd=clone, env=_laptop_env(tmp_path, dead), capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "PyTorch's CPU wheel index" in out.stderr and dead in out.stderr and "TORCH_INDEX" in out.stderr
    assert time.perf_counter() - t0 < 180
    assert not (clone / ".venv/.installed").exists()
