"""Benchmarks that compare two ways of doing the same work side by side, in one run, and print ratios.

    python -m mtst.bench encode [--n 2000] [--batch-size 32] [--repeats 3] [--device cpu|cuda] [--json PATH]
    python -m mtst.bench heads  [--batch-size 32] [--repeats 10]
    python -m mtst.bench optim  [--batch-size 16] [--repeats 10]
    python -m mtst.bench cache  [--size demo] [--batch-size 32]
    python -m mtst.bench monitor [--batch-size 16] [--repeats 10]
    python -m mtst.bench poolings [--n 1000] [--batch-size 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

from .checks import check_device
from .provenance import cpu_bf16_flags, provenance


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {k: statistics.median(v) for k, v in times.items()}


def interleaved(contenders: dict, repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Run each contender once per round, in turn, so that drift in the machine hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def _report(benchmark: str, dev: torch.device, batch_size: int, repeats: int, med: dict[str, float], **results) -> dict:
    """What every benchmark's JSON holds: what ran where, the median times, its own results, the provenance."""
    return {"benchmark": benchmark, "batch_size": batch_size, "repeats": repeats, "device": str(dev), "median_s": med, **results, **provenance()}


def _print_medians(r: dict, width: int, unit: str = "ms") -> None:
    for k, v in r["median_s"].items():
        print(f"  {k:>{width}}: {1000 * v:8.1f} ms (median)" if unit == "ms" else f"  {k:>{width}}: {v:8.2f} s (median)")


def bench_encode(n: int = 2000, batch_size: int = 32, repeats: int = 3, device: str | None = None) -> dict:
    """mtst.SentenceEncoder.encode against SentenceTransformer.encode: same model, sentences and batch size."""
    from sentence_transformers import SentenceTransformer

    from .data import load_task
    from .encoder import TOKENIZE_THREADS, SentenceEncoder, default_model_path

    dev = check_device(device)
    texts = load_task("sentiment", "train", "full").texts[:n]
    if len(texts) < n:
        texts += load_task("sentiment", "validation", "full").texts[: n - len(texts)]
    enc = SentenceEncoder.from_pretrained().to(dev).eval()
    st = SentenceTransformer(str(default_model_path()), device=str(dev))
    warnings.filterwarnings("ignore", message=".*truncated")

    def run_st():
        return st.encode(texts, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True)

    def run_fp32():
        return enc.encode(texts, batch_size=batch_size, normalize=True, show_progress=False)

    def run_bf16():
        return enc.encode(texts, batch_size=batch_size, normalize=True, precision="bf16", show_progress=False)

    # Warm up once each (allocators, kernels), and check the answers agree before timing them.
    ref = run_st().float().cpu()
    fp32 = run_fp32()
    bf16 = run_bf16()
    times = interleaved({"st_fp32": run_st, "mtst_fp32": run_fp32, "mtst_bf16": run_bf16}, repeats, dev)
    med = _medians(times)
    rate = {k: len(texts) / v for k, v in med.items()}
    # The host side alone, which bounds a GPU's rate: all the texts through one transformers tokenizer call
    # against mtst's chunks on TOKENIZE_THREADS threads (same ids).
    host = interleaved({"transformers_call": lambda: enc.tokenizer(texts, truncation=True, max_length=enc.max_length),
                        "mtst_threads": lambda: enc._token_ids(texts)}, max(repeats, 5), torch.device("cpu"))
    host_med = _medians(host)
    return _report(
        "encode", dev, batch_size, repeats, med,
        sentences=len(texts),
        sentences_per_s=rate,
        ratio_mtst_fp32_over_st_fp32=rate["mtst_fp32"] / rate["st_fp32"],
        ratio_mtst_bf16_over_st_fp32=rate["mtst_bf16"] / rate["st_fp32"],
        max_abs_diff_fp32_vs_st=float((fp32 - ref).abs().max()),
        min_cosine_bf16_vs_fp32=float(torch.nn.functional.cosine_similarity(bf16, fp32).min()),
        tokenize_s=host_med,
        tokenize_threads=TOKENIZE_THREADS,
        tokenizers_parallelism=os.environ.get("TOKENIZERS_PARALLELISM", "unset"),
        ratio_tokenize_transformers_over_mtst=host_med["transformers_call"] / host_med["mtst_threads"],
        cpu_bf16_flags=cpu_bf16_flags(),
    )


