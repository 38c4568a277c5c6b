"""The measured scenarios of notebooks 03 and 04, shared with `make results`: freezing (what learns) and
layer-wise learning rates (how fast each part learns). Each run starts from the pretrained encoder and fresh
heads, trains with the same budget, and is scored on the held-out test split.

    rows = run_freezing_grid(train, val, test, cfg, max_length, seeds=[0])   # tidy rows, one per task
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, replace

import pandas as pd
import torch

from .checks import check_count
from .data import TaskData
from .diagnostics import ConflictMonitor, GradientMonitor
from .encoder import SentenceEncoder
from .evaluation import evaluate, evaluate_all
from .features import EncoderCache, EncoderEvalMode, encoder_is_frozen
from .freezing import GradualUnfreezing, freeze, trainable_summary, unfreeze
from .model import MultiTaskModel
from .optim import layerwise_param_groups
from .training import Callback, Trainer, cached_run, planned_steps, train


@dataclass(frozen=True)
class FreezeScenario:
    name: str
    what: str  # one line for tables
    freeze: tuple[str, ...] = ()  # specs frozen before training
    k: int | None = None  # how many lower encoder layers are frozen (the k-sweep), when it is one
    cache: bool = False  # encoder run once as a feature extractor (eval mode), heads trained on the cache
    gradual: bool = False  # ULMFiT gradual unfreezing from the top
    passes: float = 1.0  # heads train this many times the recipe's steps (cheap on the cache: a step skips the encoder)


def k_sweep(depth: int) -> tuple[int, ...]:
    """How many lower layers the k-sweep freezes at an encoder's depth: thirds of 6 layers (0, 2, 4, 6), quarters of 12
    (0, 3, 6, 9, 12); k = 0 is full fine-tuning and k = depth the frozen backbone."""
    check_count(depth, "depth (encoder layers)")
    step = depth // 4 if depth % 4 == 0 and depth >= 8 else max(1, depth // 3)
    return tuple(sorted({*range(0, depth, step), depth}))


def _lower(k: int, depth: int) -> FreezeScenario:
    return FreezeScenario(f"d_lower{k}_frozen", f"embeddings + layers 0-{k - 1} frozen, layers {k}-{depth - 1} and heads train",
                          ("embeddings", f"layers:0-{k - 1}"), k=k)


def freeze_scenarios(depth: int = 6) -> dict[str, FreezeScenario]:
    """The freezing grid for an encoder `depth` layers deep (6: all-MiniLM-L6-v2; 12: all-mpnet-base-v2): the frozen
    encoder two ways, the lower k layers frozen for each k of the k-sweep, full fine-tuning, gradual unfreezing."""
    middle = [k for k in k_sweep(depth) if 0 < k < depth]
    return {s.name: s for s in (
        FreezeScenario("a_feature_extractor", "everything pretrained frozen, encoder as a cached feature extractor; heads learn", ("encoder",), cache=True),
        FreezeScenario("a_feature_extractor_10x", "as a, with the heads trained 10× as long: what frozen features give when the heads "
                       "are not short of steps", ("encoder",), cache=True, passes=10.0),
        FreezeScenario("b_backbone_frozen", "backbone frozen (dropout still on), heads trained through it", ("encoder",), k=depth),
        *(_lower(k, depth) for k in reversed(middle)),
        FreezeScenario("e_full_finetune", "nothing frozen: full fine-tuning", (), k=0),
        FreezeScenario("f_gradual_unfreezing", f"heads first, then one more layer from the top every 1/{depth + 2} of the run", gradual=True),
    )}


FREEZE_SCENARIOS: dict[str, FreezeScenario] = freeze_scenarios(6)  # the grid at MiniLM-L6's depth, the default encoder's


def freeze_scenario(name: str, depth: int) -> FreezeScenario:
    """A freezing scenario by name at an encoder's depth: any of freeze_scenarios(depth), or d_lower<k>_frozen for any
    0 < k < depth. The frozen backbone's k is the depth."""
    grid = freeze_scenarios(depth)
    if name in grid:
        return grid[name]
    m = re.fullmatch(r"d_lower(\d+)_frozen", name)
    if m and 0 < int(m.group(1)) < depth:
        return _lower(int(m.group(1)), depth)
    raise ValueError(f"unknown scenario {name!r} for an encoder {depth} layers deep; valid: {', '.join(grid)}, or d_lower<k>_frozen "
                     f"with 0 < k < {depth}")


