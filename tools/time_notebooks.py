"""Run every notebook top to bottom, the way `make notebooks` (nbmake) does, and time each one.

    python tools/time_notebooks.py [--size ci] [--json results/notebooks_<machine>.json] [notebooks/*.ipynb]

Writes one JSON with provenance (commit, hardware, date, size) and, per notebook, its wall time, whether it passed
and the peak memory the kernel allocated on the GPU (read by a cell appended in memory; the files are not changed).
The README's notebook-times table is rendered from these files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROBE = ("import torch as _t, json as _j\n"
         "print('MTST_PROBE', _j.dumps({'cuda': _t.cuda.is_available(), "
         "'peak_gpu_mib': _t.cuda.max_memory_allocated() / 2**20 if _t.cuda.is_available() else None}))")


def time_notebook(path: Path, timeout: int = 600) -> dict:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    error = None
    try:
        client.execute()
    except Exception as e:  # a failing notebook is recorded, and the exit code says so
        error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
    wall = time.perf_counter() - t0
    probe = {}
    for out in nb.cells[-1].get("outputs", []):
        for line in out.get("text", "").splitlines():
            if line.startswith("MTST_PROBE "):
                probe = json.loads(line.split(" ", 1)[1])
    return {"notebook": path.name, "wall_time_s": round(wall, 1), "passed": error is None, "error": error, **probe}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", type=Path)
    p.add_argument("--size", default="ci", choices=["ci", "demo", "full"])
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = p.parse_args(argv)
    os.environ["MTST_SIZE"] = args.size
    os.environ.setdefault("MTST_COMMIT", __import__("mtst.bench", fromlist=["git_commit"]).git_commit())
    from mtst.bench import provenance

    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    rows = []
    for path in paths:
        rows.append(time_notebook(path.resolve(), args.timeout))
        r = rows[-1]
        print(f"{r['notebook']}: {r['wall_time_s']:.1f} s, {'passed' if r['passed'] else 'FAILED ' + str(r['error'])}"
              + (f", peak GPU memory {r['peak_gpu_mib']:.0f} MiB" if r.get("peak_gpu_mib") is not None else ""), flush=True)
    out = {"benchmark": "notebooks", "size": args.size, "notebooks": rows,
           "total_s": round(sum(r["wall_time_s"] for r in rows), 1), **provenance()}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
        print("wrote", args.json)
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
