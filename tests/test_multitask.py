"""The multi-task model: heads, alignment, one encoder pass, training, checkpoints and bad input."""

import json
import warnings

import pandas as pd
import pytest
import torch

import mtst
from mtst.batches import check_task_data, make_batch
from mtst.model import IGNORE_INDEX, word_predictions
from mtst.sampling import sampling_shares

warnings.filterwarnings("ignore", message=".*truncated")


@pytest.fixture(scope="module")
def data():
    return {t: mtst.load_task(t, "train", "ci") for t in mtst.TASKS}


@pytest.fixture()
def model(encoder, data):
    import copy

    enc = copy.deepcopy(encoder)
    enc.max_length = 64
    return mtst.MultiTaskModel.for_tasks(enc, data, seed=0)


def test_shapes_per_head(model):
    batch = model.tokenize(["Apple opened a store in London", "a fine film"])
    out = model(batch)
    width = batch["input_ids"].shape[1]
    assert out["sentiment"].shape == (2, 2) and out["topic"].shape == (2, 20)
    assert out["ner"].shape == (2, width, 21)
    assert set(model(["x"], tasks=["topic"])) == {"topic"}


def test_label_alignment_on_multi_piece_words(model):
    words = ["Kristiansand", "is", "lovely"]
    batch = model.tokenize([" ".join(words)])
    pieces = model.encoder.tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]" and pieces[2].startswith("##")  # a multi-piece word
    aligned = mtst.align_labels(batch["word_ids"][0], [5, 0, 0])
    n_first = len(pieces) - 2 - 2  # pieces of the first word
    assert aligned == [IGNORE_INDEX, 5] + [IGNORE_INDEX] * (n_first - 1) + [0, 0, IGNORE_INDEX]
    assert word_predictions(list(range(len(pieces))), batch["word_ids"][0]) == [1, 1 + n_first, 2 + n_first]


def test_one_encoder_call_per_forward(model):
    calls = []
    handle = model.encoder.model.register_forward_hook(lambda *a: calls.append(1))
    model(["one sentence", "and another"])
    handle.remove()
    assert len(calls) == 1


def test_predict_returns_names_and_spans(model):
    out = model.predict(["Barack Obama visited Paris today", "a dull film"])
    assert out[0]["sentiment"] in ("rotten", "fresh") and out[0]["topic"] in model.label_names["topic"]
    assert isinstance(out[0]["ner"], list)
    assert mtst.bio_spans(["Barack", "Obama", "in", "New", "York"], ["B-person", "I-person", "O", "B-geo-loc", "I-geo-loc"]) == [
        ("Barack Obama", "person"),
        ("New York", "geo-loc"),
    ]


def test_save_and_load_give_identical_logits(model, tmp_path):
    model.eval()
    path = model.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in path.iterdir()) == ["encoder", "heads.safetensors", "mtst_config.json"]
    assert not list(tmp_path.glob(".ckpt.*"))
    cfg = json.loads((path / "mtst_config.json").read_text())
    assert cfg["label_names"]["sentiment"] == ["rotten", "fresh"]
    loaded = mtst.MultiTaskModel.from_pretrained(path).eval()
    x = ["Apple opened a store in London", "the engine makes a strange noise"]
    a, b = model(x), loaded(x)
    for t in a:
        assert torch.equal(a[t], b[t])
    # The encoder part is a sentence-transformers folder.
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(path / "encoder"), device="cpu")
    assert torch.allclose(torch.from_numpy(st.encode(x)), model.encoder.encode(x), atol=1e-5)


