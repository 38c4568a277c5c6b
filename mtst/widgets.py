"""Widgets for the notebooks. Logic lives in plain classes; the widget layer only links controls to it.

Every builder returns an ipywidgets container whose `.model` is the plain object, so tests (and
readers without a kernel) can drive the logic by setting `.value` on the controls or calling the model.

The freeze panel, the learning-rate panel and the gradient-step slider also display, beside the widget, the data a
page without a kernel needs to redraw them (`STATIC_MIME`: each part's size, each group's place in the decay, each
step's gradient norms). JupyterLab shows the widget and ignores it; the static site (mtst.lab.site) draws the controls
from it with a small script, so they still respond there.
"""

from __future__ import annotations

import html
import math

import pandas as pd
import torch

from .checks import check_count
from .diagnostics import part_order, plot_grad_bars
from .encoder import POOLING_MODES, SentenceEncoder, check_pooling
from .freezing import plot_freeze_map, plot_step_report, trainable_summary
from .model import word_predictions
from .optim import SCHEDULES, layerwise_param_groups, plot_lr_schedule, schedule_frame
from .probes import nearest_neighbours

STATIC_MIME = "application/vnd.mtst.static+json"


def freeze_state(model) -> dict:
    """What the site's freeze panel redraws from: each part's parameter count and whether it is trainable now."""
    parts = trainable_summary(model).iloc[:-1]
    return {"kind": "freeze", "parts": [{"part": r.part, "params": int(r.params), "trainable": bool(r.trainable)}
                                        for r in parts.itertuples()]}


def schedule_state(model, lr: float, head_lr: float, layer_decay: float, schedule: str, warmup_steps: int, total_steps: int) -> dict:
    """What the site's learning-rate panel redraws from: each group's power of ξ (its lr is lr·ξ^power) or that it
    is a head (head lr), and the sliders' starting values. Read off the real groups built at lr 1, ξ ½, heads 2."""
    groups = [g for g in layerwise_param_groups(model, 1.0, 2.0, 0.5) if not g["name"].endswith(".no_decay")]
    return {"kind": "schedule", "schedules": list(SCHEDULES),
            "groups": [{"name": g["name"], "head": g["lr"] == 2.0, "power": None if g["lr"] == 2.0 else round(-math.log2(g["lr"]))}
                       for g in groups],
            "start": {"lr": lr, "head_lr": head_lr, "decay": layer_decay, "schedule": schedule, "warmup": warmup_steps, "steps": total_steps}}


def grad_steps_state(frame: pd.DataFrame) -> dict:
    """What the site's gradient-step slider redraws from: each recorded step's task and per-part gradient norms."""
    parts = part_order(frame)
    steps = sorted(int(s) for s in frame.step.unique())
    by_step = {int(s): d.set_index("part").reindex(parts) for s, d in frame.groupby("step")}
    return {"kind": "grad_steps", "parts": parts, "steps": steps, "tasks": [str(by_step[s].task.dropna().iloc[0]) for s in steps],
            "norms": [[round(float(v), 6) if math.isfinite(v) else None for v in by_step[s].grad_norm] for s in steps]}


def _with_static(box, state) -> None:
    """Display `state()` (read when the widget is shown) beside the widget, for pages without a kernel."""
    shown = box._repr_mimebundle_

    def bundle(**kwargs):
        data = shown(**kwargs)
        if data is not None:
            data[STATIC_MIME] = state()
        return data

    box._repr_mimebundle_ = bundle


