"""Writes that are whole or absent: a reader (another kernel, a later run) never sees half a checkpoint or cache entry."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def cache_folder() -> Path:
    """Where mtst keeps what it can make again (finished runs, unpacked encoders): $MTST_CACHE_DIR, else
    $XDG_CACHE_HOME/mtst, else ~/.cache/mtst."""
    if os.environ.get("MTST_CACHE_DIR"):
        return Path(os.environ["MTST_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mtst"


@contextlib.contextmanager
def atomic_folder(path: Path):
    """Write a folder's files into a temporary sibling, then rename it into place: never half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        try:
            tmp.rename(path)
        except OSError:  # another writer put the same folder in place first: theirs is as good as ours
            if not path.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write a file through a temporary sibling and os.replace: two writers leave one whole file, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
