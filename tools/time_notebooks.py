"""Run every notebook top to bottom, the way `make notebooks` (nbmake) does, and time each one.

    python tools/time_notebooks.py [--size ci] [--json results/notebooks_<machine>.json] [notebooks/*.ipynb]
    python tools/time_notebooks.py --size demo     # `make warm`: the suite into the run cache before a class
    python tools/time_notebooks.py --size demo --alone --json results/notebooks_cpu_demo.json   # each alone, empty cache
    python tools/time_notebooks.py --size demo --cold-warm --verdicts --json results/notebooks_cpu_demo.json
    python tools/time_notebooks.py --size demo --json results/notebooks_cpu_demo.json --update notebooks/03_*.ipynb
    python tools/time_notebooks.py --json results/notebooks_cpu_demo.json --merge /tmp/nb04_demo.json

`--cold-warm` runs the suite twice in order, on an empty run cache of its own (a temporary MTST_CACHE_DIR): the first
pass is the cold run (what one notebook leaves in the cache, the next may reuse), the second the warm run (each
notebook again, its runs in the cache). `--verdicts` records the claims verdicts of notebooks 03 and 04 from the cold
pass in results/verdicts.json. Plots stay on (the inline backend), as in a JupyterLab session.

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
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROBE = ("import torch as _t, json as _j\n"
         "print('MTST_PROBE', _j.dumps({'cuda': _t.cuda.is_available(), "
         "'peak_gpu_mib': _t.cuda.max_memory_allocated() / 2**20 if _t.cuda.is_available() else None}))")


# Appended to notebooks 03 and 04 by --verdicts: their claims table (the variable `table`) and the mean test score of
# each scenario or scheme (`grid`, `schemes_table`), as JSON.
VERDICTS_PROBE = ("import json as _j\nprint('MTST_VERDICTS', _j.dumps({'verdicts': table.verdict.to_dict(), 'means': "
                  "(grid if 'grid' in globals() else schemes_table)['mean'].to_dict(), 'run': globals().get('run_info')}))")


def time_notebook(path: Path, timeout: int = 600, verdicts: bool = False) -> dict:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    if verdicts:
        nb.cells.append(nbformat.v4.new_code_cell(VERDICTS_PROBE))
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
    for cell in nb.cells[-2:]:
        for out in cell.get("outputs", []):
            for line in out.get("text", "").splitlines():
                if line.startswith("MTST_PROBE "):
                    probe.update(json.loads(line.split(" ", 1)[1]))
                elif line.startswith("MTST_VERDICTS "):
                    probe["verdicts"] = json.loads(line.split(" ", 1)[1])
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
    from mtst.lab.speed_tables import notebook_entries

    by_name = {n["notebook"]: n for r in runs for n in notebook_entries(r)}
    rows = [by_name[k] for k in sorted(by_name)]
    latest = max(rows, key=lambda n: n["date"])
    return {"benchmark": "notebooks", "size": first["size"], "notebooks": rows, "total_s": round(sum(n["wall_time_s"] for n in rows), 1),
            "commit": latest["commit"], "date": latest["date"], "hardware": first["hardware"]}


def _say(r: dict, label: str) -> None:
    print(f"{r['notebook']}{' (' + label + ')' if label else ''}: {r['wall_time_s']:.1f} s, "
          f"{'passed' if r['passed'] else 'FAILED ' + str(r['error'])}"
          + (f", peak GPU memory {r['peak_gpu_mib']:.0f} MiB" if r.get("peak_gpu_mib") is not None else ""), flush=True)


def _record_verdicts(rows: list[dict], size: str) -> None:
    import pandas as pd

    from mtst.lab import verdicts

    found = {r["notebook"]: r["verdicts"] for r in rows if "verdicts" in r}
    kinds = {"03": "freezing", "04": "layerwise"}
    if len(found) != 2:
        raise SystemExit(f"--verdicts needs notebooks 03 and 04 to run and pass; got verdicts from {sorted(found) or 'none'}")
    tables = {kinds[name[:2]]: pd.DataFrame({"verdict": v["verdicts"]}) for name, v in found.items()}
    means = {kinds[name[:2]]: v["means"] for name, v in found.items()}
    runs = {kinds[name[:2]]: v.get("run") for name, v in found.items()}
    taught = verdicts.lessons(means["freezing"], means["layerwise"])
    rec = verdicts.record(tables, size, seed=0, notebooks={kinds[n[:2]]: n for n in found}, taught=taught, runs=runs, means=means)
    print(f"wrote {verdicts.PATH.relative_to(ROOT)}: " + ", ".join(f"{e['claim']} {e['same']}" for e in rec["claims"])
          + "; lessons: " + "; ".join(f"{e['lesson']}: {e['here']}" for e in taught))


def _alone(paths: list[Path], args) -> int:
    """Each notebook opened alone, as a learner who starts with it would: a run cache of its own, empty."""
    if not args.json or not args.json.exists():
        raise SystemExit("--alone adds alone_s to an existing timing file: give --json results/notebooks_<machine>.json")
    from mtst.lab.provenance import provenance

    record = json.loads(args.json.read_text())
    if record["size"] != args.size or record["hardware"] != provenance()["hardware"]:
        raise SystemExit(f"{args.json} holds timings at size {record['size']} on {record['hardware']}; time alone on the same machine and size")
    os.environ.pop("MTST_RUN_CACHE", None)
    ok = True
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="mtst-run-cache-") as cache:
            os.environ["MTST_CACHE_DIR"] = cache
            r = time_notebook(path.resolve(), args.timeout)
        _say(r, "alone")
        ok &= r["passed"]
        for n in record["notebooks"]:
            if n["notebook"] == r["notebook"]:
                n["alone_s"], n["alone_commit"] = r["wall_time_s"], provenance()["commit"]
    args.json.write_text(json.dumps(record, indent=2))
    print("wrote", args.json)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", type=Path)
    p.add_argument("--size", default="ci", choices=["ci", "demo", "full"])
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    p.add_argument("--update", action="store_true", help="fold the new timings into the existing --json file")
    p.add_argument("--cold-warm", action="store_true", help="run the suite twice on an empty run cache of its own: cold, then warm")
    p.add_argument("--alone", action="store_true", help="each notebook alone on an empty run cache of its own; its time goes into the --json "
                   "file's entry for it as alone_s, the rest of the file kept")
    p.add_argument("--verdicts", action="store_true", help="record the claims verdicts of 03 and 04 (cold pass) in results/verdicts.json")
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
    if args.size == "demo":
        os.environ.pop("MTST_SIZE", None)  # the size a notebook opens with, as in JupyterLab
    else:
        os.environ["MTST_SIZE"] = args.size
    os.environ.pop("MPLBACKEND", None)  # plots on: the inline backend, figures as images
    # The kernels run as under `make lab`, whose Makefile sets glibc to keep freed blocks (steps ~1.5x faster on a CPU;
    # tools/bench_malloc.py): a timing without them would not be the time a class waits.
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "1073741824")
    os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "4294967296")
    from mtst.lab.provenance import git_commit, provenance

    os.environ.setdefault("MTST_COMMIT", git_commit())

    if args.update and args.json.exists():  # refused before hours of timing, not after
        merge_runs([json.loads(args.json.read_text()), {"size": args.size, "notebooks": [], **provenance()}])
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.alone:
        return _alone(paths, args)
    with tempfile.TemporaryDirectory(prefix="mtst-run-cache-") as cache:
        if args.cold_warm:
            os.environ["MTST_CACHE_DIR"] = cache  # empty: nothing prepared beforehand
            os.environ.pop("MTST_RUN_CACHE", None)
        rows = []
        for path in paths:
            rows.append(time_notebook(path.resolve(), args.timeout, verdicts=args.verdicts and path.name[:2] in ("03", "04")))
            _say(rows[-1], "cold" if args.cold_warm else "")
        if args.cold_warm:
            for row, path in zip(rows, paths):
                warm = time_notebook(path.resolve(), args.timeout)
                _say(warm, "warm")
                row["warm_s"], row["passed"] = warm["wall_time_s"], row["passed"] and warm["passed"]
    if args.verdicts:
        _record_verdicts(rows, args.size)
    for r in rows:
        r.pop("verdicts", None)
    out = {"benchmark": "notebooks", "size": args.size, "notebooks": rows,
           "total_s": round(sum(r["wall_time_s"] for r in rows), 1), **provenance()}
    if args.cold_warm:
        out["mode"] = "cold, then warm: the suite in order on an empty run cache, then again"
        out["total_warm_s"] = round(sum(r["warm_s"] for r in rows), 1)
    if args.update and args.json.exists():
        out = merge_runs([json.loads(args.json.read_text()), out])
    print(f"{len(rows)} notebooks in {out['total_s']:.0f} s" + (f", then {out['total_warm_s']:.0f} s warm" if args.cold_warm else "")
          + ("" if args.cold_warm else f"; their runs are in the run cache ({os.environ.get('MTST_CACHE_DIR') or 'the default folder'})"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
        print("wrote", args.json)
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
