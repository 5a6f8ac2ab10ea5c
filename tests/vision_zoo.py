"""Plain-torch versions of the vision families teams ship (no torchvision: it does not import here).

Each builder takes a `width` so the tests run tiny networks and the benchmarks realistic ones;
every block keeps the operators its family exports (BatchNorm and residual Add for ResNet,
depthwise Conv and ReLU6/HardSwish/HardSigmoid for MobileNet, SiLU and squeeze-excitation for
EfficientNet, Concat for DenseNet, padded AveragePool for Inception, channel LayerNorm and GELU
for ConvNeXt, patch Conv / attention / cls token for ViT and DeiT, Resize for upsampling heads).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]


# -- ResNet --------------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*conv_bn(cin, cout, 3, stride), nn.ReLU(), *conv_bn(cout, cout))
        self.skip = nn.Sequential(*conv_bn(cin, cout, 1, stride)) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + self.skip(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet (3×3 stem); `blocks=(2, 2, 2, 2)` with width 64 is ResNet-18."""

    def __init__(self, width: int = 8, blocks: tuple[int, ...] = (1, 1, 1), classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [*conv_bn(3, width), nn.ReLU()]
        cin = width
        for stage, count in enumerate(blocks):
            cout = width * 2**stage
            for i in range(count):
                layers.append(BasicBlock(cin, cout, 2 if stage and not i else 1))
                cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


# -- MobileNetV2 / V3 ----------------------------------------------------------------------------

class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, gate: Callable[[Tensor], Tensor], act: nn.Module) -> None:
        super().__init__()
        hidden = max(4, channels // 4)
        self.reduce, self.expand = nn.Conv2d(channels, hidden, 1), nn.Conv2d(hidden, channels, 1)
        self.gate, self.act = gate, act

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)  # ReduceMean
        return x * self.gate(self.expand(self.act(self.reduce(s))))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, act: type[nn.Module],
                 se: Callable[[int], nn.Module] | None = None) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [*conv_bn(cin, hidden, 1), act(), *conv_bn(hidden, hidden, 3, stride, groups=hidden),
                                   act()]
        if se is not None:
            layers.append(se(hidden))
        layers += conv_bn(hidden, cout, 1)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MobileNet(nn.Module):
    """MobileNetV2 (`version=2`: ReLU6 as Clip) or V3 (HardSwish, SE with HardSigmoid)."""

    def __init__(self, width: int = 8, version: int = 2, classes: int = 10) -> None:
        super().__init__()
        act: type[nn.Module] = nn.ReLU6 if version == 2 else nn.Hardswish
        se = None if version == 2 else (lambda c: SqueezeExcite(c, F.hardsigmoid, nn.ReLU()))
        self.features = nn.Sequential(
            *conv_bn(3, width, 3, 2), act(),
            InvertedResidual(width, width, 1, 1, act, se),
            InvertedResidual(width, 2 * width, 2, 4, act, se),
            InvertedResidual(2 * width, 2 * width, 1, 4, act, se),
            *conv_bn(2 * width, 4 * width, 1), act())
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * width, classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1))


# -- EfficientNet --------------------------------------------------------------------------------

class EfficientNet(nn.Module):
    """MBConv blocks with SiLU and squeeze-excitation (ReduceMean + Sigmoid gate)."""

    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        se = lambda c: SqueezeExcite(c, torch.sigmoid, nn.SiLU())  # noqa: E731
        self.features = nn.Sequential(
            *conv_bn(3, width, 3, 2), nn.SiLU(),
            InvertedResidual(width, width, 1, 1, nn.SiLU, se),
            InvertedResidual(width, 2 * width, 2, 6, nn.SiLU, se),
            InvertedResidual(2 * width, 2 * width, 1, 6, nn.SiLU, se),
            *conv_bn(2 * width, 4 * width, 1), nn.SiLU())
        self.head = nn.Linear(4 * width, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


# -- DenseNet ------------------------------------------------------------------------------------

class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, 2 * growth, 1, bias=False),
            nn.BatchNorm2d(2 * growth), nn.ReLU(), nn.Conv2d(2 * growth, growth, 3, 1, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.body(x)], dim=1)


