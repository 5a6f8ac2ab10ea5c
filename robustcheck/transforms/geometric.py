"""Rotation, translation and scaling as one affine resampling (bilinear), vectorised in torch.

Conventions (the same as Pillow's `Image.rotate` / `Image.transform(AFFINE)`): pixel centres
at integer coordinates, the image centre at ((W−1)/2, (H−1)/2), y pointing down; a positive
angle turns the image counter-clockwise as displayed; a positive dx / dy moves the content
right / down; a scale above 1 enlarges it about the centre. Consecutive geometric steps of a
composition are merged into one matrix, so the image is resampled once. Points that come
from outside the image take the low end of the input box (black for usual images); a source
point between the image and the outside blends the two, as scipy's `grid-constant` mode does.
Source coordinates are computed in float64, so magnitude 0 returns the input exactly.
"""

from __future__ import annotations

import numpy as np
import torch


def rotation(angle_deg: np.ndarray) -> np.ndarray:
    """Forward maps (N, 3, 3) turning by `angle_deg` counter-clockwise (as displayed, y down)."""
    a = np.deg2rad(np.asarray(angle_deg, dtype=np.float64))
    m = np.zeros((len(a), 3, 3))
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = np.cos(a), np.sin(a), -np.sin(a), np.cos(a)
    m[:, 2, 2] = 1.0
    return m


def translation(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Forward maps (N, 3, 3) moving the content by (dx, dy) pixels."""
    m = np.tile(np.eye(3), (len(dx), 1, 1))
    m[:, 0, 2], m[:, 1, 2] = dx, dy
    return m


def scaling(factor: np.ndarray) -> np.ndarray:
    """Forward maps (N, 3, 3) scaling by `factor` about the image centre."""
    f = np.asarray(factor, dtype=np.float64)
    m = np.tile(np.eye(3), (len(f), 1, 1))
    m[:, 0, 0], m[:, 1, 1] = f, f
    return m


def warp(images: torch.Tensor, forward: np.ndarray, fill: float) -> torch.Tensor:
    """Resample NCHW `images` under the per-image forward maps (N, 3, 3), centred coordinates."""
    n, _, h, w = images.shape
    inverse = np.linalg.inv(forward)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    ys, xs = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    out = np.stack([xs.ravel(), ys.ravel(), np.ones(h * w)])          # (3, H·W) output points
    src = inverse @ out                                                # (N, 3, H·W) source points
    return bilinear(images, torch.from_numpy(src[:, 0] + cx), torch.from_numpy(src[:, 1] + cy), fill)


def bilinear(images: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor, fill: float) -> torch.Tensor:
    """Bilinear samples of NCHW `images` at pixel coordinates (sx, sy) of shape (N, H·W);
    neighbours outside the image count as `fill`."""
    n, c, h, w = images.shape
    x0, y0 = torch.floor(sx), torch.floor(sy)
    wx, wy = sx - x0, sy - y0
    # The four neighbours of every point, stacked on a new axis: (N, 4, P).
    xi = torch.stack([x0, x0 + 1, x0, x0 + 1], dim=1).long()
    yi = torch.stack([y0, y0, y0 + 1, y0 + 1], dim=1).long()
    weight = torch.stack([(1 - wx) * (1 - wy), wx * (1 - wy), (1 - wx) * wy, wx * wy], dim=1).to(images.dtype)
    inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    index = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).reshape(n, 1, -1).expand(n, c, -1)
    values = images.reshape(n, c, h * w).gather(2, index).reshape(n, c, 4, -1)
    values = torch.where(inside.unsqueeze(1), values, torch.tensor(fill, dtype=images.dtype))
    return (weight.unsqueeze(1) * values).sum(dim=2).reshape(n, c, h, w)
