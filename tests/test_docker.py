"""The container, tested from the host: `make container` builds the image `mtst` (make docker) and runs these. The
server asks for its token and does not run as root; the demo and a notebook run with the network cut; the image is
the CPU build, carries none of this host's pip settings or certificates, and stays under 3 GiB."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from helpers import http_status

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent
IMAGE = "mtst"


def docker(*args: str, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and run.returncode:
        pytest.fail(f"docker {' '.join(args)} failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return run


@pytest.fixture(scope="module")
def image():
    if shutil.which("docker") is None or docker("info", check=False).returncode:
        pytest.fail("no Docker daemon answers: run `make container` (it starts dockerd and builds the image)")
    if docker("image", "inspect", IMAGE, check=False).returncode:
        subprocess.run(["bash", str(ROOT / "tools" / "docker_build.sh"), IMAGE], check=True, timeout=1800)
    return IMAGE


def test_jupyterlab_asks_for_its_token_and_does_not_run_as_root(image):
    name = f"mtst-test-{secrets.token_hex(4)}"
    try:
        docker("run", "-d", "--name", name, "-p", "127.0.0.1::8888", image)
        port = docker("port", name, "8888/tcp").stdout.strip().splitlines()[0].rsplit(":", 1)[1]
        deadline = time.monotonic() + 90
        while True:
            logs = docker("logs", name)
            m = re.search(r"http://127\.0\.0\.1:8888/lab\?token=([0-9a-f]+)", logs.stderr + logs.stdout)
            if m or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert m, f"no URL with a token in the log within 90 s:\n{logs.stderr[-2000:]}"
        token = m.group(1)
        base = f"http://127.0.0.1:{port}"
        assert http_status(f"{base}/api/kernels") == 403
        assert http_status(f"{base}/api/kernels?token=wrong{token}") == 403
        assert http_status(f"{base}/api/kernels?token={token}") == 200
        processes = docker("top", name, "-eo", "pid,uid,args").stdout.splitlines()[1:]
        assert processes and all(line.split()[1] == "1000" for line in processes), processes
        assert docker("exec", name, "pwd").stdout.strip() == "/home/mtst/mtst/notebooks"
    finally:
        docker("rm", "-f", name, check=False)


def test_the_demo_runs_with_the_network_cut(image):
    run = docker("run", "--rm", "--network", "none", image, "demo", "--steps", "5", timeout=900)
    out = run.stdout
    for n in range(1, 6):
        assert f"\n[{n}] " in out, f"section {n} missing:\n{out[-3000:]}"
    assert "mtst demo: done in" in out and "Traceback" not in run.stderr


def test_a_notebook_runs_inside_with_the_network_cut(image):
    run = docker("run", "--rm", "--network", "none", "-e", "MTST_SIZE=ci", image, "notebooks", "01_sentence_encoder.ipynb", timeout=900)
    assert "1 passed" in run.stdout, run.stdout[-3000:]


def test_the_image_is_the_cpu_build_without_this_hosts_settings_and_small(image):
    probe = ("import torch, site, pathlib; print('cuda', torch.version.cuda); "
             "print('pth', sorted(p.name for d in site.getsitepackages() for p in pathlib.Path(d).glob('*.pth')))")
    out = docker("run", "--rm", "--network", "none", image, "python", "-c", probe).stdout
    assert "cuda None" in out
    assert "sandboxing" not in out and "egress" not in out, out  # no .pth of the host's own Python
    settings = docker("run", "--rm", "--network", "none", image, "sh", "-c",
                      "pip config list; ls /etc/pip.conf /etc/xdg/pip ~/.config/pip ~/.pip /usr/local/share/ca-certificates/* 2>/dev/null; true").stdout
    assert settings.strip() == "", f"pip settings or certificates in the image:\n{settings}"
    size = int(docker("image", "inspect", image, "--format", "{{.Size}}").stdout)
    # 3 GiB: the goal set when the 12-layer encoder's packages (386 MB installed) joined the image
    assert size <= 3 * 2**30, f"the image is {size / 2**20:,.0f} MiB, over 3 GiB"
