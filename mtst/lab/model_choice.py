"""Which pretrained encoder? all-MiniLM-L6-v2 (6 layers, 384-d) against all-mpnet-base-v2 (12 layers, 768-d),
measured at equal budget on the three tasks, in three parts that each write a results file with its provenance:

    python -m mtst.lab.model_choice probe   # frozen encoders, a linear probe per task on all the data
    python -m mtst.lab.model_choice steps   # time per training step and peak memory, both encoders side by side
    python -m mtst.lab.model_choice table   # the comparison (with the fine-tuned scores of the depth runs) and its plot

`probe`: each encoder frozen and run once over every training and test example (all the data), a logistic regression
fitted on the training features of each task (the pooled sentence vector; each word's first word piece for NER) and
folded into the task's linear head, then scored by `mtst.evaluate` on the test split: accuracy, entity F1 for NER.
`steps`: each encoder in its own fresh process, one after the other in one call: the multi-task model trained with
the default size's recipe (batch 16, 48 word pieces) for `--steps` steps, the median step time and the process's peak
resident memory. The fine-tuned scores come from the freezing grid's full fine-tuning at the default size, three seeds
per encoder (`results/freezing.cpu-<encoder>-demo.csv`, made by `python -m mtst.lab.results --encoder ...`).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import torch

from ..callbacks import Callback
from ..config import SIZES, recipe
from ..data import TASKS, load_task
from ..encoder import SentenceEncoder
from ..evaluation import evaluate
from ..features import EncoderCache
from ..freezing import freeze
from ..model import MultiTaskModel
from ..precision import autocast, resolve
from ..pretrained import ENCODERS
from ..runcache import configure
from ..training import Trainer
from . import store
from .provenance import provenance
from .store import RESULTS_DIR, read_json

PROBE_JSON = RESULTS_DIR / "model_choice_probe.json"
STEPS_JSON = RESULTS_DIR / "model_choice_steps.json"
TAGS = {"all-MiniLM-L6-v2": "cpu-minilm-demo", "all-mpnet-base-v2": "cpu-mpnet-demo"}  # the depth runs' results files


def _fold_probe(head: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor, seed: int) -> None:
    """Fit a logistic regression on standardized features and write it into the head's last linear layer, the
    standardization folded in (w/σ, b − Σ w·μ/σ), so that the model itself predicts with the probe."""
    from sklearn.linear_model import LogisticRegression

    mu, sd = x.mean(0), x.std(0).clamp_min(1e-6)
    clf = LogisticRegression(max_iter=2000, random_state=seed).fit(((x - mu) / sd).numpy(), y.numpy())
    w = torch.zeros(head.out_features, x.shape[1])
    b = torch.full((head.out_features,), -1e4)  # a label never seen in training is never predicted
    coef, icpt = torch.as_tensor(clf.coef_, dtype=torch.float32), torch.as_tensor(clf.intercept_, dtype=torch.float32)
    if len(clf.classes_) == 2 and coef.shape[0] == 1:  # sklearn's binary form: one row for the second class
        coef, icpt = torch.cat([-coef / 2, coef / 2]), torch.cat([-icpt / 2, icpt / 2])
    idx = torch.as_tensor(clf.classes_, dtype=torch.long)
    w[idx], b[idx] = coef / sd, icpt - (coef * mu / sd).sum(1)
    with torch.no_grad():
        head.weight.copy_(w)
        head.bias.copy_(b)


def _last_linear(module: torch.nn.Module) -> torch.nn.Linear:
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)][-1]


def probe_encoder(name: str, max_length: int, seed: int = 0, precision: str = "fp32") -> dict:
    """One frozen encoder's linear-probe test scores on all the data (see the module's docstring); the encoder runs at
    `precision` (bf16: autocast, features kept in fp32)."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    train = {t: load_task(t, "train", "full") for t in TASKS}
    test = {t: load_task(t, "test", "full") for t in TASKS}
    enc = SentenceEncoder.from_pretrained(name, max_length=max_length)
    model = freeze(MultiTaskModel.for_tasks(enc, train, seed=seed), "encoder")
    with autocast(model.device, precision):
        feats = EncoderCache(model, train, progress=True)
    encode_train_s = time.perf_counter() - t0
    scores = {}
    for task in TASKS:
        if model.task_kind(task) == "token":  # each word's first piece: the positions whose label is not -100
            x = torch.cat([f[lab != -100] for f, lab in zip(feats.features[task], feats.labels[task])])
            y = torch.cat([lab[lab != -100] for lab in feats.labels[task]])
        else:
            x, y = feats.features[task], feats.labels[task]
        _fold_probe(_last_linear(model.heads[task]), x, y, seed)
    with autocast(model.device, precision):
        test_cache = EncoderCache(model, test, progress=True)
    for task in TASKS:
        scores[task] = evaluate(model, test[task], task, cache=test_cache)["score"]
    spec = ENCODERS[name]
    return {"encoder": name, "layers": spec.layers, "dim": spec.dim, "params": sum(p.numel() for p in enc.parameters()),
            "max_length": max_length, "precision": precision, "scores": scores, "train_examples": {t: len(d) for t, d in train.items()},
            "test_examples": {t: len(d) for t, d in test.items()}, "encode_train_s": round(encode_train_s, 1),
            "wall_time_s": round(time.perf_counter() - t0, 1)}