class NeighbourSearch:
    """Nearest corpus sentences to a query, under a chosen pooling mode (corpus embeddings cached per mode)."""

    def __init__(self, encoder: SentenceEncoder, texts: list[str], labels: list[int] | None = None, label_names: list[str] | None = None):
        if not texts:
            raise ValueError("the corpus is empty: pass at least one sentence")
        if labels is not None and len(labels) != len(texts):
            raise ValueError(f"{len(texts)} sentences but {len(labels)} labels: pass one label per sentence, or none")
        self.encoder = encoder
        self.texts = list(texts)
        self.labels = labels
        self.label_names = label_names
        self._cache: dict[str, torch.Tensor] = {}

    def corpus_embeddings(self, pooling: str) -> torch.Tensor:
        if check_pooling(pooling) not in self._cache:
            # One encoder pass pools every mode not cached yet, so switching modes in the widget is instant.
            missing = [m for m in POOLING_MODES if m not in self._cache]
            self._cache.update(self.encoder.encode_poolings(self.texts, missing, show_progress=False))
        return self._cache[pooling]

    def query(self, sentence: str, pooling: str = "mean", k: int = 5) -> pd.DataFrame:
        """The k nearest corpus sentences with their cosine similarity (and label, when known)."""
        check_count(k, "k (neighbours)")
        corpus = self.corpus_embeddings(pooling)
        with _pooling(self.encoder, pooling):
            q = self.encoder.encode([sentence], show_progress=False)[0]
        idx, sims = nearest_neighbours(q, corpus, k)
        rows = {"cosine": [round(s, 3) for s in sims], "sentence": [self.texts[i] for i in idx]}
        if self.labels is not None:
            names = self.label_names or [str(i) for i in range(max(self.labels) + 1)]
            rows["label"] = [names[self.labels[i]] for i in idx]
        return pd.DataFrame(rows)


class _pooling:
    """Temporarily switch an encoder's pooling mode."""

    def __init__(self, encoder: SentenceEncoder, mode: str):
        self.encoder, self.mode = encoder, check_pooling(mode)

    def __enter__(self):
        self.old, self.encoder.pooling = self.encoder.pooling, self.mode

    def __exit__(self, *exc):
        self.encoder.pooling = self.old


def _show_in(output, plot, figsize=(6, 3.5)) -> None:
    """Replace what an Output widget shows with a fresh figure drawn by plot(ax)."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    output.clear_output(wait=True)
    with output:
        fig, ax = plt.subplots(figsize=figsize)
        plot(ax)
        display(fig)
        plt.close(fig)


def _table_html(df: pd.DataFrame, max_chars: int = 120) -> str:
    def cut(s):
        s = str(s)
        return html.escape(s if len(s) <= max_chars else s[: max_chars - 1] + "…")

    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(c)}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td style='padding:2px 8px'>{cut(v)}</td>" for v in row) + "</tr>" for row in df.itertuples(index=False)
    )
    return f"<table class='mtst-table'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def neighbour_widget(search: NeighbourSearch, sentence: str = "", k: int = 5):
    """Type a sentence, pick a pooling mode, see its nearest neighbours in the corpus."""
    import ipywidgets as W

    check_count(k, "k (neighbours)")  # here, not at the first query typed into the box
    text = W.Text(value=sentence, description="sentence", placeholder="type a sentence and press enter", layout=W.Layout(width="70%"), continuous_update=False)
    mode = W.Dropdown(options=list(POOLING_MODES), value=search.encoder.pooling, description="pooling")
    out = W.HTML()

    def refresh(_=None):
        if not text.value.strip():
            out.value = "<i>type a sentence to see its nearest neighbours</i>"
            return
        out.value = _table_html(search.query(text.value, mode.value, k))

    text.observe(refresh, names="value")
    mode.observe(refresh, names="value")
    refresh()
    box = W.VBox([W.HBox([text, mode]), out])
    box.model, box.text, box.pooling, box.output = search, text, mode, out
    box.add_class("mtst-neighbours")
    return box


def predict_html(model, sentence: str) -> str:
    """Topic and sentiment labels, and the sentence with its predicted entities highlighted."""
    out = model.predict(sentence)
    parts = []
    for task, value in out.items():
        if model.task_kind(task) == "sentence":
            parts.append(f"<b>{html.escape(task)}</b>: {html.escape(value)}")
    words = sentence.split()
    for task in [t for t in out if model.task_kind(t) == "token"]:

        batch = model.tokenize([sentence])
        with torch.inference_mode():
            was = model.training
            model.eval()
            tags = word_predictions(model(batch, [task])[task][0].argmax(-1).tolist(), batch["word_ids"][0])
            model.train(was)
        names = model.label_names[task]
        marked = []
        for w, t in zip(words, tags):
            label = names[t]
            if label == "O":
                marked.append(html.escape(w))
            else:
                marked.append(f"<mark title='{html.escape(label)}' style='background:#fce5cd'>{html.escape(w)} <sub>{html.escape(label[2:])}</sub></mark>")
        spans = ", ".join(f"{html.escape(s)} ({html.escape(t)})" for s, t in out[task]) or "none"
        parts.append(f"<b>{html.escape(task)}</b>: {' '.join(marked)}<br><small>entities: {spans}</small>")
    return "<div class='mtst-predict'>" + "<br>".join(parts) + "</div>"


def predict_widget(model, sentence: str = ""):
    """Type a sentence; see every head's prediction, with entities highlighted in the text."""
    import ipywidgets as W

    text = W.Text(value=sentence, description="sentence", placeholder="type a sentence and press enter", layout=W.Layout(width="80%"), continuous_update=False)
    out = W.HTML()

    def refresh(_=None):
        out.value = predict_html(model, text.value) if text.value.strip() else "<i>type a sentence</i>"

    text.observe(refresh, names="value")
    refresh()
    box = W.VBox([text, out])
    box.model, box.text, box.output = model, text, out
    box.add_class("mtst-predict")
    return box


