"""Pictures of counterexamples: original, amplified perturbation, adversarial.

Inputs arrive in the model's own layout and units (one sample, with or without a batch axis
of 1): NCHW / NHWC images, plain (H, W) images, or flat vectors (a perfect square is shown as
a square image, anything else as a strip of cells). Values are mapped from the model's input
range to 0-255; the perturbation is shown around mid-grey, amplified so its largest entry uses
the full scale. Small images are upscaled with nearest-neighbour so each pixel stays a crisp
square; large ones are shrunk to keep reports small.

Pillow and numpy are imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Displayed size (longest side, pixels) that small images are upscaled towards.
TARGET_SIDE = 112
#: Largest displayed side; bigger inputs are shrunk (keeps embedded reports bounded).
MAX_SIDE = 160


@dataclass(frozen=True)
class CounterexamplePictures:
    """PNG bytes of the three panels, and how much the perturbation was amplified."""

    original: bytes
    perturbation: bytes
    adversarial: bytes
    amplification: float | None  # None when x_adv == x (nothing to amplify)
    width: int
    height: int

    def data_uris(self) -> dict[str, str]:
        return {name: png_data_uri(getattr(self, name)) for name in ("original", "perturbation", "adversarial")}


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def to_display(x: Any, layout: str | None, input_range: Sequence[float] | None) -> Any:
    """One sample → float array (H, W) or (H, W, 3) in [0, 1] for display."""
    import numpy as np

    arr = np.asarray(x, dtype=np.float64)
    lo, hi = _range(input_range, arr)
    arr = (np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo) - lo) / (hi - lo)
    return np.clip(_to_hwc(arr, layout), 0.0, 1.0)


def delta_display(x: Any, x_adv: Any, layout: str | None,
                  input_range: Sequence[float] | None) -> tuple[Any, float | None]:
    """The perturbation around mid-grey, scaled so its largest magnitude spans the range.

    Returns the (H, W[, 3]) array in [0, 1] and the amplification relative to the input
    range (None when there is no perturbation at all).
    """
    import numpy as np

    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(x_adv, dtype=np.float64)
    lo, hi = _range(input_range, a)
    delta = np.nan_to_num((b - a) / (hi - lo))
    peak = float(np.abs(delta).max()) if delta.size else 0.0
    if peak <= 0.0:
        return np.full(_to_hwc(delta, layout).shape, 0.5), None
    shown = 0.5 + 0.5 * delta / peak
    return np.clip(_to_hwc(shown, layout), 0.0, 1.0), 0.5 / peak


def counterexample_pictures(x: Any, x_adv: Any, layout: str | None,
                            input_range: Sequence[float] | None) -> CounterexamplePictures:
    """PNG panels for one counterexample (same displayed size for all three)."""
    original = to_display(x, layout, input_range)
    adversarial = to_display(x_adv, layout, input_range)
    delta, amplification = delta_display(x, x_adv, layout, input_range)
    images = [_to_image(a) for a in (original, delta, adversarial)]
    images = [_resize(im) for im in images]
    pngs = [_png(im) for im in images]
    return CounterexamplePictures(pngs[0], pngs[1], pngs[2], amplification=amplification, width=images[0].width,
                                  height=images[0].height)


def pictures_from_npz(path: str | os.PathLike[str], layout: str | None = None,
                      input_range: Sequence[float] | None = None) -> CounterexamplePictures:
    """Read a counterexample `.npz` (arrays `x`, `x_adv`) and draw it.

    `layout` / `input_range` come from the model's input spec; when missing, the values saved
    in the file (if any) are used, then a guess from the shape and values.
    """
    import numpy as np

    from robustcheck.metrics import channel_axis

    with np.load(path, allow_pickle=False) as data:
        x, x_adv = data["x"], data["x_adv"]
        if layout is None and "layout" in data.files:
            saved = str(data["layout"])
            layout = saved if channel_axis(saved) is not None else None
        if input_range is None and "input_range" in data.files:
            input_range = [float(v) for v in np.asarray(data["input_range"]).ravel()[:2]]
    return counterexample_pictures(x, x_adv, layout, input_range)


def write_counterexample_png(path: str | os.PathLike[str], x: Any, x_adv: Any, layout: str | None,
                             input_range: Sequence[float] | None) -> Path:
    """One PNG beside the `.npz`: original | amplified perturbation | adversarial."""
    from PIL import Image

    from robustcheck.paths import write_atomic

    pics = counterexample_pictures(x, x_adv, layout, input_range)
    panels = [Image.open(io.BytesIO(p)).convert("RGB") for p in (pics.original, pics.perturbation, pics.adversarial)]
    gap = max(4, pics.width // 16)
    strip = Image.new("RGB", (3 * pics.width + 2 * gap, pics.height), (255, 255, 255))
    for i, panel in enumerate(panels):
        strip.paste(panel, (i * (pics.width + gap), 0))
    write_atomic(path, _png(strip))
    return Path(path)


# -- helpers ------------------------------------------------------------------------------
def _range(input_range: Sequence[float] | None, arr: Any) -> tuple[float, float]:
    import numpy as np

    if input_range is not None and len(input_range) == 2:
        lo, hi = float(input_range[0]), float(input_range[1])
        if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
            return lo, hi
    finite = arr[np.isfinite(arr)]
    if not finite.size:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    if lo >= 0.0 and hi <= 255.0:
        return 0.0, 255.0
    return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)


def _to_hwc(arr: Any, layout: str | None) -> Any:
    """Drop batch axes of 1 and bring one sample to (H, W) or (H, W, 3)."""
    import numpy as np

    from robustcheck.metrics import channel_axis

    a = np.asarray(arr)
    axis = channel_axis(layout)  # of a batch; of one sample it is axis - 1
    if axis is not None:
        while a.ndim > 3:
            a = a[0]  # the batch axis (of 1)
    else:
        while a.ndim > 2 and a.shape[0] == 1:
            a = a[0]  # batch or single-channel axes: either way the rest is the picture
    if a.ndim == 1:
        return _vector(a)
    if a.ndim == 2:
        if a.shape[0] == 1:
            return _vector(a[0])
        return a
    if a.ndim == 3:
        if axis is not None:
            hwc = np.moveaxis(a, axis - 1, -1)
        elif a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
            hwc = np.moveaxis(a, 0, -1)
        else:
            hwc = a
        channels = hwc.shape[-1]
        if channels == 1:
            return hwc[..., 0]
        if channels in (3, 4):
            return hwc[..., :3]
        return hwc.mean(axis=-1)  # many channels: show their mean
    return _vector(a.ravel())


def _vector(v: Any) -> Any:
    """A flat vector: a square image when its length is a perfect square, else rows of cells."""
    import numpy as np

    n = int(v.size)
    side = math.isqrt(n)
    if side * side == n and n >= 16:
        return v.reshape(side, side)
    cols = min(n, 32) if n else 1
    rows = max(1, math.ceil(n / cols))
    padded = np.full(rows * cols, 0.5)
    padded[:n] = v
    return padded.reshape(rows, cols)


def _to_image(arr: Any) -> Any:
    import numpy as np
    from PIL import Image

    data = np.ascontiguousarray(np.round(np.asarray(arr) * 255.0).astype(np.uint8))
    return Image.fromarray(data)  # uint8 (H, W) → "L", (H, W, 3) → "RGB"


def _resize(image: Any) -> Any:
    from PIL import Image

    resampling = getattr(Image, "Resampling", Image)  # Pillow < 9.1 has the constants on Image
    w, h = image.size
    side = max(w, h)
    if side > MAX_SIDE:
        scale = MAX_SIDE / side
        return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), resampling.LANCZOS)
    factor = max(1, TARGET_SIDE // side)
    if factor > 1:
        return image.resize((w * factor, h * factor), resampling.NEAREST)
    return image


def _png(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
