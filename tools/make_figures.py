"""Make the README's three pictures from real runs of the packaged model on the packaged data:
docs/img/freeze_panel.png (what the freeze panel shows after two real steps with the lower four layers frozen),
docs/img/embedding_space.png (UMAP of topic test posts, pretrained encoder against the same one at random init, each
with its 5-NN accuracy in 384-d), docs/img/grad_heatmap.png (every part's gradient norm through a short multi-task run).

    python tools/make_figures.py [--out docs/img]      # about a minute on a 2-core CPU
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*were truncated")
    import matplotlib.pyplot as plt

    import mtst

    mtst.runcache.configure(enabled=False)
    args.out.mkdir(parents=True, exist_ok=True)
    train, val, test = mtst.load_splits("ci")
    encoder = mtst.SentenceEncoder.from_pretrained(max_length=mtst.SIZES["ci"].max_length)

    model = mtst.freeze(mtst.MultiTaskModel.for_tasks(copy.deepcopy(encoder), train, seed=0), "embeddings", "layers:0-3")
    panel = mtst.FreezePanelModel(model, {t: d.subset(64, 0) for t, d in train.items()}, batch_size=8, seed=0)
    report = panel.train_steps(2)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    mtst.plot_freeze_map(model, ax=axes[0])
    mtst.freezing.plot_step_report(report, ax=axes[1])
    axes[1].set_title("after 2 real steps: gradient norm, share of weights changed", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out / "freeze_panel.png", dpi=80)

    topic = mtst.load_task("topic", "test", "demo")
    keep = [i for i, y in enumerate(topic.labels) if topic.label_names[y].startswith(("rec.", "sci.", "comp."))]
    texts, labels = [topic.texts[i] for i in keep], [topic.labels[i] for i in keep]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, (name, enc) in zip(axes, [("pretrained", encoder), ("random init", mtst.SentenceEncoder.random_init(like=encoder, seed=0))]):
        mtst.plot_embedding_space(enc.encode(texts), labels, topic.label_names, title=f"topic test posts · {name}", ax=ax, seed=0)
    for ax in axes:
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
    fig.tight_layout()
    fig.savefig(args.out / "embedding_space.png", dpi=80)

    model = mtst.MultiTaskModel.for_tasks(copy.deepcopy(encoder), train, seed=0)  # nothing frozen: every part learns
    monitor = mtst.GradientMonitor()
    mtst.train(model, train, mtst.TrainConfig(steps=40, batch_size=16, lr=1e-4, head_lr=1e-3, layer_decay=0.9, progress=False), callbacks=[monitor])
    ax = mtst.diagnostics.plot_grad_heatmap(monitor.frame(), task="sentiment")
    ax.figure.set_size_inches(7, 3.8)
    ax.figure.tight_layout()
    ax.figure.savefig(args.out / "grad_heatmap.png", dpi=80)
    print("wrote", ", ".join(sorted(p.name for p in args.out.glob("*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
