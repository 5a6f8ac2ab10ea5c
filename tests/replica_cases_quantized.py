"""Parity cases of the quantized operators, measured in output quantisation steps.

onnxruntime returns integers; the replica carries them as float tensors of the same integer
values. Integer arithmetic (QuantizeLinear, DynamicQuantizeLinear, the integer products, QLinearConv,
QLinearMatMul, QGemm, the global average pool) must match exactly; operators that onnxruntime
evaluates through fixed-point multipliers or lookup tables built with its own float kernels
(QLinearAdd/Mul, QLinearSigmoid, QLinearLeakyRelu, QLinearAveragePool, QLinearConcat) may differ
by one step on at most 0.1% of the outputs (STEP_SHARE) and never by more.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from replica_parity import MS_DOMAIN, case, close, run_both

STEP_SHARE = 0.999
INT_TYPES = {"uint8": np.uint8, "int8": np.int8}


def within_steps(expected: list[np.ndarray], got: list[np.ndarray], steps: int = 0) -> None:
    """Integer outputs equal (steps=0) or within one step on STEP_SHARE of them and never beyond."""
    assert len(expected) == len(got)
    for e, g in zip(expected, got):
        assert e.shape == g.shape, (e.shape, g.shape)
        diff = np.abs(e.astype(np.float64) - g.astype(np.float64))
        assert np.array_equal(g, np.round(g)), "the replica's integers are not integers"
        if steps == 0:
            np.testing.assert_array_equal(g.astype(np.float64), e.astype(np.float64))
        else:
            assert diff.max() <= steps, f"max {diff.max()} steps"
            assert (diff == 0).mean() >= STEP_SHARE or diff.size < 1000 and (diff > 0).sum() <= 1, \
                f"{(diff > 0).sum()} of {diff.size} outputs off by one step"


def qarray(data: st.DataObject, shape: tuple[int, ...], kind: str) -> np.ndarray:
    info = np.iinfo(INT_TYPES[kind])
    seed = data.draw(st.integers(0, 2**31 - 1))
    return np.random.default_rng(seed).integers(info.min, info.max + 1, size=shape).astype(INT_TYPES[kind])


def scale(data: st.DataObject, size: int | None = None) -> np.ndarray:
    seed = data.draw(st.integers(0, 2**31 - 1))
    values = np.random.default_rng(seed).uniform(0.002, 0.05, size=size or 1).astype(np.float32)
    return values if size else values.reshape(())


def zero(data: st.DataObject, kind: str, size: int | None = None) -> np.ndarray:
    info = np.iinfo(INT_TYPES[kind])
    low, high = (info.min // 2, info.max // 2)
    seed = data.draw(st.integers(0, 2**31 - 1))
    values = np.random.default_rng(seed).integers(low, high + 1, size=size or 1).astype(INT_TYPES[kind])
    return values if size else values.reshape(())


@case("QuantizeLinear-10", "QuantizeLinear-13")
def _quantize_linear(data: st.DataObject, op: str, opset: int) -> None:
    kind = data.draw(st.sampled_from(["uint8", "int8"]))
    s = scale(data)
    x = np.random.default_rng(data.draw(st.integers(0, 2**16))).uniform(-3, 3, (4, 3, 5)).astype(np.float32)
    x[0, 0, :] = (np.arange(5) + 0.5 - 2) * s  # exact halves: round half to even
    within_steps(*run_both(op, [x], consts={"s": s, "z": zero(data, kind)}, order=["in0", "s", "z"], opset=opset))
    within_steps(*run_both(op, [x], consts={"s": s}, order=["in0", "s"], opset=opset))  # no zero point: uint8
    if opset >= 13:
        axis = data.draw(st.sampled_from([0, 1, -1]))
        size = x.shape[axis]
        within_steps(*run_both(op, [x], {"axis": axis}, consts={"s": scale(data, size), "z": zero(data, kind, size)},
                               order=["in0", "s", "z"], opset=opset))


@case("DequantizeLinear-10", "DequantizeLinear-13")
def _dequantize_linear(data: st.DataObject, op: str, opset: int) -> None:
    kind = data.draw(st.sampled_from(["uint8", "int8"]))
    q = qarray(data, (3, 4, 2), kind)
    close(*run_both(op, [q], consts={"s": scale(data), "z": zero(data, kind)}, order=["in0", "s", "z"], opset=opset))
    bias = np.random.default_rng(1).integers(-2**20, 2**20, size=(3, 4)).astype(np.int32)
    close(*run_both(op, [bias], consts={"s": scale(data)}, order=["in0", "s"], opset=opset))
    if opset >= 13:
        close(*run_both(op, [q], {"axis": 1}, consts={"s": scale(data, 4), "z": zero(data, kind, 4)},
                        order=["in0", "s", "z"], opset=opset))


@case("DynamicQuantizeLinear-11")
def _dynamic_quantize(data: st.DataObject, op: str, opset: int) -> None:
    low = data.draw(st.sampled_from([-2.0, 0.0, 0.5]))
    x = np.random.default_rng(data.draw(st.integers(0, 2**16))).uniform(low, low + 4, (3, 7)).astype(np.float32)
    expected, got = run_both(op, [x], outputs=3, opset=opset)
    within_steps([expected[0], expected[2]], [got[0], got[2]])
    close([expected[1]], [got[1]], rtol=0, atol=0)


def _conv_setup(data: st.DataObject, x_kind: str, w_kind: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    group = data.draw(st.sampled_from([1, 2]))
    cin, cout = 2 * group, 2 * group
    x = qarray(data, (2, cin, 6, 5), x_kind)
    w = qarray(data, (cout, cin // group, 3, 2), w_kind)
    attrs: dict[str, Any] = {"group": group, "strides": [data.draw(st.sampled_from([1, 2])), 1]}
    if data.draw(st.booleans()):
        attrs["pads"] = [1, 0, 1, 1]
    return x, w, attrs


@case("QLinearConv-10")
def _qlinear_conv(data: st.DataObject, op: str, opset: int) -> None:
    x_kind = y_kind = data.draw(st.sampled_from(["uint8", "int8"]))  # onnxruntime: x and y of one type
    x, w, attrs = _conv_setup(data, x_kind, "int8")
    cout = w.shape[0]
    per_channel = data.draw(st.booleans())
    consts = {"xs": scale(data), "xz": zero(data, x_kind), "w": w,
              "ws": scale(data, cout) if per_channel else scale(data), "wz": np.zeros(cout if per_channel else (),
                                                                                       np.int8),
              "ys": np.float32(0.3), "yz": zero(data, y_kind),
              "b": np.random.default_rng(3).integers(-3000, 3000, cout).astype(np.int32)}
    within_steps(*run_both(op, [x], attrs, consts=consts, order=["in0", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                           opset=opset))


@case("ConvInteger-10")
def _conv_integer(data: st.DataObject, op: str, opset: int) -> None:
    x, w, attrs = _conv_setup(data, "uint8", data.draw(st.sampled_from(["uint8", "int8"])))
    consts = {"w": w, "xz": zero(data, "uint8"), "wz": zero(data, w.dtype.name)}
    within_steps(*run_both(op, [x], attrs, consts=consts, order=["in0", "w", "xz", "wz"], opset=opset))


@case("MatMulInteger-10")
def _matmul_integer(data: st.DataObject, op: str, opset: int) -> None:
    w_kind = data.draw(st.sampled_from(["uint8", "int8"]))
    a, b = qarray(data, (2, 3, 40), "uint8"), qarray(data, (40, 5), w_kind)
    per_column = data.draw(st.booleans())
    consts = {"b": b, "az": zero(data, "uint8"), "bz": zero(data, w_kind, 5 if per_column else None)}
    within_steps(*run_both(op, [a], consts=consts, order=["in0", "b", "az", "bz"], opset=opset))


@case("QLinearMatMul-10")
def _qlinear_matmul(data: st.DataObject, op: str, opset: int) -> None:
    kind = data.draw(st.sampled_from(["uint8", "int8"]))
    a, b = qarray(data, (3, 2, 30), kind), qarray(data, (30, 4), "int8")
    consts = {"as": scale(data), "az": zero(data, kind), "b": b, "bs": scale(data), "bz": np.int8(0),
              "ys": np.float32(0.2), "yz": zero(data, kind)}
    within_steps(*run_both(op, [a], consts=consts, order=["in0", "as", "az", "b", "bs", "bz", "ys", "yz"],
                           opset=opset))


@case("com.microsoft.QGemm-1")
def _qgemm(data: st.DataObject, op: str, opset: int) -> None:
    kind = data.draw(st.sampled_from(["uint8", "int8"]))
    trans_b = data.draw(st.booleans())
    a, b = qarray(data, (3, 50), kind), qarray(data, (6, 50) if trans_b else (50, 6), "int8")
    consts = {"as": scale(data), "az": zero(data, kind), "b": b, "bs": scale(data), "bz": np.int8(0),
              "c": np.random.default_rng(5).integers(-5000, 5000, 6).astype(np.int32),
              "ys": np.float32(0.25), "yz": zero(data, kind)}
    attrs = {"transB": int(trans_b), "alpha": data.draw(st.sampled_from([1.0, 0.5]))}
    order = ["in0", "as", "az", "b", "bs", "bz", "c", "ys", "yz"]
    within_steps(*run_both(op, [a], attrs, consts=consts, order=order, domain=MS_DOMAIN))
    floats = {k: v for k, v in consts.items() if k not in ("ys", "yz")}  # float output: acc × scale
    close(*run_both(op, [a], attrs, consts=floats, order=order[:7], domain=MS_DOMAIN), rtol=1e-6, atol=0)


@case("com.microsoft.QLinearAdd-1", "com.microsoft.QLinearMul-1")
def _qlinear_binary(data: st.DataObject, op: str, opset: int) -> None:
    kind = data.draw(st.sampled_from(["uint8", "int8"]))
    a, b = qarray(data, (4, 3, 30), kind), qarray(data, data.draw(st.sampled_from([(4, 3, 30), (3, 1), (30,)])), kind)
    out_scale = np.float32(0.05 if op == "QLinearAdd" else 0.0005)
    consts = {"as": scale(data), "az": zero(data, kind), "b": b, "bs": scale(data), "bz": zero(data, kind),
              "cs": out_scale, "cz": zero(data, kind)}
    within_steps(*run_both(op, [a], consts=consts, order=["in0", "as", "az", "b", "bs", "bz", "cs", "cz"],
                           domain=MS_DOMAIN), steps=1)


@case("com.microsoft.QLinearSigmoid-1", "com.microsoft.QLinearLeakyRelu-1")
def _qlinear_unary(data: st.DataObject, op: str, opset: int) -> None:
    kind = data.draw(st.sampled_from(["uint8", "int8"]))
    x = qarray(data, (8, 5, 30), kind)
    attrs = {"alpha": 0.1} if op == "QLinearLeakyRelu" else {}
    consts = {"xs": np.float32(0.05), "xz": zero(data, kind), "ys": np.float32(0.01), "yz": zero(data, kind)}
    within_steps(*run_both(op, [x], attrs, consts=consts, order=["in0", "xs", "xz", "ys", "yz"], domain=MS_DOMAIN),
                 steps=1)


@case("com.microsoft.QLinearAveragePool-1", "com.microsoft.QLinearGlobalAveragePool-1")
def _qlinear_pool(data: st.DataObject, op: str, opset: int) -> None:
    kind = data.draw(st.sampled_from(["uint8", "int8"]))
    channels_last = data.draw(st.sampled_from([0, 1]))
    x = qarray(data, (2, 6, 7, 3) if channels_last else (2, 3, 6, 7), kind)
    attrs: dict[str, Any] = {"channels_last": channels_last}
    if op == "QLinearAveragePool":
        attrs.update(kernel_shape=[3, 2], strides=[2, 1], count_include_pad=data.draw(st.sampled_from([0, 1])))
        if data.draw(st.booleans()):
            attrs["pads"] = [1, 0, 1, 1]
    consts = {"xs": scale(data), "xz": zero(data, kind), "ys": scale(data), "yz": zero(data, kind)}
    within_steps(*run_both(op, [x], attrs, consts=consts, order=["in0", "xs", "xz", "ys", "yz"], domain=MS_DOMAIN),
                 steps=0 if op == "QLinearGlobalAveragePool" else 1)


@case("com.microsoft.QLinearConcat-1")
def _qlinear_concat(data: st.DataObject, op: str, opset: int) -> None:
    kind = data.draw(st.sampled_from(["uint8", "int8"]))
    a, b = qarray(data, (2, 3, 40), kind), qarray(data, (2, 5, 40), kind)
    same = data.draw(st.booleans())  # an input already at the output's scale is copied
    ys, yz = np.float32(0.02), zero(data, kind)
    consts = {"ys": ys, "yz": yz, "as": ys if same else scale(data), "az": yz if same else zero(data, kind),
              "b": b, "bs": scale(data), "bz": zero(data, kind)}
    within_steps(*run_both(op, [a], {"axis": 1}, consts=consts, order=["ys", "yz", "in0", "as", "az", "b", "bs", "bz"],
                           domain=MS_DOMAIN), steps=1)
