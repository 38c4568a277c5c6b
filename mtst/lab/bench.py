"""Benchmarks that compare two ways of doing the same work side by side, in one run, and print ratios.

    python -m mtst.lab.bench encode [--n 2000] [--batch-size 32] [--repeats 3] [--device cpu|cuda] [--encoder NAME] [--json PATH]
    python -m mtst.lab.bench heads  [--batch-size 32] [--repeats 10]
    python -m mtst.lab.bench optim  [--batch-size 16] [--repeats 10]
    python -m mtst.lab.bench cache  [--size demo] [--batch-size 32]
    python -m mtst.lab.bench monitor [--batch-size 16] [--repeats 10]
    python -m mtst.lab.bench poolings [--n 1000] [--batch-size 32] [--repeats 3]
    python -m mtst.lab.bench prefix [--size demo] [--epochs 3]
    python -m mtst.lab.bench bucket [--size demo] [--batch-size 16]
    python -m mtst.lab.bench widgets [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import torch

from ..checks import check_device
from ..data import TASKS, load_task
from ..encoder import POOLING_MODES, TOKENIZE_THREADS, SentenceEncoder
from ..model import MultiTaskModel
from ..panels import FreezePlayground
from ..pretrained import ENCODERS, encoder_path, resolve_encoder
from ..runcache import configure
from ..widgets import _pooling, freeze_panel, lr_schedule_widget
from . import bench_training as t
from .bench_scale import _print_processes, bench_processes
from .provenance import cpu_bf16_flags
from .timing import _medians, _print_medians, _report, _sync, interleaved  # noqa: F401


def bench_encode(n: int = 2000, batch_size: int = 32, repeats: int = 3, device: str | None = None, encoder: str | None = None) -> dict:
    """mtst.SentenceEncoder.encode against SentenceTransformer.encode: same model (`encoder`: a packaged one's name;
    None, the default), sentences and batch size."""
    from sentence_transformers import SentenceTransformer

    dev = check_device(device)
    texts = load_task("sentiment", "train", "full").texts[:n]
    if len(texts) < n:
        texts += load_task("sentiment", "validation", "full").texts[: n - len(texts)]
    name = resolve_encoder(encoder)
    enc = SentenceEncoder.from_pretrained(name).to(dev).eval()  # checked by checksum where it comes split
    st = SentenceTransformer(str(encoder_path(name)), device=str(dev))
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
        encoder=name,
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
    print(f"encode: {r.get('encoder', 'all-MiniLM-L6-v2')}, {r['sentences']} real sentences, batch {r['batch_size']}, {r['repeats']} interleaved repeats on {r['device']}")
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


def bench_poolings(n: int = 1000, batch_size: int = 32, repeats: int = 3, device: str | None = None) -> dict:
    """Notebook 01's pooling comparison: one `encode` per pooling mode against one `encode_poolings` pass that
    pools every mode from the same token vectors. Real sentiment and topic texts at demo length (128 pieces)."""

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


def bench_widgets(repeats: int = 10, **_) -> dict:
    """How long the interactive pieces take to answer: a freeze-panel toggle (the readout and the freeze map redrawn)
    and a move of the LR widget's decay slider (every group's schedule recomputed and replotted), each the median of
    `repeats` changes, against the one-second budget of a live session."""
    import os

    os.environ.setdefault("MPLBACKEND", "Agg")
    import io

    import IPython.display
    from matplotlib.figure import Figure

    def display_as_png(obj, *args, **kwargs):  # what JupyterLab's inline backend does with a figure: a PNG
        if isinstance(obj, Figure):
            obj.canvas.print_figure(io.BytesIO(), format="png", bbox_inches="tight")

    IPython.display.display = display_as_png
    data = {t: load_task(t, "train", "ci").subset(64) for t in TASKS}
    model = MultiTaskModel.for_tasks(SentenceEncoder.from_pretrained(max_length=48), data)
    panel = freeze_panel(FreezePlayground(model, data, batch_size=8))
    lr = lr_schedule_widget(model, total_steps=200)
    box = panel.toggles["layer_5"]
    decays = iter([0.8, 0.9] * repeats)
    times = interleaved({"freeze_panel_toggle": lambda: setattr(box, "value", not box.value),
                         "lr_slider_move": lambda: setattr(lr.decay, "value", next(decays))}, repeats, torch.device("cpu"))
    med = _medians(times)
    return _report("widgets", torch.device("cpu"), 0, repeats, med, budget_s=1.0, share_of_budget={k: v / 1.0 for k, v in med.items()})


def _print_widgets(r: dict) -> None:
    print(f"widgets: {r['repeats']} changes each, the median time until the widget has answered")
    for k, v in r["median_s"].items():
        print(f"  {k:>20}: {1000 * v:7.1f} ms ({100 * r['share_of_budget'][k]:.0f}% of the {r['budget_s']:.0f} s budget)")


def _benchmarks() -> dict:
    return {"encode": (bench_encode, _print_encode), "heads": (bench_heads, _print_heads), "optim": (t.bench_optim, t._print_optim),
            "cache": (t.bench_cache, t._print_cache), "monitor": (t.bench_monitor, t._print_monitor),
            "poolings": (bench_poolings, _print_poolings), "prefix": (t.bench_prefix, t._print_prefix), "bucket": (t.bench_bucket, t._print_bucket),
            "widgets": (bench_widgets, _print_widgets), "processes": (bench_processes, _print_processes)}


NAMES = ("encode", "heads", "optim", "cache", "monitor", "poolings", "prefix", "bucket", "widgets", "processes")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mtst.lab.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=[*NAMES, "all"])
    p.add_argument("--n", type=int, default=2000, help="sentences to encode")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--size", default="demo", help="data size for the cache benchmark")
    p.add_argument("--epochs", type=float, default=3.0, help="passes over the training data for the prefix benchmark")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--encoder", choices=list(ENCODERS), default=None, help="the packaged encoder the encode benchmark runs (default all-MiniLM-L6-v2)")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    if args.encoder is not None and args.name != "encode":
        p.error("--encoder is for the encode benchmark: python -m mtst.lab.bench encode --encoder NAME")

    configure(enabled=False)  # a benchmark times the work itself, never a run loaded from the run cache
    try:
        check_device(args.device)
    except ValueError as e:
        p.error(str(e))  # before any model loads
    benchmarks = _benchmarks()
    names = list(NAMES) if args.name == "all" else [args.name]
    results = {}
    for name in names:
        fn, show = benchmarks[name]
        kwargs = {"device": args.device, "repeats": args.repeats}
        if name == "encode":
            kwargs.update(n=args.n, batch_size=args.batch_size, encoder=args.encoder)
        elif name == "poolings":
            kwargs.update(n=min(args.n, 1000), batch_size=args.batch_size)
        elif name == "cache":
            kwargs.update(size=args.size, batch_size=args.batch_size)
        elif name == "processes":
            kwargs.update(size=args.size, batch_size=args.batch_size, repeats=min(args.repeats, 2))
        elif name in ("prefix", "bucket"):
            kwargs.update(size=args.size, **({"epochs": args.epochs} if name == "prefix" else {"batch_size": min(args.batch_size, 16)}))
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
