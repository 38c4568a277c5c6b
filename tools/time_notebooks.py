"""Run every notebook top to bottom, the way `make notebooks` (nbmake) does, and time each one.

    python tools/time_notebooks.py [--size ci] [--json results/notebooks_<machine>.json] [notebooks/*.ipynb]
    python tools/time_notebooks.py --size demo --json results/notebooks_cpu_demo.json --update notebooks/03_*.ipynb
    python tools/time_notebooks.py --json results/notebooks_cpu_demo.json --merge /tmp/nb04_demo.json

Writes one JSON with provenance (commit, hardware, date, size) and, per notebook, its wall time, whether it passed
and the peak memory the kernel allocated on the GPU (read by a cell appended in memory; the files are not changed).
The README's notebook-times table is rendered from these files.

A whole suite at `demo` size takes hours on a small CPU, so it can be timed a few notebooks at a time: `--update`
folds the new timings into the existing --json file, and `--merge` folds in the files of earlier runs. Each notebook
then keeps the commit and date of its own run; merging refuses runs of another size or on other hardware.
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


def merge_runs(runs: list[dict]) -> dict:
    """One record from runs on one machine at one size; a later run's timing of a notebook replaces an earlier one.
    The file's commit and date are those of its latest timing; each notebook keeps its own."""
    first = runs[0]
    for r in runs[1:]:
        for key, a, b in (("size", first["size"], r["size"]), ("hardware", first["hardware"], r["hardware"])):
            if a != b:
                raise ValueError(f"cannot merge notebook timings of different {key}: {a} and {b}; time them again on one "
                                 f"machine at one size, or write them to separate --json files")
    from mtst.speed_tables import notebook_entries

    by_name = {n["notebook"]: n for r in runs for n in notebook_entries(r)}
    rows = [by_name[k] for k in sorted(by_name)]
    latest = max(rows, key=lambda n: n["date"])
    return {"benchmark": "notebooks", "size": first["size"], "notebooks": rows, "total_s": round(sum(n["wall_time_s"] for n in rows), 1),
            "commit": latest["commit"], "date": latest["date"], "hardware": first["hardware"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", type=Path)
    p.add_argument("--size", default="ci", choices=["ci", "demo", "full"])
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    p.add_argument("--update", action="store_true", help="fold the new timings into the existing --json file")
    p.add_argument("--merge", nargs="+", type=Path, default=None, metavar="RUN.json",
                   help="fold these earlier runs' files into --json (which may not exist yet), time nothing, and exit")
    args = p.parse_args(argv)
    if (args.update or args.merge) and not args.json:
        p.error("--update and --merge write to the file given by --json; add --json results/notebooks_<machine>.json")
    if args.merge:
        old = [json.loads(args.json.read_text())] if args.json.exists() else []
        merged = merge_runs(old + [json.loads(f.read_text()) for f in args.merge])
        args.json.write_text(json.dumps(merged, indent=2))
        print(f"wrote {args.json}: {', '.join(n['notebook'] for n in merged['notebooks'])}")
        return 0
    os.environ["MTST_SIZE"] = args.size
    from mtst.provenance import git_commit, provenance

    os.environ.setdefault("MTST_COMMIT", git_commit())

    if args.update and args.json.exists():  # refused before hours of timing, not after
        merge_runs([json.loads(args.json.read_text()), {"size": args.size, "notebooks": [], **provenance()}])
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    rows = []
    for path in paths:
        rows.append(time_notebook(path.resolve(), args.timeout))
        r = rows[-1]
        print(f"{r['notebook']}: {r['wall_time_s']:.1f} s, {'passed' if r['passed'] else 'FAILED ' + str(r['error'])}"
              + (f", peak GPU memory {r['peak_gpu_mib']:.0f} MiB" if r.get("peak_gpu_mib") is not None else ""), flush=True)
    out = {"benchmark": "notebooks", "size": args.size, "notebooks": rows,
           "total_s": round(sum(r["wall_time_s"] for r in rows), 1), **provenance()}
    if args.update and args.json.exists():
        out = merge_runs([json.loads(args.json.read_text()), out])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
        print("wrote", args.json)
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
