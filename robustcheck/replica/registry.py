"""The operator registry: one implementation per (domain, op type, since-version).

ONNX versions each operator: a schema is valid from its `since_version` until the next one.
An implementation is registered under the since-version where the semantics it implements
begin (a real since-version from the ONNX changelog, checked by the tests). For a model
importing opset N of a domain, a node uses the implementation with the greatest
since-version ≤ N, so a change of inputs or attributes (Clip's min/max moving from
attributes to inputs in opset 11, say) is a second function, never an `if opset` branch.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: The default ONNX domain; "ai.onnx" is another spelling of it.
DEFAULT_DOMAIN = ""


class UnsupportedGraph(Exception):
    """The graph uses operators, versions or attributes the replica cannot build."""


@dataclass
class NodeContext:
    """What an operator function sees of its node: attributes, opset, name, output count."""

    op_type: str
    attrs: dict[str, Any]
    opset: int
    name: str
    num_outputs: int
    index: int = 0
    #: Per input: whether it is a constant of the graph (an initializer or a folded value).
    constant_inputs: tuple[bool, ...] = ()

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    @property
    def label(self) -> str:
        """How errors name the node: `node 'conv_3' (Conv, opset 17)`."""
        who = f"node {self.name!r}" if self.name else f"unnamed node #{self.index}"
        return f"{who} ({self.op_type}, opset {self.opset})"


OpFn = Callable[[NodeContext, list[Any]], list[Any]]


@dataclass(frozen=True)
class OpKey:
    domain: str
    op_type: str
    since_version: int

    def __str__(self) -> str:
        prefix = f"{self.domain}." if self.domain else ""
        return f"{prefix}{self.op_type}-{self.since_version}"


@dataclass(frozen=True)
class OpEntry:
    """One operator implementation.

    `fn` is the exact implementation (true gradients, what the diagnostics judge).
    `adaptive`, when given, is the same forward with a surrogate backward (straight-through for
    Round or QuantizeLinear, a smooth step for Sign or Greater; see gradient_rules.py), used by
    the replica's "adaptive" mode; graph.py picks one or the other at build time, so a graph
    without such operators runs the same steps in both modes. `differentiable=False` marks
    operators whose exact gradient is zero or undefined almost everywhere (the diagnostics report
    them); `never_fold` keeps an operator from being evaluated once at build time; `random` says
    the operator draws random numbers (a predicate on the node and its constant inputs, None
    where not constant, when that depends on them, as Dropout's training_mode does);
    `per_sample` marks operators that couple the samples of a batch (DynamicQuantizeLinear's one
    scale over the whole tensor): graphs using them run one sample per call.
    """

    key: OpKey
    fn: OpFn
    differentiable: bool = True
    never_fold: bool = False
    adaptive: OpFn | None = None
    random: bool | Callable[[NodeContext, list[Any]], bool] = False
    per_sample: bool = False

    def draws_random(self, ctx: NodeContext, constant_inputs: list[Any]) -> bool:
        """Whether this node draws random numbers (constant inputs given, None where not constant)."""
        return self.random(ctx, constant_inputs) if callable(self.random) else self.random


def normalise_domain(domain: str) -> str:
    return DEFAULT_DOMAIN if domain in ("", "ai.onnx") else domain


class OpRegistry:
    """Implementations keyed by (domain, op type, since-version); duplicates are refused."""

    def __init__(self) -> None:
        self._entries: dict[OpKey, OpEntry] = {}
        self._versions: dict[tuple[str, str], list[int]] = {}

    def add(self, entry: OpEntry) -> None:
        if entry.key in self._entries:
            raise ValueError(f"operator {entry.key} is registered twice")
        self._entries[entry.key] = entry
        bisect.insort(self._versions.setdefault((entry.key.domain, entry.key.op_type), []), entry.key.since_version)

    def lookup(self, domain: str, op_type: str, opset: int) -> OpEntry | None:
        """The implementation in force at `opset`: the greatest since-version ≤ opset."""
        domain = normalise_domain(domain)
        versions = self._versions.get((domain, op_type))
        if not versions:
            return None
        i = bisect.bisect_right(versions, opset)
        return self._entries[OpKey(domain, op_type, versions[i - 1])] if i else None

    def knows(self, domain: str, op_type: str) -> bool:
        """Whether any version of the operator is implemented."""
        return (normalise_domain(domain), op_type) in self._versions

    def keys(self) -> list[OpKey]:
        return sorted(self._entries, key=lambda k: (k.domain, k.op_type, k.since_version))

    def until(self, key: OpKey) -> int | None:
        """The last opset `key` serves (None: every later one)."""
        versions = self._versions[(key.domain, key.op_type)]
        i = versions.index(key.since_version)
        return versions[i + 1] - 1 if i + 1 < len(versions) else None


REGISTRY = OpRegistry()


def register(
    op_type: str, since: int, *, domain: str = DEFAULT_DOMAIN, differentiable: bool = True, never_fold: bool = False,
    adaptive: OpFn | None = None, random: bool | Callable[[NodeContext, list[Any]], bool] = False,
    per_sample: bool = False,
) -> Callable[[OpFn], OpFn]:
    """Register the decorated function as `op_type` from opset `since` on (stackable).

    `adaptive` is its surrogate-gradient twin (same forward); a `random` operator is never folded.
    """

    def wrap(fn: OpFn) -> OpFn:
        REGISTRY.add(OpEntry(OpKey(normalise_domain(domain), op_type, since), fn, differentiable,
                             never_fold or bool(random), adaptive, random, per_sample))
        return fn

    return wrap
