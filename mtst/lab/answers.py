"""The brief's questions answered in prose a teacher can read aloud, generated from the results files (docs/answers.md,
and the closing sections of notebooks 03 and 04), so that no number in them is typed and `make test` fails when one
goes stale. Each paragraph quotes full-size numbers with their seed spread, and says where the notebook's own run at
the default size (results/verdicts.json) agrees or differs.

    print(answers.freezing())      # the three freezing cases and the transfer-learning plan
    print(answers.layerwise())     # the rationale for layer-wise rates, their multi-task benefits, the brief's 1e-5 / 1e-4
"""

from __future__ import annotations

import json
import math
import struct

import pandas as pd

from .. import claims
from ..data import TASKS, load_task
from ..encoder import default_model_path
from . import depth, store
from . import model_choice as mc
from .store import load, load_with_control

NAMES = {"sentiment": "sentiment", "topic": "topic", "ner": "NER"}


def _ms(s: pd.Series) -> str:
    """mean ± std over seeds, in points."""
    return f"{s.mean():.1f} ± {s.std(ddof=1):.1f}" if len(s) > 1 else f"{s.mean():.1f}"


def _gap(sc: pd.DataFrame, a: str, b: str, col: str = "mean") -> pd.Series:
    return (sc.loc[a, col] - sc.loc[b, col]).dropna()


def _said(d: pd.Series) -> str:
    if len(d) == 1:
        return claims.paired_gap(d) + ", one seed: its spread is not known yet"
    return claims.paired_gap(d) + (", too close to call" if claims.too_close(d) else "")


def _live(claim_ids: tuple[str, ...]) -> str:
    """Where the notebooks' recorded run at the default size (results/verdicts.json) agrees with the full-size verdicts."""
    try:
        rec = store.read_json(store.RESULTS_DIR / "verdicts.json")
    except (store.DamagedResults, KeyError):
        return "The notebooks' default-size verdicts are not recorded yet."
    got = {e["claim"]: e for e in rec.get("claims", []) if e["claim"] in claim_ids}
    same = [c for c, e in got.items() if e.get("same") == "yes"]
    differ = [c for c, e in got.items() if e.get("same") == "no"]
    split = [c for c, e in got.items() if e.get("same", "").startswith("split")]
    parts = []
    if same:
        parts.append(f"agrees on {', '.join(same)}")
    if differ:
        parts.append(f"differs on {', '.join(differ)} (results.md lists how the runs differ: budget and data)")
    if split:
        parts.append(f"cannot be compared on {', '.join(split)}, split across seeds at full size")
    return (f"The notebooks' recorded run at their default size `{rec['size']}` (seed {rec['seed']}, one run, results/verdicts.json) "
            + "; ".join(parts) + "."
            if parts else "The notebooks' recorded run has no verdict to compare here.")


def _majority(task: str) -> float:
    """The share of the test split's most common label (%): what a model that learned nothing scores at best."""
    d = load_task(task, "test", "full")
    if d.kind == "token":
        return 0.0  # entity F1 of predicting no entity
    return 100 * pd.Series(d.labels).value_counts(normalize=True).iloc[0]


