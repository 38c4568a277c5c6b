"""The measured experiments of `make results`: each `run_<experiment>(size, seed, unit)` trains and tests real
models and returns its measurements as rows (COLUMNS); `mtst.lab.results` runs them and writes the results files.

Each starts from `full_config`, the multi-task recipe (or `tuned_config`, its per-task epochs), and varies what
the experiment is about: the freezing scenario, the learning-rate scheme, the loss weighting, the precision.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

from ..config import SIZES, TrainConfig, recipe
from ..data import TASKS, load_task
from ..diagnostics import ConflictMonitor, GradientMonitor, forgetting, layer_representations
from ..encoder import SentenceEncoder
from ..pretrained import ENCODERS, resolve_encoder
from ..scenarios import (
    LR_SCHEMES,
    SWEEP_SCENARIOS,
    fit_and_test,
    freeze_scenarios,
    run_freeze_scenario,
    run_head_drift,
    run_lr_scheme,
    steps_to_target,
    subsample,
)
from ..training import planned_steps
from ..weighting import uncertainty_summary

COLUMNS = ["experiment", "setting", "seed", "task", "metric", "value", "steps", "wall_time_s"]


RESULTS_EPOCHS = {"ci": 0.25, "demo": 1.0, "full": 4.0}  # passes over every task's data in a results run, per size


def full_config(size: str, seed: int) -> TrainConfig:
    """The notebooks' recipe (`mtst.recipe`) as the results runs use it: the same rates, decay, schedule and sampler,
    with batches of 32 drawn in random order (not bucketed by length) and RESULTS_EPOCHS passes at every size."""
    return replace(
        recipe("full", seed),
        # --epochs (MTST_RESULTS_EPOCHS) shortens a run on a small machine; the provenance records it.
        epochs=float(os.environ.get("MTST_RESULTS_EPOCHS") or RESULTS_EPOCHS[size]),
        bucket_by_length=False,
        eval_every=int(os.environ["MTST_RESULTS_EVAL_EVERY"]) if os.environ.get("MTST_RESULTS_EVAL_EVERY") else None,
        # --precision (MTST_RESULTS_PRECISION): bf16 autocast on a CPU with bf16 instructions, ~1.7x faster steps.
        precision=os.environ.get("MTST_RESULTS_PRECISION") or "auto",
        # --progress (MTST_RESULTS_PROGRESS): a bar over each run's steps; how a run is shown, not part of its recipe.
        progress=os.environ.get("MTST_RESULTS_PROGRESS") == "1",
    )


def encoder_name() -> str:
    """The encoder the results runs fine-tune: $MTST_ENCODER (`--encoder`), else the default, all-MiniLM-L6-v2."""
    return resolve_encoder()


def _encoder(size: str) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(encoder_name(), max_length=SIZES[size].max_length)


def _load(size: str, split: str, tasks=None) -> dict:
    return {t: load_task(t, split, size) for t in (tasks or TASKS)}


def _fit_and_test(size: str, seed: int, tasks: list[str], cfg, hidden: int | None = None):
    scores, res, _ = fit_and_test(_load(size, "train", tasks), _load(size, "validation", tasks), _load(size, "test", tasks), cfg,
                                  SIZES[size].max_length, seed, hidden=hidden)
    return scores, res


def _row(experiment: str, setting: str, seed: int, task: str, metric: str, value, steps, wall_time_s) -> dict:
    """One CSV row (COLUMNS), the value as a float."""
    return dict(zip(COLUMNS, (experiment, setting, seed, task, metric, float(value), steps, wall_time_s)))


def _rows(experiment: str, setting: str, seed: int, scores: list[dict], res) -> list[dict]:
    """Test metrics per task, and each task's validation score at the state the run kept (metric `validation`,
    what a choice between settings should be made on), with that step (`kept_step`)."""
    rows = [_row(experiment, setting, seed, rec["task"], metric, value, res.steps, res.wall_time_s)
            for rec in scores for metric, value in rec.items() if metric != "task" and value == value]  # no NaN
    h = res.history
    if res.config.get("keep_best", True) and res.best_step is not None and "phase" in h:
        kept = h[(h.phase == "validation") & (h.step == res.best_step)]
        for task, value in zip(kept.task, kept.score):
            rows += [_row(experiment, setting, seed, task, metric, v, res.steps, res.wall_time_s)
                     for metric, v in (("validation", value), ("kept_step", res.best_step))]
    return rows


SINGLE_VS_MULTI = [f"single:{t}" for t in TASKS] + ["multi"]  # each task alone, then all on one encoder


def run_single_vs_multi(size: str, seed: int, unit: str | None = None, experiment: str = "single_vs_multi") -> list[dict]:
    """Each task alone (its own encoder copy and head) against all three tasks on one shared encoder."""
    from dataclasses import replace

    rows = []
    for setting in SINGLE_VS_MULTI:
        tasks = [setting.split(":", 1)[1]] if setting.startswith("single:") else list(TASKS)
        if unit is not None and setting != unit:
            continue
        cfg = (tuned_config if experiment == "tuned_recipe" else full_config)(size, seed)
        if cfg.task_epochs:  # a single-task run keeps only its own task's passes
            cfg = replace(cfg, task_epochs={t: e for t, e in cfg.task_epochs.items() if t in tasks})
        scores, res = _fit_and_test(size, seed, tasks, cfg)
        rows += _rows(experiment, "multi" if setting == "multi" else "single", seed, scores, res)
        print(f"[{experiment} seed={seed}] {setting}: " + ", ".join(f"{r['task']} {r['score']:.4f}" for r in scores) + f" ({res.wall_time_s:.0f} s, {res.steps} steps)", flush=True)
    return rows


# The recipe with each task's own number of passes, from the sweep below (seed 0): NER 12, sentiment 2, topic the
# recipe's 4. --epochs scales them all alike (e.g. --epochs 1 runs NER 3, sentiment 0.5, topic 1).
TUNED_TASK_EPOCHS = {"ner": 12.0, "sentiment": 2.0}


def tuned_config(size: str, seed: int):
    """full_config with TUNED_TASK_EPOCHS, scaled by the run's epochs over the recipe's 4."""
    cfg = full_config(size, seed)
    cfg.task_epochs = {t: e * cfg.epochs / 4.0 for t, e in TUNED_TASK_EPOCHS.items()}
    return cfg


def run_tuned_recipe(size: str, seed: int, unit: str | None = None) -> list[dict]:
    """single_vs_multi again, with each task's tuned passes: the run that tests the goals."""
    return run_single_vs_multi(size, seed, unit, experiment="tuned_recipe")


