"""What several test modules share besides fixtures (tests/conftest.py holds those)."""

import socket
import urllib.error
import urllib.request


def short_config(**kw):
    """A run of 6 steps of 8 on the CPU, without a progress bar; keyword arguments change it."""
    import mtst

    return mtst.TrainConfig(**{"steps": 6, "batch_size": 8, "lr": 1e-4, "head_lr": 1e-2, "progress": False, "device": "cpu", **kw})


def free_port() -> int:
    """A localhost port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str) -> int:
    """The HTTP status a GET of url answers with (4xx and 5xx included, not raised)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