def _run_trial(playground, button, progress, run, show) -> None:
    """A panel's trial button: one trial at a time (a second click while one runs starts nothing), its progress bar in
    `progress`, a refused choice printed there with nothing changed, then show() with the new row."""
    if playground.running:
        return
    button.disabled = True
    try:
        progress.clear_output()
        with progress:
            try:
                run()
            except ValueError as e:
                print(e)
                return
        progress.clear_output()
        show()
    finally:
        button.disabled = False


def freeze_panel(playground, steps: int = 3, trial_steps: int = 30):
    """One toggle per part, a live trainable readout and freeze map, a button that trains real steps and shows each
    part's gradient; with the playground's validation sets, a second button that runs a short trial with the parts
    frozen as ticked and adds each task's validation score before and after to a table, one row per trial."""
    import ipywidgets as W

    toggles = {part: W.Checkbox(value=playground.is_trainable(part), description=part, indent=False, layout=W.Layout(width="150px"))
               for part in playground.parts}
    readout = W.Label(value=playground.readout())
    readout.add_class("mtst-trainable-readout")
    figure = W.Output()
    button = W.Button(description=f"train {steps} steps", icon="play")
    report = W.Output()
    trial_button = W.Button(description=f"train {trial_steps} steps and score", icon="flask", layout=W.Layout(width="260px"),
                            disabled=playground.validation is None, tooltip="needs FreezePlayground(..., validation=...)")
    trial_button.add_class("mtst-trial-button")
    progress, trials = W.Output(), W.HTML()
    trials.add_class("mtst-trials")

    def draw():
        _show_in(figure, lambda ax: plot_freeze_map(playground.model, ax=ax))

    def on_toggle(change, part):
        playground.set_trainable(part, change["new"])
        readout.value = playground.readout()
        draw()

    def on_train(_):
        button.disabled = True
        try:
            report.clear_output()
            with report:  # the progress bar shows here while the steps train
                result = playground.train_steps(steps, progress=True)
            _show_in(report, lambda ax: plot_step_report(result, ax=ax))
        finally:
            button.disabled = False

    def on_trial(_):  # everything frozen: the trial says so and changes nothing
        _run_trial(playground, trial_button, progress, lambda: playground.trial(trial_steps, progress=True),
                   lambda: setattr(trials, "value", _table_html(playground.trials_frame().reset_index())))

    for part, t in toggles.items():
        t.observe(lambda change, part=part: on_toggle(change, part), names="value")
    button.on_click(on_train)
    trial_button.on_click(on_trial)
    if playground.trials:
        trials.value = _table_html(playground.trials_frame().reset_index())
    draw()
    box = W.VBox([W.HBox([W.VBox(list(toggles.values())), figure]), readout, button, report, trial_button, progress, trials])
    box.model, box.toggles, box.readout, box.button, box.report = playground, toggles, readout, button, report
    box.trial_button, box.trials = trial_button, trials
    box.add_class("mtst-freeze-panel")
    _with_static(box, lambda: {**freeze_state(playground.model), "trials": trials.value})
    return box