def test_checkpoint_errors_name_the_file(model, tmp_path):
    path = model.save_pretrained(tmp_path / "ckpt")
    (path / "heads.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="heads.safetensors"):
        mtst.MultiTaskModel.from_pretrained(path)
    (path / "heads.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="heads.safetensors is missing"):
        mtst.MultiTaskModel.from_pretrained(path)


def test_samplers():
    batches = {"a": 100, "b": 25, "c": 1}
    assert mtst.task_schedule(batches, 6, "round_robin") == ["a", "b", "c", "a", "b", "c"]
    prop = pd.Series(mtst.task_schedule(batches, 20000, "proportional", seed=1)).value_counts(normalize=True)
    assert abs(prop["a"] - 100 / 126) < 0.02
    shares = sampling_shares(batches, "temperature", 2.0)
    temp = pd.Series(mtst.task_schedule(batches, 20000, "temperature", 2.0, seed=1)).value_counts(normalize=True)
    assert abs(temp["c"] - shares["c"]) < 0.01 and shares["c"] > 1 / 126  # T > 1 lifts the small task
    assert mtst.task_schedule(batches, 50, "proportional", seed=3) == mtst.task_schedule(batches, 50, "proportional", seed=3)
    with pytest.raises(ValueError, match="valid samplers: round_robin, proportional, temperature"):
        mtst.task_schedule(batches, 5, "uniform")


def test_task_epochs_give_a_task_its_own_number_of_passes(model, data):
    small = {"sentiment": data["sentiment"].subset(64), "ner": data["ner"].subset(32)}  # 8 and 4 batches of 8
    cfg = mtst.TrainConfig(epochs=2.0, task_epochs={"ner": 6.0}, batch_size=8, progress=False, device="cpu")
    assert mtst.sampling.task_passes(small, cfg) == {"sentiment": 16.0, "ner": 24.0}
    trainer = mtst.Trainer(model, small, cfg)
    assert trainer.total_steps == 40
    counts = pd.Series(trainer.schedule).value_counts()
    assert counts["ner"] > counts["sentiment"]  # 6 passes over 4 batches outweigh 2 passes over 8
    plain = mtst.Trainer(model, small, mtst.TrainConfig(epochs=2.0, batch_size=8, progress=False, device="cpu"))
    assert plain.total_steps == 24 and pd.Series(plain.schedule).value_counts()["sentiment"] > 12
    with pytest.raises(KeyError, match=r"task_epochs names tasks that are not trained: \['topic'\]"):
        mtst.Trainer(model, small, mtst.TrainConfig(task_epochs={"topic": 2.0}, progress=False, device="cpu"))
    with pytest.raises(ValueError, match="task_epochs must be > 0"):
        mtst.Trainer(model, small, mtst.TrainConfig(task_epochs={"ner": 0}, progress=False, device="cpu"))
    with pytest.raises(ValueError, match="drop one of them"):
        mtst.Trainer(model, small, mtst.TrainConfig(task_epochs={"ner": 2.0}, weighting="pcgrad", progress=False, device="cpu"))


def test_ner_batch_labels_are_aligned(model, data):
    batch = make_batch(model, data["ner"], [0, 1, 2])
    assert batch["labels"].shape == batch["input_ids"].shape
    for r in range(3):
        kept = [y for y in batch["labels"][r].tolist() if y != IGNORE_INDEX]
        assert kept == data["ner"].labels[r][: len(kept)]


def _tiny(data, n=16):
    return {t: d.subset(n) for t, d in data.items()}


def test_same_seed_gives_identical_metrics(encoder, data):
    import copy

    val = {t: mtst.load_task(t, "validation", "ci").subset(32) for t in mtst.TASKS}
    runs = []
    for _ in range(2):
        enc = copy.deepcopy(encoder)
        enc.max_length = 32
        m = mtst.MultiTaskModel.for_tasks(enc, data, seed=0)
        r = mtst.train(m, _tiny(data), mtst.TrainConfig(steps=4, batch_size=8, progress=False, device="cpu", seed=0), validation=val)
        runs.append(r.history)
    pd.testing.assert_frame_equal(runs[0], runs[1])
    assert set(runs[0].phase) == {"train", "validation"}


def test_training_changes_weights_and_keeps_the_best_state(model, data):
    val = {"sentiment": mtst.load_task("sentiment", "validation", "ci").subset(32)}
    before = model.heads["sentiment"].net[-1].weight.detach().clone()
    enc_before = model.encoder.layers[5].output.dense.weight.detach().clone()
    seen = []

    class Spy(mtst.Callback):
        def on_after_backward(self, trainer, step, task):
            seen.append((step, task, trainer.model.heads[task].net[-1].weight.grad is not None))

    r = mtst.train(model, {"sentiment": data["sentiment"].subset(32)}, mtst.TrainConfig(steps=4, batch_size=8, eval_every=2, progress=False, device="cpu"),
                   validation=val, callbacks=[Spy()])
    assert seen == [(1, "sentiment", True), (2, "sentiment", True), (3, "sentiment", True), (4, "sentiment", True)]
    assert not torch.equal(before, model.heads["sentiment"].net[-1].weight)
    assert not torch.equal(enc_before, model.encoder.layers[5].output.dense.weight)
    assert r.best_step in (2, 4) and r.steps == 4
    assert list(r.curves("train").columns[:5]) == ["step", "task", "phase", "loss", "lr"]


def test_default_validation_runs_four_times_evenly_with_the_last_at_the_end(model, data):
    seen = []

    class Spy(mtst.Callback):
        def on_evaluate(self, trainer, step, metrics):
            seen.append(step)

    val = {"sentiment": mtst.load_task("sentiment", "validation", "ci").subset(8)}
    for steps in (9, 5):  # 9 // 4 = 2 would validate at 2, 4, 6, 8 and again at 9
        seen.clear()
        mtst.train(model, {"sentiment": data["sentiment"].subset(16)}, mtst.TrainConfig(steps=steps, batch_size=4, progress=False, device="cpu"),
                   validation=val, callbacks=[Spy()])
        assert len(seen) == 4 and seen[-1] == steps and min(b - a for a, b in zip(seen, seen[1:])) >= steps // 4, seen


def test_bad_input(model, data):
    bad = data["sentiment"].subset(8)
    bad.labels = list(bad.labels)
    bad.labels[3] = 7
    with pytest.raises(ValueError, match="'sentiment': label 7 is out of range"):
        check_task_data("sentiment", bad, 2)
    ner = data["ner"].subset(4)
    ner.labels = [list(s) for s in ner.labels]
    ner.labels[2] = ner.labels[2][:-1]
    with pytest.raises(ValueError, match="'ner' example 2"):
        check_task_data("ner", ner, 21)
    with pytest.raises(KeyError, match="the model's tasks are: sentiment, topic, ner"):
        model(["x"], tasks=["pos"])
    empty = data["topic"].subset(4)
    empty.texts, empty.labels = [], []
    with pytest.raises(ValueError, match="'topic' dataset is empty"):
        mtst.train(model, {"topic": empty}, mtst.TrainConfig(steps=1, progress=False))
    with pytest.raises(ValueError, match="unknown precision 'fp16'; valid options: auto, fp32, bf16"):
        mtst.evaluate(model, data["sentiment"].subset(4), "sentiment", precision="fp16")
    with pytest.raises(ValueError, match="batch_size must be an int from 1 up, got 0"):
        mtst.evaluate(model, data["sentiment"].subset(4), "sentiment", batch_size=0)
    with pytest.raises(KeyError, match="no head for task 'pos'; the model's tasks are: sentiment, topic, ner"):
        mtst.evaluate(model, data["sentiment"].subset(4), "pos")
    assert model.predict([]) == []


@pytest.mark.parametrize("setting, error, message", [
    ({"batch_size": 0}, ValueError, "batch_size must be an int from 1 up, got 0"),
    ({"steps": 0}, ValueError, r"steps \(or None: `epochs` passes over the data\) must be an int from 1 up, got 0"),  # 0 once meant a full epoch
    ({"epochs": 0}, ValueError, "epochs must be > 0, got 0"),
    ({"warmup_ratio": 2.0}, ValueError, r"warmup_ratio is a share of the steps, in \[0, 1\]; got 2.0"),
    ({"weight_decay": -0.01}, ValueError, "weight_decay must be ≥ 0"),
    ({"precision": "fp16"}, ValueError, "unknown precision 'fp16'; valid options: auto, fp32, bf16"),
    ({"eval_every": 0}, ValueError, r"eval_every \(or None: validate `validations` times a run\) must be an int from 1 up, got 0"),
    ({"validations": 0}, ValueError, r"validations \(times a run validates when eval_every is None\) must be an int from 1 up, got 0"),
    ({"max_grad_norm": 0.0}, ValueError, "max_grad_norm must be > 0, or None to turn clipping off"),
    ({"sampler": "random"}, ValueError, "unknown sampler 'random'; valid samplers: round_robin, proportional, temperature"),
    ({"device": "tpu"}, ValueError, r"unknown device 'tpu'; valid options: cpu, cuda, cuda:N, mps, or None \(CUDA when present\)"),
    ({"device": 0}, TypeError, r"device must be a str such as 'cpu' or 'cuda:0', a torch.device, or None \(CUDA when present\); got 0"),
    ({"loss_weights": {"pos": 2.0}}, KeyError, r"loss_weights names tasks that are not trained: \['pos'\]"),
    ({"loss_weights": {"ner": -1.0}}, ValueError, r"loss_weights must be finite and ≥ 0 \(0 turns a task's loss off\), got \{'ner': -1.0\}"),
])
def test_bad_config_is_refused_before_anything_changes(model, data, setting, error, message):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(error, match=message):
        mtst.Trainer(model, data, mtst.TrainConfig(**{"steps": 2, "progress": False, "device": "cpu", **setting}))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_a_device_this_machine_lacks_is_refused_with_what_to_pass():
    """torch would take 'cuda:99' and fail at the first .to(); 'tpu' and 'gpu' got torch's list of 20 backend names."""
    from mtst.checks import check_device

    assert check_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu") and check_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"device 'cuda:99' asked for, but this torch \(.+\) sees \d+ CUDA GPU\(s\): pass "):
        check_device("cuda:99")
    with pytest.raises(ValueError, match="unknown device 'gpu'; valid options: cpu, cuda, cuda:N, mps"):
        check_device("gpu")
    with pytest.raises(ValueError, match="unknown device 'meta'"):  # torch knows it, mtst cannot train there
        check_device("meta")


def test_nan_loss_stops_with_step_and_task(model, data):
    class Poison(mtst.Callback):
        def on_step_end(self, trainer, step, task, loss):
            if step == 3:  # after the validation at step 2
                with torch.no_grad():
                    trainer.model.heads["sentiment"].net[-1].weight.fill_(float("nan"))

    val = {"sentiment": mtst.load_task("sentiment", "validation", "ci").subset(16)}
    with pytest.raises(mtst.NonFiniteLossError, match=r"at step 4 on task 'sentiment'.*best state \(step 2\) was restored") as e:
        mtst.train(model, {"sentiment": data["sentiment"].subset(32)}, mtst.TrainConfig(steps=5, batch_size=8, eval_every=2, progress=False, device="cpu"),
                   validation=val, callbacks=[Poison()])
    assert torch.isfinite(model.heads["sentiment"].net[-1].weight).all()
    assert e.value.result.steps == 4


def test_predict_widget_and_architecture_plot(model):
    import matplotlib

    matplotlib.use("Agg")
    w = mtst.widgets.predict_widget(model)
    assert w.model is model and "type a sentence" in w.output.value
    w.text.value = "Barack Obama visited Paris"
    assert "<b>sentiment</b>:" in w.output.value and "<b>ner</b>:" in w.output.value
    assert any(f": {name}" in w.output.value for name in model.label_names["topic"])
    ax = mtst.plot_architecture(model)
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "head:ner (token)" in texts and "layer 5" in texts
