"""The benchmarks of training, each two ways of doing the same work side by side in one run (see `mtst.lab.bench`):
layer-wise groups against one group (`optim`), the gradient monitor's cost (`monitor`), the frozen-encoder cache
(`cache`), the frozen-prefix cache (`prefix`) and batches bucketed by length (`bucket`)."""

from __future__ import annotations

import time

import torch

from ..batches import make_batch, task_loss
from ..checks import check_device
from ..config import SIZES, recipe
from ..data import TASKS, load_splits, load_task
from ..diagnostics import GradientMonitor
from ..encoder import SentenceEncoder
from ..evaluation import evaluate_all
from ..features import EncoderCache, EncoderEvalMode
from ..freezing import freeze
from ..model import MultiTaskModel
from ..optim import layerwise_param_groups, make_optimizer
from ..training import TrainConfig, Trainer
from .provenance import provenance
from .timing import _medians, _print_medians, _report, interleaved


def _training_steps(dev: torch.device, batch_size: int, contenders: dict[str, tuple]) -> dict[str, tuple]:
    """One training step per contender, each on its own copy of one multi-task model and the same batch of real
    sentiment sentences: forward, backward, AdamW (foreach). A contender is (layer_decay, monitor): layer_decay None
    means one param group at lr 1e-4, else layer-wise groups (1e-4 at the top, 1e-3 for the heads); a GradientMonitor
    records the step as it does under the Trainer. The k-th step of every contender draws the same dropout masks, so
    contenders that should train alike end with the same weights. Each step runs once here, to warm up.
    Returns {name: (step, model, optimizer)}."""
    import copy
    from types import SimpleNamespace

    data = {t: load_task(t, "train", "ci") for t in TASKS}
    base = MultiTaskModel.for_tasks(SentenceEncoder.from_pretrained(max_length=64), data).to(dev)
    out = {}
    for name, (decay, mon) in contenders.items():
        model = copy.deepcopy(base)
        if decay is None:
            groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": 1e-4, "weight_decay": 0.01}]
        else:
            groups = layerwise_param_groups(model, 1e-4, 1e-3, decay)
        opt = make_optimizer(groups, model)
        batch = make_batch(model, data["sentiment"], list(range(batch_size)))
        labels = batch["labels"].to(dev)
        state = {"step": 0}

        def step(model=model, opt=opt, batch=batch, labels=labels, mon=mon, state=state):
            state["step"] += 1
            torch.manual_seed(state["step"])
            loss = task_loss(model(batch, ["sentiment"])["sentiment"], labels)
            loss.backward()
            if mon is not None:
                mon.on_after_backward(SimpleNamespace(model=model), state["step"], "sentiment")
            opt.step()
            opt.zero_grad(set_to_none=True)
            if mon is not None:
                mon.on_step_end(SimpleNamespace(model=model), state["step"], "sentiment", float(loss.detach()))

        step()
        out[name] = (step, model, opt)
    return out


def bench_optim(batch_size: int = 16, repeats: int = 10, device: str | None = None) -> dict:
    """A full training step (forward, backward, AdamW foreach) with layer-wise groups against one group."""
    dev = check_device(device)
    steps = _training_steps(dev, batch_size, {"one_group": (None, None), "layerwise": (0.9, None)})
    med = _medians(interleaved({k: v[0] for k, v in steps.items()}, repeats, dev))
    return _report("optim", dev, batch_size, repeats, med, groups={k: len(v[2].param_groups) for k, v in steps.items()},
                   ratio_layerwise_over_one_group=med["layerwise"] / med["one_group"])


def _print_optim(r: dict) -> None:
    print(f"optim: training step on {r['batch_size']} real sentences, {r['repeats']} interleaved repeats on {r['device']}")
    for k, v in r["median_s"].items():
        print(f"  {k:>10} ({r['groups'][k]:2d} groups): {1000 * v:8.1f} ms (median)")
    print(f"  ratio layer-wise / one group = {r['ratio_layerwise_over_one_group']:.3f}x")


