"""Shapes-10: a procedurally generated CIFAR-size dataset (32×32 RGB, 10 classes), fully seeded.

There is no CIFAR download on this machine, so the demo trains on images it can generate:
each image is one of ten shapes or textures (disk, square, triangle, plus, ring, diamond,
X, horizontal stripes, vertical stripes, checkerboard) in a random colour on a random
contrasting background colour gradient, at a random position and size, blurred a little and
with Gaussian pixel noise. Classes differ by shape only, never by colour, so a network has to
look at spatial structure, as on CIFAR.
"""

from __future__ import annotations

import numpy as np

CLASSES = ("disk", "square", "triangle", "plus", "ring", "diamond", "x", "h-stripes", "v-stripes", "checker")
SIZE = 32


def _mask(kind: int, rng: np.random.Generator) -> np.ndarray:
    """A soft (anti-aliased) foreground mask of class `kind`, values in [0, 1]."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5
    cy, cx = rng.uniform(11, 21, size=2)
    r = rng.uniform(6.5, 10.5)
    dy, dx = yy - cy, xx - cx
    width = rng.uniform(1.8, 3.2)
    period = rng.uniform(5.0, 8.0)
    phase = rng.uniform(0, period)
    name = CLASSES[kind]
    if name == "disk":
        d = np.hypot(dy, dx) - r
    elif name == "square":
        d = np.maximum(abs(dy), abs(dx)) - r * 0.85
    elif name == "triangle":  # apex up: above the base and between the two slanted edges
        d = np.maximum(dy - 0.8 * r, (1.7 * abs(dx) - (dy + 0.9 * r)) / np.hypot(1.0, 1.7))
    elif name == "plus":
        d = np.minimum(np.maximum(abs(dy) - width, abs(dx) - r), np.maximum(abs(dx) - width, abs(dy) - r))
    elif name == "ring":
        d = abs(np.hypot(dy, dx) - r * 0.8) - width
    elif name == "diamond":
        d = (abs(dy) + abs(dx)) / np.sqrt(2) - r * 0.75
    elif name == "x":
        u, v = (dy + dx) / np.sqrt(2), (dy - dx) / np.sqrt(2)
        d = np.minimum(np.maximum(abs(u) - width, abs(v) - r), np.maximum(abs(v) - width, abs(u) - r))
    elif name == "h-stripes":
        d = np.maximum(abs(((yy + phase) % period) - period / 2) - period / 4, np.hypot(dy, dx) - r * 1.3)
    elif name == "v-stripes":
        d = np.maximum(abs(((xx + phase) % period) - period / 2) - period / 4, np.hypot(dy, dx) - r * 1.3)
    else:  # checker
        cells = (np.floor((yy + phase) / (period * 0.7)) + np.floor((xx + phase) / (period * 0.7))) % 2
        d = np.maximum((0.5 - cells) * 2, np.maximum(abs(dy), abs(dx)) - r)
    return np.clip(0.5 - d, 0.0, 1.0)


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Foreground, and two background colours far enough from it to keep the shape visible."""
    while True:
        fg = rng.uniform(0, 1, 3)
        bg1, bg2 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        if min(np.abs(fg - bg1).sum(), np.abs(fg - bg2).sum()) > 0.6:
            return fg, bg1, bg2


def image(kind: int, rng: np.random.Generator) -> np.ndarray:
    """One (32, 32, 3) uint8 image of class `kind`."""
    fg, bg1, bg2 = _colours(rng)
    t = np.linspace(0, 1, SIZE)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.clip(0.5 + (np.cos(angle) * (t[None, :] - 0.5) + np.sin(angle) * (t[:, None] - 0.5)), 0, 1)
    background = bg1 * (1 - ramp[..., None]) + bg2 * ramp[..., None]
    mask = _mask(kind, rng)[..., None]
    img = background * (1 - mask) + fg * mask
    # a light 3×3 box blur, then sensor-like noise
    padded = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    blur = sum(padded[i:i + SIZE, j:j + SIZE] for i in range(3) for j in range(3)) / 9.0
    img = 0.6 * img + 0.4 * blur + rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def make(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` images (N, 32, 32, 3) uint8 and labels (N,) int64, classes balanced and shuffled."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % len(CLASSES)
    rng.shuffle(labels)
    images = np.stack([image(int(k), rng) for k in labels])
    return images, labels.astype(np.int64)