# What was tried to reach the goals: single-task variants of the recipe in full_config (one change each).
SWEEP = {
    "ner:base": ("ner", {}),
    "ner:epochs8": ("ner", {"epochs": 8.0}),
    "ner:epochs12": ("ner", {"epochs": 12.0}),
    "ner:epochs8_lr2e-4": ("ner", {"epochs": 8.0, "lr": 2e-4}),
    "ner:epochs8_head3e-3": ("ner", {"epochs": 8.0, "head_lr": 3e-3}),
    "ner:epochs8_decay1.0": ("ner", {"epochs": 8.0, "layer_decay": 1.0}),
    "sentiment:base": ("sentiment", {}),
    "sentiment:epochs2": ("sentiment", {"epochs": 2.0}),
    "sentiment:lr5e-5_decay1.0": ("sentiment", {"lr": 5e-5, "layer_decay": 1.0}),
    "sentiment:epochs2_lr5e-5": ("sentiment", {"epochs": 2.0, "lr": 5e-5}),
    # Knobs the first sweep left untried for sentiment (the goal it missed): passes, schedule, batch size, decay.
    "sentiment:epochs1": ("sentiment", {"epochs": 1.0}),
    "sentiment:epochs3": ("sentiment", {"epochs": 3.0}),
    "sentiment:epochs2_cosine": ("sentiment", {"epochs": 2.0, "schedule": "cosine"}),
    "sentiment:epochs2_batch16": ("sentiment", {"epochs": 2.0, "batch_size": 16}),
    "sentiment:epochs2_decay0.8": ("sentiment", {"epochs": 2.0, "layer_decay": 0.8}),
    # Third round: head design (a hidden layer, `head_hidden`, the one knob that is not in TrainConfig) and more rate
    # for the encoder, since lowering it (decay 0.8, lr 5e-5) lost.
    "sentiment:epochs2_hidden384": ("sentiment", {"epochs": 2.0, "head_hidden": 384}),
    "sentiment:epochs2_lr2e-4": ("sentiment", {"epochs": 2.0, "lr": 2e-4}),
    "sentiment:epochs2_decay1.0": ("sentiment", {"epochs": 2.0, "layer_decay": 1.0}),
}