def bench_monitor(batch_size: int = 16, repeats: int = 10, device: str | None = None) -> dict:
    """A full training step with the GradientMonitor recording every step (grad norms and update sizes) against
    the same step without it. The monitor only reads, so every contender must end with the plain one's weights."""

    dev = check_device(device)
    monitors = {"plain": None, "monitored": GradientMonitor(every=1), "grads_only": GradientMonitor(every=1, updates=False),
                "every_10": GradientMonitor(every=10)}
    steps = _training_steps(dev, batch_size, {name: (0.9, mon) for name, mon in monitors.items()})
    med = _medians(interleaved({k: v[0] for k, v in steps.items()}, repeats, dev))
    plain = dict(steps["plain"][1].named_parameters())
    with torch.no_grad():
        diff = max(float((p - plain[n]).abs().max()) for k, v in steps.items() for n, p in v[1].named_parameters())
    return _report("monitor", dev, batch_size, repeats, med, records=len(monitors["monitored"].rows), max_abs_weight_diff_vs_plain=diff,
                   ratio_monitored_over_plain=med["monitored"] / med["plain"], ratio_grads_only_over_plain=med["grads_only"] / med["plain"],
                   ratio_every_10_over_plain=med["every_10"] / med["plain"])


def _print_monitor(r: dict) -> None:
    print(f"monitor: training step on {r['batch_size']} real sentences, {r['repeats']} interleaved repeats on {r['device']}")
    _print_medians(r, 10)
    print(f"  ratio monitored (every step: grad norms + update sizes of every part) / plain = {r['ratio_monitored_over_plain']:.3f}x")
    print(f"  ratio grad norms only, every step / plain = {r['ratio_grads_only_over_plain']:.3f}x")
    print(f"  ratio grad norms + update sizes every 10 steps / plain = {r['ratio_every_10_over_plain']:.3f}x")
    if "max_abs_weight_diff_vs_plain" in r:  # files written before the check lack it
        print(f"  max abs weight diff of the monitored runs vs plain after {r['repeats'] + 1} steps: {r['max_abs_weight_diff_vs_plain']:.1e}")


def bench_cache(size: str = "demo", batch_size: int = 32, repeats: int = 1, device: str | None = None) -> dict:
    """Heads trained for one epoch on a frozen encoder: through the encoder at every step, against on the cache.
    Both keep the encoder in eval mode, so they must train the same heads; the test metrics show they do."""

    dev = check_device(device)
    train_data = {t: load_task(t, "train", size) for t in TASKS}
    test = {t: load_task(t, "test", size) for t in TASKS}
    encoder = SentenceEncoder.from_pretrained(max_length=SIZES[size].max_length)
    out: dict = {"benchmark": "cache", "size": size, "batch_size": batch_size, "device": str(dev),
                 "examples": sum(len(d) for d in train_data.values()), "epoch_s": {}, "test_scores": {}}
    heads = {}
    for name, cached in (("through_encoder", False), ("cached", True)):
        model = freeze(MultiTaskModel.for_tasks(encoder, train_data, seed=0), "encoder")
        cfg = TrainConfig(epochs=1.0, batch_size=batch_size, lr=1e-4, head_lr=1e-3, progress=True, device=str(dev), cache_encoder=cached, seed=0)
        trainer = Trainer(model, train_data, cfg, callbacks=[EncoderEvalMode()])
        res = trainer.run()
        out["epoch_s"][name] = res.wall_time_s - trainer.features_build_s
        if cached:
            out["cache_build_s"], out["cache_mib"] = trainer.features_build_s, trainer.features.nbytes() / 2**20
        out["steps"] = res.steps
        out["test_scores"][name] = evaluate_all(model, test).set_index("task")["score"].to_dict()
        heads[name] = {k: v.detach().cpu() for k, v in model.heads.state_dict().items()}
    # Validation, on the last model: through the encoder, against on a cache of the validation sets built once
    # (what the Trainer does with cache_encoder=True); the same model must get the same scores either way.
    val = {t: load_task(t, "validation", size) for t in TASKS}
    t0 = time.perf_counter()
    through = evaluate_all(model, val).set_index("task")["score"].to_dict()
    t1 = time.perf_counter()
    val_cache = EncoderCache(model, val)
    t2 = time.perf_counter()
    on_cache = evaluate_all(model, val, cache=val_cache).set_index("task")["score"].to_dict()
    t3 = time.perf_counter()
    out["validation"] = {"examples": len(val_cache), "through_encoder_s": t1 - t0, "cache_build_s": t2 - t1, "cached_s": t3 - t2,
                         "scores_through_encoder": through, "scores_cached": on_cache, "same_scores": through == on_cache}
    out["validation"]["ratio_four_validations"] = 4 * (t1 - t0) / (t2 - t1 + 4 * (t3 - t2))  # a run validates 4 times by default
    out["ratio_epoch_through_encoder_over_cached"] = out["epoch_s"]["through_encoder"] / out["epoch_s"]["cached"]
    out["epochs_to_break_even"] = out["cache_build_s"] / max(out["epoch_s"]["through_encoder"] - out["epoch_s"]["cached"], 1e-9)
    out["same_test_scores"] = out["test_scores"]["through_encoder"] == out["test_scores"]["cached"]
    out["max_abs_head_weight_diff"] = max(float((heads["cached"][k] - heads["through_encoder"][k]).abs().max()) for k in heads["cached"])
    return {**out, **provenance()}


