"""The brief's demonstration in a terminal, every component once, in about a minute on a CPU:

    python -m mtst demo          (in the container: docker run --rm mtst demo)

Each section says in one line what it shows, then shows it, on the packaged model and real data.
"""

from __future__ import annotations

import time
import warnings

import pandas as pd
import torch

import mtst

SENTENCES = [
    "A warm, funny film with a wonderful cast.",
    "The plot makes no sense and the jokes fall flat.",
    "NASA plans another mission to the Moon next year.",
    "The new engine gives the car far better mileage.",
]


def _section(n: int, line: str) -> None:
    print(f"\n[{n}] {line}", flush=True)


def main(steps: int = 20, seed: int = 0) -> int:
    """Run the demonstration; returns 0."""
    warnings.filterwarnings("ignore", message=".*were truncated")
    pd.set_option("display.width", 160)
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    print(f"mtst demo: {mtst.precision.describe()}")

    _section(1, "A sentence transformer: all-MiniLM-L6-v2 plus mean pooling turns each sentence into one 384-d vector; "
                "cosine similarity between them:")
    encoder = mtst.SentenceEncoder.from_pretrained(max_length=64)
    emb = encoder.encode(SENTENCES, normalize=True)
    sim = pd.DataFrame((emb @ emb.T).numpy(), index=[s[:28] for s in SENTENCES], columns=[f"s{i}" for i in range(len(SENTENCES))])
    print(sim.round(2).to_string())

    _section(2, "One shared encoder, three heads: one batch goes through the encoder once and every head reads it "
                "(heads fresh, so their labels are guesses until section 5 trains them):")
    train = {t: mtst.load_task(t, "train", "ci") for t in mtst.TASKS}
    model = mtst.MultiTaskModel.for_tasks(encoder, train, seed=seed)
    batch = model.tokenize(SENTENCES[:2])
    with torch.no_grad():
        logits = model(batch)
    print({task: tuple(x.shape) for task, x in logits.items()}, "for input_ids", tuple(batch["input_ids"].shape))
    for s, p in zip(SENTENCES[:2], model.predict(SENTENCES[:2])):
        print(f"  {s!r} -> {p}")

    _section(3, "Freezing: what each scenario of notebook 03 leaves trainable (parameters that get gradients and updates):")
    rows = []
    for name, sc in mtst.scenarios.FREEZE_SCENARIOS.items():
        m = mtst.unfreeze(model, "all")
        if sc.freeze:
            mtst.freeze(m, *sc.freeze)
        total = mtst.trainable_summary(m).iloc[-1]
        rows.append({"scenario": name, "trainable params": f"{int(total.trainable_params):,}", "share": f"{total.trainable_fraction:.1%}",
                     "what learns": sc.what[:70]})
    mtst.unfreeze(model, "all")
    print(pd.DataFrame(rows).to_string(index=False))

    _section(4, "Layer-wise learning rates: the top layer gets 1e-4, each layer below 0.9 times the one above it, "
                "the heads 1e-3:")
    groups = mtst.describe_param_groups(mtst.layerwise_param_groups(model, lr=1e-4, head_lr=1e-3, layer_decay=0.9))
    print(groups[~groups.group.str.endswith(".no_decay")].to_string(index=False))

    _section(5, f"Training: {steps} multi-task steps on real data (one task per batch), with a progress bar; each task's "
                "validation score on the same held-out examples before and after, then the same two sentences again:")
    val = {t: mtst.load_task(t, "validation", "ci").subset(48, seed) for t in mtst.TASKS}
    before = mtst.evaluate_all(model, val, run_cache=False).set_index("task").score
    cfg = mtst.TrainConfig(steps=steps, batch_size=16, lr=1e-4, head_lr=1e-3, layer_decay=0.9, seed=seed, progress=True)
    result = mtst.train(model, train, cfg, run_cache=False)
    after = mtst.evaluate_all(model, val, run_cache=False).set_index("task").score
    steps_per_task = result.curves().task.value_counts()
    print(f"  {result.steps} steps in {result.wall_time_s:.0f} s, 48 validation examples per task (accuracy; NER entity F1):")
    print(pd.DataFrame({"steps trained": steps_per_task.reindex(before.index).fillna(0).astype(int), "before (%)": (100 * before).round(1),
                        "after (%)": (100 * after).round(1), "change (pts)": (100 * (after - before)).round(1)}).rename_axis(None).to_string())
    for s, p in zip(SENTENCES[:2], model.predict(SENTENCES[:2])):
        print(f"  {s!r} -> {p}")
    print(f"\nmtst demo: done in {time.perf_counter() - t0:.0f} s. The notebooks measure all of this properly: make lab.")
    return 0
