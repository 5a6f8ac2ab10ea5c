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

from robustcheck import attack_records
from robustcheck.attacks import Attack, AttackResult, attack_spec
from robustcheck.config import Check, ModelConfig
from robustcheck.data import Dataset
from robustcheck.fixed_epsilon import WorstCase, worst_case
from robustcheck.input_config import ImageDatasetSpec
from robustcheck.model import Model, load_model
from robustcheck.paths import safe_name, write_atomic
from robustcheck.pool_runs import block_count, block_rows, concat_results, run_blocks
from robustcheck.profiles import Profile
from robustcheck.properties import counterexample
from robustcheck.record import AttackRecord, Counterexample, CurvePoint
from robustcheck.run_inputs import check_fits, load_run_dataset, preprocess_table, streamed_correct
from robustcheck.shard import Share

if TYPE_CHECKING:
    from robustcheck.certify import Certificate

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
    #: This job's part of the model's rows in a sharded run (the whole model by default).
    share: Share = field(default_factory=Share)
    #: Opens a progress display for a long attack: (description, total rows) -> context manager.
    progress: Any = field(default=None, repr=False)
    _cache: dict[tuple[Any, ...], AttackResult] = field(default_factory=dict, repr=False)
    _datasets: dict[str | None, Dataset] = field(default_factory=dict, repr=False)
    _certificates: dict[tuple[str, float], Certificate] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.path.stem

    # -- inputs ---------------------------------------------------------------------------
    def _dataset(self, layout: str | None) -> Dataset:
        key = layout if isinstance(self.config.dataset, ImageDatasetSpec) else None
        if key not in self._datasets:
            self._datasets[key] = load_run_dataset(self.path, self.config, layout)
        return self._datasets[key]

    @cached_property
    def data(self) -> Dataset:
        """The configured dataset in the model's layout (image files are laid out once the model is known)."""
        if isinstance(self.config.dataset, ImageDatasetSpec):
            return self._dataset(self.model.input_spec.layout)
        return self._dataset(None)

    @cached_property
    def model(self) -> Model:
        cfg = self.config
        model = load_model(self.path, input_range=cfg.input_range, layout=cfg.layout, output=cfg.output,
                           parity_inputs=lambda spec: np.asarray(self._dataset(spec.layout).x[:16]),
                           preprocess=preprocess_table(cfg), device=cfg.device)
        check_fits(model, self._dataset(model.input_spec.layout), cfg)
        model.eot_draws = self.profile.eot_draws
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
    def clean_rows(self) -> np.ndarray:
        """The dataset rows this job's clean accuracy covers (all of them unless the model is split)."""
        return self.share.rows(len(self.data))

    @cached_property
    def clean_accuracy(self) -> float:
        """Oracle accuracy on the whole dataset (on this part's rows of a split model), streamed in batches."""
        rows = self.clean_rows
        return float(np.float64(streamed_correct(self.model, self.data, rows)) / len(rows)) if len(rows) else 0.0

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

    def own_blocks(self, label: str, check: Check | None = None) -> list[int]:
        """The pool blocks (of the attack's batch size) this job attacks: all, or its part's share."""
        blocks = block_count(len(self.pool), self.make_attack(label, check).batch_size)
        return [b for b in range(blocks) if b % self.share.parts == self.share.part]

    def own_pool_rows(self, label: str, check: Check | None = None) -> np.ndarray:
        """The pool rows of `own_blocks`, in pool order."""
        return block_rows(self.own_blocks(label, check), len(self.pool), self.make_attack(label, check).batch_size)

    def attack_pool(self, label: str, check: Check | None = None, *, whole: bool = False) -> AttackResult:
        """The attack run untargeted over the pool (cached per block): the whole pool, or with `whole`
        False and a split model, this part's blocks only.

        Blocks of the attack's batch size run alone, each with its own seed, so a block's rows come
        out the same whichever job attacks it (robustcheck/pool_runs.py).
        """
        attack = self.make_attack(label, check)
        params = json.dumps(self.attack_params(label, check), sort_keys=True, default=str)
        total = block_count(len(self.pool), attack.batch_size)
        blocks = list(range(total)) if whole or self.share.whole else self.own_blocks(label, check)
        missing = [b for b in blocks if (label, params, "block", b) not in self._cache]
        if missing:
            rows = int(sum(len(block_rows([b], len(self.pool), attack.batch_size)) for b in missing))
            with self._progress(f"{self.name} · {label}", rows) as bar:
                for b in missing:
                    self._cache[(label, params, "block", b)] = run_blocks(
                        attack, self.model, self.pool.x, self.pool.y, blocks=[b], progress=bar, label=label,
                        seed_of=lambda block: stable_seed(self.seed, self.name, label, block))
        key = (label, params, "pool", tuple(blocks))
        if key not in self._cache:
            if blocks:
                self._cache[key] = concat_results([self._cache[(label, params, "block", b)] for b in blocks])
            else:  # a part with no block of this pool: an empty run
                self._cache[key] = run_blocks(attack, self.model, self.pool.x, self.pool.y, blocks=[],
                                              seed_of=lambda block: 0)
        return self._cache[key]

    def _progress(self, description: str, total: int) -> Any:
        from contextlib import nullcontext

        if self.progress is None:
            return nullcontext(None)
        return self.progress(description, total)

    def attack_one(self, label: str, check: Check, index: int, target: int | None, seed: int) -> AttackResult:
        """The attack on pool sample `index` (optionally targeted, seeded), served from the pool run when equal."""
        attack = self.make_attack(label, check)
        randomized = attack.stochastic
        if target is None and (not randomized or seed == 0):
            own = self.own_pool_rows(label, check)
            if self.share.whole or index in set(own.tolist()):
                return self.attack_pool(label, check).select(int(np.searchsorted(own, index)))
            return self.attack_pool(label, check, whole=True).select(index)
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

    def robust_accuracy(self, check: Check, *, square: bool = False, whole: bool = False) -> tuple[float, WorstCase]:
        """`metrics.robust_accuracy` on the eval set: correct and no verified adversarial example
        within ε from the check's attack or the AutoAttack cascade after it (fixed_epsilon.py;
        `square`: finish with Square Attack). A split model's part counts its own pool rows over
        the whole eval set, so the parts' figures add up to the unsharded one."""
        worst = worst_case(self, check, square=square, whole=whole)
        return self._robust_accuracy(worst.combined, check.epsilon), worst

    def exact_robust_accuracy(self, check: Check) -> tuple[float, AttackResult] | None:
        """The same attack on the replica's true gradients, for a model attacked with adaptive
        ones (surrogate backward rules, EOT); None otherwise. Cached apart from the pool runs."""
        model = self.model
        if model.gradient_mode != "adaptive" or not attack_spec(check.attack).attack_cls.needs_replica:
            return None
        params = json.dumps(self.attack_params(check.attack, check), sort_keys=True, default=str)
        key = (check.attack, params, "pool-exact")
        if key not in self._cache:
            with model.gradients("exact"):
                self._cache[key] = self.make_attack(check.attack, check).run(
                    model, self.pool.x, self.pool.y, seed=stable_seed(self.seed, self.name, check.attack))
        result = self._cache[key]
        return self._robust_accuracy(result, check.epsilon), result

    def _robust_accuracy(self, result: AttackResult, epsilon: float | None) -> float:
        """Over every eval row (misclassified ones count as not robust); `result` is a pool run
        (the correct rows, in order); ε None: before any attack."""
        broken = 0 if epsilon is None else int(result.within(epsilon).sum())
        return attack_records.robust_fraction(len(result), broken, len(self.eval_set))

    def whole_pool_runs(self) -> list[tuple[str, AttackResult]]:
        """(label, whole-pool run) of the attacks the diagnostics and the masking evidence reuse.

        A whole model: every pool run so far, in the order the items ran them. A split model's lead
        part: the whole-pool runs of the configured untargeted checks, in config order, which is the
        set and the order an unsharded run has by the time its gradient-masking item runs.
        """
        if self.share.whole:
            return [(k[0], r) for k, r in self._cache.items() if k[2] == "pool"]
        runs: dict[tuple[str, str], tuple[str, AttackResult]] = {}
        for check in self.config.checks:
            if isinstance(check, Check) and not check.targeted:
                key = (check.attack, json.dumps(self.attack_params(check.attack, check), sort_keys=True, default=str))
                runs.setdefault(key, (check.attack, self.attack_pool(check.attack, check, whole=True)))
        return list(runs.values())

    def certificate(self, norm: str, epsilon: float) -> Certificate:
        """CROWN's certificate for every pool sample within ε (cached; raises NotVerifiable)."""
        key = (norm, float(epsilon))
        if key not in self._certificates:
            from robustcheck.certify import certify

            self._certificates[key] = certify(self.model, self.pool.x, self.pool.y, norm=norm, epsilon=epsilon)
        return self._certificates[key]

    def all_results(self) -> list[AttackResult]:
        return [r for _, r in self.whole_pool_runs()]

    def minimal_norm_results(self) -> list[tuple[str, AttackResult]]:
        """(label, untargeted pool run) of every minimal-norm attack run so far (C&W, EAD, …)."""
        return [(label, r) for label, r in self.whole_pool_runs() if r.minimal_norm]

    # -- records --------------------------------------------------------------------------
    def pool_rows(self, label: str, check: Check | None = None, *, whole: bool = False) -> np.ndarray:
        """The pool rows of `attack_pool(label, check, whole=whole)`'s rows, in order."""
        return np.arange(len(self.pool)) if whole or self.share.whole else self.own_pool_rows(label, check)

    def attack_record(self, label: str, result: AttackResult, rows: np.ndarray | None = None) -> AttackRecord:
        """The record of a pool run whose rows are the pool rows `rows` (default: the whole pool)."""
        return attack_records.build(
            label, result.norm, _plain(result.params), result.success, result.distances, wall_time=result.wall_time,
            replica_disagreements=result.replica_disagreements, epsilon=result.epsilon,
            targeted=result.targets is not None, minimal_norm=result.minimal_norm, evaluated=len(self.eval_set),
            keep_samples=not self.share.whole, rows=None if rows is None else rows.tolist())

    def curve(self, result: AttackResult) -> list[CurvePoint]:
        """Robust accuracy on the eval set against ε (see attack_records.curve)."""
        return attack_records.curve(result.success, result.distances[result.norm], minimal_norm=result.minimal_norm,
                                    epsilon=result.epsilon, evaluated=len(self.eval_set))

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
                        limit: int = MAX_COUNTEREXAMPLES_SAVED, rows: np.ndarray | None = None) -> list[Counterexample]:
        """The smallest-distortion verified adversarial examples of a pool run (within ε when given), saved;
        `rows` are the pool rows of the result's rows (a part's blocks; default: the whole pool)."""
        hits = np.flatnonzero(result.success if epsilon is None else result.within(epsilon))
        order = hits[np.argsort(result.distances[result.norm][hits], kind="stable")][:limit]
        where = np.arange(len(result)) if rows is None else rows
        return [self.save_counterexample(result, int(i), self.describe_sample(
            result, int(i), attack, prop, epsilon, sample_index=int(where[i])), reproduce) for i in order]


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in params.items():
        out[k] = v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
    return out