@dataclass(frozen=True)
class LRScheme:
    name: str
    what: str
    lr: float  # the top encoder layer
    head_lr: float
    layer_decay: float = 1.0


LR_SCHEMES: dict[str, LRScheme] = {s.name: s for s in (
    LRScheme("uniform_1e-5", "one rate everywhere, 1e-5", 1e-5, 1e-5),
    LRScheme("uniform_1e-4", "one rate everywhere, 1e-4", 1e-4, 1e-4),
    LRScheme("two_rate", "the brief's scheme: encoder 1e-5, heads 1e-4", 1e-5, 1e-4),
    LRScheme("decay_0.95", "layer-wise decay ξ=0.95 from 1e-4 at the top, heads 1e-3", 1e-4, 1e-3, 0.95),
    LRScheme("decay_0.9", "layer-wise decay ξ=0.9, top 1e-4, heads 1e-3", 1e-4, 1e-3, 0.9),
    LRScheme("decay_0.8", "layer-wise decay ξ=0.8, top 1e-4, heads 1e-3", 1e-4, 1e-3, 0.8),
    LRScheme("decay_0.65", "layer-wise decay ξ=0.65, top 1e-4, heads 1e-3", 1e-4, 1e-3, 0.65),
    LRScheme("too_high_1e-3", "one rate everywhere, 1e-3: too high for a pretrained encoder", 1e-3, 1e-3),
    # The 2×2 that separates decay from the heads' rate: decay_0.9 and uniform_1e-4 differ in both, these in one each.
    LRScheme("uniform_1e-4_heads_1e-3", "the decay schemes' control: encoder 1e-4 at every depth, heads 1e-3", 1e-4, 1e-3),
    LRScheme("decay_0.9_heads_1e-4", "layer-wise decay ξ=0.9 from 1e-4 at the top, heads 1e-4", 1e-4, 1e-4, 0.9),
)}


# The 2×2 that separates layer-wise decay from the heads' rate: (heads' rate, decay) → scheme.
TWO_BY_TWO = {("heads 1e-4", "no decay"): "uniform_1e-4", ("heads 1e-4", "decay ξ=0.9"): "decay_0.9_heads_1e-4",
              ("heads 1e-3", "no decay"): "uniform_1e-4_heads_1e-3", ("heads 1e-3", "decay ξ=0.9"): "decay_0.9"}


def two_by_two(table: pd.DataFrame, column: str = "mean") -> pd.DataFrame:
    """A score table's `column` laid out as the 2×2 (rows: the heads' rate; columns: decay or none), with each effect
    beside it: decay's within a row, the heads' rate's within a column. Cells of schemes that did not run stay empty."""
    grid = pd.DataFrame({d: {h: table[column].get(TWO_BY_TWO[(h, d)]) for h in ("heads 1e-4", "heads 1e-3")} for d in ("no decay", "decay ξ=0.9")})
    grid = grid.astype(float)
    grid["decay's effect"] = grid["decay ξ=0.9"] - grid["no decay"]
    grid.loc["heads' rate effect"] = grid.loc["heads 1e-3"] - grid.loc["heads 1e-4"]
    return grid.round(1).astype(object).where(grid.notna(), "")  # the corner, effect of an effect, stays blank


