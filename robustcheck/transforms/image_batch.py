"""Image batches in the model's own layout and box, seen as NCHW float tensors by the transforms.

A transformation never changes what the model receives except the pixels: the same layout
(NCHW, NHWC, or rank-3 (N, H, W) single-channel batches), the same dtype and the same input
box (`[0, 1]`, 0–255, ...). Transforms work on an NCHW float64 tensor and every result is
clipped back into the box, so a transformed image is always a valid model input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robustcheck.errors import ConfigError
from robustcheck.metrics import channel_axis


@dataclass(frozen=True)
class ImageFormat:
    """How a model's inputs hold an image: layout (None for (N, H, W) batches) and input box."""

    layout: str | None
    box: tuple[float, float]

    @property
    def low(self) -> float:
        return self.box[0]

    @property
    def span(self) -> float:
        return self.box[1] - self.box[0]

    @classmethod
    def of(cls, model: object) -> ImageFormat:
        """The format of a `robustcheck.Model` (anything with an `input_spec`)."""
        spec = model.input_spec  # type: ignore[attr-defined]
        shape = spec.sample_shape
        if spec.layout is None and len(shape) != 2:
            raise ConfigError(f"{model.path.name}: transformations need image inputs (NCHW, NHWC or "  # type: ignore[attr-defined]
                              f"(N, H, W)); the input {spec.name!r} has shape {('N', *shape)}")
        return cls(spec.layout, tuple(spec.input_range))

    def to_nchw(self, x: np.ndarray) -> torch.Tensor:
        """A float64 NCHW tensor holding the batch `x` (model layout)."""
        t = torch.from_numpy(np.asarray(x, dtype=np.float64))
        if self.layout is None:
            if t.dim() != 3:
                raise ValueError(f"expected an (N, H, W) batch, got shape {tuple(t.shape)}")
            return t.unsqueeze(1)
        if t.dim() != 4:
            raise ValueError(f"expected a rank-4 {self.layout} batch, got shape {tuple(t.shape)}")
        return t.permute(0, 3, 1, 2) if channel_axis(self.layout) == 3 else t

    def from_nchw(self, t: torch.Tensor, dtype: np.dtype | str) -> np.ndarray:
        """The NCHW tensor `t`, clipped into the box, back in the model's layout and dtype."""
        t = t.clamp(self.box[0], self.box[1])
        if self.layout is None:
            t = t.squeeze(1)
        elif channel_axis(self.layout) == 3:
            t = t.permute(0, 2, 3, 1)
        return np.ascontiguousarray(t.numpy()).astype(dtype, copy=False)
