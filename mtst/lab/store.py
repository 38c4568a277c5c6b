"""The results files: results/<experiment>[.<tag>].csv, one row per measurement, and a .json of provenance beside it
(commit, hardware, date, size, seeds, wall time, recipe, notes). `write` makes one, `merge` joins the files of a grid
split over calls, `load` reads one back, `summarize` gives mean ± std over seeds.

    df, prov = store.load("freezing")
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ..config import TrainConfig
from ..pretrained import DEFAULT_ENCODER
from .experiments import COLUMNS, EXPERIMENTS, encoder_name, full_config, tuned_config
from .kept import load_kept
from .provenance import provenance

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "results"
PROVENANCE_KEYS = ("experiment", "commit", "date", "hardware", "size", "seeds", "wall_time_s", "config", "notes")


def summarize(df: pd.DataFrame, metric: str = "score") -> pd.DataFrame:
    """mean ± std over seeds per setting and task, for one metric. An experiment that records the score along the
    run (head_drift: score@<step>) is summarized by each run's last score."""
    if metric == "score" and not (df.metric == "score").any():
        along = df[df.metric.str.startswith("score@")]
        df = along.loc[along.metric.str[6:].astype(int).groupby([along.setting, along.seed, along.task]).idxmax()].assign(metric="score")
    d = df[df.metric == metric]
    g = d.groupby(["setting", "task"]).value
    return pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "seeds": g.count()}).reset_index()


def config_of(experiment: str, size: str) -> dict:
    """The recipe an experiment's runs share, as the provenance records it (the seed and the progress bar left out)."""

    cfg = asdict((tuned_config if experiment == "tuned_recipe" else full_config)(size, 0)) if experiment in EXPERIMENTS else asdict(TrainConfig())
    cfg.pop("seed", None)
    cfg.pop("progress", None)
    cfg["encoder"] = encoder_name()  # the packaged encoder fine-tuned (a grid resumed with another one is refused)
    return cfg


def write(experiment: str, rows: list[dict], size: str, seeds: list[int], wall: float, notes: str = "") -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    df = pd.DataFrame(rows, columns=COLUMNS)
    csv = RESULTS_DIR / f"{experiment}.csv"
    df.to_csv(csv, index=False)
    prov = provenance(experiment=experiment, size=size, seeds=seeds, wall_time_s=round(wall, 1), config=config_of(experiment, size), notes=notes)
    csv.with_suffix(".json").write_text(json.dumps({k: prov[k] for k in PROVENANCE_KEYS}, indent=2))
    return csv


_MERGED_NOTE = re.compile(r"merged from (\d+) runs?: (.*)", re.S)
_SEEDS_PART = re.compile(r"seeds \[([\d, ]*)\]: ")


def _note_parts(note: str, seeds: list[int]) -> tuple[int, list[tuple[str, set]]]:
    """A results file's note as (number of runs, [(note, seeds)]). A merged file's note is split back into the
    notes of its runs, so that merging it again lists each run's note once instead of nesting "merged from" notes."""
    m = _MERGED_NOTE.fullmatch(note)
    if not m:
        return 1, [(note, set(seeds))]
    n, body = int(m[1]), m[2]
    if not _SEEDS_PART.match(body):
        return n, _note_parts(body, seeds)[1]
    runs, parts = n, []
    for part in re.split(r" \| (?=seeds \[)", body):
        head = _SEEDS_PART.match(part)
        inner_runs, inner = _note_parts(part[head.end():], [int(x) for x in head[1].split(",") if x.strip()])
        runs += inner_runs - 1  # a merged source counted as one of the n runs held inner_runs
        parts += inner
    return runs, parts


def merge(experiment: str, sources: list[Path], tag: str | None = None) -> Path:
    """One results file from several runs of the same experiment (a grid split over device calls): the rows of
    each, the union of their seeds, the sum of their wall times; refused unless the commit, size, config and hardware
    agree. With a tag it writes results/<experiment>.<tag>.csv, beside the experiment's main file: a later round of
    a sweep, at another commit or on other hardware, that cannot share that file."""
    if tag is not None and not re.fullmatch(r"[a-z0-9_-]+", tag):
        raise ValueError(f"tag {tag!r} must be lower-case letters, digits, _ or - (it becomes part of the file name)")
    rows, provs = [], []
    for src in sources:
        csv = Path(src) / f"{experiment}.csv"
        if not csv.exists():
            raise FileNotFoundError(f"{csv} does not exist: each source must be a folder holding {experiment}.csv and .json")
        rows.append(pd.read_csv(csv))
        provs.append(json.loads(csv.with_suffix(".json").read_text()))
    for key in ("experiment", "commit", "size", "config", "hardware"):
        if any(p[key] != provs[0][key] for p in provs):
            raise ValueError(f"cannot merge {experiment}: the sources differ in {key} ({[p[key] for p in provs]}); merge only runs of one recipe")
    df = pd.concat(rows, ignore_index=True)
    twice = df[df.duplicated(["setting", "seed", "task", "metric"], keep=False)]
    if len(twice):
        raise ValueError(f"cannot merge {experiment}: these runs appear in more than one source: {sorted(set(zip(twice.setting, twice.seed)))}")
    prov = dict(provs[-1])
    prov["seeds"] = sorted({s for p in provs for s in p["seeds"]})
    prov["wall_time_s"] = round(sum(p["wall_time_s"] for p in provs), 1)
    prov["date"] = max(p["date"] for p in provs)
    notes: dict[str, set] = {}  # each distinct note, once, with the seeds of the runs that carry it
    n_runs = 0
    for p in provs:
        n, parts = _note_parts(p.get("notes") or "no notes", p["seeds"])
        n_runs += n
        for note, seeds in parts:
            notes.setdefault(note, set()).update(seeds)
    if n_runs == 1:  # one run (a folder copied under a tag) keeps its own note: it was merged with nothing
        prov["notes"] = next(iter(notes))
    elif len(notes) == 1:
        prov["notes"] = f"merged from {n_runs} runs: {next(iter(notes))}"
    else:
        prov["notes"] = f"merged from {n_runs} runs: " + " | ".join(f"seeds {sorted(seeds)}: {note}" for note, seeds in notes.items())
    RESULTS_DIR.mkdir(exist_ok=True)
    csv = _path(experiment, tag)
    df[COLUMNS].to_csv(csv, index=False)
    csv.with_suffix(".json").write_text(json.dumps({k: prov[k] for k in PROVENANCE_KEYS}, indent=2))
    return csv