class DenseNet(nn.Module):
    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        growth = max(4, width // 2)
        c = 2 * growth
        layers: list[nn.Module] = [nn.Conv2d(3, c, 3, 1, 1, bias=False)]
        for block in range(2):
            for _ in range(2):
                layers.append(DenseLayer(c, growth))
                c += growth
            if block == 0:  # transition: BN, 1×1 conv, average pool
                layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2)]
                c //= 2
        layers += [nn.BatchNorm2d(c), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


# -- Inception -----------------------------------------------------------------------------------

class InceptionBlock(nn.Module):
    def __init__(self, cin: int, c: int) -> None:
        super().__init__()
        self.b1 = nn.Sequential(*conv_bn(cin, c, 1), nn.ReLU())
        self.b3 = nn.Sequential(*conv_bn(cin, c, 1), nn.ReLU(), *conv_bn(c, c, 3), nn.ReLU())
        self.b5 = nn.Sequential(*conv_bn(cin, c, 1), nn.ReLU(), *conv_bn(c, c, 3), nn.ReLU(), *conv_bn(c, c, 3),
                                nn.ReLU())
        # Inception's pool branch: a padded 3×3 average that excludes the padding from the count.
        self.pool = nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False), *conv_bn(cin, c, 1), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.pool(x)], dim=1)