def _print_encode(r: dict) -> None:
    print(f"encode: {r['sentences']} real sentences, batch {r['batch_size']}, {r['repeats']} interleaved repeats on {r['device']}")
    print(f"  hardware: {r['hardware']}")
    for k, v in r["sentences_per_s"].items():
        print(f"  {k:>10}: {v:8.0f} sentences/s (median {r['median_s'][k]:.2f} s)")
    print(f"  ratio mtst fp32 / ST fp32 = {r['ratio_mtst_fp32_over_st_fp32']:.2f}x  (max |diff| {r['max_abs_diff_fp32_vs_st']:.1e})")
    print(f"  ratio mtst bf16 / ST fp32 = {r['ratio_mtst_bf16_over_st_fp32']:.2f}x  (min cosine to fp32 {r['min_cosine_bf16_vs_fp32']:.5f})")
    if r["device"] == "cpu" and "cpu_bf16_flags" in r:
        flags = r["cpu_bf16_flags"]
        print(f"  CPU bf16 flags: {', '.join(flags) if flags else 'none (bf16 autocast is emulated here, so slower than fp32)'}")
    if "tokenize_s" in r:
        t = r["tokenize_s"]
        print(f"  tokenizing alone: one transformers call {t['transformers_call']:.2f} s, mtst on {r['tokenize_threads']} threads "
              f"{t['mtst_threads']:.2f} s ({r['ratio_tokenize_transformers_over_mtst']:.2f}x; TOKENIZERS_PARALLELISM={r['tokenizers_parallelism']})")


def bench_heads(batch_size: int = 32, repeats: int = 10, device: str | None = None) -> dict:
    """Forward cost of 3 heads on one encoder pass, against 1 head and against one encoder pass per task."""
    from .data import TASKS, load_task
    from .encoder import SentenceEncoder
    from .model import MultiTaskModel

    dev = check_device(device)
    data = {t: load_task(t, "train", "ci") for t in TASKS}
    model = MultiTaskModel.for_tasks(SentenceEncoder.from_pretrained(max_length=128), data).to(dev).eval()
    texts = data["sentiment"].texts[:batch_size]
    batch = {k: v.to(dev) for k, v in model.tokenize(texts).items() if isinstance(v, torch.Tensor)}

    def one():
        return model(batch, ["sentiment"])

    def three():
        return model(batch)

    def naive():
        return {t: model(batch, [t])[t] for t in TASKS}

    with torch.inference_mode():
        for fn in (one, three, naive):
            fn()
        times = interleaved({"one_head": one, "three_heads": three, "naive_per_task": naive}, repeats, dev)
    med = _medians(times)
    return _report("heads", dev, batch_size, repeats, med, ratio_three_heads_over_one=med["three_heads"] / med["one_head"],
                   ratio_naive_over_one=med["naive_per_task"] / med["one_head"])


def _print_heads(r: dict) -> None:
    print(f"heads: forward of {r['batch_size']} real sentences, {r['repeats']} interleaved repeats on {r['device']}")
    _print_medians(r, 15)
    print(f"  ratio 3 heads (one encoder pass) / 1 head = {r['ratio_three_heads_over_one']:.3f}x")
    print(f"  ratio naive (one pass per task) / 1 head  = {r['ratio_naive_over_one']:.3f}x")


