"""Short multi-task runs for tests/test_distributed.py, started by `accelerate launch --cpu --num_processes 2` or by
plain `python` (one process with the same global batch). Each process writes OUT/rank<R>.json with what it saw; the
main process also writes the checkpoint OUT/checkpoint.

    python tests/distributed_run.py OUT
    accelerate launch --cpu --num_processes 2 tests/distributed_run.py OUT
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

import mtst
from mtst.distributed import current

PROBE = 6  # test examples per task whose logits are compared with the reloaded checkpoint's


def _digest(params) -> str:
    h = hashlib.sha256()
    for _, p in sorted(params, key=lambda kv: kv[0]):
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _model(data) -> mtst.MultiTaskModel:
    enc = mtst.SentenceEncoder.from_pretrained()
    enc.max_length = 32
    model = mtst.MultiTaskModel.for_tasks(enc, data, seed=0)
    for m in model.modules():  # no dropout: one process and two must draw the same computation, not the same noise
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


@torch.no_grad()
def probe_logits(model: mtst.MultiTaskModel, test: dict) -> dict:
    from mtst.batches import make_batch

    model.eval()
    out = {t: model(make_batch(model, d, list(range(PROBE)), with_labels=False), [t])[t].float().tolist() for t, d in test.items()}
    model.train()
    return out


def main(out: Path) -> None:
    torch.set_num_threads(1)
    dist = current()
    data = {t: mtst.load_task(t, "train", "ci").subset(48) for t in mtst.TASKS}
    val = {t: mtst.load_task(t, "validation", "ci").subset(24) for t in mtst.TASKS}
    test = {t: mtst.load_task(t, "test", "ci").subset(40) for t in mtst.TASKS}
    cfg = mtst.TrainConfig(steps=6, batch_size=8, lr=1e-4, head_lr=1e-2, progress=False, device="cpu", validations=2,
                           sampler="round_robin", bucket_by_length=True)
    record: dict = {"rank": dist.rank, "num_processes": dist.num_processes}

    # 1. Lower layers frozen, the rest trained one task per step, validated, the best state kept.
    model = _model(data)
    mtst.freeze(model, "embeddings", "layers:0-3")
    frozen = [(n, p) for n, p in model.named_parameters() if not p.requires_grad]
    record["frozen_before"] = _digest(frozen)
    result = mtst.train(model, data, cfg, validation=val, run_cache=False)
    record["losses"] = result.curves().loss.tolist()
    record["validation"] = result.curves("validation")[["step", "task", "score"]].to_dict("records")
    record["frozen_after"] = _digest(frozen)
    record["trained"] = _digest([(n, p) for n, p in model.named_parameters() if p.requires_grad])
    record["test_scores"] = {t: mtst.evaluate(model, d, t, run_cache=False)["score"] for t, d in test.items()}
    record["probe_logits"] = probe_logits(model, test)
    model.save_pretrained(out / "checkpoint")

    # 2. PCGrad: every task at every step, the shared encoder's gradients projected where the tasks conflict.
    model = _model(data)
    result = mtst.train(model, data, replace(cfg, steps=3, weighting="pcgrad"), run_cache=False)
    record["pcgrad_losses"] = result.curves().loss.tolist()
    record["pcgrad_trained"] = _digest(list(model.named_parameters()))

    # 3. Gradual unfreezing (layers join the optimizer mid-run), learned uncertainty weights, the gradient monitor.
    model = _model(data)
    unfreezing, monitor = mtst.GradualUnfreezing(every=2), mtst.GradientMonitor()
    result = mtst.train(model, data, replace(cfg, steps=6, weighting="uncertainty"), callbacks=[unfreezing, monitor], run_cache=False)
    history = result.curves()
    record["unfreezing_losses"] = history.loss.tolist()
    record["unfreezing_weights"] = history[[c for c in history if c.startswith("weight:")]].values.tolist()
    record["unfreezing_log"] = [list(x) for x in unfreezing.log]
    record["grad_norms"] = monitor.frame().grad_norm.tolist()
    record["unfreezing_trained"] = _digest(list(model.named_parameters()))

    # 4. The whole encoder frozen and cached: the heads train on its outputs.
    model = _model(data)
    mtst.freeze(model, "encoder")
    result = mtst.train(model, data, replace(cfg, steps=4, cache_encoder=True), validation=val, run_cache=False)
    record["cached_losses"] = result.curves().loss.tolist()
    record["cached_validation"] = result.curves("validation")[["step", "task", "score"]].to_dict("records")

    # 5. A global batch that does not divide among the processes.
    try:
        mtst.Trainer(model, data, replace(cfg, batch_size=7))
        record["odd_batch"] = "accepted"
    except ValueError as e:
        record["odd_batch"] = str(e)
    (out / f"rank{dist.rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
