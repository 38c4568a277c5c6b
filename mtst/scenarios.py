"""The measured scenarios of notebooks 03 and 04, shared with `make results`: freezing (what learns) and
layer-wise learning rates (how fast each part learns). Each run starts from the pretrained encoder and fresh
heads, trains with the same budget, and is scored on the held-out test split.

    rows = run_freezing_grid(train, val, test, cfg, max_length, seeds=[0])   # tidy rows, one per task
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import pandas as pd
import torch

from .data import TaskData


@dataclass(frozen=True)
class FreezeScenario:
    name: str
    what: str  # one line for tables
    freeze: tuple[str, ...] = ()  # specs frozen before training
    k: int | None = None  # how many lower encoder layers are frozen (the k-sweep), when it is one
    cache: bool = False  # encoder run once as a feature extractor (eval mode), heads trained on the cache
    gradual: bool = False  # ULMFiT gradual unfreezing from the top
    passes: float = 1.0  # heads train this many times the recipe's steps (cheap on the cache: a step skips the encoder)


FREEZE_SCENARIOS: dict[str, FreezeScenario] = {s.name: s for s in (
    FreezeScenario("a_feature_extractor", "everything pretrained frozen, encoder as a cached feature extractor; heads learn", ("encoder",), cache=True),
    FreezeScenario("a_feature_extractor_10x", "as a, with the heads trained 10× as long: what frozen features give when the heads "
                   "are not short of steps", ("encoder",), cache=True, passes=10.0),
    FreezeScenario("b_backbone_frozen", "backbone frozen (dropout still on), heads trained through it", ("encoder",), k=6),
    FreezeScenario("d_lower4_frozen", "embeddings + layers 0-3 frozen, layers 4-5 and heads train", ("embeddings", "layers:0-3"), k=4),
    FreezeScenario("d_lower2_frozen", "embeddings + layers 0-1 frozen, layers 2-5 and heads train", ("embeddings", "layers:0-1"), k=2),
    FreezeScenario("e_full_finetune", "nothing frozen: full fine-tuning", (), k=0),
    FreezeScenario("f_gradual_unfreezing", "heads first, then one more layer from the top every 1/8 of the run", gradual=True),
)}


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
)}


def _check(name: str, table: dict) -> None:
    if name not in table:
        raise ValueError(f"unknown scenario {name!r}; valid: {', '.join(table)}")


def _fresh_model(train: dict[str, TaskData], max_length: int, seed: int, encoder=None):
    from .encoder import SentenceEncoder
    from .freezing import unfreeze
    from .model import MultiTaskModel

    # Every run starts from the same pretrained weights: a copy, never the caller's encoder itself.
    enc = copy.deepcopy(encoder) if encoder is not None else SentenceEncoder.from_pretrained(max_length=max_length)
    return unfreeze(MultiTaskModel.for_tasks(enc, train, seed=seed), "all")  # whatever the caller froze, start trainable


def _optimizer_state_mib(trainer) -> float:
    """Bytes held by the optimizer's state (AdamW moments): what freezing saves besides compute."""
    return sum(t.numel() * t.element_size() for s in trainer.optimizer.state.values() for t in s.values() if torch.is_tensor(t)) / 2**20


def _score_rows(model, test: dict, base: dict, trainer, res) -> list[dict]:
    from .evaluation import evaluate_all
    from .freezing import trainable_summary

    total = trainable_summary(model).iloc[-1]
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float("nan")
    scores = evaluate_all(model, {t: test[t] for t in model.tasks}, precision=trainer.config.precision)  # as it validated
    return [{**base, "task": r["task"], "score": r["score"], "trainable_params": int(total.trainable_params),
             "trainable_fraction": float(total.trainable_fraction), "steps": res.steps, "wall_time_s": res.wall_time_s,
             "optimizer_state_mib": _optimizer_state_mib(trainer), "peak_gpu_mib": peak} for r in scores.to_dict("records")]


