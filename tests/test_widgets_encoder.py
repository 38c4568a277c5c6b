"""The nearest-neighbour widget and the probes behind notebook 01, driven without a browser."""

import numpy as np
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
    with pytest.raises(ValueError, match="valid options: mean, cls, max"):
        search.query("a fine film", "sum")
    assert search._cache.keys() == before.keys()


def test_empty_corpus_is_refused(encoder):
    with pytest.raises(ValueError, match="corpus is empty"):
        NeighbourSearch(encoder, [])
    with pytest.raises(ValueError, match="2 sentences but 1 labels"):  # labels would have named the wrong sentences
        NeighbourSearch(encoder, ["a film", "a post"], [0])


def test_query_needs_a_count_of_neighbours(search):
    with pytest.raises(ValueError, match=r"k \(neighbours\) must be an int from 1 up, got 0"):  # was an empty table
        search.query("a great film", k=0)
    assert len(search.query("a great film", k=100)) == 64  # more than the corpus: all of it, nearest first
    with pytest.raises(ValueError, match=r"k \(neighbours\) must be an int from 1 up, got 0"):
        neighbour_widget(search, k=0)  # refused when built, with an empty box


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
    # k above a training fold's size made scikit-learn score that fold NaN, and the mean came back NaN
    with pytest.raises(ValueError, match=r"k=5 neighbours need 5 training examples in each of 3 folds, but 6 examples leave 4: "
                                         r"pass k ≤ 4 or at least 8 examples"):
        mtst.knn_accuracy(x[17:23], [0] * 3 + [1] * 3)
    assert mtst.knn_accuracy(x[16:24], [0] * 4 + [1] * 4) == 1.0  # the 8 it asks for are enough
    assert 0 <= mtst.knn_accuracy(x[17:23], [0] * 3 + [1] * 3, k=4) <= 1  # k = the fold's size is allowed (NaN fails this)
    with pytest.raises(ValueError, match="40 embeddings but 39 labels"):
        mtst.knn_accuracy(x, [0] * 20 + [1] * 19)


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
    with pytest.raises(ValueError, match="at least 4 embeddings, got 3"):  # was a scipy TypeError from UMAP
        mtst.project_2d(e[:3])
    ax = mtst.plot_similarity_heatmap(e[:3], d.texts[:3])
    unit = torch.nn.functional.normalize(e[:3], dim=-1)
    assert np.allclose(ax.images[0].get_array(), (unit @ unit.T).numpy(), atol=1e-6)  # the picture is the cosine matrix
    assert [t.get_text() for t in ax.texts][:2] == ["1.00", f"{float(unit[0] @ unit[1]):.2f}"]
    with pytest.raises(ValueError, match="3 embeddings but 2 sentences"):  # was drawn with the labels on the wrong rows
        mtst.plot_similarity_heatmap(e[:3], d.texts[:2])


def test_confusion_plot_rows_are_true_labels_normalised():
    import matplotlib

    matplotlib.use("Agg")
    ax = mtst.plot_confusion([0, 0, 0, 1, 2, 2], [0, 0, 1, 1, 2, 0], ["a", "b", "c"])
    assert np.allclose(ax.images[0].get_array(), [[2 / 3, 1 / 3, 0], [0, 1, 0], [1 / 2, 0, 1 / 2]])
    counts = mtst.plot_confusion([0, 0, 1], [0, 1, 1], ["a", "b"], normalize=False)
    assert counts.images[0].get_array().tolist() == [[1, 1], [0, 1]]
    with pytest.raises(ValueError, match=r"labels \[3\] have no name: label_names has 2 \(labels 0 to 1\)"):
        mtst.plot_confusion([0, 3], [0, 1], ["a", "b"])  # was drawn with label 3 left out