def _print_cache(r: dict) -> None:
    print(f"cache: one epoch of head training ({r['steps']} steps, {r['examples']} examples, size {r['size']}) on {r['device']}, encoder frozen")
    for k, v in r["epoch_s"].items():
        print(f"  {k:>15}: {v:8.2f} s per epoch")
    print(f"  building the cache once: {r['cache_build_s']:.2f} s ({r['cache_mib']:.1f} MiB); it pays for itself after {r['epochs_to_break_even']:.2f} epochs")
    print(f"  ratio epoch through encoder / cached = {r['ratio_epoch_through_encoder_over_cached']:.1f}x")
    print(f"  test scores: {r['test_scores']}; identical: {r['same_test_scores']}; max head weight diff {r['max_abs_head_weight_diff']:.1e}")
    if "validation" in r:  # files written before validation used the cache lack it
        v = r["validation"]
        print(f"  validation ({v['examples']} examples): through the encoder {v['through_encoder_s']:.2f} s, on its cache {v['cached_s']:.3f} s "
              f"after building it once in {v['cache_build_s']:.2f} s; same scores: {v['same_scores']}")
        print(f"  ratio for a run's four validations, through encoder / cached (build included) = {v['ratio_four_validations']:.1f}x")


def bench_prefix(size: str = "demo", epochs: float = 3.0, device: str | None = None, **_) -> dict:
    """The embeddings and layers 0-3 frozen (scenario d_lower4_frozen), trained for `epochs` passes three ways: through
    the frozen prefix as the scenario does (its dropout on), through it in eval mode (the cache's exact twin), and on
    the prefix cache. The twin and the cache must train the same weights; the first shows what dropout there changes."""

    dev = check_device(device)
    train, _, test = load_splits(size)
    encoder = SentenceEncoder.from_pretrained(max_length=SIZES[size].max_length)
    out: dict = {"benchmark": "prefix", "size": size, "epochs": epochs, "device": str(dev), "frozen": "embeddings + layers 0-3", "runs": {}}
    weights = {}
    for name, cached, eval_mode in (("through_prefix", False, False), ("through_prefix_eval_mode", False, True), ("prefix_cache", True, False)):
        model = freeze(MultiTaskModel.for_tasks(encoder, train, seed=0), "embeddings", "layers:0-3")
        from dataclasses import replace

        cfg = replace(recipe(size, 0), steps=None, epochs=epochs, task_epochs=None, device=str(dev), progress=False, cache_prefix=cached)
        trainer = Trainer(model, train, cfg, callbacks=[EncoderEvalMode(k=4)] if eval_mode else [])
        res = trainer.run()
        out["steps"] = res.steps
        out["runs"][name] = {"total_s": res.wall_time_s, "cache_build_s": trainer.features_build_s,
                             "test_scores": evaluate_all(model, test, run_cache=False).set_index("task")["score"].to_dict()}
        weights[name] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    r = out["runs"]
    out["ratio_through_prefix_over_cache"] = r["through_prefix"]["total_s"] / r["prefix_cache"]["total_s"]
    out["max_abs_weight_diff_eval_mode_vs_cache"] = max(float((weights["prefix_cache"][k] - weights["through_prefix_eval_mode"][k]).abs().max())
                                                       for k in weights["prefix_cache"])
    out["score_change_dropout_off"] = {t: r["prefix_cache"]["test_scores"][t] - r["through_prefix"]["test_scores"][t] for t in r["prefix_cache"]["test_scores"]}
    return {**out, **provenance()}