def run_recipe_sweep(size: str, seed: int, unit: str | None = None) -> list[dict]:
    """Single-task runs with one change each to the recipe: the record of what was tried."""
    rows = []
    for name, (task, change) in SWEEP.items():
        if unit is not None and name != unit:
            continue
        cfg = full_config(size, seed)
        for k, v in change.items():
            if k != "head_hidden":
                setattr(cfg, k, v)
        scores, res = _fit_and_test(size, seed, [task], cfg, hidden=change.get("head_hidden"))
        rows += _rows("recipe_sweep", name, seed, scores, res)
        print(f"[recipe_sweep seed={seed}] {name}: {scores[0]['score']:.4f} ({res.wall_time_s:.0f} s, {res.steps} steps)", flush=True)
    return rows


PRECISION_TASKS = ("sentiment", "ner")  # a short-text task and the token task
PRECISIONS = ("fp32", "bf16")


def run_precision(size: str, seed: int, unit: str | None = None) -> list[dict]:
    """Does bf16 autocast keep the metrics? The same single-task runs in fp32 and in bf16."""
    rows = []
    for task in PRECISION_TASKS:
        for precision in PRECISIONS:
            name = f"{task}:{precision}"
            if unit is not None and name != unit:
                continue
            cfg = full_config(size, seed)
            cfg.precision = precision
            scores, res = _fit_and_test(size, seed, [task], cfg)
            rows += _rows("precision", name, seed, scores, res)
            print(f"[precision seed={seed}] {name}: {scores[0]['score']:.4f} ({res.wall_time_s:.0f} s, {res.steps} steps)", flush=True)
    return rows


def _freeze_rows(experiment: str, rows: list[dict], setting_key: str = "scenario") -> list[dict]:
    """Scenario rows (one per task) → results rows: the test score per task, and the run's costs once."""
    out, seen = [], set()
    for r in rows:
        setting = str(r[setting_key]) + (f"@{r['train_size']}" if experiment == "freezing_size_sweep" else "")
        out.append(_row(experiment, setting, r["seed"], r["task"], "score", r["score"], r["steps"], r["wall_time_s"]))
        if setting not in seen:
            seen.add(setting)
            for metric in ("trainable_params", "optimizer_state_mib", "peak_gpu_mib"):
                if r.get(metric) == r.get(metric):  # not NaN
                    out.append(_row(experiment, setting, r["seed"], "*", metric, r[metric], r["steps"], r["wall_time_s"]))
    return out


def run_freezing(size: str, seed: int, unit: str | None = None) -> list[dict]:
    """The freezing scenario grid (notebook 03), each scenario from the pretrained encoder with one recipe."""

    train, val, test = _load(size, "train"), _load(size, "validation"), _load(size, "test")
    encoder = _encoder(size)
    rows = []
    for name in freeze_scenarios(len(encoder.layers)):  # the k-sweep at the encoder's depth
        if unit is not None and name != unit:
            continue
        r, _ = run_freeze_scenario(name, train, val, test, full_config(size, seed), SIZES[size].max_length, seed, encoder)
        rows += _freeze_rows("freezing", r)
        print(f"[freezing seed={seed}] {name}: " + ", ".join(f"{x['task']} {x['score']:.4f}" for x in r) + f" ({r[0]['wall_time_s']:.0f} s)", flush=True)
    return rows


SWEEP_SIZES = (100, 1000, None)  # training examples per task; None: all of the size


def run_freezing_size_sweep(size: str, seed: int, unit: str | None = None) -> list[dict]:
    """Claims F1/F2: backbone frozen against full fine-tuning at several training-set sizes."""
    from dataclasses import replace

    train, val, test = _load(size, "train"), _load(size, "validation"), _load(size, "test")
    cfg = full_config(size, seed)
    min_steps = planned_steps(train, cfg)
    rows = []
    for n in SWEEP_SIZES:
        for name in SWEEP_SCENARIOS:
            if unit is not None and unit != f"{name}@{n or 'all'}":
                continue
            small = subsample(train, n, seed)
            steps = max(min_steps, planned_steps(small, cfg))
            r, _ = run_freeze_scenario(name, small, val, test, replace(cfg, steps=steps), SIZES[size].max_length, seed)
            rows += _freeze_rows("freezing_size_sweep", [{**x, "train_size": n or "all"} for x in r])
            print(f"[size_sweep seed={seed}] {name}@{n or 'all'}: " + ", ".join(f"{x['task']} {x['score']:.4f}" for x in r), flush=True)
    return rows


HEAD_DRIFT_SETTINGS = {"encoder_trains": False, "control_encoder_frozen": True}  # setting: whether the encoder is frozen too


