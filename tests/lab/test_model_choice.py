import numpy as np
import pytest
import torch

from mtst.lab import model_choice


@pytest.mark.parametrize("classes", [2, 4])
def test_probe_folded_into_the_head_predicts_as_the_probe_does(classes):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=g) * torch.linspace(0.1, 5, 8) + 3  # scales and offsets the fold must undo
    y = (x[:, 1] > x[:, 1].median()).long() if classes == 2 else torch.randint(0, classes, (300,), generator=g)
    head = torch.nn.Linear(8, classes + 1)  # one label never seen in training
    model_choice._fold_probe(head, x, y, seed=0)
    scaler = StandardScaler().fit(x.numpy())
    ref = LogisticRegression(max_iter=2000, random_state=0).fit(scaler.transform(x.numpy()), y.numpy())
    with torch.no_grad():
        ours = head(x).argmax(-1).numpy()
    agree = (ours == ref.predict(scaler.transform(x.numpy()))).mean()
    assert agree > 0.99 and classes not in set(ours)  # the unseen label is never predicted
    assert np.isfinite(head.weight.detach().numpy()).all()
