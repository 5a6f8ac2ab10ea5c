"""One model file's state within a test session: model, data, sample pool, cached attacks.

The plugin's items ask a `ModelRun` for figures (clean accuracy, robust accuracy, single
attack outcomes, findings); it computes each once per process, keyed by everything that
determines it, so items of the same model share work and a replay is deterministic.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robustcheck import metrics
from robustcheck.attacks import Attack, AttackResult, attack_spec
from robustcheck.attacks.base import BOX_TOLERANCE
from robustcheck.config import Check, ModelConfig
from robustcheck.data import Dataset, load_dataset
from robustcheck.errors import DataError
from robustcheck.fixed_epsilon import WorstCase, worst_case
from robustcheck.model import Model, load_model
from robustcheck.paths import safe_name, write_atomic
from robustcheck.profiles import Profile
from robustcheck.properties import counterexample
from robustcheck.record import AttackRecord, Counterexample, CurvePoint, Distortion

if TYPE_CHECKING:
    from robustcheck.certify import Certificate

CURVE_POINTS = 25
MAX_COUNTEREXAMPLES_SAVED = 8


def stable_seed(*parts: object) -> int:
    """A seed derived from names, identical in every process (unlike hash())."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass
class ModelRun:
    path: Path
    config: ModelConfig
    profile: Profile
    seed: int
    report_dir: Path
    _cache: dict[tuple[Any, ...], AttackResult] = field(default_factory=dict, repr=False)
    _certificates: dict[tuple[str, float], Certificate] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.path.stem

    # -- inputs ---------------------------------------------------------------------------
    @cached_property
    def data(self) -> Dataset:
        spec = self.config.dataset
        if spec is None:
            raise DataError(f"{self.path}: no dataset configured (set 'dataset' in robustcheck.toml)")
        return load_dataset(spec.path, labels=spec.labels, scale=spec.scale)

    @cached_property
    def model(self) -> Model:
        data = self.data
        where = self.config.dataset.path if self.config.dataset else "dataset"
        model = load_model(self.path, input_range=self.config.input_range, layout=self.config.layout,
                           output=self.config.output, parity_inputs=data.x[:16])
        lo, hi = model.input_range
        if data.x.min() < lo - BOX_TOLERANCE or data.x.max() > hi + BOX_TOLERANCE:
            raise DataError(f"{where}: values span [{data.x.min():g}, {data.x.max():g}], outside "
                            f"{self.path.name}'s input range [{lo:g}, {hi:g}]")
        if data.y.max() >= model.num_classes or data.y.min() < 0:
            raise DataError(f"{where}: labels span [{data.y.min()}, {data.y.max()}] but {self.path.name} "
                            f"has {model.num_classes} classes")
        return model

    @property
    def n_samples(self) -> int:
        wanted = self.config.samples or self.profile.samples
        return min(wanted, self.profile.max_samples, len(self.data))

    @cached_property
    def eval_set(self) -> Dataset:
        """The first `n_samples` rows: what robust accuracy is measured on."""
        return self.data.take(np.arange(self.n_samples))

    @cached_property
    def eval_correct(self) -> np.ndarray:
        return self.model.predict(self.eval_set.x) == self.eval_set.y

    @cached_property
    def pool(self) -> Dataset:
        """The correctly classified rows of the eval set: what properties and attacks draw from."""
        return self.eval_set.take(np.flatnonzero(self.eval_correct))

    @cached_property
    def clean_accuracy(self) -> float:
        """Oracle accuracy on the whole dataset."""
        return float((self.model.predict(self.data.x) == self.data.y).mean())

    # -- attacks --------------------------------------------------------------------------
    def attack_params(self, label: str, check: Check | None = None) -> dict[str, Any]:
        """Constructor arguments: the label's own, then the profile's budget, the config, the check."""
        spec = attack_spec(label)
        params = dict(spec.defaults)
        params.update(self.profile.attacks.get(spec.attack_cls.name, {}))
        params.update(self.config.attack_params(label))
        if check is not None:
            params.update(dict(check.params))
            if spec.bounded:
                params["epsilon"] = check.epsilon
        return params

    def make_attack(self, label: str, check: Check | None = None) -> Attack:
        return attack_spec(label).make(self.attack_params(label, check))

    def attack_pool(self, label: str, check: Check | None = None) -> AttackResult:
        """The attack run untargeted over the whole pool (cached)."""
        params = self.attack_params(label, check)
        key = (label, json.dumps(params, sort_keys=True, default=str), "pool")
        if key not in self._cache:
            attack = self.make_attack(label, check)
            self._cache[key] = attack.run(self.model, self.pool.x, self.pool.y,
                                          seed=stable_seed(self.seed, self.name, label))
        return self._cache[key]

    def attack_one(self, label: str, check: Check, index: int, target: int | None, seed: int) -> AttackResult:
        """The attack on pool sample `index` (optionally targeted, seeded), served from the pool run when equal."""
        attack = self.make_attack(label, check)
        randomized = attack.stochastic
        if target is None and (not randomized or seed == 0):
            return self.attack_pool(label, check).select(index)
        params = json.dumps(self.attack_params(label, check), sort_keys=True, default=str)
        key = (label, params, index, target, seed if randomized else 0)
        if key not in self._cache:
            targets = None if target is None else np.array([target])
            self._cache[key] = attack.run(self.model, self.pool.x[index:index + 1], self.pool.y[index:index + 1],
                                          targets=targets, seed=seed)
        return self._cache[key]

    def cached_run(self, key: tuple[Any, ...], compute: Callable[[int], AttackResult]) -> AttackResult:
        """`compute(seed)` once per process under `key` (a run that is not a pool run)."""
        full = ("run", *key)
        if full not in self._cache:
            self._cache[full] = compute(stable_seed(self.seed, self.name, *key))
        return self._cache[full]

    def robust_accuracy(self, check: Check, *, square: bool = False) -> tuple[float, WorstCase]:
        """`metrics.robust_accuracy` on the eval set: correct and no verified adversarial example
        within ε from the check's attack or the AutoAttack cascade after it (fixed_epsilon.py;
        `square`: finish with Square Attack)."""
        worst = worst_case(self, check, square=square)
        return self._robust_accuracy(worst.combined, check.epsilon), worst

    def _robust_accuracy(self, result: AttackResult, epsilon: float | None) -> float:
        """Over every eval row (misclassified ones count as not robust); `result` is a pool run
        (the correct rows, in order); ε None: before any attack."""
        broken = np.zeros(len(self.eval_set), dtype=bool)
        if epsilon is not None:
            broken[self.eval_correct] = result.within(epsilon)
        return metrics.robust_accuracy(self.eval_correct, broken)

    def certificate(self, norm: str, epsilon: float) -> Certificate:
        """CROWN's certificate for every pool sample within ε (cached; raises NotVerifiable)."""
        key = (norm, float(epsilon))
        if key not in self._certificates:
            from robustcheck.certify import certify

            self._certificates[key] = certify(self.model, self.pool.x, self.pool.y, norm=norm, epsilon=epsilon)
        return self._certificates[key]

    def all_results(self) -> list[AttackResult]:
        return [r for k, r in self._cache.items() if k[-1] == "pool"]

    def minimal_norm_results(self) -> list[tuple[str, AttackResult]]:
        """(label, untargeted pool run) of every minimal-norm attack run so far (C&W, EAD, …)."""
        return [(k[0], r) for k, r in self._cache.items() if k[-1] == "pool" and r.minimal_norm]

    # -- records --------------------------------------------------------------------------
    def attack_record(self, label: str, result: AttackResult) -> AttackRecord:
        norm = result.norm
        ok = result.success
        dist = []
        for n in ("l0", "l1", "l2", "linf"):
            values = result.distances[n][ok]
            dist.append(Distortion(n, int(ok.sum()), *(_stat(values, f) for f in (np.mean, np.median, np.min, np.max))))
        mins = [None if not s else float(d) for s, d in zip(ok, result.distances[norm])]
        return AttackRecord(
            attack=label, norm=norm, params=_plain(result.params), samples=len(ok), success_rate=result.success_rate,
            wall_time_s=result.wall_time, replica_disagreements=result.replica_disagreements, epsilon=result.epsilon,
            distortion=dist, min_distances=mins, curve=self.curve(result), targeted=result.targets is not None,
        )

    def curve(self, result: AttackResult) -> list[CurvePoint]:
        """Robust accuracy on the eval set against ε: for a minimal-norm pool run, from its
        per-sample minimal distortions; for a bounded one, before the attack and at its ε."""
        finite = result.distances[result.norm][result.success]
        if not result.minimal_norm or not len(finite):
            start = CurvePoint(0.0, self._robust_accuracy(result, None))
            eps = result.epsilon
            return [start] + ([CurvePoint(float(eps), self._robust_accuracy(result, eps))] if eps else [])
        grid = np.linspace(0.0, float(finite.max()) * 1.05, CURVE_POINTS)
        return [CurvePoint(float(e), self._robust_accuracy(result, float(e))) for e in grid]

    @property
    def counterexample_dir(self) -> Path:
        return self.report_dir / "counterexamples" / safe_name(self.name)

    def clear_counterexamples(self) -> None:
        """Remove the files an earlier run saved for this model: the folder then holds this run's only."""
        folder = self.counterexample_dir
        if folder.is_dir():
            for old in folder.iterdir():
                if old.is_file() and old.suffix in (".npz", ".png"):
                    old.unlink()

    def describe_sample(self, result: AttackResult, i: int, label: str, prop: str, epsilon: float | None,
                        sample_index: int | None = None) -> Counterexample:
        """Row `i` of `result` as a Counterexample; `sample_index` is its pool row (default `i`)."""
        pool_row = i if sample_index is None else sample_index
        return counterexample(self.model, result, i, property=prop, attack=label, epsilon=epsilon,
                              sample_index=pool_row, dataset_index=int(self.pool.index[pool_row]))

    def save_counterexample(self, result: AttackResult, i: int, found: Counterexample,
                            reproduce: str) -> Counterexample:
        """Write row `i` of `result` as .npz and .png (atomically) and return `found` with their paths."""
        folder = self.counterexample_dir
        stem = f"{safe_name(found.property)}-sample{found.sample_index}"
        npz = folder / f"{stem}.npz"
        spec = self.model.input_spec
        buffer = io.BytesIO()
        np.savez_compressed(buffer, x=result.x[i], x_adv=result.x_adv[i], y=result.y[i],
                            adv_label=result.adv_labels[i], layout=str(spec.layout),
                            input_range=np.array(spec.input_range))
        write_atomic(npz, buffer.getvalue())
        png = folder / f"{stem}.png"
        from robustcheck.report.images import write_counterexample_png

        write_counterexample_png(png, result.x[i], result.x_adv[i], spec.layout, spec.input_range)
        return replace(found, npz=str(npz), png=str(png), reproduce=reproduce)

    def counterexamples(self, attack: str, prop: str, epsilon: float | None, result: AttackResult, reproduce: str,
                        limit: int = MAX_COUNTEREXAMPLES_SAVED) -> list[Counterexample]:
        """The smallest-distortion verified adversarial examples of a pool run (within ε when given), saved."""
        hits = np.flatnonzero(result.success if epsilon is None else result.within(epsilon))
        order = hits[np.argsort(result.distances[result.norm][hits], kind="stable")][:limit]
        return [self.save_counterexample(result, int(i), self.describe_sample(result, int(i), attack, prop, epsilon),
                                         reproduce)
                for i in order]


def _stat(values: np.ndarray, fn: Any) -> float | None:
    return float(fn(values)) if len(values) else None


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in params.items():
        out[k] = v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
    return out
