"""The nearest-neighbour widget and the probes behind notebook 01, driven without a browser."""

import pytest
import torch

import mtst
from mtst.widgets import NeighbourSearch, neighbour_widget


@pytest.fixture(scope="module")
def search(encoder):
    d = mtst.load_task("sentiment", "train", "ci")
    return NeighbourSearch(encoder, d.texts[:64], d.labels[:64], d.label_names)


def test_query_finds_the_sentence_itself_first(search):
    table = search.query(search.texts[5], "mean", k=3)
    assert table.sentence[0] == search.texts[5] and table.cosine[0] == pytest.approx(1.0, abs=1e-4)
    assert list(table.columns) == ["cosine", "sentence", "label"]
    assert table.cosine.is_monotonic_decreasing


def test_widget_reacts_to_text_and_pooling(search):
    w = neighbour_widget(search)
    assert w.model is search and "type a sentence" in w.output.value
    w.text.value = search.texts[7]
    first = w.output.value
    assert "<table" in first and search.texts[7][:30].replace("'", "&#x27;") in first
    w.pooling.value = "max"
    assert set(search._cache) == {"mean", "cls", "max"}  # one corpus pass pooled every mode at the first query
    assert search.encoder.pooling == "mean"  # switching the widget does not change the encoder
    assert w.output.value != first  # the cosines differ under max pooling


def test_an_unknown_pooling_is_refused_and_caches_nothing(search):
    before = dict(search._cache)
    with pytest.raises(ValueError, match="valid modes: mean, cls, max"):
        search.query("a fine film", "sum")
    assert search._cache.keys() == before.keys()


def test_empty_corpus_is_refused(encoder):
    with pytest.raises(ValueError, match="corpus is empty"):
        NeighbourSearch(encoder, [])


def test_pretrained_clusters_better_than_random(encoder):
    d = mtst.load_task("sentiment", "test", "ci")
    pre = mtst.knn_accuracy(encoder.encode(d.texts[:160]), d.labels[:160])
    rnd = mtst.SentenceEncoder.random_init(like=encoder, seed=0)
    ran = mtst.knn_accuracy(rnd.encode(d.texts[:160]), d.labels[:160])
    assert pre > ran + 0.05


def test_knn_accuracy_on_separable_points():
    x = torch.cat([torch.randn(20, 4) + 10, torch.randn(20, 4) - 10])
    assert mtst.knn_accuracy(x, [0] * 20 + [1] * 20) == 1.0
    with pytest.raises(ValueError, match=r"k \(neighbours\) must be an int from 1 up, got 0"):
        mtst.knn_accuracy(x, [0] * 20 + [1] * 20, k=0)


def test_plots_return_axes_and_the_measured_score(encoder):
    import matplotlib

    matplotlib.use("Agg")
    d = mtst.load_task("sentiment", "test", "ci")
    e = encoder.encode(d.texts[:60])
    ax = mtst.plot_embedding_space(e, d.labels[:60], d.label_names, method="pca")
    assert ax.knn_accuracy == pytest.approx(mtst.knn_accuracy(e, d.labels[:60]))
    assert "5-NN accuracy" in ax.get_title()
    with pytest.raises(ValueError, match="valid options: umap, pca"):
        mtst.project_2d(e, "tsne")
    assert mtst.plot_similarity_heatmap(e[:3], d.texts[:3]) is not None
