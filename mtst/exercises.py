"""The notebooks' exercises, and checks a learner can call on an answer:

    mtst.exercises.check("04.1", 13.3, model=model)

says right, close or wrong, and why, from the data, the model or the run the learner passes (never a typed answer).
Exercises without one answer have no check; every exercise has a worked solution in notebooks/solutions/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from .data import load_task
from .optim import describe_param_groups, layerwise_param_groups

SOLUTIONS = "notebooks/solutions/{notebook}_solutions.ipynb"


@dataclass(frozen=True)
class Feedback:
    """What a check says: `verdict` is "right", "close" or "wrong"; `why` is computed from what was passed."""

    exercise: str
    verdict: str
    why: str

    @property
    def right(self) -> bool:
        return self.verdict == "right"

    def __str__(self) -> str:
        return f"{self.exercise}: {self.verdict}. {self.why}"

    def _repr_markdown_(self) -> str:
        mark = {"right": "✅", "close": "🟡", "wrong": "❌"}[self.verdict]
        return f"{mark} **{self.exercise}: {self.verdict}.** {self.why}"


@dataclass(frozen=True)
class Exercise:
    notebook: str  # "03"
    question: str
    checker: Callable[..., Feedback] | None = None  # None: no single answer; compare with the solution
    needs: tuple[str, ...] = field(default=())  # what check() must be given besides the answer

    @property
    def solution(self) -> str:
        return SOLUTIONS.format(notebook=self.notebook)


def _number(exercise: str, answer) -> float:
    try:
        return float(answer)
    except (TypeError, ValueError):
        raise TypeError(f"exercise {exercise} asks for a number, got {answer!r}: pass it as a number, "
                        f"e.g. check({exercise!r}, 12.5)") from None


def _graded(exercise: str, answer: float, reference: float, close: float, why: str, rel_right: float = 0.01) -> Feedback:
    gap = abs(answer - reference) / max(abs(reference), 1e-12)
    verdict = "right" if gap <= rel_right else "close" if gap <= close else "wrong"
    return Feedback(exercise, verdict, why)


# --------------------------------------------------------------------------- the checks


def _topic_posts_full(answer, **_) -> Feedback:
    n = len(load_task("topic", "train", "full"))
    ci = len(load_task("topic", "train", "ci"))
    given = _number("00.1", answer)
    return _graded("00.1", given, n, 0.02, f"`len(mtst.load_task('topic', 'train', 'full'))` is {n:,} (you said {given:,.0f}); "
                   f"at `ci` it is {ci:,}: the sizes subsample the same fixed splits.", rel_right=0.0)


def entity_counts(data) -> pd.Series:
    """Entities per type in an NER split (one per B- tag), rarest first."""
    counts = {name[2:]: n for name, n in data.label_counts().items() if name.startswith("B-")}
    return pd.Series(counts, name="entities").sort_values(kind="stable")


def _rarest_entity(answer, size: str = "demo", **_) -> Feedback:
    counts = entity_counts(load_task("ner", "train", size))
    given = str(answer).strip().lower().removeprefix("b-")
    if given not in counts:
        raise ValueError(f"{answer!r} is not an entity type here: pass one of {', '.join(counts.index)}")
    rarest = counts[counts == counts.min()]
    listing = ", ".join(f"{t} {n}" for t, n in counts.items())
    why = f"entities per type in the NER training split at size {size!r}: {listing}."
    if given in rarest.index:
        return Feedback("00.2", "right", why)
    second = counts.iloc[len(rarest)] if len(counts) > len(rarest) else None
    verdict = "close" if counts[given] == second else "wrong"
    return Feedback("00.2", verdict, f"{given} has {counts[given]}, the rarest ({', '.join(rarest.index)}) {rarest.iloc[0]}; " + why)


def _pooling_flip(answer, search=None, **_) -> Feedback:
    if search is None or search.labels is None:
        raise ValueError("this check runs your query: pass search=NeighbourSearch(encoder, texts, labels, label_names)")
    tops = {mode: search.query(str(answer), mode, k=1).iloc[0] for mode in ("mean", "max")}
    said = "; ".join(f"nearest under {mode}: {r.sentence[:60]!r} ({r.label}, cosine {r.cosine:.2f})" for mode, r in tops.items())
    changed = tops["mean"].label != tops["max"].label
    return Feedback("01.3", "right" if changed else "wrong", ("the label changes: " if changed else "the same label under both: ") + said)


def _save_load_gap(answer, **_) -> Feedback:
    gap = abs(_number("02.3", answer))
    if gap <= 1e-6:
        return Feedback("02.3", "right", f"a gap of {gap:.1e}: safetensors stores every float32 weight exactly, so the logits match.")
    if gap <= 1e-2:
        return Feedback("02.3", "close", f"a gap of {gap:.1e} is more than float32 rounding: compare in eval mode (`model.eval()`, "
                        "dropout off) and on the same tokenized batch.")
    return Feedback("02.3", "wrong", f"a gap of {gap:.1e} means different weights: load with `mtst.MultiTaskModel.from_pretrained(path)` "
                    "and compare both models in eval mode.")


def _changed_parts(answer, report: pd.DataFrame | None = None, **_) -> Feedback:
    if report is None:
        raise ValueError("this check reads your run: pass report=playground.last_step (after pressing train)")
    parts = list(report.part)
    given = {answer} if isinstance(answer, str) else set(answer)
    unknown = given - set(parts)
    if unknown:
        raise ValueError(f"not parts of this model: {sorted(unknown)}; the parts are {', '.join(parts)}")
    changed = set(report.part[report.changed_fraction > 0])
    reasons = []
    for r in report.itertuples():
        if (r.part in changed) != (r.part in given):
            if r.part in changed:
                reasons.append(f"{r.part} changed ({r.changed_fraction:.0%} of its weights): it is trainable and got a gradient")
            elif not r.trainable:
                reasons.append(f"{r.part} did not change: it is frozen")
            else:
                reasons.append(f"{r.part} did not change: trainable, but no gradient reached it in these steps (no batch of its task)")
    if not reasons:
        return Feedback("03.1", "right", f"these parts changed: {', '.join(p for p in parts if p in changed)}.")
    return Feedback("03.1", "wrong", "; ".join(reasons) + ".")


def _decay_ratio(answer, model=None, **_) -> Feedback:
    if model is None:
        raise ValueError("this check reads the model's depth: pass model=model")
    groups = describe_param_groups(layerwise_param_groups(model, lr=1e-4, head_lr=1e-3, layer_decay=0.65)).set_index("group").lr
    layers = [g for g in groups.index if g.startswith("layer_") and "." not in g]
    top = max(layers, key=lambda g: int(g[6:]))
    ratio = groups[top] / groups["embeddings"]
    given = _number("04.1", answer)
    why = (f"at ξ = 0.65 the top layer ({top}) gets {groups[top]:.1e} and the embeddings {groups['embeddings']:.1e}: "
           f"{ratio:.1f}× lower, (1/0.65)^{len(layers)} with {len(layers)} layers between them.")
    if abs(given - 1 / ratio) <= 0.01 / ratio:
        return Feedback("04.1", "close", f"{given:.3f} is the embeddings' rate as a share of the top layer's; how many times lower is its "
                        f"inverse. " + why)
    return _graded("04.1", given, ratio, 0.1, why)


def _conflicting_pair(answer, conflict=None, **_) -> Feedback:
    if conflict is None:
        raise ValueError("this check reads your run's conflicts: pass conflict=conflict.conflict_share() (a ConflictMonitor's table)")
    table = conflict if isinstance(conflict, pd.DataFrame) else conflict.conflict_share()
    table = table.assign(tasks=table.pair.map(lambda p: frozenset(p.split("·"))))
    names = answer.replace("-", "·").replace("/", "·").replace(" ", "·").split("·") if isinstance(answer, str) else list(answer)
    given = frozenset(n for n in names if n)
    if given not in set(table.tasks):
        raise ValueError(f"{answer!r} is not a task pair here: pass one of {', '.join(table.pair)}")
    ranked = table.sort_values(["conflict_share", "mean_cosine"], ascending=[False, True])
    worst = ranked.iloc[0]
    listing = "; ".join(f"{r.pair}: {r.conflict_share:.0%} of {r.steps} steps, mean cosine {r.mean_cosine:+.3f}" for r in ranked.itertuples())
    mine = ranked[ranked.tasks == given].iloc[0]
    if given == worst.tasks:
        return Feedback("05.3", "right", f"in this run {listing}.")
    verdict = "close" if mine.conflict_share == worst.conflict_share else "wrong"
    return Feedback("05.3", verdict, f"{worst.pair} conflicts most in this run ({listing}).")


EXERCISES: dict[str, Exercise] = {
    "00.1": Exercise("00", "Set `size = \"full\"`: how many topic training posts are there?", _topic_posts_full),
    "00.2": Exercise("00", "Which entity type is rarest in the NER training split?", _rarest_entity, ("size",)),
    "00.3": Exercise("00", "Find a topic post whose label you cannot guess from its first `max_length` word pieces."),
    "01.1": Exercise("01", "Do the pooling modes keep their ranks at another size or seed?"),
    "01.2": Exercise("01", "How far does the embedding space move with CLS pooling instead of mean pooling?"),
    "01.3": Exercise("01", "Find a query whose nearest neighbour changes label from mean to max pooling.", _pooling_flip, ("search",)),
    "02.1": Exercise("02", "Give NER a loss weight of 3: what happens to the other tasks?"),
    "02.2": Exercise("02", "Add a hidden layer to the sentence heads: does it help at this size?"),
    "02.3": Exercise("02", "Save the model, load it back: how far apart are the logits?", _save_load_gap),
    "03.1": Exercise("03", "Untick only `layer_5` and train: which parts changed?", _changed_parts, ("report",)),
    "03.2": Exercise("03", "Rerun §8 with another seed: which verdicts move?"),
    "03.3": Exercise("03", "Add sentiment back at a small loss weight: what happens to the drift?"),
    "04.1": Exercise("04", "At ξ = 0.65, how many times lower is the embeddings' rate than the top layer's?", _decay_ratio, ("model",)),
    "04.2": Exercise("04", "Add the steep decay and the too-high rate to the schemes: which layers forget most?"),
    "04.3": Exercise("04", "Raise the topic head's rate instead of NER's: does topic gain at the others' expense?"),
    "05.1": Exercise("05", "Record the gradient monitor every 5 steps: how much of the picture survives?"),
    "05.2": Exercise("05", "Give NER a loss weight of 3: does its share of the encoder's gradient grow?"),
    "05.3": Exercise("05", "Which task pair conflicts most?", _conflicting_pair, ("conflict",)),
}


def check(exercise: str, answer, **given) -> Feedback:
    """Right, close or wrong, and why. `given` is what the exercise's check reads (its `needs`: the model, the run's
    report, the search), so the reference answer is computed from what you ran, at your size."""
    if exercise not in EXERCISES:
        raise ValueError(f"no exercise {exercise!r}: the exercises are {', '.join(EXERCISES)}")
    ex = EXERCISES[exercise]
    if ex.checker is None:
        raise ValueError(f"exercise {exercise} has no single answer to check: compare yours with the solution in {ex.solution}")
    return ex.checker(answer, **given)


def exercises_table(notebook: str | None = None) -> pd.DataFrame:
    """Every exercise (or one notebook's): its question, whether check() takes it and what it needs, its solution."""
    rows = [{"exercise": k, "question": e.question, "check": "check(…" + "".join(f", {n}=…" for n in e.needs) + ")" if e.checker else "",
             "solution": e.solution} for k, e in EXERCISES.items() if notebook in (None, e.notebook)]
    return pd.DataFrame(rows).set_index("exercise")
