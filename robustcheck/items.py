"""pytest collection nodes: one `OnnxFile` per model, one item per robustness claim.

Imported only when `--robustcheck` is given (it pulls in torch and onnxruntime). Items
compute through a per-process `ModelRun`, raise `GateFailure`/`RobustnessViolation` with a
user-facing message (shown without a traceback), and leave a plain-data payload that the
session turns into the run record, on the controller under xdist too.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from robustcheck.config import Check
from robustcheck.errors import RobustcheckError
from robustcheck.model_run import ModelRun, stable_seed
from robustcheck.properties import RobustnessViolation, violation_detail
from robustcheck.record import BaselineDelta, ItemRecord
from robustcheck.store import StoredExample

if TYPE_CHECKING:
    from robustcheck.session import RobustcheckSession


#: Counterexamples of the minimal-norm attacks shown as evidence when the masking item fails.
MASKING_COUNTEREXAMPLES = 4


class GateFailure(AssertionError):
    """A gate (threshold) was not met; the message is the report."""


class OnnxFile(pytest.File):
    """An ONNX model file: its items are the configured claims about it."""

    def collect(self):  # type: ignore[override]
        rc: RobustcheckSession = self.config.stash[SESSION_KEY]
        config = rc.model_config(self.path)
        yield CleanAccuracyItem.from_parent(self, name="clean-accuracy")
        for check in config.checks:
            cls = PropertyItem if check.type == "robust" else RobustAccuracyItem
            yield cls.from_parent(self, name=check.id, check=check)
        yield MaskingItem.from_parent(self, name="gradient-masking")
        if rc.baseline is not None:
            yield BaselineItem.from_parent(self, name="baseline")


class RobustcheckItem(pytest.Item):
    kind = "item"

    def __init__(self, *, check: Check | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        # Same xdist worker for every item of a model: they share its loaded model and attack cache.
        self.add_marker(pytest.mark.xdist_group(self.path.stem))
        self.payload: dict[str, Any] = {}

    @property
    def rc(self) -> RobustcheckSession:
        return self.config.stash[SESSION_KEY]

    def runtest(self) -> None:
        run = self.rc.model_run(self.path)
        self.payload = {"model": {"name": run.name, "file": self.rc.relpath(self.path)}, "attacks": [],
                        "counterexamples": [], "findings": [], "baseline": [], "figures": {}}
        start = time.perf_counter()
        try:
            self.payload["model"].update(self.rc.model_info(run))
            self.evaluate(run)
        except RobustcheckError as exc:
            self.payload["model"]["error"] = str(exc)
            raise
        finally:
            self.payload["duration_s"] = time.perf_counter() - start
            for key, value in self.payload["figures"].items():
                if isinstance(value, (int, float, str)):
                    self.user_properties.append((key, value))

    def evaluate(self, run: ModelRun) -> None:
        raise NotImplementedError

    def record(self, verdict: str, message: str) -> dict[str, Any]:
        item = ItemRecord(nodeid=self.nodeid, model=self.path.stem, kind=self.kind, name=self.name,
                          verdict=verdict, message=message, figures=self.payload.get("figures", {}),
                          duration_s=float(self.payload.get("duration_s", 0.0)))
        return {**self.payload, "item": asdict(item)}

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, (RobustcheckError, RobustnessViolation, GateFailure)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"{self.path.name}::{self.name}"

    def reproduce(self) -> str:
        return self.rc.reproduce_command(self.nodeid)


class CleanAccuracyItem(RobustcheckItem):
    kind = "clean-accuracy"

    def evaluate(self, run: ModelRun) -> None:
        acc = run.clean_accuracy
        gate = run.config.min_clean_accuracy
        self.payload["figures"] = {"clean_accuracy": acc, "min": gate, "dataset_size": len(run.data)}
        self.payload["model"]["clean_accuracy"] = acc
        if gate is not None and acc < gate:
            raise GateFailure(f"{run.name}: clean accuracy {acc:.2%} on {len(run.data)} samples is below the gate {gate:.2%}")


class RobustAccuracyItem(RobustcheckItem):
    kind = "robust-accuracy"

    def evaluate(self, run: ModelRun) -> None:
        check = self.check
        assert check is not None and check.min is not None
        acc, result = run.robust_accuracy(check)
        self.payload["attacks"].append(asdict(run.attack_record(check.attack, result)))
        found = run.counterexamples(check.attack, check.id, check.epsilon, result, self.reproduce())
        self.payload["counterexamples"] = [asdict(c) for c in found]
        broken = int(result.within(check.epsilon).sum())
        median = np.median(result.distances[result.norm][result.success]) if result.success.any() else None
        self.payload["figures"] = {
            "robust_accuracy": acc, "min": check.min, "epsilon": check.epsilon, "norm": check.norm,
            "attack": check.attack, "samples": len(run.eval_set), "broken": broken,
            "attack_success_rate": result.success_rate,
            "median_distortion": None if median is None else float(median),
        }
        if acc < check.min:
            lines = [f"{run.name}: robust accuracy {acc:.1%} under {check.attack} at {check.norm.upper()} "
                     f"epsilon {check.epsilon:g} is below the gate {check.min:.1%} "
                     f"({broken} of {len(run.eval_set)} samples broken)"]
            if found:
                c = found[0]
                lines.append(f"  smallest counterexample: sample {c.sample_index} (dataset row {c.dataset_index}), "
                             f"label {c.true_label} ({c.confidence_true:.1%}) -> {c.adv_label} ({c.confidence_adv:.1%}), "
                             f"L2 {c.distances['l2']:.4g}, Linf {c.distances['linf']:.4g}, L0 {c.distances['l0']:.0f}")
                lines.append(f"  saved: {self.rc.relpath(Path(c.npz))}  {self.rc.relpath(Path(c.png))}")
            lines.append(f"  reproduce: {self.reproduce()}")
            raise GateFailure("\n".join(lines))


class _Found(Exception):
    def __init__(self, index: int, offset: int, attack_seed: int, target: int | None) -> None:
        self.index, self.offset, self.attack_seed, self.target = index, offset, attack_seed, target


class PropertyItem(RobustcheckItem):
    """"No verified adversarial example within ε", as a Hypothesis property over samples, targets, seeds."""

    kind = "robust"

    def evaluate(self, run: ModelRun) -> None:
        check = self.check
        assert check is not None
        pool = run.pool
        if len(pool) == 0:
            raise GateFailure(f"{run.name}: no correctly classified sample to test {check.id} on")
        classes = run.model.num_classes
        randomized = run.make_attack(check.attack, check).stochastic
        rc = self.rc
        db = DirectoryBasedExampleDatabase(str(rc.store.hypothesis_dir()))

        calls = {"examples": 0, "first_failure_at": None}

        def prop(index: int, offset: int, attack_seed: int) -> None:
            calls["examples"] += 1
            target = None if offset == 0 else int((pool.y[index] + offset) % classes)
            result = run.attack_one(check.attack, check, index, target, attack_seed)
            if result.within(check.epsilon)[0]:
                if calls["first_failure_at"] is None:
                    calls["first_failure_at"] = calls["examples"]
                raise _Found(index, offset, attack_seed, target)

        strategy_offset = st.integers(1, classes - 1) if check.targeted else st.just(0)
        strategy_seed = st.integers(0, 2**16) if randomized else st.just(0)
        test = given(index=st.integers(0, len(pool) - 1), offset=strategy_offset, attack_seed=strategy_seed)(prop)
        stored = rc.store.load(run.name, check.id)
        positions = {int(d): i for i, d in enumerate(pool.index)}
        replayed = 0
        for entry in reversed(stored):
            if entry.dataset_index in positions and (entry.target_offset == 0) != check.targeted:
                test = example(index=positions[entry.dataset_index], offset=entry.target_offset,
                               attack_seed=entry.seed)(test)
                replayed += 1
        # Hypothesis's pytest plugin only knows test functions: give each model × property its
        # own database key and seed, so replays and shrinking never mix between items.
        test.hypothesis.inner_test._hypothesis_internal_add_digest = f"robustcheck:{run.name}:{check.id}".encode()
        test = seed(stable_seed(rc.seed, run.name, check.id))(test)
        test = settings(
            max_examples=max(1, rc.profile.examples), database=db, deadline=None, derandomize=False,
            suppress_health_check=list(HealthCheck), report_multiple_bugs=False, print_blob=False,
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        )(test)
        self.payload["figures"] = {"epsilon": check.epsilon, "norm": check.norm, "attack": check.attack,
                                   "pool": len(pool), "replayed": replayed, "examples": rc.profile.examples}
        try:
            test()
        except _Found as found:
            self.payload["figures"].update(calls)
            self._fail(run, check, found)
        self.payload["figures"].update(calls)
        self.payload["figures"]["verdict_detail"] = "no counterexample found"
        if not check.targeted:
            pooled = run.attack_pool(check.attack, check)
            self.payload["attacks"].append(asdict(run.attack_record(check.attack, pooled)))

    def _fail(self, run: ModelRun, check: Check, found: _Found) -> None:
        result = run.attack_one(check.attack, check, found.index, found.target, found.attack_seed)
        detail = violation_detail(run.model, result, 0, property=check.id, epsilon=check.epsilon,
                                  sample_index=found.index)
        counterexample = run.save_counterexample(result, 0, check.attack, detail, self.reproduce())
        stored = self.rc.store.save(run.name, check.id, StoredExample(
            int(run.pool.index[found.index]), found.offset, found.attack_seed, run.model.sha256))
        smallest, count = None, 1
        if not check.targeted:
            pooled = run.attack_pool(check.attack, check)
            self.payload["attacks"].append(asdict(run.attack_record(check.attack, pooled)))
            hits = np.flatnonzero(pooled.within(check.epsilon))
            count = max(1, len(hits))
            if len(hits):
                best = int(hits[np.argmin(pooled.distances[pooled.norm][hits])])
                smallest = violation_detail(run.model, pooled, best, property=check.id, epsilon=check.epsilon)
                if best != found.index:
                    extra = run.save_counterexample(pooled, best, check.attack, smallest, self.reproduce())
                    self.payload["counterexamples"].append(asdict(extra))
        self.payload["counterexamples"].insert(0, asdict(counterexample))
        self.payload["figures"].update({"sample": found.index, "dataset_index": int(run.pool.index[found.index]),
                                        "true_label": detail.true_label, "adv_label": detail.adv_label,
                                        **{f"distance_{k}": v for k, v in detail.distances.items()},
                                        "counterexamples_found": count})
        saved = (counterexample.npz or "", counterexample.png or "", f"store {stored}")
        detail = type(detail)(**{**asdict(detail), "saved": saved, "reproduce": self.reproduce()})
        raise RobustnessViolation(detail, smallest, count) from None


class MaskingItem(RobustcheckItem):
    """No gradient-masking symptom: the diagnostics find no `error` finding."""

    kind = "gradient-masking"

    def evaluate(self, run: ModelRun) -> None:
        findings = self.rc.findings(run)
        self.payload["findings"] = [asdict(f.to_record()) for f in findings]
        errors = [f for f in findings if f.severity == "error"]
        self.payload["figures"] = {"errors": len(errors), "warnings": sum(f.severity == "warning" for f in findings),
                                   "findings": ",".join(f.id for f in findings), "policy": run.config.masking}
        if not errors:
            return
        # The evidence a reviewer wants to see: what the strongest attack found where the weak ones did not.
        for label, result in run.minimal_norm_results():
            self.payload["counterexamples"] += [asdict(c) for c in run.counterexamples(
                label, self.name, None, result, self.reproduce(), limit=MASKING_COUNTEREXAMPLES)]
        lines = [f"{run.name}: {len(errors)} gradient-masking finding(s); gradient-based verdicts on this model "
                 "cannot be trusted"]
        for f in errors:
            lines.append(f"  [{f.id}] {f.title}")
            lines.append(f"    remedy: {f.remedy}")
        found = self.payload["counterexamples"]
        if found:
            c = min(found, key=lambda c: c["distances"][c["norm"]])
            lines.append(f"  {len(found)} verified counterexample(s) from the strong attacks; the smallest: "
                         f"{c['attack']} sample {c['sample_index']} (dataset row {c['dataset_index']}) "
                         f"{c['true_label']} -> {c['adv_label']} ({c['confidence_adv']:.0%}) at "
                         f"{c['norm'].upper()} {c['distances'][c['norm']]:.3g}")
            lines.append(f"    saved: {self.rc.relpath(Path(c['png']))}")
        if run.config.masking == "fail":
            raise GateFailure("\n".join(lines))
        warnings.warn("\n".join(lines), stacklevel=1)


class BaselineItem(RobustcheckItem):
    """No regression against the last release's record (robust accuracy, masking findings)."""

    kind = "baseline"

    def evaluate(self, run: ModelRun) -> None:
        base = self.rc.baseline.model(run.name) if self.rc.baseline else None
        if base is None:
            self.payload["figures"] = {"baseline": "model not in baseline"}
            return
        deltas: list[BaselineDelta] = []
        tolerance = run.config.baseline_tolerance
        old_items = {i.name: i for i in base.items}
        for check in run.config.checks:
            if check.type != "robust-accuracy" or check.id not in old_items:
                continue
            before = old_items[check.id].figures.get("robust_accuracy")
            now, _ = run.robust_accuracy(check)
            regressed = before is not None and now < before - tolerance
            deltas.append(BaselineDelta(run.name, check.id, before, now, tolerance, regressed))
        old_errors = {f.id for f in base.findings if f.severity == "error"}
        new_errors = sorted({f.id for f in self.rc.findings(run) if f.severity == "error"} - old_errors)
        deltas.append(BaselineDelta(run.name, "masking-findings", float(len(old_errors)), float(len(old_errors) + len(new_errors)),
                                    None, bool(new_errors), note=", ".join(new_errors)))
        self.payload["baseline"] = [asdict(d) for d in deltas]
        self.payload["figures"] = {"regressions": sum(d.regressed for d in deltas)}
        bad = [d for d in deltas if d.regressed]
        if bad:
            lines = [f"{run.name}: regressed against the baseline {self.rc.baseline_path}"]
            for d in bad:
                if d.metric == "masking-findings":
                    lines.append(f"  new gradient-masking finding(s): {d.note}")
                else:
                    lines.append(f"  {d.metric}: robust accuracy {d.baseline:.1%} -> {d.current:.1%} "
                                 f"(tolerance {d.tolerance:.1%})")
            raise GateFailure("\n".join(lines))


SESSION_KEY: pytest.StashKey[RobustcheckSession] = pytest.StashKey()
