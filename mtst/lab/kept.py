"""Runs kept across sessions: a grid too long for one sitting keeps each finished (seed, unit) run as a JSON file in a
folder (`python -m mtst.lab.results --resume DIR`), and a later call goes on from there. `load_kept` reads such a folder as
a results table while the grid is still going, so what has run so far is shown, and says how far it got."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from .experiments import COLUMNS, UNITS
from .provenance import date_span, git_commit, hardware


class Resume:
    """The folder of a resumable grid (`--resume DIR`): each finished (seed, unit) run of an experiment is kept there
    as one JSON file, with the commit, size, recipe and machine it ran with. The same command again skips the runs
    the folder holds, so a call that stops (a closed laptop, the end of a session) loses only the run in progress.
    A run that an earlier call made at another commit, size, recipe or machine is refused, before anything runs."""

    def __init__(self, folder: Path, experiment: str, size: str, config: dict):
        self.folder, self.experiment = Path(folder), experiment
        self.stamp = json.loads(json.dumps({"commit": git_commit(), "size": size, "config": config, "hardware": hardware()}))

    def path(self, seed: int, unit: str | None) -> Path:
        return self.folder / f"{self.experiment}.seed{seed}.{re.sub(r'[^A-Za-z0-9_.@+-]', '_', unit or 'all')}.json"

    def finished(self, todo: list[tuple[int, str | None]]) -> dict[tuple[int, str | None], dict]:
        """The runs of `todo` the folder already holds: {(seed, unit): {"rows", "wall_time_s", ...}}."""
        held = {}
        for seed, unit in todo:
            path = self.path(seed, unit)
            if not path.exists():
                continue
            run = json.loads(path.read_text())
            differ = differences(run["stamp"], self.stamp)
            if differ or (run["seed"], run["unit"]) != (seed, unit):
                what = ", ".join(f"{k} {a!r} there, {b!r} now" for k, a, b in differ) or f"unit {run['unit']!r} seed {run['seed']}"
                raise SystemExit(f"{path} holds a run of another recipe ({what}): a resumed grid must be one commit, size, "
                                 f"recipe and machine. Pass another --resume folder, or delete {path} to run it again.")
            held[(seed, unit)] = run
        return held

    def keep(self, seed: int, unit: str | None, rows: list[dict], wall: float, notes: str = "") -> dict:
        run = {"experiment": self.experiment, "seed": seed, "unit": unit, "wall_time_s": wall, "date": datetime.now(UTC).isoformat(timespec="seconds"),
               "notes": notes, "stamp": self.stamp, "rows": rows}
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path(seed, unit).with_suffix(".tmp")
        tmp.write_text(json.dumps(run))
        tmp.replace(self.path(seed, unit))  # whole or absent: a call stopped while writing leaves no half file
        return run


def differences(was: dict, now: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """(key, was, now) for each value that differs, looking inside nested dicts (config.epochs, hardware.cpu_threads)."""
    out = []
    for k in sorted(set(was) | set(now)):
        a, b = was.get(k), now.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append((prefix + k, a, b))
    return out


def load_kept(folder: Path, experiment: str, label: str | None = None) -> tuple[pd.DataFrame, dict]:
    """The runs a grid has kept so far, as `results.load` gives a finished grid: (rows, provenance). The notes say
    how many runs of each seed are in; a table made from them marks the settings that have fewer seeds."""
    paths = sorted(Path(folder).glob(f"{experiment}.seed*.json"))
    if not paths:
        raise FileNotFoundError(f"no kept {experiment} runs in {folder}")
    runs = [json.loads(p.read_text()) for p in paths]
    stamp = runs[0]["stamp"]
    for path, run in zip(paths, runs):
        if differences(run["stamp"], stamp):
            raise ValueError(f"{path} is of another commit, recipe or machine than {paths[0].name} "
                             f"({differences(run['stamp'], stamp)}): a kept folder holds one grid")
    dates = [r.get("date") or "undated" for r in runs]  # runs kept before runs recorded it: tools/date_kept_runs.py
    seeds = sorted({r["seed"] for r in runs})
    units = UNITS.get(experiment, [])
    per_seed = ", ".join(f"seed {s}: {sum(r['seed'] == s for r in runs)} of {len(units) or '?'}" for s in seeds)
    notes = " | ".join(dict.fromkeys(r.get("notes") or "no notes" for r in runs))
    prov = {"experiment": experiment, "commit": stamp["commit"], "date": min(d[:10] for d in dates), "hardware": stamp["hardware"], "size": stamp["size"],
            "seeds": seeds, "wall_time_s": round(sum(r["wall_time_s"] for r in runs), 1), "config": stamp["config"],
            "notes": f"{notes}; so far: {f'the {len(runs)} runs' if len(runs) > 1 else 'the one run'} kept in {label or folder} ({per_seed} units), {date_span(dates)}, "
                     "not yet merged into one results file"}
    return pd.DataFrame([row for r in runs for row in r["rows"]], columns=COLUMNS), prov
