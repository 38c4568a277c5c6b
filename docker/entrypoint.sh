#!/bin/sh
# The container's commands: lab (the default), demo, notebooks [NOTEBOOK...], or any command to run as it is.
set -e
case "${1:-lab}" in
  lab)
    shift || true
    # All interfaces inside the container (the port is published by docker run -p); a token is required, and the
    # log prints the URL that holds it.
    exec jupyter lab --ServerApp.ip=0.0.0.0 --ServerApp.port=8888 --ServerApp.open_browser=False \
      --ServerApp.root_dir=/home/mtst/mtst/notebooks "$@" ;;
  demo)
    shift
    exec python -m mtst demo "$@" ;;
  notebooks)
    shift
    cd /home/mtst/mtst
    if [ "$#" -eq 0 ]; then set -- notebooks/*.ipynb; else set -- $(for n in "$@"; do echo "notebooks/${n#notebooks/}"; done); fi
    exec python -m pytest -q -p no:cacheprovider --nbmake --nbmake-timeout=600 "$@" ;;
  *)
    exec "$@" ;;
esac
