"""robustcheck.metrics: the margin's sign convention, DLR, distances and the robust-accuracy denominator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from robustcheck.metrics import atleast_kd, channel_axis, distances, dlr, margin, robust_accuracy, runner_up

Z = torch.tensor([[3.0, 1.0, 2.0], [0.5, 2.5, 1.0], [1.0, 1.0, 0.0]])


def test_margin_is_negative_exactly_when_adversarial() -> None:
    y = torch.tensor([0, 0, 0])
    # z_y − max_{j≠y} z_j: 3 − 2, 0.5 − 2.5, and a tie (argmax picks class 0 first).
    assert margin(Z, y).tolist() == [1.0, -2.0, 0.0]
    t = torch.tensor([2, 1, 1])
    # Targeted: max_{j≠t} z_j − z_t: 3 − 2, 1 − 2.5, 1 − 1 (a tie with class 0).
    assert margin(Z, y, t).tolist() == [1.0, -1.5, 0.0]
    assert runner_up(Z, y).tolist() == [2, 1, 1]


@settings(max_examples=200, deadline=None)
@given(z=arrays(np.float64, (6, 4), elements=st.floats(-50, 50)), y=arrays(np.int64, 6, elements=st.integers(0, 3)),
       t=arrays(np.int64, 6, elements=st.integers(0, 3)))
def test_margin_sign_agrees_with_argmax(z: np.ndarray, y: np.ndarray, t: np.ndarray) -> None:
    zt, yt, tt = torch.from_numpy(z), torch.from_numpy(y), torch.from_numpy(t)
    pred = z.argmax(axis=1)
    m, mt = margin(zt, yt).numpy(), margin(zt, yt, tt).numpy()
    assert ((m < 0) <= (pred != y)).all() and ((m > 0) <= (pred == y)).all()
    assert ((mt < 0) <= (pred == t)).all() and ((mt > 0) <= (pred != t)).all()


def test_dlr_is_the_scale_free_negative_margin() -> None:
    z = torch.tensor([[4.0, 1.0, 3.0, 0.0], [1.0, 5.0, 2.0, -1.0]])
    y = torch.tensor([0, 0])
    # Untargeted: −(z_y − max_{j≠y} z_j) / (z_π1 − z_π3).
    np.testing.assert_allclose(dlr(z, y).numpy(), [-(4 - 3) / (4 - 1), -(1 - 5) / (5 - 1)])
    t = torch.tensor([2, 2])
    # Targeted: (z_t − max_{j≠t} z_j) / (z_π1 − (z_π3 + z_π4)/2).
    np.testing.assert_allclose(dlr(z, y, t).numpy(), [(3 - 4) / (4 - 0.5), (2 - 5) / (5 - 0)])
    for targets in (None, t):
        np.testing.assert_allclose(dlr(7 * z - 3, y, targets).numpy(), dlr(z, y, targets).numpy(), rtol=1e-6)


def test_distances_per_sample() -> None:
    x = np.zeros((2, 1, 2, 2), np.float32)
    x_adv = x.copy()
    x_adv[0, 0, 0, 0], x_adv[0, 0, 1, 1] = 0.5, -0.25
    d = distances(x, x_adv)
    assert d["l0"].tolist() == [2.0, 0.0] and d["l1"].tolist() == [0.75, 0.0]
    assert d["l2"][0] == pytest.approx(np.sqrt(0.25 + 0.0625)) and d["linf"].tolist() == [0.5, 0.0]
    assert distances(torch.from_numpy(x), torch.from_numpy(x_adv))["l1"].tolist() == [0.75, 0.0]


def test_robust_accuracy_counts_every_evaluated_row() -> None:
    correct = np.array([True, True, True, False])
    broken = np.array([True, False, False, False])
    # Two of four rows are correct and unbroken; the misclassified row is not robust.
    assert robust_accuracy(correct, broken) == 0.5
    assert robust_accuracy(np.array([], bool), np.array([], bool)) == 0.0
    with pytest.raises(ValueError, match="shape"):
        robust_accuracy(correct, broken[:2])


def test_broadcasting_helpers() -> None:
    c = torch.tensor([1.0, 2.0])
    assert atleast_kd(c, 4).shape == (2, 1, 1, 1)
    assert (atleast_kd(c, 3) * torch.ones(2, 3, 5))[1].unique().tolist() == [2.0]
    assert (channel_axis("NCHW"), channel_axis("NHWC"), channel_axis(None)) == (1, 3, None)
