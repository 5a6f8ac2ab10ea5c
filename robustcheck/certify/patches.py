"""Patches mode: CROWN rows of convolutional neurons carried as small windows, not whole maps.

A row that starts at one neuron of a 2-D feature map is non-zero only inside that neuron's
receptive field, so it is kept as a window (S, C, h, w) plus each row's top-left corner in the
map (the "patches" of auto_LiRPA; Xu et al., NeurIPS 2020). Carrying a window costs what the
receptive field costs, where a dense row costs the whole map: for the second conv layer of an
MNIST CNN that is a 3x3 window against a 26x26 map.

Only chains of 2-D Conv, ReLU/LeakyReLU, 2-D MaxPool and elementwise affine nodes
(BatchNormalization, Add/Sub/Mul/Div with a constant of the map's shape, Identity, Dropout)
down to a 4-D input are carried this way; everything else uses dense rows (crown.py). The
result equals the dense computation up to float rounding (tested).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from robustcheck.certify.input_set import min_linear
from robustcheck.certify.network import AffineNode, BoundGraph, MaxPoolNode, Node, ReluNode, node_inputs
from robustcheck.certify.relaxation import MaxPoolRelaxation, ReluRelaxation
from robustcheck.replica.coercion import ints
from robustcheck.replica.ops.window_padding import explicit_pads

if TYPE_CHECKING:
    from robustcheck.certify.crown import Bounds

Tensor = torch.Tensor
_ELEMENTWISE = frozenset({"BatchNormalization", "Add", "Sub", "Mul", "Div", "Identity", "Dropout"})


def patchable_nodes(graph: BoundGraph) -> set[str]:
    """Nodes whose whole backward cone is a chain of supported 2-D operators down to the input."""
    ok = {graph.input_name} if len(graph.input_shape) == 4 else set()
    for node in graph.nodes:
        inputs = node_inputs(node)
        if len(graph.shapes[node.name]) == 4 and len(inputs) == 1 and inputs[0] in ok and _supported(graph, node):
            ok.add(node.name)
    ok.discard(graph.input_name)
    return ok


def _supported(graph: BoundGraph, node: Node) -> bool:
    if isinstance(node, ReluNode):
        return True
    if isinstance(node, MaxPoolNode):
        return len(ints(node.ctx.attr("kernel_shape"))) == 2
    if node.op == "Conv":
        return node.args[1].dim() == 4
    return node.op in _ELEMENTWISE and graph.shapes[node.inputs[0]] == graph.shapes[node.name]


def crop(maps: Tensor, origin: Tensor, h: int, w: int) -> Tensor:
    """Windows (S, C, h, w) of `maps` (C, H, W) at each row's corner; zero outside the map.

    Rows of neurons at one spatial position share their corners at every layer, so each distinct
    corner is gathered once and the windows are then copied out per row."""
    span = int(origin[:, 1].max() - origin[:, 1].min()) + 1
    keys, inverse = torch.unique(origin[:, 0] * span + (origin[:, 1] - origin[:, 1].min()), return_inverse=True)
    corners = torch.stack([torch.div(keys, span, rounding_mode="floor"), keys % span + origin[:, 1].min()], dim=1)
    _, height, width = maps.shape
    top = max(0, -int(corners[:, 0].min()))
    left = max(0, -int(corners[:, 1].min()))
    bottom = max(0, int(corners[:, 0].max()) + h - height)
    right = max(0, int(corners[:, 1].max()) + w - width)
    padded = F.pad(maps, (left, right, top, bottom))
    ys = (corners[:, :1] + top + torch.arange(h))[:, :, None]
    xs = (corners[:, 1:] + left + torch.arange(w))[:, None, :]
    windows = padded[:, ys, xs].permute(1, 0, 2, 3).contiguous()
    return windows.index_select(0, inverse)


def lower_bounds(graph: BoundGraph, bounds: Bounds, start: str, index: Tensor, sign: Tensor) -> Tensor:
    """CROWN lower bounds of sign·v_start[index] (flat neuron indices of a 4-D node), per row."""
    _, channels, height, width = graph.shapes[start]
    values = torch.zeros(len(index), channels, 1, 1, dtype=torch.float64)
    values[torch.arange(len(index)), index // (height * width), 0, 0] = sign
    origin = torch.stack([(index % (height * width)) // width, index % width], dim=1)
    bias = torch.zeros(len(index), dtype=torch.float64)
    name = start
    while name != graph.input_name:
        node = graph.nodes[graph.position[name]]
        values, origin, extra = _back(graph, bounds, node, values, origin)
        bias = bias + extra
        name = node_inputs(node)[0]
    return bias + _concretize(graph, bounds, values, origin)


def _back(graph: BoundGraph, bounds: Bounds, node: Node, values: Tensor, origin: Tensor
          ) -> tuple[Tensor, Tensor, Tensor]:
    h, w = values.shape[2:]
    if isinstance(node, ReluNode):
        relax = bounds.relaxations[node.name]
        assert isinstance(relax, ReluRelaxation)
        channels = values.shape[1]
        stacked = crop(_relu_maps(relax), origin, h, w)  # one gather for all four maps
        s_l, s_u, b_l, b_u = stacked.split(channels, dim=1)
        positive = values > 0
        extra = torch.where(positive, values * b_l, values * b_u).flatten(1).sum(1)
        return torch.where(positive, values * s_l, values * s_u), origin, extra
    if isinstance(node, MaxPoolNode):
        return _maxpool_back(graph, bounds, node, values, origin)
    assert isinstance(node, AffineNode)
    if node.op == "Conv":
        return _conv_back(graph, node, values, origin)
    scale = node.forward([torch.ones(graph.shapes[node.inputs[0]], dtype=torch.float64)]) - node.offset
    return (values * crop(scale[0], origin, h, w), origin,
            (values * crop(node.offset[0], origin, h, w)).flatten(1).sum(1))


def _relu_maps(relax: ReluRelaxation) -> Tensor:
    """The relaxation's slopes and intercepts stacked as (4C, H, W), cached on the relaxation."""
    cached = getattr(relax, "_stacked", None)
    if cached is None:
        cached = torch.cat([m[0] for m in (relax.lower_slope, relax.upper_slope, relax.lower_bias, relax.upper_bias)])
        relax._stacked = cached  # type: ignore[attr-defined]
    return cached