def lr_schedule_widget(model, total_steps: int = 200, playground=None, trial_steps: int = 30):
    """Sliders for base lr, head lr, decay ξ, warmup, schedule and steps; a live plot of every group's LR. With a
    `mtst.RatePlayground`, a button trains a short run with the rates as set and adds each task's validation score
    before and after, and each part's update size, beside the earlier trials."""
    import ipywidgets as W

    lr = W.FloatLogSlider(value=1e-4, base=10, min=-6, max=-2, step=0.25, description="lr (top layer)", readout_format=".1e")
    head_lr = W.FloatLogSlider(value=1e-3, base=10, min=-6, max=-1, step=0.25, description="head lr", readout_format=".1e")
    decay = W.FloatSlider(value=0.9, min=0.5, max=1.0, step=0.05, description="decay ξ")
    warmup = W.IntSlider(value=total_steps // 10, min=0, max=total_steps, description="warmup steps")
    steps = W.IntSlider(value=total_steps, min=10, max=5 * total_steps, step=10, description="total steps")
    kind = W.Dropdown(options=list(SCHEDULES), value="linear", description="schedule")
    plot, table = W.Output(), W.HTML()
    status = W.Label()
    status.add_class("mtst-lr-status")
    table.add_class("mtst-lr-groups")
    trial_button = W.Button(description=f"train {trial_steps} steps with these rates", icon="flask", layout=W.Layout(width="300px"),
                            disabled=playground is None, tooltip="needs lr_schedule_widget(..., playground=mtst.RatePlayground(...))")
    trial_button.add_class("mtst-lr-trial-button")
    progress, trials, updates = W.Output(), W.HTML(), W.Output()
    trials.add_class("mtst-lr-trials")

    def refresh(_=None):
        warmup.max = steps.value
        try:
            groups, lrs = schedule_frame(model, lr.value, head_lr.value, decay.value, kind.value, warmup.value, steps.value)
        except ValueError as e:
            status.value = str(e)
            return
        status.value = f"embeddings start at {groups.lr.iloc[0]:.2e}, the top layer at {lr.value:.2e}: a ratio of {lr.value / groups.lr.iloc[0]:.1f}×"
        table.value = _table_html(groups.assign(lr=groups.lr.map("{:.2e}".format)))
        _show_in(plot, lambda ax: plot_lr_schedule(lrs, ax=ax), figsize=(8, 4))

    def show_trials():
        trials.value = _table_html(playground.trials_frame().reset_index())
        _show_in(updates, lambda ax: playground.plot_updates(ax=ax), figsize=(8, 3.5))

    def on_trial(_):  # a rate the trainer refuses: the trial says so and changes nothing
        _run_trial(playground, trial_button, progress, lambda: playground.trial(
            lr.value, head_lr.value, decay.value, kind.value, warmup.value / steps.value, trial_steps, progress=True), show_trials)

    for w in (lr, head_lr, decay, warmup, steps, kind):
        w.observe(refresh, names="value")
    trial_button.on_click(on_trial)
    refresh()
    if playground is not None and playground.trials:
        show_trials()
    box = W.VBox([W.HBox([W.VBox([lr, head_lr, decay]), W.VBox([warmup, steps, kind])]), status, plot, table,
                  trial_button, progress, trials, updates])
    box.model, box.playground = model, playground
    box.lr, box.head_lr, box.decay, box.warmup, box.steps, box.schedule = lr, head_lr, decay, warmup, steps, kind
    box.status, box.table, box.plot = status, table, plot
    box.trial_button, box.trials, box.updates = trial_button, trials, updates
    box.add_class("mtst-lr-schedule")
    _with_static(box, lambda: {**schedule_state(model, lr.value, head_lr.value, decay.value, kind.value, warmup.value, steps.value),
                               "trials": trials.value})
    return box


def grad_step_widget(frame: pd.DataFrame, step: int | None = None):
    """A step slider over a gradient monitor's frame (`GradientMonitor.frame()`): each part's gradient norm at that step."""
    import ipywidgets as W

    last = int(frame.step.max())
    slider = W.IntSlider(value=last if step is None else step, min=int(frame.step.min()), max=last, description="step")
    figure = W.Output()

    def draw(_=None):
        _show_in(figure, lambda ax: plot_grad_bars(frame, slider.value, ax=ax))

    slider.observe(draw, names="value")
    draw()
    box = W.VBox([slider, figure])
    box.model, box.slider, box.figure = frame, slider, figure
    box.add_class("mtst-grad-steps")
    _with_static(box, lambda: {**grad_steps_state(frame), "start": slider.value})
    return box