def _scores(run: dict) -> str:
    return ", ".join(f"{t} {100 * s:.1f}" for t, s in run["test_scores"].items())


def _print_prefix(r: dict) -> None:
    print(f"prefix: {r['frozen']} frozen, {r['epochs']:g} passes over the {r['size']} training data ({r['steps']} steps) on {r['device']}")
    for k, v in r["runs"].items():
        print(f"  {k:>25}: {v['total_s']:7.1f} s (cache build {v['cache_build_s']:.1f} s); test {_scores(v)}")
    print(f"  ratio through the frozen prefix / on its cache = {r['ratio_through_prefix_over_cache']:.2f}x")
    print(f"  max abs weight diff, eval-mode prefix vs cache: {r['max_abs_weight_diff_eval_mode_vs_cache']:.1e}")
    print("  test score change from turning dropout off in the frozen prefix (cache − through it): "
          + ", ".join(f"{t} {100 * d:+.1f} pts" for t, d in r["score_change_dropout_off"].items()))


def bench_bucket(size: str = "demo", batch_size: int = 16, device: str | None = None, **_) -> dict:
    """One pass of full fine-tuning over the `size` training data with random batches against batches bucketed by
    length: the wall time, the word pieces a step pads to, and the test scores."""
    from dataclasses import replace

    dev = check_device(device)
    train, _, test = load_splits(size)
    encoder = SentenceEncoder.from_pretrained(max_length=SIZES[size].max_length)
    out: dict = {"benchmark": "bucket", "size": size, "batch_size": batch_size, "device": str(dev), "runs": {}}
    for name, bucketed in (("random", False), ("bucketed", True)):
        model = MultiTaskModel.for_tasks(encoder, train, seed=0)
        cfg = replace(recipe(size, 0), steps=None, epochs=1.0, task_epochs=None, batch_size=batch_size, device=str(dev), progress=False,
                      bucket_by_length=bucketed)
        trainer = Trainer(model, train, cfg)
        padded = []  # word pieces per batch after padding (batch × longest)
        make = trainer.next_batch

        def counting(task, make=make, model=model, padded=padded):
            idx = make(task)
            lengths = [len(ids) for ids in model.encoder._token_ids([train[task].texts[i] for i in idx])[0]]
            padded.append((max(lengths) * len(idx), sum(lengths)))
            return idx

        trainer.next_batch = counting
        res = trainer.run()
        out["steps"] = res.steps
        out["runs"][name] = {"total_s": res.wall_time_s, "padded_pieces": sum(p for p, _ in padded), "real_pieces": sum(r for _, r in padded),
                             "test_scores": evaluate_all(model, test, run_cache=False).set_index("task")["score"].to_dict()}
    r = out["runs"]
    out["ratio_random_over_bucketed"] = r["random"]["total_s"] / r["bucketed"]["total_s"]
    out["padding_share"] = {k: 1 - v["real_pieces"] / v["padded_pieces"] for k, v in r.items()}
    return {**out, **provenance()}


def _print_bucket(r: dict) -> None:
    print(f"bucket: one pass of full fine-tuning over the {r['size']} training data ({r['steps']} steps of {r['batch_size']}) on {r['device']}")
    for k, v in r["runs"].items():
        print(f"  {k:>9}: {v['total_s']:7.1f} s; {r['padding_share'][k]:.0%} of the word pieces are padding; test {_scores(v)}")
    print(f"  ratio random / bucketed = {r['ratio_random_over_bucketed']:.2f}x")