def _geometry(graph: BoundGraph, node: AffineNode | MaxPoolNode,
              kernel: list[int]) -> tuple[list[int], list[int], list[int]]:
    ctx = node.ctx
    strides = ints(ctx.attr("strides")) or [1, 1]
    dilations = ints(ctx.attr("dilations")) or [1, 1]
    shape = graph.shapes[node_inputs(node)[0]]
    begin, _ = explicit_pads(ctx, torch.empty(shape, device="meta"), kernel)
    return strides, dilations, begin


def _inside(graph: BoundGraph, name: str, values: Tensor, origin: Tensor) -> Tensor:
    _, channels, height, width = graph.shapes[name]
    ones = torch.ones(1, height, width, dtype=values.dtype)
    return values * crop(ones, origin, values.shape[2], values.shape[3])


def _conv_back(graph: BoundGraph, node: AffineNode, values: Tensor, origin: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    weight = node.args[1]
    bias = node.args[2] if len(node.args) > 2 and node.args[2] is not None else None
    strides, dilations, begin = _geometry(graph, node, list(weight.shape[2:]))
    extra = values.sum(dim=(2, 3)) @ bias if bias is not None else torch.zeros(len(values), dtype=values.dtype)
    back = F.conv_transpose2d(values, weight, stride=strides, dilation=dilations, groups=int(node.ctx.attr("group", 1)))
    corner = origin * torch.tensor(strides) - torch.tensor(begin)
    return _inside(graph, node.inputs[0], back, corner), corner, extra


def _maxpool_back(graph: BoundGraph, bounds: Bounds, node: MaxPoolNode, values: Tensor, origin: Tensor
                  ) -> tuple[Tensor, Tensor, Tensor]:
    relax = bounds.relaxations[node.name]
    assert isinstance(relax, MaxPoolRelaxation)
    kernel = ints(node.ctx.attr("kernel_shape"))
    strides, dilations, begin = _geometry(graph, node, kernel)
    _, channels, in_h, in_w = graph.shapes[node.input]
    _, _, out_h, out_w = node.out_shape
    member = relax.argmax % (in_h * in_w)
    oy = torch.arange(out_h).repeat_interleave(out_w).repeat(channels)
    ox = torch.arange(out_w).repeat(out_h * channels)
    ky = (member // in_w - (oy * strides[0] - begin[0])) // dilations[0]
    kx = (member % in_w - (ox * strides[1] - begin[1])) // dilations[1]
    which = (ky * kernel[1] + kx).reshape(channels, out_h, out_w).to(torch.float64)
    h, w = values.shape[2:]
    pos, neg = values.clamp(min=0), values.clamp(max=0)
    takes = crop(relax.upper_takes_member.reshape(channels, out_h, out_w).to(torch.float64), origin, h, w)
    extra = (neg * crop(relax.upper_offset.reshape(channels, out_h, out_w), origin, h, w)).flatten(1).sum(1)
    contrib = pos + neg * takes
    offsets = crop(which, origin, h, w)
    size_h = (h - 1) * strides[0] + (kernel[0] - 1) * dilations[0] + 1
    size_w = (w - 1) * strides[1] + (kernel[1] - 1) * dilations[1] + 1
    back = torch.zeros(len(values), channels, size_h, size_w, dtype=values.dtype)
    for a in range(kernel[0]):
        for b in range(kernel[1]):
            part = contrib * (offsets == a * kernel[1] + b)
            ya, xb = a * dilations[0], b * dilations[1]
            back[:, :, ya:ya + (h - 1) * strides[0] + 1:strides[0], xb:xb + (w - 1) * strides[1] + 1:strides[1]] += part
    corner = origin * torch.tensor(strides) - torch.tensor(begin)
    return _inside(graph, node.input, back, corner), corner, extra


def _concretize(graph: BoundGraph, bounds: Bounds, values: Tensor, origin: Tensor) -> Tensor:
    """min over the region of each row, computed on its window (zero coefficients elsewhere)."""
    region = bounds.region
    h, w = values.shape[2:]
    parts = [crop(t[0], origin, h, w).flatten(1) for t in (region.center, region.low, region.high)]
    return min_linear(region.norm, region.epsilon, values.flatten(1), *parts)