def monitors(validation: dict[str, TaskData], steps: int, seed: int = 0) -> list:
    """What the notebooks record through a training run: every part's gradient norm and update size at every step, and
    the cosine between the tasks' gradients on the shared encoder twice a run, on 8 validation examples per task. The
    recipe's run carries these in notebooks 02 to 05, so that it trains once and the others read it from the run cache."""

    probe = {t: d.subset(8, seed) for t, d in validation.items()}
    return [GradientMonitor(every=1), ConflictMonitor(probe, every=max(1, steps // 2), batch_size=8)]


def _check(name: str, table: dict) -> None:
    if name not in table:
        raise ValueError(f"unknown scenario {name!r}; valid: {', '.join(table)}")


def _fresh_model(train_data: dict[str, TaskData], max_length: int, seed: int, encoder=None):
    # Every run starts from the same pretrained weights: a copy, never the caller's encoder itself. `encoder`: a loaded
    # SentenceEncoder, a packaged encoder's name, or None (the default encoder).
    enc = copy.deepcopy(encoder) if isinstance(encoder, SentenceEncoder) else SentenceEncoder.from_pretrained(encoder, max_length=max_length)
    return unfreeze(MultiTaskModel.for_tasks(enc, train_data, seed=seed), "all")  # whatever the caller froze, start trainable


def _score_rows(model, test: dict, base: dict, trainer, res) -> list[dict]:
    total = trainable_summary(model).iloc[-1]
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float("nan")
    test = {t: test[t] for t in model.tasks}
    # A frozen encoder gives every frozen scenario the same test features: encode the test sets once and share them.
    cache = EncoderCache.shared(model, test) if encoder_is_frozen(model) else None
    scores = evaluate_all(model, test, precision=trainer.config.precision, cache=cache)  # as it validated
    return [{**base, "task": r["task"], "score": r["score"], "trainable_params": int(total.trainable_params),
             "trainable_fraction": float(total.trainable_fraction), "steps": res.steps, "wall_time_s": res.wall_time_s,
             "optimizer_state_mib": trainer.optimizer_state_mib, "peak_gpu_mib": peak, "from_cache": res.from_cache}
            for r in scores.to_dict("records")]


def run_freeze_scenario(name: str, train_data: dict, validation: dict | None, test: dict, cfg, max_length: int, seed: int = 0,
                        encoder=None, callbacks=()) -> tuple[list[dict], object]:
    """Train one freezing scenario from the pretrained encoder; rows of test scores, and the trained model.
    validation=None skips validation (and so keeping the best state): the run ends at its last step."""

    model = _fresh_model(train_data, max_length, seed, encoder)
    sc = freeze_scenario(name, len(model.encoder.layers))  # the k-sweep's names at this encoder's depth
    if sc.freeze:
        freeze(model, *sc.freeze)
    cbs = list(callbacks)
    if sc.cache:
        cbs.append(EncoderEvalMode())
    # cfg.cache_prefix: the lower-k-frozen scenarios (d) train on their frozen prefix's cached hidden states. The frozen
    # backbone (b) keeps running through its encoder, dropout on: that is what tells it from the feature extractor (a).
    cfg = replace(cfg, seed=seed, cache_encoder=sc.cache, cache_prefix=bool(cfg.cache_prefix and sc.k is not None and 0 < sc.k < len(model.encoder.layers)))
    if sc.passes != 1.0:
        cfg = replace(cfg, steps=round(planned_steps(train_data, cfg) * sc.passes))
    if sc.gradual:
        # depth layers and the embeddings unfreeze one by one, each with time to learn: 1/8 of the run apart at 6 layers
        cbs.insert(0, GradualUnfreezing(every=max(1, planned_steps(train_data, cfg) // (len(model.encoder.layers) + 2))))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(model, train_data, cfg, validation={t: validation[t] for t in train_data} if validation else None, callbacks=cbs)
    res = cached_run(trainer)
    base = {"scenario": name, "k": sc.k, "seed": seed, "train_size": max(len(d) for d in train_data.values())}
    return _score_rows(model, test, base, trainer, res), model


def run_lr_scheme(name: str, train_data: dict, validation: dict, test: dict, cfg, max_length: int, seed: int = 0,
                  encoder=None, callbacks=(), head_lrs: dict[str, float] | None = None) -> tuple[list[dict], object, object]:
    """Train with one learning-rate scheme (optionally with per-task head rates); rows of test scores, the
    trained model and the TrainResult."""

    _check(name, LR_SCHEMES)
    s = LR_SCHEMES[name]
    cfg = replace(cfg, seed=seed, lr=s.lr, head_lr=s.head_lr, layer_decay=s.layer_decay)
    model = _fresh_model(train_data, max_length, seed, encoder)
    groups = layerwise_param_groups(model, cfg.lr, cfg.head_lr, cfg.layer_decay, cfg.weight_decay, head_lrs=head_lrs) if head_lrs else None
    trainer = Trainer(model, train_data, cfg, validation={t: validation[t] for t in train_data}, callbacks=list(callbacks), groups=groups)
    res = cached_run(trainer)
    label = name + "".join(f"+{t}_head×{r / s.head_lr:g}" for t, r in (head_lrs or {}).items())
    return _score_rows(model, test, {"scheme": label, "seed": seed}, trainer, res), model, res


def fit_and_test(train_data: dict, validation: dict, test: dict, cfg, max_length: int, seed: int = 0, callbacks=(),
                 hidden: int | None = None, encoder: str | None = None) -> tuple[list[dict], object, object]:
    """A fresh pretrained encoder (`encoder`: a packaged one's name; None, the default) with one head per task in
    train_data (sentence heads with a hidden layer of `hidden` units when given), trained by `cfg`, scored on test at
    the precision it trained and validated at."""

    if cfg.task_epochs:  # a run of fewer tasks keeps only its own tasks' passes
        cfg = replace(cfg, task_epochs={t: e for t, e in cfg.task_epochs.items() if t in train_data} or None)
    enc = SentenceEncoder.from_pretrained(encoder, max_length=max_length)
    model = MultiTaskModel.for_tasks(enc, train_data, hidden=hidden, seed=seed)
    res = train(model, train_data, cfg, validation={t: validation[t] for t in train_data}, callbacks=callbacks)
    return evaluate_all(model, {t: test[t] for t in train_data}, precision=cfg.precision).to_dict("records"), res, model


def steps_to_target(history: pd.DataFrame, target: float) -> int | None:
    """The first validation step whose mean score over tasks reached target (None if it never did)."""
    v = history[history.phase == "validation"].groupby("step").score.mean()
    hit = v[v >= target]
    return int(hit.index[0]) if len(hit) else None


# Claims F1/F2's contenders: the frozen backbone as in the grid, the same with its heads trained 10× as long, and full fine-tuning.
SWEEP_SCENARIOS = ("b_backbone_frozen", "a_feature_extractor_10x", "e_full_finetune")


def subsample(data: dict[str, TaskData], n: int | None, seed: int = 0) -> dict[str, TaskData]:
    """At most n training examples per task (stratified, seeded)."""
    return {t: d.subset(n, seed) for t, d in data.items()}


def run_size_sweep(train_data: dict, validation: dict, test: dict, cfg, max_length: int, sizes: list[int], seed: int = 0, encoder=None,
                   scenarios: tuple[str, ...] = SWEEP_SCENARIOS, min_steps: int = 0) -> list[dict]:
    """Claims F1/F2: the same scenarios trained on n examples per task, for each n in sizes. Each run gets
    cfg's epochs, but at least min_steps steps, so that small sets still see enough updates."""
    from tqdm.auto import tqdm

    rows = []
    for n in tqdm(sizes, desc="size sweep", leave=False):
        small = subsample(train_data, n, seed)
        steps = max(min_steps, planned_steps(small, replace(cfg, steps=None)))
        for name in scenarios:
            r, _ = run_freeze_scenario(name, small, validation, test, replace(cfg, steps=steps), max_length, seed, encoder)
            rows += [{**x, "train_size": n} for x in r]
    return rows


class DriftTrack(Callback):
    """Records a task's validation score, and how far the shared encoder has moved from where the run began
    (‖θ − θ₀‖ / ‖θ₀‖ over all its weights), at each evaluation."""

    def __init__(self, task: str):
        self.task = task
        self.rows: list[dict] = []

    def on_train_begin(self, trainer) -> None:
        self._start = [p.detach().clone() for p in trainer.model.encoder.parameters()]
        self._norm = float(sum(p.float().pow(2).sum() for p in self._start).sqrt())

    @torch.no_grad()
    def on_evaluate(self, trainer, step, metrics) -> None:
        moved = float(sum((p.float() - q.float()).pow(2).sum() for p, q in zip(trainer.model.encoder.parameters(), self._start)).sqrt())
        self.rows.append({"step": step, "score": metrics[self.task]["score"], "encoder_moved": moved / self._norm})


def run_head_drift(model, train_data: dict, validation: dict, frozen_task: str, cfg, eval_every: int, freeze_encoder: bool = False) -> pd.DataFrame:
    """Scenario (c): freeze one task's head and train the encoder and the other heads on the other tasks.
    Returns the frozen task's validation score at every evaluation (step 0 = before), its drift, and how far the shared
    encoder had moved from its starting weights (relative distance) at each."""

    unfreeze(model, "all")
    freeze(model, f"head:{frozen_task}")
    if freeze_encoder:
        freeze(model, "encoder")
    others = {t: d for t, d in train_data.items() if t != frozen_task}
    if not others:
        raise ValueError(f"head drift needs a task other than {frozen_task!r} to train on")
    rows = [{"step": 0, "score": evaluate(model, validation[frozen_task], frozen_task, precision=cfg.precision)["score"], "encoder_moved": 0.0}]
    head_before = [p.detach().clone() for p in model.heads[frozen_task].parameters()]
    track = DriftTrack(frozen_task)
    cfg = replace(cfg, eval_every=eval_every, keep_best=False)
    cached_run(Trainer(model, others, cfg, validation={frozen_task: validation[frozen_task]}, callbacks=[track]))
    rows += track.rows
    unchanged = all(torch.equal(a, b.detach()) for a, b in zip(head_before, model.heads[frozen_task].parameters()))
    out = pd.DataFrame(rows)
    out["drift"] = out.score - out.score.iloc[0]
    out.attrs["head_unchanged"] = unchanged
    return out


def summarize_runs(rows: list[dict] | pd.DataFrame, by: str) -> pd.DataFrame:
    """mean ± std of the test score per (by, task) over seeds, plus the run's cost columns."""
    df = pd.DataFrame(rows)
    g = df.groupby([by, "task"], sort=False)
    peak = {"peak_gpu_mib": ("peak_gpu_mib", "mean")} if "peak_gpu_mib" in df and df.peak_gpu_mib.notna().any() else {}  # on a GPU only
    out = g.agg(score=("score", "mean"), std=("score", "std"), seeds=("seed", "nunique"), trainable_params=("trainable_params", "first"),
                wall_time_s=("wall_time_s", "mean"), optimizer_state_mib=("optimizer_state_mib", "mean"), **peak).reset_index()
    return out


def score_table(rows: list[dict] | pd.DataFrame, by: str) -> pd.DataFrame:
    """One row per scenario: the test score per task (%), trainable params, wall time, optimizer state and, where the
    runs were on a GPU, their peak GPU memory."""
    s = summarize_runs(rows, by)
    wide = s.pivot(index=by, columns="task", values="score").mul(100).round(1)
    cost = s.groupby(by, sort=False)[[c for c in ("trainable_params", "wall_time_s", "optimizer_state_mib", "peak_gpu_mib") if c in s]].first()
    out = wide.join(cost).reindex(list(dict.fromkeys(s[by])))
    out["mean"] = wide.mean(axis=1).round(1)
    df = pd.DataFrame(rows)
    if "k" in df:
        out.insert(0, "k", df.groupby(by, sort=False).k.first())
    return out


def plot_pareto(table: pd.DataFrame, ax=None, cost: str = "wall_time_s"):
    """Mean test score against cost (wall time, trainable params or peak GPU memory) per scenario: claim F5's trade-off."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(table[cost], table["mean"])
    for name, r in table.iterrows():
        ax.annotate(name, (r[cost], r["mean"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel({"wall_time_s": "wall time (s)", "trainable_params": "trainable parameters", "peak_gpu_mib": "peak GPU memory (MiB)"}.get(cost, cost))
    ax.set_ylabel("mean test score over tasks (%)")
    return ax


def sweep_table(rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """Training-set-size sweep: mean test score over tasks (%) per training size (rows) and scenario (columns)."""
    df = pd.DataFrame(rows)
    per_task = df.groupby(["train_size", "scenario", "task"]).score.mean().reset_index()
    return per_task.groupby(["train_size", "scenario"]).score.mean().mul(100).round(1).unstack("scenario")