def run_freeze_scenario(name: str, train: dict, val: dict | None, test: dict, cfg, max_length: int, seed: int = 0,
                        encoder=None, callbacks=()) -> tuple[list[dict], object]:
    """Train one freezing scenario from the pretrained encoder; rows of test scores, and the trained model.
    val=None skips validation (and so keeping the best state): the run ends at its last step."""
    from .cache import EncoderEvalMode
    from .freezing import GradualUnfreezing, freeze
    from .training import Trainer, planned_steps

    _check(name, FREEZE_SCENARIOS)
    sc = FREEZE_SCENARIOS[name]
    model = _fresh_model(train, max_length, seed, encoder)
    if sc.freeze:
        freeze(model, *sc.freeze)
    cbs = list(callbacks)
    if sc.cache:
        cbs.append(EncoderEvalMode())
    cfg = replace(cfg, seed=seed, cache_encoder=sc.cache)
    if sc.passes != 1.0:
        cfg = replace(cfg, steps=round(planned_steps(train, cfg) * sc.passes))
    if sc.gradual:
        cbs.insert(0, GradualUnfreezing(every=max(1, planned_steps(train, cfg) // 8)))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(model, train, cfg, validation={t: val[t] for t in train} if val else None, callbacks=cbs)
    res = trainer.run()
    base = {"scenario": name, "k": sc.k, "seed": seed, "train_size": max(len(d) for d in train.values())}
    return _score_rows(model, test, base, trainer, res), model


def run_lr_scheme(name: str, train: dict, val: dict, test: dict, cfg, max_length: int, seed: int = 0,
                  encoder=None, callbacks=(), head_lrs: dict[str, float] | None = None) -> tuple[list[dict], object, object]:
    """Train with one learning-rate scheme (optionally with per-task head rates); rows of test scores, the
    trained model and the TrainResult."""
    from .optim import layerwise_param_groups
    from .training import Trainer

    _check(name, LR_SCHEMES)
    s = LR_SCHEMES[name]
    cfg = replace(cfg, seed=seed, lr=s.lr, head_lr=s.head_lr, layer_decay=s.layer_decay)
    model = _fresh_model(train, max_length, seed, encoder)
    groups = layerwise_param_groups(model, cfg.lr, cfg.head_lr, cfg.layer_decay, cfg.weight_decay, head_lrs=head_lrs) if head_lrs else None
    trainer = Trainer(model, train, cfg, validation={t: val[t] for t in train}, callbacks=list(callbacks), groups=groups)
    res = trainer.run()
    label = name + "".join(f"+{t}_head×{r / s.head_lr:g}" for t, r in (head_lrs or {}).items())
    return _score_rows(model, test, {"scheme": label, "seed": seed}, trainer, res), model, res


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


def run_size_sweep(train: dict, val: dict, test: dict, cfg, max_length: int, sizes: list[int], seed: int = 0, encoder=None,
                   scenarios: tuple[str, ...] = SWEEP_SCENARIOS, min_steps: int = 0) -> list[dict]:
    """Claims F1/F2: the same scenarios trained on n examples per task, for each n in sizes. Each run gets
    cfg's epochs, but at least min_steps steps, so that small sets still see enough updates."""
    from tqdm.auto import tqdm

    from .training import planned_steps

    rows = []
    for n in tqdm(sizes, desc="size sweep", leave=False):
        small = subsample(train, n, seed)
        steps = max(min_steps, planned_steps(small, replace(cfg, steps=None)))
        for name in scenarios:
            r, _ = run_freeze_scenario(name, small, val, test, replace(cfg, steps=steps), max_length, seed, encoder)
            rows += [{**x, "train_size": n} for x in r]
    return rows


def run_head_drift(model, train: dict, val: dict, frozen_task: str, cfg, eval_every: int, freeze_encoder: bool = False) -> pd.DataFrame:
    """Scenario (c): freeze one task's head and train the encoder and the other heads on the other tasks.
    Returns the frozen task's validation score at every evaluation (step 0 = before): its drift."""
    from .evaluation import evaluate
    from .freezing import freeze, unfreeze
    from .training import Callback, Trainer

    unfreeze(model, "all")
    freeze(model, f"head:{frozen_task}")
    if freeze_encoder:
        freeze(model, "encoder")
    others = {t: d for t, d in train.items() if t != frozen_task}
    if not others:
        raise ValueError(f"head drift needs a task other than {frozen_task!r} to train on")
    rows = [{"step": 0, "score": evaluate(model, val[frozen_task], frozen_task, precision=cfg.precision)["score"]}]  # as the later steps
    head_before = [p.detach().clone() for p in model.heads[frozen_task].parameters()]

    class Track(Callback):
        def on_evaluate(self, trainer, step, metrics):
            rows.append({"step": step, "score": metrics[frozen_task]["score"]})

    cfg = replace(cfg, eval_every=eval_every, keep_best=False)
    Trainer(model, others, cfg, validation={frozen_task: val[frozen_task]}, callbacks=[Track()]).run()
    unchanged = all(torch.equal(a, b.detach()) for a, b in zip(head_before, model.heads[frozen_task].parameters()))
    out = pd.DataFrame(rows)
    out["drift"] = out.score - out.score.iloc[0]
    out.attrs["head_unchanged"] = unchanged
    return out


def summarize_runs(rows: list[dict] | pd.DataFrame, by: str) -> pd.DataFrame:
    """mean ± std of the test score per (by, task) over seeds, plus the run's cost columns."""
    df = pd.DataFrame(rows)
    g = df.groupby([by, "task"], sort=False)
    out = g.agg(score=("score", "mean"), std=("score", "std"), seeds=("seed", "nunique"), trainable_params=("trainable_params", "first"),
                wall_time_s=("wall_time_s", "mean"), optimizer_state_mib=("optimizer_state_mib", "mean")).reset_index()
    return out


def score_table(rows: list[dict] | pd.DataFrame, by: str) -> pd.DataFrame:
    """One row per scenario: the test score per task (%), trainable params and wall time."""
    s = summarize_runs(rows, by)
    wide = s.pivot(index=by, columns="task", values="score").mul(100).round(1)
    cost = s.groupby(by, sort=False)[["trainable_params", "wall_time_s", "optimizer_state_mib"]].first()
    out = wide.join(cost).reindex(list(dict.fromkeys(s[by])))
    out["mean"] = wide.mean(axis=1).round(1)
    df = pd.DataFrame(rows)
    if "k" in df:
        out.insert(0, "k", df.groupby(by, sort=False).k.first())
    return out


def plot_pareto(table: pd.DataFrame, ax=None, cost: str = "wall_time_s"):
    """Mean test score against cost (wall time, or trainable params) per scenario: claim F5's trade-off."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(table[cost], table["mean"])
    for name, r in table.iterrows():
        ax.annotate(name, (r[cost], r["mean"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel({"wall_time_s": "wall time (s)", "trainable_params": "trainable parameters"}.get(cost, cost))
    ax.set_ylabel("mean test score over tasks (%)")
    return ax


def sweep_table(rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """Training-set-size sweep: mean test score over tasks (%) per training size (rows) and scenario (columns)."""
    df = pd.DataFrame(rows)
    per_task = df.groupby(["train_size", "scenario", "task"]).score.mean().reset_index()
    return per_task.groupby(["train_size", "scenario"]).score.mean().mul(100).round(1).unstack("scenario")


def _verdict(ok: bool | None) -> str:
    return {True: "supported here", False: "not supported here", None: "partly"}[ok]


def freezing_claims(grid: pd.DataFrame, sweep: pd.DataFrame, drift: pd.DataFrame, drift_control: pd.DataFrame, task: str) -> pd.DataFrame:
    """The brief's freezing claims (F1-F5) next to this run's numbers, with a verdict computed from them.
    grid: score_table(..., "scenario"); sweep: sweep_table(...); drift/_control: run_head_drift frames."""
    e = "e_full_finetune"
    # The frozen side at its best: the backbone frozen as in the grid, or its heads trained 10× as long on the cache.
    frozen = sweep[[c for c in SWEEP_SCENARIOS if c != e and c in sweep]]
    best_frozen, which = frozen.max(axis=1), frozen.idxmax(axis=1)
    small, large = sweep.index.min(), sweep.index.max()
    gap_small = best_frozen[small] - sweep.loc[small, e]
    gap_large = best_frozen[large] - sweep.loc[large, e]
    mid = sweep.index[len(sweep.index) // 2] if len(sweep.index) > 2 else large
    gap_mid = best_frozen[mid] - sweep.loc[mid, e]
    d_end, c_end = drift.drift.iloc[-1] * 100, drift_control.drift.iloc[-1] * 100
    ks = grid.dropna(subset=["k"]) if "k" in grid else grid
    k_scores = {int(r.k): r["mean"] for _, r in ks.iterrows()} if "k" in ks else {}
    best_k = max(k_scores, key=k_scores.get) if k_scores else None
    g = grid.loc["f_gradual_unfreezing", "mean"] if "f_gradual_unfreezing" in grid.index else float("nan")
    full_t, full_s = grid.loc[e, "wall_time_s"], grid.loc[e, "mean"]
    cheap = grid.drop(index=e)
    eff = cheap.assign(score_share=cheap["mean"] / full_s, time_share=cheap.wall_time_s / full_t)
    best_eff = eff.sort_values("score_share", ascending=False).iloc[0]
    rows = [
        ("F1", "Freeze everything when task data is very limited.",
         f"{small} examples per task: frozen encoder {best_frozen[small]:.1f} (best frozen: {which[small]}) vs full fine-tuning "
         f"{sweep.loc[small, e]:.1f} (mean test score, %)",
         _verdict(bool(gap_small >= 0))),
        ("F2", "Freezing only the backbone suits moderate data.",
         f"{mid} examples: best frozen − full = {gap_mid:+.1f} pts" + (f"; with {large}: {gap_large:+.1f} pts" if mid != large else ""),
         _verdict(bool(gap_mid >= -1.0)) if gap_mid >= -1.0 or gap_large < gap_mid else _verdict(False)),
        ("F3", "Freezing one head keeps that task's performance while the others train (with monitoring).",
         f"{task} head frozen, bit-identical: {drift.attrs.get('head_unchanged')}; its validation score moved {d_end:+.1f} pts as the encoder trained on the other tasks "
         f"(control, encoder frozen too: {c_end:+.1f} pts)",
         _verdict(abs(d_end) <= 1.0) if abs(d_end) <= 1.0 else "not supported here: a frozen head does not protect its task when the shared encoder moves"),
        ("F4", "Freeze lower layers, fine-tune upper ones, train heads from scratch.",
         "k frozen lower layers → mean score: " + ", ".join(f"k={k}: {v:.1f}" for k, v in sorted(k_scores.items())) + f"; gradual unfreezing {g:.1f}",
         _verdict(best_k is not None and 0 < best_k < 6) if best_k is not None else "partly"),
        ("F5", "This balances efficiency and performance.",
         f"best non-full scenario {best_eff.name}: {100 * best_eff.score_share:.0f}% of full fine-tuning's score at {100 * best_eff.time_share:.0f}% of its wall time",
         _verdict(bool(best_eff.score_share >= 0.97 and best_eff.time_share <= 0.8))),
    ]
    return pd.DataFrame(rows, columns=["claim", "the brief says", "this run measured", "verdict"]).set_index("claim")


def _ratio(frame: pd.DataFrame, col: str, low: tuple[str, ...] = ("embeddings", "layer_0"), high: tuple[str, ...] = ("layer_5",)) -> float:
    f = frame[frame[col] > 0] if col == "update_ratio" else frame
    lo, hi = f[f.part.isin(low)][col].mean(), f[f.part.isin(high)][col].mean()
    return float(lo / hi) if hi else float("nan")


def lr_claims(table: pd.DataFrame, grads: dict[str, pd.DataFrame], forget: dict[str, pd.DataFrame], conflict: dict[str, pd.DataFrame],
              boost: tuple[str, str, str], steps: dict[str, int | None], uniform: str = "uniform_1e-4", layerwise: str = "decay_0.9") -> pd.DataFrame:
    """The brief's learning-rate claims (L1-L6) next to this run's numbers, with verdicts computed from them.
    table: score_table(rows, "scheme"); grads: GradientMonitor frames; forget: forgetting frames; conflict:
    ConflictMonitor.conflict_share frames; boost: (base scheme, boosted scheme, boosted task); steps: steps_to_target."""
    m = table["mean"]
    two, lo, hi = m.get("two_rate"), m.get("uniform_1e-5"), m.get("uniform_1e-4")
    fg = {k: f.forgetting.mean() * 100 for k, f in forget.items()}
    up_u, up_l = _ratio(grads[uniform], "update_ratio"), _ratio(grads[layerwise], "update_ratio")
    g_u = _ratio(grads[uniform], "grad_norm")
    base, boosted, task = boost
    d_task = table.loc[boosted, task] - table.loc[base, task]
    others = [t for t in table.columns if t in ("sentiment", "topic", "ner") and t != task]
    d_others = {t: table.loc[boosted, t] - table.loc[base, t] for t in others}
    c_u, c_l = conflict.get(uniform), conflict.get(layerwise)
    best = m.idxmax()
    rows = [
        ("L1", "Pretrained layers want ~1e-5, heads ~1e-4.",
         f"mean test score: two-rate {two:.1f}, uniform 1e-5 {lo:.1f}, uniform 1e-4 {hi:.1f}; forgetting (1−CKA, mean over layers, %): "
         + ", ".join(f"{k} {v:.1f}" for k, v in fg.items()),
         _verdict(bool(two >= max(lo, hi)))),
        ("L2", "The backbone adapts slowly while heads adapt fast.",
         f"update/weight ratio of embeddings+layer 0 relative to layer 5: {up_l:.2f} with {layerwise}, {up_u:.2f} with {uniform}",
         _verdict(bool(up_l < up_u))),
        ("L3", "Per-part rates give fine-grained control, e.g. to prioritise a task.",
         f"{task} head rate raised ({boosted}): {task} {d_task:+.1f} pts; " + ", ".join(f"{t} {v:+.1f}" for t, v in d_others.items()),
         _verdict(bool(d_task > 0 and all(abs(v) <= abs(d_task) for v in d_others.values())))),
        ("L4", "Layer-wise rates mitigate vanishing gradients.",
         f"under {uniform}, the gradient norm of embeddings+layer 0 is {g_u:.2f}× layer 5's",
         "not supported here: there is no vanishing gradient to mitigate" if g_u >= 0.5 else _verdict(True)),
        ("L5", "Layer-wise rates give controlled transfer between tasks.",
         (f"share of recorded steps with conflicting task gradients (cosine < 0): {c_u.conflict_share.mean():.0%} with {uniform}, "
          f"{c_l.conflict_share.mean():.0%} with {layerwise}; mean cosine {c_u.mean_cosine.mean():+.2f} vs {c_l.mean_cosine.mean():+.2f}")
         if c_u is not None and c_l is not None else "not measured",
         _verdict(bool(c_l.conflict_share.mean() < c_u.conflict_share.mean())) if c_u is not None and c_l is not None else "partly"),
        ("L6", "The result is better performance and more efficient training.",
         f"best scheme {best} ({m[best]:.1f}); steps to reach 95% of the best final validation score: "
         + ", ".join(f"{k} {v if v is not None else 'never'}" for k, v in steps.items()),
         _verdict(bool(best.startswith("decay")))),
    ]
    return pd.DataFrame(rows, columns=["claim", "the brief says", "this run measured", "verdict"]).set_index("claim")
