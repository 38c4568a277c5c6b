"""Where `SentenceEncoder.encode`'s time goes on a GPU: tokenizing alone at several thread counts, encode with
batches collated inline or by threads running ahead, the GPU forward alone over batches collated beforehand, and
SentenceTransformer's encode and its tokenizing alone. A diagnostic beside `python -m mtst.lab.bench encode` (which
gives the ratios): medians of 3, the same sentences as the benchmark.

    python tools/encode_breakdown.py [--device cuda] [--n 12752] [--json results/encode_breakdown_<machine>.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from mtst import encoder as E
from mtst.checks import check_device
from mtst.data import load_task
from mtst.lab.provenance import git_commit, hardware


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--n", type=int, default=12752, help="sentences (RT train, then validation; capped by what there is)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    dev = check_device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    texts = (load_task("sentiment", "train", "full").texts + load_task("sentiment", "validation", "full").texts)[: args.n]
    enc = E.SentenceEncoder.from_pretrained().to(dev).eval()
    bs = args.batch_size

    def median_s(fn, repeats=3):
        times = []
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        return round(sorted(times)[len(times) // 2], 4)

    res = {"n": len(texts), "batch_size": bs, "cpu_count": os.cpu_count(), "TOKENIZERS_PARALLELISM": os.environ.get("TOKENIZERS_PARALLELISM")}

    def record(key, value):
        res[key] = value
        print(key, value, flush=True)

    enc.encode(texts[:2048], batch_size=bs, show_progress=False)  # warm-up
    threads, workers = E.TOKENIZE_THREADS, E.COLLATE_WORKERS[dev.type]
    for n in (1, 4, 8, 16):
        E.TOKENIZE_THREADS = n
        record(f"tokenize_threads{n}", median_s(lambda: enc._token_ids(texts)))
    E.TOKENIZE_THREADS = threads
    for w in (0, 2, 4):
        E.COLLATE_WORKERS[dev.type] = w
        for prec in ("fp32", "bf16"):
            record(f"encode_{prec}_workers{w}", median_s(lambda prec=prec: enc.encode(texts, batch_size=bs, normalize=True, precision=prec, show_progress=False)))
    E.COLLATE_WORKERS[dev.type] = workers
    # The GPU's share: the forward alone, over batches collated (longest first, as encode does) and moved beforehand.
    ids, _ = enc._token_ids(texts)
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    batches = []
    for k in range(0, len(order), bs):
        idx = order[k : k + bs]
        x = torch.zeros(len(idx), len(ids[idx[0]]), dtype=torch.long)
        m = torch.zeros_like(x)
        for r, i in enumerate(idx):
            x[r, : len(ids[i])] = torch.tensor(ids[i])
            m[r, : len(ids[i])] = 1
        batches.append({"input_ids": x.to(dev), "attention_mask": m.to(dev), "token_type_ids": torch.zeros_like(x).to(dev)})
    record("tokens_total", sum(len(i) for i in ids))
    for prec in ("fp32", "bf16"):
        def forward(prec=prec):
            with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=prec == "bf16"):
                for b in batches:
                    enc.forward(b)

        forward()
        record(f"gpu_forward_only_{prec}", median_s(forward))
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(E.default_model_path()), device=str(dev))
    st.encode(texts[:2048], batch_size=bs)
    record("st_encode_fp32", median_s(lambda: st.encode(texts, batch_size=bs, convert_to_tensor=True, normalize_embeddings=True)))
    record("st_tokenize_only", median_s(lambda: [st.tokenize(texts[k : k + bs]) for k in range(0, len(texts), bs)]))
    record("torch", torch.__version__)
    record("gpu", torch.cuda.get_device_name(dev) if dev.type == "cuda" else None)
    res.update(commit=git_commit(), date=time.strftime("%Y-%m-%d", time.gmtime()), hardware=hardware())
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