def _steps_child(name: str, steps: int, seed: int) -> dict:
    """In a fresh process: train the multi-task model `steps` steps with the default size's recipe; step times and peak RSS."""
    size = "demo"
    train = {t: load_task(t, "train", size) for t in TASKS}
    cfg = recipe(size, seed)
    cfg.steps, cfg.progress = steps, False
    enc = SentenceEncoder.from_pretrained(name, max_length=SIZES[size].max_length)
    model = MultiTaskModel.for_tasks(enc, train, seed=seed)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    class Clock(Callback):
        def __init__(self):
            self.times, self._t = [], None

        def on_step_begin(self, trainer, step, task) -> None:
            self._t = time.perf_counter()

        def on_step_end(self, trainer, step, task, loss) -> None:
            self.times.append(time.perf_counter() - self._t)

    clock = Clock()
    Trainer(model, train, cfg, callbacks=[clock]).run()
    warm = clock.times[3:] or clock.times  # the first steps allocate
    return {"encoder": name, "steps": len(clock.times), "median_step_s": statistics.median(warm), "batch_size": cfg.batch_size,
            "max_length": SIZES[size].max_length, "precision": resolve(model.device, cfg.precision), "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_training_mib": before / 1024, "params": sum(p.numel() for p in model.parameters()),
            "encoder_params": sum(p.numel() for p in enc.parameters())}


