"""Judging transformed images: onnxruntime's labels and margins over every direction at once.

`TransformProbe.check(x, y, k, offset)` transforms one sample in every direction of grid
level k (one batch, one oracle call), and says whether any direction flips the label, which
one is the worst (lowest margin) and what the model answered. It counts the images it sends,
the "model calls" the benchmarks compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robustcheck.metrics import margin
from robustcheck.transforms.families import Params
from robustcheck.transforms.image_batch import ImageFormat
from robustcheck.transforms.spec import TransformSpec


@dataclass(frozen=True)
class Verdict:
    """The worst direction at one grid level for one sample."""

    failing: bool
    params: Params
    margin: float
    predicted: int
    image: np.ndarray


class TransformProbe:
    """Applies a spec to samples of a model and asks the oracle; counts the images judged."""

    def __init__(self, model: object, spec: TransformSpec) -> None:
        self.model = model
        self.spec = spec
        self.format = ImageFormat.of(model)
        self.calls = 0
        #: `check` calls: the Hypothesis examples run, when a search drives the probe.
        self.checks = 0

    def logits(self, images: np.ndarray) -> np.ndarray:
        self.calls += len(images)
        return self.model.oracle_logits(images)  # type: ignore[attr-defined]

    def transform(self, x: np.ndarray, params: list[Params]) -> np.ndarray:
        """The images `x` (model layout) under `params` (one set per image)."""
        return self.spec.apply(x, params, self.format)

    def judge(self, x: np.ndarray, y: np.ndarray, params: list[Params]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each image `x[i]` (model layout) under `params[i]`: the transformed images, the
        oracle's labels and the margins (< 0 means flipped, up to argmax ties)."""
        images = self.transform(x, params)
        z = self.logits(images)
        m = margin(torch.from_numpy(z), torch.from_numpy(np.asarray(y, dtype=np.int64))).numpy()
        return images, z.argmax(axis=1), m

    def check(self, x: np.ndarray, y: int, k: int, offset: int = 0) -> Verdict:
        """Sample `x` (one image, no batch axis) at grid level `k` in every direction."""
        self.checks += 1
        params = self.spec.directions(k, offset)
        images, predicted, margins = self.judge(np.repeat(x[None], len(params), axis=0),
                                                np.full(len(params), int(y)), params)
        wrong = predicted != y
        # The worst direction: among the flipped ones if any, else the closest call.
        pool = np.flatnonzero(wrong) if wrong.any() else np.arange(len(params))
        j = int(pool[np.argmin(margins[pool])])
        return Verdict(bool(wrong.any()), params[j], float(margins[j]), int(predicted[j]), images[j])