class Inception(nn.Module):
    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(3, width, 3, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.blocks = nn.Sequential(InceptionBlock(width, width // 2), nn.AvgPool2d(3, 2, 1),
                                    InceptionBlock(2 * width, width // 2))
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1))


# -- ConvNeXt ------------------------------------------------------------------------------------

class ChannelsFirstLayerNorm(nn.Module):
    """ConvNeXt's LayerNorm over the channel axis of an NCHW tensor, written out (ReduceMean, Pow, Sqrt)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(channels)), nn.Parameter(torch.zeros(channels)), eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1, self.pw2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 0.5))

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # NHWC for LayerNorm and the Linear layers
        y = self.pw2(F.gelu(self.pw1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 4, 4), ChannelsFirstLayerNorm(width), ConvNeXtBlock(width),
            ChannelsFirstLayerNorm(width), nn.Conv2d(width, 2 * width, 2, 2), ConvNeXtBlock(2 * width))
        self.norm = nn.LayerNorm(2 * width, eps=1e-6)
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.norm(self.features(x).mean(dim=(-2, -1))))


# -- ViT / DeiT ----------------------------------------------------------------------------------

class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        return self.proj((attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c))


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, torch_attention: bool, mlp: int = 2) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.torch_attention = torch_attention
        self.attn: nn.Module = nn.MultiheadAttention(dim, heads, batch_first=True) if torch_attention \
            else Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp * dim), nn.GELU(), nn.Linear(mlp * dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm1(x)
        x = x + (self.attn(h, h, h, need_weights=False)[0] if self.torch_attention else self.attn(h))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """ViT (cls token) or DeiT (`distilled=True`: cls and distillation tokens, two heads averaged).

    `torch_attention` uses nn.MultiheadAttention (exported through scaled_dot_product_attention)
    instead of the attention written out with MatMul and Softmax.
    """

    def __init__(self, width: int = 16, depth: int = 2, heads: int = 2, patch: int = 4, image: int = 16,
                 classes: int = 10, distilled: bool = False, torch_attention: bool = False, mlp: int = 2) -> None:
        super().__init__()
        tokens = (image // patch) ** 2
        self.patch = nn.Conv2d(3, width, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, width) * 0.5)
        self.dist = nn.Parameter(torch.randn(1, 1, width) * 0.5) if distilled else None
        self.pos = nn.Parameter(torch.randn(1, tokens + 1 + int(distilled), width) * 0.5)
        self.blocks = nn.Sequential(*[EncoderBlock(width, heads, torch_attention, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)
        self.head_dist = nn.Linear(width, classes) if distilled else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        lead = [self.cls.expand(x.shape[0], -1, -1)]
        if self.dist is not None:
            lead.append(self.dist.expand(x.shape[0], -1, -1))
        x = self.norm(self.blocks(torch.cat(lead + [x], dim=1) + self.pos))
        if self.head_dist is None:
            return self.head(x[:, 0])
        return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2


# -- Resize --------------------------------------------------------------------------------------

class UpsampleNet(nn.Module):
    """Downsamples, then upsamples with F.interpolate in every mode classifiers use: nearest,
    bilinear (half-pixel and align-corners) and bicubic, by a scale factor and to a size."""

    MODES: tuple[tuple[str, bool | None], ...] = (("nearest", None), ("bilinear", False), ("bilinear", True),
                                                  ("bicubic", False))

    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.down = nn.Sequential(*conv_bn(3, width, 3, 2), nn.ReLU())
        self.mix = nn.Sequential(nn.Conv2d(len(self.MODES) * (width + 3), width, 3, 1, 1), nn.ReLU())
        self.head = nn.Linear(width, classes)

    def forward(self, x: Tensor) -> Tensor:
        low = self.down(x)
        small_size = (x.shape[2] // 2 + 1, x.shape[3] // 2 + 1)
        parts = []
        for mode, corners in self.MODES:
            parts.append(F.interpolate(low, scale_factor=2.0, mode=mode, align_corners=corners))
            small = F.interpolate(x, size=small_size, mode=mode, align_corners=corners)
            parts.append(F.interpolate(small, size=x.shape[2:], mode=mode, align_corners=corners))
        return self.head(self.mix(torch.cat(parts, dim=1)).mean(dim=(2, 3)))


# -- Keras-style NHWC ----------------------------------------------------------------------------

class KerasStyle(nn.Module):
    """Takes NHWC input as tf2onnx graphs do: Transpose to NCHW, conv stack, global pool, dense."""

    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(*conv_bn(3, width, 3, 2), nn.ReLU(), *conv_bn(width, 2 * width, 3, 2), nn.ReLU())
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.net(x.permute(0, 3, 1, 2)).mean(dim=(2, 3)))


#: family -> builder(width, image side); only the transformers' size depends on the image.
FAMILIES: dict[str, Callable[[int, int], nn.Module]] = {
    "resnet": lambda w, s: ResNet(w),
    "mobilenet-v2": lambda w, s: MobileNet(w, 2),
    "mobilenet-v3": lambda w, s: MobileNet(w, 3),
    "efficientnet": lambda w, s: EfficientNet(w),
    "densenet": lambda w, s: DenseNet(w),
    "inception": lambda w, s: Inception(w),
    "convnext": lambda w, s: ConvNeXt(w),
    "vit": lambda w, s: ViT(2 * w, image=s, patch=max(4, s // 8)),
    "deit": lambda w, s: ViT(2 * w, image=s, patch=max(4, s // 8), distilled=True, torch_attention=True),
    "resize": lambda w, s: UpsampleNet(w),
    "keras-nhwc": lambda w, s: KerasStyle(w),
}


def build(family: str, width: int = 8, seed: int = 0, image: int = 16) -> nn.Module:
    """The family's network in eval mode, seeded, with BatchNorm statistics set away from identity."""
    torch.manual_seed(seed)
    net = FAMILIES[family](width, image)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            elif isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def input_shape(family: str, image: int = 16) -> tuple[int, int, int]:
    """One sample's shape in the family's layout (NHWC for the Keras-style net)."""
    return (image, image, 3) if family == "keras-nhwc" else (3, image, image)


def natural_images(count: int, shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    """Real-looking images in [0, 1]: smooth colour gradients, blurred blobs and a little noise.

    Random uniform pixels are a poor stand-in for photographs (no spatial correlation, every
    activation near its mean); these keep the local structure convolutions respond to.
    `shape` is one sample's (C, H, W), or (H, W, C) for a channels-last model.
    """
    channels_last = shape[-1] == 3 and shape[0] != 3
    c, h, w = (shape[2], shape[0], shape[1]) if channels_last else shape
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.rand(count, c, 1, 1, generator=g)
    slope = (torch.rand(count, c, 2, generator=g) - 0.5) * 0.8
    img = base + slope[..., 0, None, None] * yy + slope[..., 1, None, None] * xx
    blobs = F.interpolate(torch.rand(count, c, max(2, h // 4), max(2, w // 4), generator=g), size=(h, w),
                          mode="bilinear", align_corners=False)
    img = 0.6 * img + 0.4 * blobs + 0.02 * torch.randn(count, c, h, w, generator=g)
    img = img.clamp(0, 1)
    return img.permute(0, 2, 3, 1).contiguous() if channels_last else img