def _training_steps(dev: torch.device, batch_size: int, contenders: dict[str, tuple]) -> dict[str, tuple]:
    """One training step per contender, each on its own copy of one multi-task model and the same batch of real
    sentiment sentences: forward, backward, AdamW (foreach). A contender is (layer_decay, monitor): layer_decay None
    means one param group at lr 1e-4, else layer-wise groups (1e-4 at the top, 1e-3 for the heads); a GradientMonitor
    records the step as it does under the Trainer. The k-th step of every contender draws the same dropout masks, so
    contenders that should train alike end with the same weights. Each step runs once here, to warm up.
    Returns {name: (step, model, optimizer)}."""
    import copy
    from types import SimpleNamespace

    from .batches import make_batch, task_loss
    from .data import TASKS, load_task
    from .encoder import SentenceEncoder
    from .model import MultiTaskModel
    from .optim import layerwise_param_groups, make_optimizer

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
    from .diagnostics import GradientMonitor

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
    from .cache import EncoderCache, EncoderEvalMode
    from .data import SIZES, TASKS, load_task
    from .encoder import SentenceEncoder
    from .evaluation import evaluate_all
    from .freezing import freeze
    from .model import MultiTaskModel
    from .training import TrainConfig, Trainer

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
        out["epoch_s"][name] = res.wall_time_s - trainer.cache_build_s
        if cached:
            out["cache_build_s"], out["cache_mib"] = trainer.cache_build_s, trainer.cache.nbytes() / 2**20
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


def bench_poolings(n: int = 1000, batch_size: int = 32, repeats: int = 3, device: str | None = None) -> dict:
    """Notebook 01's pooling comparison: one `encode` per pooling mode against one `encode_poolings` pass that
    pools every mode from the same token vectors. Real sentiment and topic texts at demo length (128 pieces)."""
    from .data import load_task
    from .encoder import POOLING_MODES, SentenceEncoder
    from .widgets import _pooling

    dev = check_device(device)
    enc = SentenceEncoder.from_pretrained(max_length=128).to(dev)
    texts = load_task("sentiment", "train", "demo").texts[: n // 2] + load_task("topic", "train", "demo").texts[: n - n // 2]
    out: dict[str, dict] = {}

    def per_mode():
        for m in POOLING_MODES:
            with _pooling(enc, m):
                out.setdefault("per_mode", {})[m] = enc.encode(texts, batch_size=batch_size, show_progress=False)

    def one_pass():
        out["one_pass"] = enc.encode_poolings(texts, POOLING_MODES, batch_size=batch_size, show_progress=False)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*were truncated")
        times = interleaved({"encode_per_mode": per_mode, "encode_poolings": one_pass}, repeats, dev)
    med = _medians(times)
    diff = max((out["per_mode"][m] - out["one_pass"][m]).abs().max().item() for m in POOLING_MODES)
    return _report("poolings", dev, batch_size, repeats, med, sentences=len(texts), modes=list(POOLING_MODES),
                   ratio_per_mode_over_one_pass=med["encode_per_mode"] / med["encode_poolings"], max_abs_diff=diff)


def _print_poolings(r: dict) -> None:
    print(f"poolings: {r['sentences']} real sentences, modes {', '.join(r['modes'])}, batch {r['batch_size']}, "
          f"{r['repeats']} interleaved repeats on {r['device']}")
    _print_medians(r, 15, unit="s")
    print(f"  ratio one encode per mode / one encode_poolings pass = {r['ratio_per_mode_over_one_pass']:.2f}x; "
          f"max abs diff {r['max_abs_diff']:.1e}")


BENCHMARKS = {"encode": (bench_encode, _print_encode), "heads": (bench_heads, _print_heads), "optim": (bench_optim, _print_optim), "cache": (bench_cache, _print_cache),
              "monitor": (bench_monitor, _print_monitor), "poolings": (bench_poolings, _print_poolings)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mtst.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=[*BENCHMARKS, "all"])
    p.add_argument("--n", type=int, default=2000, help="sentences to encode")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--size", default="demo", help="data size for the cache benchmark")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    try:
        check_device(args.device)
    except ValueError as e:
        p.error(str(e))  # before any model loads
    names = list(BENCHMARKS) if args.name == "all" else [args.name]
    results = {}
    for name in names:
        fn, show = BENCHMARKS[name]
        kwargs = {"device": args.device, "repeats": args.repeats}
        if name == "encode":
            kwargs.update(n=args.n, batch_size=args.batch_size)
        elif name == "poolings":
            kwargs.update(n=min(args.n, 1000), batch_size=args.batch_size)
        elif name == "cache":
            kwargs.update(size=args.size, batch_size=args.batch_size)
        else:
            kwargs.update(batch_size=args.batch_size if name == "heads" else min(args.batch_size, 16), repeats=max(args.repeats, 10))
        results[name] = fn(**kwargs)
        show(results[name])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results if len(results) > 1 else results[names[0]], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