def run_head_drift_experiment(size: str, seed: int, unit: str | None = None) -> list[dict]:
    """Claim F3: fine-tune everything, then freeze the sentiment head and train on topic + NER; the sentiment
    validation score at each evaluation (and a control with the encoder frozen too)."""
    import copy
    from dataclasses import replace

    train, val, test = _load(size, "train"), _load(size, "validation"), _load(size, "test")
    cfg = full_config(size, seed)
    _, model = run_freeze_scenario("e_full_finetune", train, val, test, cfg, SIZES[size].max_length, seed)
    others = {t: d for t, d in train.items() if t != "sentiment"}
    steps = planned_steps(others, cfg)
    rows = []
    for setting, freeze_encoder in HEAD_DRIFT_SETTINGS.items():
        if unit is not None and unit != setting:
            continue
        t0 = time.perf_counter()
        d = run_head_drift(copy.deepcopy(model), train, val, "sentiment", replace(cfg, steps=steps), max(1, steps // 8), freeze_encoder)
        wall = time.perf_counter() - t0
        rows += [_row("head_drift", setting, seed, "sentiment", f"score@{int(r.step)}", r.score, int(r.step), wall) for _, r in d.iterrows()]
        print(f"[head_drift seed={seed}] {setting}: {d.score.iloc[0]:.4f} → {d.score.iloc[-1]:.4f}", flush=True)
    return rows


# setting: (scheme, per-task head rates): every scheme, and ξ=0.9 with the NER head at 10× the heads' rate
LAYERWISE_RUNS = {**{n: (n, None) for n in LR_SCHEMES}, "decay_0.9+ner_head×10": ("decay_0.9", {"ner": 1e-2})}


def run_layerwise_lr(size: str, seed: int, unit: str | None = None) -> list[dict]:
    """The learning-rate schemes (notebook 04), with the forgetting meter (1 − linear CKA per layer)."""

    train, val, test = _load(size, "train"), _load(size, "validation"), _load(size, "test")
    encoder = _encoder(size)
    sentences = [s for d in test.values() for s in d.texts[:200]]
    reference = layer_representations(encoder, sentences)
    rows = []
    steps = planned_steps(train, full_config(size, seed))
    for setting, (name, head_lrs) in LAYERWISE_RUNS.items():
        if unit is not None and unit != setting:
            continue
        # Per-part gradient norms and update sizes on ~50 steps, task-gradient cosines 4 times a run: the evidence of L4 and L5.
        watch = [GradientMonitor(every=max(1, steps // 50)), ConflictMonitor({t: d.subset(8, seed) for t, d in val.items()},
                                                                             every=max(1, steps // 4), batch_size=8)]
        r, model, res = run_lr_scheme(name, train, val, test, full_config(size, seed), SIZES[size].max_length, seed, encoder,
                                      callbacks=watch, head_lrs=head_lrs)
        assert r[0]["scheme"] == setting
        rows += _freeze_rows("layerwise_lr", r, "scheme")
        f = forgetting(reference, model.encoder, sentences)
        best = res.history[res.history.phase == "validation"].groupby("step").score.mean()
        s95 = steps_to_target(res.history, 0.95 * float(best.max()))  # never None: the best itself reaches it
        g = watch[0].frame().groupby("part")[["grad_norm", "update_ratio"]].mean()
        c = watch[1].conflict_share()
        rows += [_row("layerwise_lr", setting, seed, "*", metric, value, res.steps, res.wall_time_s)
                 for metric, value in [*((f"forgetting:{x.layer}", x.forgetting) for x in f.itertuples()),
                                       ("best_validation", best.max()), ("steps_to_95pct_own_best", s95),
                                       *((f"grad_norm:{part}", v) for part, v in g.grad_norm.items()),
                                       *((f"update_ratio:{part}", v) for part, v in g.update_ratio.items()),
                                       ("conflict_share", c.conflict_share.mean()), ("mean_cosine", c.mean_cosine.mean())]]
        print(f"[layerwise_lr seed={seed}] {setting}: " + ", ".join(f"{x['task']} {x['score']:.4f}" for x in r)
              + f"; forgetting mean {f.forgetting.mean():.3f} ({res.wall_time_s:.0f} s)", flush=True)
    return rows


WEIGHTING_RUNS = {  # name: (weighting, all tasks per step, other changes to the recipe)
    "equal_sampled": ("equal", False, {}),
    "equal_joint": ("equal", True, {}),
    "uncertainty_joint": ("uncertainty", True, {}),
    # The log-variances at 10× the heads' rate: summed over the run's linear schedule, room for |log weight| ≈ 1.2
    # instead of 0.12, so the weights can reach the values that balance the tasks' losses.
    "uncertainty_joint_lr1e-2": ("uncertainty", True, {"uncertainty_lr": 1e-2}),
    "pcgrad": ("pcgrad", True, {}),
    "static_joint_tuned": ("equal", True, {}),  # static weights, the NER weight picked on validation from TUNED_NER_WEIGHTS
}
TUNED_NER_WEIGHTS = (0.5, 1.0, 2.0, 4.0)  # the tuned static baseline's grid (sentiment and topic stay at 1)


def run_loss_weighting(size: str, seed: int, unit: str | None = None) -> list[dict]:
    """Loss weighting at an equal budget of task batches: one task per step (the default recipe), all tasks per
    step with equal weights, with learned uncertainty weights, and with PCGrad."""
    from dataclasses import replace

    rows = []
    for name, (weighting, joint, changes) in WEIGHTING_RUNS.items():
        if unit is not None and name != unit:
            continue
        cfg = full_config(size, seed)
        batches = planned_steps(_load(size, "train"), cfg)  # one task per step: this many task batches in all
        cfg = replace(cfg, weighting=weighting, all_tasks_per_step=joint, steps=batches // len(TASKS) if joint else batches, **changes)
        if name == "static_joint_tuned":
            # A tuned static baseline: one run per NER weight, the best mean validation score picks which is tested.
            runs = {w: _fit_and_test(size, seed, list(TASKS), replace(cfg, loss_weights={"ner": w})) for w in TUNED_NER_WEIGHTS}
            best = max(runs, key=lambda w: runs[w][1].best_score)
            scores, res = runs[best]
            rows += [_row("loss_weighting", name, seed, "*", f"validation@ner_weight={w}", r.best_score, r.steps, r.wall_time_s)
                     for w, (_, r) in runs.items()]
            rows.append(_row("loss_weighting", name, seed, "*", "chosen_ner_weight", best, res.steps, sum(r.wall_time_s for _, r in runs.values())))
        else:
            scores, res = _fit_and_test(size, seed, list(TASKS), cfg)
        if weighting == "uncertainty":  # where the learned weights ended, and where they were heading

            summary = uncertainty_summary(res)
            rows += [_row("loss_weighting", name, seed, task, metric, summary.loc[task, metric], res.steps, res.wall_time_s)
                     for task in summary.index for metric in ("learned_weight", "balancing_weight")]
        rows += _rows("loss_weighting", name, seed, scores, res)
        print(f"[loss_weighting seed={seed}] {name}: " + ", ".join(f"{r['task']} {r['score']:.4f}" for r in scores) + f" ({res.wall_time_s:.0f} s)", flush=True)
    return rows


UNITS = {"single_vs_multi": SINGLE_VS_MULTI, "recipe_sweep": list(SWEEP), "tuned_recipe": SINGLE_VS_MULTI,
         "precision": [f"{t}:{p}" for t in PRECISION_TASKS for p in PRECISIONS],
         # every packaged encoder's k-sweep (d_lower2/4_frozen at depth 6, d_lower3/6/9_frozen at 12); `units_of` picks one
         "freezing": list(dict.fromkeys(n for e in ENCODERS.values() for n in freeze_scenarios(e.layers))),
         "freezing_size_sweep": [f"{s}@{n or 'all'}" for n in SWEEP_SIZES for s in SWEEP_SCENARIOS],
         "head_drift": list(HEAD_DRIFT_SETTINGS),
         "layerwise_lr": list(LAYERWISE_RUNS),
         "loss_weighting": list(WEIGHTING_RUNS)}

def units_of(experiment: str) -> list[str]:
    """An experiment's units for the encoder the runs use (the freezing grid's k-sweep follows its depth)."""
    if experiment == "freezing":
        return list(freeze_scenarios(ENCODERS[encoder_name()].layers))
    return UNITS[experiment]


# Experiments whose units share an expensive first step (head_drift: the full fine-tune that both settings start
# from). A grid split into runs (--jobs, --resume) runs all their units in one call per seed, unless --units asks.
SHARED_SETUP = {"head_drift"}


EXPERIMENTS = {"single_vs_multi": run_single_vs_multi, "tuned_recipe": run_tuned_recipe, "recipe_sweep": run_recipe_sweep, "precision": run_precision,
               "freezing": run_freezing, "freezing_size_sweep": run_freezing_size_sweep, "head_drift": run_head_drift_experiment,
               "layerwise_lr": run_layerwise_lr, "loss_weighting": run_loss_weighting}