def bench_steps(steps: int = 30, seed: int = 0) -> dict:
    """Both encoders' step time and peak memory, each in its own process, one after the other (nothing else running)."""
    runs = []
    for name in ENCODERS:
        out = subprocess.run([sys.executable, "-m", "mtst.lab.model_choice", "_child", "--encoder", name, "--steps", str(steps),
                              "--seed", str(seed)], capture_output=True, text=True, check=False)
        if out.returncode:
            raise SystemExit(f"the step-time run of {name} failed:\n{out.stderr[-2000:]}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    ratio = runs[1]["median_step_s"] / runs[0]["median_step_s"]
    return {"runs": runs, "ratio_step_time": ratio, **provenance(size="demo", seeds=[seed])}


def comparison() -> pd.DataFrame:
    """The model-choice table from the results files: one row per encoder (parameters, layers, width, frozen-probe
    scores with all the data, fine-tuned scores at the default size as mean ± std over seeds, step time, peak memory)."""
    probe = {r["encoder"]: r for r in read_json(PROBE_JSON)["runs"]}
    steps = {r["encoder"]: r for r in read_json(STEPS_JSON)["runs"]}
    rows = []
    for name in ENCODERS:
        row = {"encoder": name, "layers": ENCODERS[name].layers, "dim": ENCODERS[name].dim}
        if name in probe:
            row["params (M)"] = probe[name]["params"] / 1e6
            row.update({f"probe {t}": 100 * probe[name]["scores"][t] for t in TASKS})
        try:
            df, _ = store.load("freezing", TAGS[name])
        except FileNotFoundError:
            df = None
        if df is not None:
            ft = df[(df.setting == "e_full_finetune") & (df.metric == "score")]
            per_seed = ft.pivot_table(index="seed", columns="task", values="value").mul(100)
            row.update({f"fine-tuned {t}": per_seed[t].mean() for t in TASKS if t in per_seed})
            row["fine-tuned mean"] = per_seed[list(TASKS)].mean(axis=1).mean()
            row["fine-tuned mean std"] = per_seed[list(TASKS)].mean(axis=1).std(ddof=1)
            row["seeds"] = len(per_seed)
        if name in steps:
            row["step (ms)"] = 1000 * steps[name]["median_step_s"]
            row["peak RSS (MiB)"] = steps[name]["peak_rss_mib"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("encoder")


def plot(table: pd.DataFrame, path: Path | None = None):
    """Mean test score over the tasks against time per training step, frozen probe and fine-tuned, per encoder."""
    import matplotlib

    matplotlib.use("Agg") if path is not None else None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    probe = table[[f"probe {t}" for t in TASKS]].mean(axis=1)
    for name, r in table.iterrows():
        ax.scatter(r["step (ms)"], probe[name], marker="s", color="C0")
        if pd.notna(r.get("fine-tuned mean")):
            ax.errorbar(r["step (ms)"], r["fine-tuned mean"], yerr=r["fine-tuned mean std"], marker="o", color="C1", capsize=3)
        ax.annotate(f"{name}\n{r['params (M)']:.0f}M params, {int(r['layers'])} layers", (r["step (ms)"], probe[name]), fontsize=7,
                    xytext=(6, -18), textcoords="offset points")
    ax.scatter([], [], marker="s", color="C0", label="frozen encoder, linear probe, all the data")
    ax.errorbar([], [], yerr=[], marker="o", color="C1", label="fine-tuned at the default size (mean ± std, seeds)")
    ax.set_xlabel("time per training step, default size, 2 CPU cores (ms)")
    ax.set_ylabel("mean test score over the three tasks (%)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_xlim(0, table["step (ms)"].max() * 1.5)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return ax


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mtst.lab.model_choice", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["probe", "steps", "table", "_child"])
    p.add_argument("--encoder", choices=list(ENCODERS), default=None, help="probe: only this encoder (the file keeps the other's run)")
    p.add_argument("--max-length", type=int, default=64, help="probe: word pieces per text (both encoders the same)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="bf16", help="probe: the frozen encoder's precision")
    p.add_argument("--steps", type=int, default=30, help="steps: training steps timed per encoder")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*truncated")
    configure(enabled=False)  # measured, never loaded from the run cache
    if args.what == "_child":
        print(json.dumps(_steps_child(args.encoder, args.steps, args.seed)))
        return 0
    if args.what == "probe":
        names = [args.encoder] if args.encoder else list(ENCODERS)
        kept = {r["encoder"]: r for r in read_json(PROBE_JSON)["runs"]} if PROBE_JSON.exists() else {}
        for name in names:
            kept[name] = {**probe_encoder(name, args.max_length, args.seed, args.precision), **provenance(seeds=[args.seed])}
            print(f"{name}: " + ", ".join(f"{t} {100 * v:.1f}" for t, v in kept[name]["scores"].items()) + f" ({kept[name]['wall_time_s']:.0f} s)", flush=True)
        PROBE_JSON.write_text(json.dumps({"experiment": "model_choice_probe", "runs": [kept[n] for n in ENCODERS if n in kept]}, indent=2) + "\n")
        print(f"wrote {PROBE_JSON.name}")
    elif args.what == "steps":
        r = bench_steps(args.steps, args.seed)
        for run in r["runs"]:
            print(f"{run['encoder']}: {1000 * run['median_step_s']:.0f} ms per step, peak RSS {run['peak_rss_mib']:.0f} MiB, {run['params'] / 1e6:.1f}M params")
        STEPS_JSON.write_text(json.dumps(r, indent=2) + "\n")
        print(f"wrote {STEPS_JSON.name}; step time ratio {r['ratio_step_time']:.2f}x")
    else:
        table = comparison()
        print(table.round(1).to_string())
        out = Path(__file__).resolve().parents[2] / "docs" / "img" / "model_choice.png"
        plot(table, out)
        print(f"wrote {out.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def markdown_table() -> str:
    """The comparison as a Markdown table with its provenance (docs/answers.md)."""
    try:
        t = comparison()
        probe, steps = read_json(PROBE_JSON), read_json(STEPS_JSON)
    except FileNotFoundError:
        return "Not measured yet: `python -m mtst.lab.model_choice probe`, then `steps`."
    head = ["encoder", "layers", "width", "parameters in use", *(f"probe {t}" for t in TASKS), "fine-tuned mean (default size)", "step", "peak memory"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in t.iterrows():
        tuned = f"{r['fine-tuned mean']:.1f} ± {r['fine-tuned mean std']:.1f} ({r['seeds']:.0f} seeds)" if pd.notna(r.get("fine-tuned mean")) else "not run yet"
        lines.append(f"| {name} | {int(r['layers'])} | {int(r['dim'])} | {r['params (M)']:.1f}M | " + " | ".join(f"{r[f'probe {x}']:.1f}" for x in TASKS)
                     + f" | {tuned} | {r['step (ms)']:.0f} ms | {r['peak RSS (MiB)']:,.0f} MiB |")
    runs = probe["runs"]
    walls = " and ".join(f"{r['encoder']} {r['wall_time_s'] / 60:.0f} min" for r in runs)
    return "\n".join(lines) + (
        f"\n\nTest scores in % (accuracy; entity F1 for NER on our test split carved from the WNUT-16-style tweets, not comparable "
        f"with the official WNUT-16 test). Probe: each encoder frozen, a logistic regression per task fitted on all "
        f"{', '.join(f'{n:,}' for n in runs[0]['train_examples'].values())} training examples, {runs[0]['max_length']} word pieces per "
        f"text, the encoder in {runs[0].get('precision', 'fp32')}; commit `{runs[0]['commit']}`, {runs[0]['date'][:10]}, {runs[0]['hardware']['cpu']} ({runs[0]['hardware']['cpu_threads']} threads), "
        f"{walls}. Fine-tuned: full fine-tuning at the "
        f"default size, mean ± std over seeds (`freezing.<tag>.csv`, see results.md, \"At depth 12\"). Step and memory: the median "
        f"training step at the default size (batch {steps['runs'][0]['batch_size']}, {steps['runs'][0]['max_length']} word pieces, "
        f"{steps['runs'][0]['precision']}, the notebooks' recipe on a CPU) "
        f"and the process's peak resident memory, each encoder in its own process, one after the other in one call; commit "
        f"`{steps['commit']}`, {steps['date'][:10]}, {steps['hardware']['cpu']} ({steps['hardware']['cpu_threads']} threads).")