class DamagedResults(ValueError):
    """A results file that cannot be read as one: refused, naming the file and the command that makes it again."""


def _remake(path: Path) -> str:
    """How to get a results file back: from git if it is committed, or by the command that writes it."""
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    stem = path.name.split(".")[0]
    if stem in EXPERIMENTS:
        how = f"python -m mtst.lab.results --experiments {stem} --size full"
    elif stem.startswith("bench_"):
        how = f"python -m mtst.lab.bench {stem.split('_')[1]}"
    elif stem.startswith("notebooks_") or stem == "verdicts":
        how = "python tools/time_notebooks.py --size demo --cold-warm --verdicts --json results/notebooks_cpu_demo.json"
    else:
        how = "the command its provenance names"
    return f"`git checkout -- {rel}` restores the committed file; {how} measures it again"


def read_json(path: Path) -> dict:
    """A results file's JSON, or DamagedResults saying which file and how to make it again."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise  # missing is not damaged: the docs say "not measured yet"
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DamagedResults(f"results file {path} cannot be read ({type(e).__name__}: {e}); {_remake(Path(path))}") from None


def read_csv(path: Path, columns=COLUMNS) -> pd.DataFrame:
    """A results CSV with its columns and numeric values, or DamagedResults saying which file and how to make it again."""
    try:
        df = pd.read_csv(path)
        missing = [c for c in columns if c not in df]
        if missing:
            raise ValueError(f"columns {missing} are missing")
        if "value" in columns and not pd.api.types.is_numeric_dtype(df["value"]):
            raise ValueError("the value column is not numeric")
    except FileNotFoundError:
        raise  # missing is not damaged: the docs say "not measured yet"
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as e:
        raise DamagedResults(f"results file {path} cannot be read ({type(e).__name__}: {e}); {_remake(Path(path))}") from None
    return df


def _path(experiment: str, tag: str | None = None) -> Path:
    return RESULTS_DIR / (f"{experiment}.{tag}.csv" if tag else f"{experiment}.csv")


def load(experiment: str, tag: str | None = None) -> tuple[pd.DataFrame, dict]:
    """An experiment's results file and its provenance. A tag with no file yet but a grid going on in
    results/kept/<tag>/ gives the runs kept there so far, and its provenance says so."""
    csv = _path(experiment, tag)
    if tag and not csv.exists() and (RESULTS_DIR / "kept" / tag).is_dir():
        return load_kept(RESULTS_DIR / "kept" / tag, experiment, label=f"results/kept/{tag}")
    return read_csv(csv), read_json(csv.with_suffix(".json"))




# A grid's control, run later (at another commit, on the same recipe and machine) and kept in a file of its own: read
# beside the grid. layerwise_lr's control is the uniform encoder rate with the decay schemes' heads' rate.
CONTROLS = {("layerwise_lr", "cpu-bf16-full"): "cpu-bf16-control"}


def _config_differs(a: dict, b: dict) -> list[str]:
    """The recipe fields two configs disagree on. A field only one of them has (added to TrainConfig between the two
    runs) must hold its default there, which is what the other run did without it (files from before the encoder was
    recorded fine-tuned the default encoder)."""
    defaults = {**asdict(TrainConfig()), "encoder": DEFAULT_ENCODER}
    return [k for k in sorted(set(a) | set(b))
            if (a[k] != b[k] if k in a and k in b else (a.get(k, b.get(k)) != defaults.get(k, object())))]


def load_with_control(experiment: str, tag: str | None = None) -> tuple[pd.DataFrame, dict, dict | None]:
    """An experiment's results file joined with its control's runs where a control file (or its kept runs) exists:
    (rows, provenance, the control's provenance or None). Refused unless both ran the same size, recipe and machine."""
    df, prov = load(experiment, tag)
    ctag = CONTROLS.get((experiment, tag))
    if ctag is None or not (_path(experiment, ctag).exists() or any((RESULTS_DIR / "kept" / ctag).glob(f"{experiment}.seed*.json"))):
        return df, prov, None
    cdf, cprov = load(experiment, ctag)
    if cprov["size"] != prov["size"] or _config_differs(prov["config"], cprov["config"]):
        raise ValueError(f"{experiment}.{ctag} ran another size or recipe than {experiment}.{tag} "
                         f"({_config_differs(prov['config'], cprov['config']) or 'size'}): it cannot be its control")
    if cprov["hardware"].get("cpu") != prov["hardware"].get("cpu") or cprov["hardware"].get("gpu") != prov["hardware"].get("gpu"):
        raise ValueError(f"{experiment}.{ctag} ran on other hardware than {experiment}.{tag}: it cannot be its control")
    clash = set(cdf.setting) & set(df.setting)
    if clash:
        raise ValueError(f"{experiment}.{ctag} repeats settings of {experiment}.{tag}: {sorted(clash)}")
    return pd.concat([df, cdf], ignore_index=True), prov, cprov
