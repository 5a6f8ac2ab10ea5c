"""Pixel-value transformations on NCHW float64 batches: brightness, contrast, Gaussian noise,
Gaussian blur and JPEG compression (Pillow). Magnitudes of brightness and noise are fractions of
the input box's span, so `0.1` means the same on a [0, 1] model and a 0–255 model. Every
function takes per-image parameters (arrays of length N) and leaves clipping to the caller.
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from robustcheck.transforms.image_batch import ImageFormat

#: Gaussian kernels reach this many σ on each side (scipy.ndimage's default `truncate`).
BLUR_TRUNCATE = 4.0


def _per_image(values: np.ndarray, images: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float64)).view(-1, 1, 1, 1).to(images.dtype)


def brightness(images: torch.Tensor, shift: np.ndarray, fmt: ImageFormat) -> torch.Tensor:
    """Add `shift` × the box's span to every value."""
    return images + _per_image(shift, images) * fmt.span


def contrast(images: torch.Tensor, change: np.ndarray) -> torch.Tensor:
    """Scale each image's distance to its own mean value by (1 + change)."""
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return mean + (1.0 + _per_image(change, images)) * (images - mean)


def noise(images: torch.Tensor, sigma: np.ndarray, seeds: np.ndarray, fmt: ImageFormat) -> torch.Tensor:
    """Add Gaussian noise of standard deviation `sigma` × span; each image's noise pattern
    depends on its seed only, so a smaller σ with the same seed is the same pattern, fainter."""
    patterns = torch.stack([
        torch.randn(images.shape[1:], generator=torch.Generator().manual_seed(int(s)), dtype=torch.float64)
        for s in seeds]).to(images.dtype)
    return images + _per_image(sigma, images) * fmt.span * patterns


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """The normalised 1-D Gaussian of `sigma` pixels, truncated at BLUR_TRUNCATE σ."""
    radius = int(BLUR_TRUNCATE * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def blur(images: torch.Tensor, sigma: np.ndarray) -> torch.Tensor:
    """Separable Gaussian blur of `sigma` pixels; edges extend their nearest pixel; σ 0 = unchanged."""
    out = images.clone()
    c = images.shape[1]
    for s in np.unique(sigma):
        rows = torch.from_numpy(np.flatnonzero(sigma == s))
        if s <= 0:
            continue
        k = gaussian_kernel(float(s)).to(images.dtype)
        r = (len(k) - 1) // 2
        x = F.pad(images[rows], (r, r, r, r), mode="replicate")
        x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        out[rows] = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return out


def jpeg(images: torch.Tensor, quality: np.ndarray, fmt: ImageFormat) -> torch.Tensor:
    """Encode and decode with Pillow's JPEG at `quality` (1–99; 100 = left unchanged), through
    8-bit pixels of the box; 1-channel images as grayscale, 3-channel ones as RGB."""
    out = images.clone()
    channels = images.shape[1]
    if channels not in (1, 3):
        raise ValueError(f"JPEG needs 1 or 3 channels, the images have {channels}")
    for i, q in enumerate(quality):
        if q >= 100:
            continue
        pixels = ((images[i] - fmt.low) / fmt.span * 255.0).round().clamp(0, 255).to(torch.uint8)
        array = pixels[0].numpy() if channels == 1 else pixels.permute(1, 2, 0).numpy()
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="JPEG", quality=int(q))
        decoded = np.asarray(Image.open(buffer), dtype=np.float64)
        decoded = decoded[None] if channels == 1 else decoded.transpose(2, 0, 1)
        out[i] = torch.from_numpy(decoded).to(images.dtype) / 255.0 * fmt.span + fmt.low
    return out