def _minilm_params() -> tuple[int, int, int]:
    """Parameters, layers and width of the packaged all-MiniLM-L6-v2, read from its safetensors header (no load)."""
    with (default_model_path() / "model.safetensors").open("rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    tensors = {k: v["shape"] for k, v in header.items() if k != "__metadata__"}
    total = sum(math.prod(shape) for shape in tensors.values())
    layers = len({k.split(".layer.")[1].split(".")[0] for k in tensors if ".layer." in k})
    width = next(shape[1] for k, shape in tensors.items() if k.endswith("word_embeddings.weight"))
    return total, layers, width


def _verdict_words(d: pd.Series, positive: str, negative: str) -> str:
    """The words a paired gap supports: one side on every seed, or too close to call."""
    if claims.too_close(d) or not ((d > 0).all() or (d < 0).all()):
        return "too close to call on our seeds"
    return positive if (d > 0).all() else negative


def freezing() -> str:
    """Freezing the whole network, only the backbone, one head; and the transfer-learning plan (model, layers, why)."""
    fr, fr_p = load("freezing")
    sc = claims.score_runs(fr)
    sw, _ = load("freezing_size_sweep", "cpu-full")
    sws = claims.score_runs(sw)
    hd, _ = load("head_drift", "cpu-full")
    e, b, d2, d4 = (sc.loc[k, "mean"] for k in ("e_full_finetune", "b_backbone_frozen", "d_lower2_frozen", "d_lower4_frozen"))
    fx = sws.loc["a_feature_extractor_10x@all"]
    chance = {t: _majority(t) for t in TASKS}
    wall = fr[fr.metric == "score"].groupby("setting").wall_time_s.mean()
    params = fr[fr.metric == "trainable_params"].groupby("setting").value.first()

    def sweep_gap(n: str) -> pd.Series:
        best = pd.concat([sws.loc[f"{k}@{n}", "mean"] for k in ("a_feature_extractor_10x", "b_backbone_frozen")], axis=1).max(axis=1)
        return (best - sws.loc[f"e_full_finetune@{n}", "mean"]).dropna()

    drift = hd[hd.metric.str.startswith("score@")].assign(step=lambda x: x.metric.str[6:].astype(int))
    end = drift.step.max()
    moved = {s: ((g[g.step == end].set_index("seed").value - g[g.step == 0].set_index("seed").value) * 100) for s, g in drift.groupby("setting")}
    trains = drift[drift.setting == "encoder_trains"]
    per_step = trains.pivot_table(index="seed", columns="step", values="value").mul(100)
    devs = per_step.sub(per_step[0], axis=0).stack()
    worst = float(devs.loc[devs.abs().idxmax()])
    grad = sc.loc["f_gradual_unfreezing", "mean"] if "f_gradual_unfreezing" in sc.index.get_level_values(0) else None
    total, layers, width = _minilm_params()
    paras = [
        "**Freezing the entire network.** Taken literally, nothing trains: the model is a fixed feature extractor, and with "
        "fresh heads its scores are those of a model that learned nothing (the most common label's share of the test split: "
        + ", ".join(f"{NAMES[t]} {chance[t]:.1f}%" for t in TASKS if chance[t]) + "; NER entity F1 0). What a frozen encoder "
        f"really offers is read by training only a probe on its features: with all the training data and the heads trained "
        f"ten times as long on cached features it reaches a mean test score of {_ms(fx['mean'])} (per task "
        + ", ".join(f"{NAMES[t]} {_ms(fx[t])}" for t in TASKS) + f"), against {_ms(sc.loc['e_full_finetune', 'mean'])} for full "
        f"fine-tuning (3 seeds, `freezing_size_sweep.cpu-full.csv` and `freezing.csv`). Its advantages are cost and safety: nothing pretrained can be forgotten, a run trains "
        f"{int(params.get('a_feature_extractor', 0)):,} parameters instead of {int(params['e_full_finetune']):,}, and the "
        "encoder runs once per example. With 100 examples per task, the brief's \"very limited data\", the best frozen "
        f"contender minus full fine-tuning is {_said(sweep_gap('100'))}: "
        + _verdict_words(sweep_gap("100"), "the frozen encoder wins there", "even there full fine-tuning wins on our data")
        + ". " + _live(("F1",)),
        f"**Freezing only the backbone.** The heads learn on top of a pretrained encoder that does not move: a mean test "
        f"score of {_ms(b)} against {_ms(e)} for full fine-tuning, a gap of {_said(_gap(sc, 'b_backbone_frozen', 'e_full_finetune'))}. "
        f"With 1,000 examples per task (the brief's \"moderate data\") the best frozen contender's gap is {_said(sweep_gap('1000'))}; "
        f"with all the data, {_said(sweep_gap('all'))}. It keeps general language understanding intact; "
        + _verdict_words(sweep_gap("1000"), "at moderate data that balance pays on these tasks",
                         "on these tasks, at moderate data, that does not make up for the adaptation it gives up") + ". " + _live(("F2",)),
        f"**Freezing one task head.** Fine-tune everything, freeze the sentiment head, and train on topic and NER for "
        f"{end} more steps: the head's weights stay bit-identical, and its validation accuracy moved "
        f"{_ms(moved['encoder_trains'])} pts over the seeds ({', '.join(f'{x:+.1f}' for x in moved['encoder_trains'])}), against "
        f"{_ms(moved['control_encoder_frozen'])} pts when the encoder is frozen too (`head_drift.cpu-full.csv`). A frozen head "
        "keeps its weights, not necessarily its score: the score can only move if the shared encoder under it moves (with the "
        "encoder frozen too it stays put), and notebook 03 plots the drift against the encoder's movement at its own size "
        "(the full-size runs do not record that movement). On our "
        "data, after a whole epoch of fine-tuning, " + (f"the task stayed within a point of its start at every evaluation of every seed "
                                                         f"(largest move {worst:+.1f} pts)" if abs(worst) <= 1.0 else
                                                         f"the task moved by more than a point at some evaluation (largest move {worst:+.1f} pts, "
                                                         "though its final drift is the figure above)")
        + ", which is the brief's caveat made concrete: measure the frozen task while the others train. " + _live(("F3",)),
        f"**A transfer-learning plan.** *Model:* all-MiniLM-L6-v2 ({layers} layers, {width}-d, {total / 1e6:.1f}M parameters), "
        "a BERT-style encoder already trained to make sentence embeddings with mean pooling, which is what the sentence "
        "heads read, small enough to fine-tune on a laptop CPU, and shipped inside a PyPI package so it runs offline; the "
        "12-layer all-mpnet-base-v2 is measured beside it in docs/answers.md (\"Which pretrained model\"): its scores, "
        "its cost per step and when it is worth choosing instead. *Layers* (all-MiniLM-L6-v2, all the data): freezing the lower k of 6 layers cost "
        f"{_said(_gap(sc, 'd_lower2_frozen', 'e_full_finetune'))} at k = 2 and {_said(_gap(sc, 'd_lower4_frozen', 'e_full_finetune'))} "
        f"at k = 4 (mean scores {_ms(d2)} and {_ms(d4)} against {_ms(e)}), at wall times of {wall['d_lower2_frozen']:.0f} and "
        f"{wall['d_lower4_frozen']:.0f} s against {wall['e_full_finetune']:.0f} s (runs sharing one GPU, `freezing.csv`)"
        + (f"; gradual unfreezing scored {_ms(grad)}" if grad is not None else "") + ". *Why:* "
        + ("every frozen layer cost accuracy on every seed here, so the plan is to fine-tune everything, train the heads from "
           "scratch at a higher rate, and freeze the lower layers only when time or memory is short, at the price above. "
           if (_gap(sc, "d_lower2_frozen", "e_full_finetune") < 0).all() else
           "freezing the lower layers did not cost accuracy on every seed, so freeze them where it saves time or memory. ")
        + _live(("F4", "F5")),
    ]
    return "\n\n".join(paras) + ("\n\nFull-size numbers: mean test score over the three tasks (%), mean ± std over seeds; "
                                 "gaps are paired by seed. NER scores come from a test split carved from the same tweets, "
                                 "not comparable with the official WNUT-16 test set.")


def layerwise() -> str:
    """The rationale for layer-wise rates, their benefits in multi-task training, and the brief's 1e-5 / 1e-4 on this data."""
    return "\n\n".join(_layerwise_paragraphs())


def layerwise_reading() -> str:
    """docs/results.md's reading of the learning-rate grid: the brief's rates, and what decay adds beyond the heads' rate."""
    return "\n\n".join(_layerwise_paragraphs()[1:3])


def _layerwise_paragraphs() -> list[str]:
    df, prov, cprov = load_with_control("layerwise_lr", "cpu-bf16-full")
    sc = claims.score_runs(df)
    low = df[df.metric.isin(["forgetting:embeddings", "forgetting:layer_0"])].groupby("setting").value.mean().mul(100)
    svm, _ = load("single_vs_multi")
    s = claims.score_runs(svm)
    mt = {t: _gap(s, "multi", "single", t) for t in TASKS}
    have = set(sc.index.get_level_values(0))
    paras = [
        "**The rationale.** A pretrained encoder's layers already hold what it learned; a new head holds nothing. One rate "
        "for both is a compromise: low enough not to wreck the encoder is too low for the heads, and the reverse. Giving "
        "each part its own rate (parameter groups) removes the compromise, and decaying the rate with depth (ξ per layer "
        "below the top) gives the lowest, most general layers the smallest steps. Measured on 1 epoch of all the training data "
        f"({len(prov['seeds'])} seeds, `layerwise_lr.cpu-bf16-full.csv`): forgetting of the embeddings and layer 0 "
        f"(1 − CKA) is {low['uniform_1e-5']:.1f}% at a uniform 1e-5, {low['uniform_1e-4']:.1f}% at 1e-4 and "
        f"{low['too_high_1e-3']:.1f}% at 1e-3, where the mean test score falls to {_ms(sc.loc['too_high_1e-3', 'mean'])}.",
        "**The brief's 1e-5 encoder / 1e-4 heads on this data.** It scores " + _ms(sc.loc["two_rate", "mean"])
        + f", {_said(_gap(sc, 'two_rate', 'uniform_1e-4'))} against one rate of 1e-4 everywhere ({_ms(sc.loc['uniform_1e-4', 'mean'])}): "
        f"at 1e-5 the encoder's lowest layers barely move (forgetting {low['uniform_1e-5']:.1f}%), and on this data the brief's "
        "values lose to a single rate ten times the encoder's. Whether a lower "
        "rate for the encoder than for the heads helps at all is the next paragraph's question. " + _live(("L1",)),
    ]
    if claims.CONTROL in have:
        alone, heads = _gap(sc, "decay_0.9", claims.CONTROL), _gap(sc, claims.CONTROL, "uniform_1e-4")
        per_task = {t: _gap(sc, "decay_0.9", claims.CONTROL, t) for t in TASKS}
        boost = _gap(sc, "decay_0.9+ner_head×10", "decay_0.9", "ner") if "decay_0.9+ner_head×10" in have else None
        paras.append(
            "**What the layer-wise rates add, separated.** Raising the heads' rate to 1e-3 with the encoder at a uniform 1e-4 "
            f"(`{claims.CONTROL}`, seeds {cprov['seeds'] if cprov else '?'}) moves the mean test score by {_said(heads)}. "
            f"Adding decay ξ = 0.9 below the top layer on top of that moves it by {_said(alone)} (per task: "
            + ", ".join(f"{NAMES[t]} {claims.paired_gap(d)}" for t, d in per_task.items()) + ")"
            + (f"; raising only the NER head's rate ten-fold moves NER by {_said(boost)}, the control over a single task the "
               "brief promises" if boost is not None else "") + ". "
            + ("So on our data decay adds nothing beyond the heads' rate: it scored below its control on every seed"
               + (", though by less than the seed spread" if claims.too_close(alone) else "")
               + ", and what looked like decay's gain over a uniform 1e-4 is the heads' higher rate. " if (alone < 0).all() and (heads > 0).all() else
               "So decay's own effect is " + _verdict_words(alone, "a gain on every seed run so far", "a loss on every seed run so far") + ". ")
            + _depth_decay() + _live(("L2", "L3", "L6")))
    else:
        paras.append("**What the layer-wise rates add, separated.** The control that tells decay from the heads' rate "
                     f"(`{claims.CONTROL}`) has no full-size runs yet, so what decay adds beyond the heads' rate is not known at full size.")
    paras.append(
        "**Multi-task benefits.** One shared encoder serves three tasks at once; against a separate encoder per task it scores "
        + ", ".join(f"{NAMES[t]} {_said(d)}" for t, d in mt.items()) + " (multi − single, `single_vs_multi.csv`): sharing costs "
        "little and saves two encoders, but gives no task a gain. Layer-wise rates are how one shared encoder can be moved "
        "gently for all tasks while each head moves fast for its own; whether the gentle backbone helps every task is claim "
        "L2, read against the control above. The brief's other claims, vanishing gradients (L4) and controlled transfer "
        "between tasks (L5), need per-part gradient records that the full-size runs do not keep yet; notebooks 04 and 05 "
        "measure them at their own size.")
    return paras


def _depth_decay() -> str:
    """Decay against the same control with each encoder at the default size (the depth runs), when they exist."""
    said = {n: depth.rate_effects(n).get(depth.RATE_EFFECTS[0][0]) for n in depth.TAGS}
    if not all(v is not None for v in said.values()):
        return ""
    return ("This is all-MiniLM-L6-v2 with all the data. At the default size, the same comparison (3 seeds) is "
            + " and ".join(f"{_said(d)} with {n} ({depth.ENCODERS[n].layers} layers)" for n, (d, _) in said.items())
            + ": docs/results.md, \"At depth 12\"; whether depth makes decay pay with all the data needs the full-size "
            "depth-12 runs, on a GPU. ")


def model_choice() -> str:
    """Which pretrained model, and why: the two packaged encoders side by side (results/model_choice_*.json and the
    depth runs' full fine-tuning at the default size), in prose, with the choice the numbers support."""
    try:
        table = mc.comparison()
        steps = store.read_json(mc.STEPS_JSON)
        probe = store.read_json(mc.PROBE_JSON)
    except FileNotFoundError:
        return "Not measured yet: `python -m mtst.lab.model_choice probe`, then `steps`, then `table`."
    small, deep = "all-MiniLM-L6-v2", "all-mpnet-base-v2"
    if not {small, deep} <= set(table.index):
        return "Not measured yet for both encoders: `python -m mtst.lab.model_choice probe`."
    s, d = table.loc[small], table.loc[deep]
    probe_gap = {t: d[f"probe {t}"] - s[f"probe {t}"] for t in TASKS}
    tuned = {n: claims.score_runs(load("freezing", mc.TAGS[n])[0]).loc["e_full_finetune", "mean"] for n in (small, deep)
             if "fine-tuned mean" in table and table.loc[n, "fine-tuned mean"] == table.loc[n, "fine-tuned mean"]}
    step_ratio, mem_ratio = d["step (ms)"] / s["step (ms)"], d["peak RSS (MiB)"] / s["peak RSS (MiB)"]
    better_frozen = all(v > 0 for v in probe_gap.values())
    text = (f"**Which pretrained model, and why.** Both packaged encoders, measured on the three tasks: all-MiniLM-L6-v2 "
            f"({int(s['layers'])} layers, {int(s['dim'])}-d, {s['params (M)']:.1f}M parameters in use, the unused pooler left out) and "
            f"all-mpnet-base-v2 ({int(d['layers'])} layers, {int(d['dim'])}-d, {d['params (M)']:.1f}M). *Frozen,* with a linear probe fitted on all the training data "
            f"({probe['runs'][0]['max_length']} word pieces per text, `model_choice_probe.json`), all-mpnet-base-v2 scores "
            + ", ".join(f"{NAMES[t]} {d[f'probe {t}']:.1f} against {s[f'probe {t}']:.1f} ({probe_gap[t]:+.1f})" for t in TASKS)
            + (": better features for every task. " if better_frozen else ": not better on every task. "))
    if len(tuned) == 2:
        gap = (tuned[deep] - tuned[small]).dropna()
        runs = {n: load("freezing", mc.TAGS[n])[0] for n in (small, deep)}
        steps_run = int(max(r.steps.max() for r in runs.values()))
        ner = pd.concat([r[(r.setting == "e_full_finetune") & (r.metric == "score") & (r.task == "ner")].value for r in runs.values()])
        text += (f"*Fine-tuned* at the default size, both with the same short recipe and seeds ({steps_run} steps, full fine-tuning "
                 f"in `freezing.{mc.TAGS[deep]}.csv` and `freezing.{mc.TAGS[small]}.csv`), its mean test score is {_ms(tuned[deep])} "
                 f"against {_ms(tuned[small])}: {_said(gap)}; NER scored 0 in {int((ner == 0).sum())} of {len(ner)} of these runs. ")
        probe_mean = {n: sum(table.loc[n, f"probe {t}"] for t in TASKS) / len(TASKS) for n in (small, deep)}
        if all(tuned[n].mean() < probe_mean[n] for n in (small, deep)):
            text += (f"Both fine-tuned means sit below their frozen probes ({probe_mean[deep]:.1f} and {probe_mean[small]:.1f}), which "
                     "saw all the training data rather than the default size's share: this comparison is of how far each encoder "
                     "gets from a short run, not of where fine-tuning ends. ")
    else:
        gap = None
        text += "*Fine-tuned* at the default size: not run yet for both encoders. "
    text += (f"*Cost:* a training step at the default size takes {step_ratio:.1f}× as long ({d['step (ms)']:.0f} ms against "
             f"{s['step (ms)']:.0f} ms, {steps['runs'][0]['precision']}, on {steps['hardware']['cpu_threads']} CPU threads) and the process peaks at {mem_ratio:.1f}× "
             f"the memory ({d['peak RSS (MiB)']:,.0f} MiB against {s['peak RSS (MiB)']:,.0f} MiB, `model_choice_steps.json`). ")
    gain = gap is not None and len(gap) > 1 and not claims.too_close(gap) and (gap > 0).all()
    if gap is None:
        text += ("*Choice:* waits for the fine-tuned runs; frozen, all-mpnet-base-v2 is the better start." if better_frozen else
                 "*Choice:* waits for the fine-tuned runs.")
    elif gain:
        text += (f"*Choice:* all-mpnet-base-v2 where {step_ratio:.1f}× the CPU time per step is affordable: its frozen features "
                 f"are better{' for every task' if better_frozen else ''}, and after the same short run it scored higher on every "
                 "seed. all-MiniLM-L6-v2 stays the live-class default, where a notebook must finish in minutes on a laptop. Not "
                 "measured: the cost ratio on a GPU, and fine-tuning mpnet with all the data (a full-size run that needs a GPU).")
    else:
        text += ("*Choice:* all-MiniLM-L6-v2 for fine-tuning at this budget: the deeper encoder costs "
                 f"{step_ratio:.1f}× per step without a gain we can call on our seeds. "
                 + ("Its frozen features are better, so where the encoder stays frozen (a feature extractor, encoded once) "
                    "all-mpnet-base-v2 is the better start. " if better_frozen else "")
                 + "Whether its fine-tuned scores pull ahead with all the data is a full-size run that needs a GPU, not run yet.")
    return text
