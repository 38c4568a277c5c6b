"""`make results`: the measured experiments, written to results/<experiment>.csv with a .json of provenance.

    python -m mtst.lab.results --size full --seeds 0 1 2 [--experiments single_vs_multi] [--jobs 3]
    python -m mtst.lab.results --size full --experiments layerwise_lr --resume DIR   # again after a stop: picks up
    python -m mtst.lab.results --docs      # re-render the tables in README.md and docs/ from the results files

Each CSV row is one measurement: experiment, setting, seed, task, metric, value (plus steps and wall time).
The JSON beside it says what ran where: commit, hardware, date, size, seeds, wall time, config, budget cuts.
The experiments themselves are in `mtst.lab.experiments`, the files in `mtst.lab.store`, the tables made from them in
`mtst.lab.tables` and `mtst.lab.docs`.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

from .. import distributed
from ..pretrained import ENCODERS
from ..runcache import configure
from . import store
from .docs import render_all
from .experiments import EXPERIMENTS, SHARED_SETUP, UNITS, units_of
from .kept import Resume
from .provenance import date_span, git_commit


def _finish(name: str, rows: list[dict], size: str, seeds: list[int], wall: float, notes: str, out: Path | None) -> None:
    if not distributed.is_main_process():  # under `accelerate launch`, every process ran every run; one writes
        return
    path = store.write(name, rows, size, seeds, wall, notes)
    print(f"wrote {path.relative_to(store.ROOT)}", flush=True)
    print(store.summarize(pd.read_csv(path)).to_string(index=False), flush=True)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for f in (path, path.with_suffix(".json")):
            (out / f.name).write_bytes(f.read_bytes())


def _resumed_note(notes: str, runs: list[dict], picked_up: int, folder: Path) -> str:
    """The notes of a grid that earlier calls helped make: each call's --notes once (with how many runs it made, where
    they differ), then how many runs were picked up."""
    if not picked_up:
        return notes
    made = collections.Counter(r.get("notes", notes) for r in runs)  # a run kept before runs kept notes: this call's
    if len(made) > 1:
        notes = " | ".join(f"{n} run{'s' * (n > 1)}: {note or 'no notes'}" for note, n in made.items())
    span = date_span(r["date"] for r in runs if r.get("date"))  # the file's own date is only the last call's
    when = f", kept {span}" if span else ""
    # Never a path of the machine it ran on: the folder relative to the checkout, else its name alone.
    where = folder.resolve().relative_to(store.ROOT) if folder.resolve().is_relative_to(store.ROOT) else folder.name
    return (notes + "; " if notes else "") + f"resumed: {picked_up} of {len(runs)} runs were made by an earlier call ({where}{when})"


def run(experiments: list[str], size: str, seeds: list[int], jobs: int = 1, notes: str = "", out: Path | None = None,
        units: list[str] | None = None, deadline_s: float | None = None, resume: Path | None = None) -> None:
    """Run the experiments and write each one's results file as soon as it is complete.

    With jobs > 1 every (experiment, seed, unit) is its own process, `jobs` at a time, across experiments (a small
    model leaves a GPU mostly idle). With `deadline_s`, runs still going at the deadline are stopped and each
    unfinished experiment is written from the runs that finished, its notes saying which are missing. With `resume`
    (a folder, see `Resume`) each (seed, unit) run is kept there as it finishes, and the runs it already holds are
    not run again."""
    if jobs <= 1 and resume is None:
        for name in experiments:
            t0 = time.perf_counter()
            rows = [r for s in seeds for u in (units or [None]) for r in EXPERIMENTS[name](size, s, u)]
            _finish(name, rows, size, seeds, time.perf_counter() - t0, notes, out)
        return
    store.RESULTS_DIR.mkdir(exist_ok=True)
    start = time.perf_counter()
    split = {name: [None] if name in SHARED_SETUP and not units else [u for u in units_of(name) if not units or u in units]
             for name in experiments}  # None: all the units in one call
    planned = {name: [(s, u) for s in seeds for u in split[name]] for name in experiments}
    if not any(planned.values()):
        raise SystemExit(f"nothing to run: none of the units {units} belongs to {experiments}; units: {UNITS}")
    keeper = {name: Resume(resume, name, size, store.config_of(name, size)) for name in experiments} if resume is not None else {}
    done = {name: keeper[name].finished(planned[name]) if keeper else {} for name in experiments}  # refuses before running
    earlier = {name: sum(r["wall_time_s"] for r in done[name].values()) for name in experiments}
    picked_up = {name: len(done[name]) for name in experiments}
    todo = [(name, s, u) for name in experiments for s, u in planned[name] if (s, u) not in done[name]]
    for name in experiments:
        if picked_up[name]:
            print(f"{name}: {picked_up[name]} of {len(planned[name])} runs already in {resume}; running the other {len(planned[name]) - picked_up[name]}", flush=True)
    first: dict[str, float] = {}
    running: list[tuple[subprocess.Popen, tuple, Path, float]] = []

    def write_done(name, partial: bool):
        finished = [(key, done[name][key]) for key in planned[name] if key in done[name]]
        if not finished:
            print(f"{name}: no run finished, nothing written", flush=True)
            return
        rows = [r for _, run_ in finished for r in run_["rows"]]
        note = _resumed_note(notes, [run_ for _, run_ in finished], picked_up[name], resume)
        if partial:
            missing = [f"{u or 'all units'}@seed{s}" for s, u in planned[name] if (s, u) not in done[name]]
            note = (note + "; " if note else "") + (f"partial: {len(finished)} of {len(planned[name])} runs finished within the "
                                                    f"{deadline_s:.0f} s budget; missing {', '.join(missing)}")
        wall = time.perf_counter() - first.get(name, time.perf_counter()) + earlier[name]
        _finish(name, rows, size, sorted({s for (s, _), _ in finished}), wall, note, out)

    def finish(name, s, u, rows, t0):
        wall = time.perf_counter() - t0
        done[name][(s, u)] = keeper[name].keep(s, u, rows, wall, notes) if keeper else {"rows": rows, "wall_time_s": wall, "notes": notes}
        if len(done[name]) == len(planned[name]):
            write_done(name, partial=False)

    for name in experiments:  # every run already kept: write the file from them
        if planned[name] and len(done[name]) == len(planned[name]):
            write_done(name, partial=False)
    if jobs <= 1:  # one run at a time, in this process
        for name, s, u in todo:
            t0 = time.perf_counter()
            first.setdefault(name, t0)
            finish(name, s, u, EXPERIMENTS[name](size, s, u), t0)
        return
    try:
        while todo or running:
            late = deadline_s is not None and time.perf_counter() - start > deadline_s
            if late:
                print(f"deadline of {deadline_s:.0f} s reached: stopping {len(running)} runs, {len(todo)} not started", flush=True)
                break
            while todo and len(running) < jobs:
                name, s, u = todo.pop(0)
                first.setdefault(name, time.perf_counter())
                part = store.RESULTS_DIR / f".{name}.{s}.{(u or 'all').replace(':', '_')}.json"
                part.unlink(missing_ok=True)
                cmd = [sys.executable, "-m", "mtst.lab.results", "--size", size, "--experiments", name, "--seeds", str(s),
                       *(["--unit", u] if u else []), "--part", str(part)]
                running.append((subprocess.Popen(cmd), (name, s, u), part, time.perf_counter()))
            time.sleep(1)
            for item in [x for x in running if x[0].poll() is not None]:
                running.remove(item)
                proc, (name, s, u), part, t0 = item
                if proc.returncode:
                    raise SystemExit(f"{name} {u or 'all units'} seed {s}: a child process failed with exit code {proc.returncode}")
                rows = json.loads(part.read_text())
                part.unlink()
                finish(name, s, u, rows, t0)
    finally:
        for proc, *_ in running:
            proc.kill()
        for proc, *_ in running:
            proc.wait()
    for name in experiments:  # only after a deadline: the experiments that did not complete
        if len(done[name]) < len(planned[name]):
            write_done(name, partial=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mtst.lab.results", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="full")
    p.add_argument("--encoder", choices=list(ENCODERS), default=None,
                   help="the packaged encoder the runs fine-tune (MTST_ENCODER; default all-MiniLM-L6-v2), recorded in the provenance")
    p.add_argument("--experiments", nargs="+", default=["single_vs_multi"], choices=list(EXPERIMENTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=1, help="run seeds in parallel processes (useful on a GPU)")
    p.add_argument("--part", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--unit", default=None, help=argparse.SUPPRESS)
    p.add_argument("--units", nargs="+", default=None, help="run only these units of the experiment (e.g. ner:fp32 ner:bf16)")
    p.add_argument("--epochs", type=float, default=None, help="override the recipe's epochs (recorded in the provenance)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=None,
                   help="override the recipe's precision (auto: bf16 on CUDA, fp32 on CPU; recorded in the provenance)")
    p.add_argument("--eval-every", type=int, default=None, help="validate every N steps instead of 4 times a run (recorded)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a bar over each run's steps (default: when stderr is a terminal and --jobs is 1)")
    p.add_argument("--notes", default="", help="what the provenance should say about this run (budget cuts, machine)")
    p.add_argument("--out", type=Path, default=None, help="also copy each results file here as soon as it is written")
    p.add_argument("--deadline-s", type=float, default=None, help="with --jobs: stop runs still going after this many seconds and "
                   "write what finished, saying what is missing")
    p.add_argument("--resume", type=Path, default=None, metavar="DIR",
                   help="keep each finished (seed, unit) run in DIR, and skip the runs DIR already holds: the same command "
                   "again picks up a grid where a stopped call left it (runs of another commit, size, recipe or machine are refused)")
    p.add_argument("--merge", type=Path, nargs="+", default=None, metavar="DIR",
                   help="write results/<experiment>.csv from the files of that name in these folders (a grid split over calls)")
    p.add_argument("--tag", default=None, help="with --merge: write results/<experiment>.<tag>.csv beside the main file "
                   "(a later round of a sweep, at another commit or on other hardware)")
    p.add_argument("--docs", action="store_true", help="re-render the tables in README.md and docs/ from results/ and exit")
    args = p.parse_args(argv)
    if args.docs:

        for path in render_all():
            print(f"rendered {path.relative_to(store.ROOT)}")
        return 0
    if args.encoder is not None:
        os.environ["MTST_ENCODER"] = args.encoder  # child processes (--jobs) inherit it
    unknown = [u for u in args.units or [] if not any(u in units_of(name) for name in args.experiments if name in UNITS)]
    if unknown:
        p.error(f"unknown units {unknown} for {args.experiments}; units: " + "; ".join(f"{n}: {' '.join(units_of(n))}" for n in args.experiments if n in UNITS))
    if distributed.current().active and (args.jobs > 1 or args.resume is not None):
        p.error("under `accelerate launch` every run trains on all the processes together, one run at a time: drop --jobs "
                "and --resume (or run them with plain python)")
    if args.tag is not None and not args.merge:
        p.error("--tag names the file that --merge writes: pass --merge DIR... with it")
    if args.resume is not None and args.merge:
        p.error("--resume runs a grid, --merge joins finished ones: call them one at a time")
    if args.merge:
        for name in args.experiments:
            print("wrote", store.merge(name, args.merge, args.tag).relative_to(store.ROOT))
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # A results file measures runs made for it: never one loaded from the run cache (child processes inherit this).
    os.environ["MTST_RUN_CACHE"] = "0"

    configure(enabled=False)

    # The commit is read once, at the start: the provenance names the code that ran, even if the tree moves on.
    os.environ.setdefault("MTST_COMMIT", git_commit())
    if args.epochs is not None:
        os.environ["MTST_RESULTS_EPOCHS"] = str(args.epochs)
    if args.precision is not None:
        os.environ["MTST_RESULTS_PRECISION"] = args.precision
    if args.eval_every is not None:
        os.environ["MTST_RESULTS_EVAL_EVERY"] = str(args.eval_every)
    show = args.progress if args.progress is not None else (sys.stderr.isatty() and args.jobs <= 1 and not args.part)
    os.environ["MTST_RESULTS_PROGRESS"] = "1" if show else "0"
    warnings.filterwarnings("ignore", message=".*truncated")
    if args.part:  # a child process of --jobs: one experiment, one seed, rows to a JSON file
        rows = EXPERIMENTS[args.experiments[0]](args.size, args.seeds[0], args.unit)
        args.part.write_text(json.dumps(rows))
        return 0
    run(args.experiments, args.size, args.seeds, args.jobs, args.notes, args.out, args.units, args.deadline_s, args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
