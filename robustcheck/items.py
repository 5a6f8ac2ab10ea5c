"""pytest collection nodes: one `OnnxFile` per model, one item per robustness claim.

Imported only when `--robustcheck` is given (it pulls in torch and onnxruntime). Each item's
`evaluate` computes through a per-process `ModelRun` and returns an `Evaluation`
(evaluation.py: typed figures, attack records, counterexamples, findings); `runtest` keeps it and raises the
evaluation's failure (a `ClaimFailure`, shown without a traceback). The session turns the
item into a `record.ItemOutcome` (see `RobustcheckItem.outcome`).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from robustcheck.config import Check
from robustcheck.errors import ClaimFailure, ConfigError, RobustcheckError, RobustcheckWarning
from robustcheck.evaluation import (
    Evaluation,
    GateFailure,
    clean_accuracy_failure,
    gate_met,
    internal_error_line,
    outcome_message,
    partial_message,
    robust_accuracy_failure,
)
from robustcheck.figures import (
    BaselineFigures,
    CleanAccuracyFigures,
    GradientMaskingFigures,
    RobustAccuracyFigures,
    RobustPropertyFigures,
)
from robustcheck.model_run import ModelRun, stable_seed
from robustcheck.part_claims import split_budget, splits_by_sample
from robustcheck.properties import RobustnessViolation
from robustcheck.record import (
    AttackRecord,
    BaselineDelta,
    Counterexample,
    ItemOutcome,
    ItemRecord,
    ModelInfo,
    Verdict,
)
from robustcheck.store import StoredExample

if TYPE_CHECKING:
    from robustcheck.session import RobustcheckSession


#: Counterexamples of the minimal-norm attacks shown as evidence when the masking item fails.
MASKING_COUNTEREXAMPLES = 4


class OnnxFile(pytest.File):
    """An ONNX model file: its items are the configured claims about it."""

    def collect(self) -> Any:
        rc: RobustcheckSession = self.config.stash[SESSION_KEY]
        config = rc.model_config(self.path)
        yield CleanAccuracyItem.from_parent(self, name="clean-accuracy")
        from robustcheck.certified_items import CertifiedAccuracyItem

        kinds: dict[str, type[RobustcheckItem]] = {"robust": PropertyItem, "robust-accuracy": RobustAccuracyItem,
                                                   "certified-accuracy": CertifiedAccuracyItem}
        for check in config.checks:
            if isinstance(check, Check):
                yield kinds[check.type].from_parent(self, name=check.id, check=check)
            else:
                from robustcheck.transforms.items import TRANSFORM_ITEMS

                yield TRANSFORM_ITEMS[check.type].from_parent(self, name=check.id, transform_check=check)
        yield MaskingItem.from_parent(self, name="gradient-masking")
        if rc.baseline is not None:
            yield BaselineItem.from_parent(self, name="baseline")


class RobustcheckItem(pytest.Item):
    kind = "item"

    def __init__(self, *, check: Check | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._check = check
        # Same xdist worker for every item of a model: they share its loaded model and attack cache.
        self.add_marker(pytest.mark.xdist_group(self.path.stem))
        # xdist's loadgroup appends "@<group>" to the node id; records and commands use the plain one.
        self.claim_nodeid = self.nodeid
        self.model_info: ModelInfo | None = None
        self.evaluation: Evaluation | None = None
        self.duration_s = 0.0

    @property
    def rc(self) -> RobustcheckSession:
        return self.config.stash[SESSION_KEY]

    @property
    def check(self) -> Check:
        if self._check is None:
            raise TypeError(f"{self.nodeid}: this item has no configured check")
        return self._check

    def runtest(self) -> None:
        run = self.rc.model_run(self.path)
        start = time.perf_counter()
        try:
            self.model_info = self.rc.model_info(run)
            self.evaluation = self.evaluate(run)
        finally:
            self.duration_s = time.perf_counter() - start
        ev = self.evaluation
        for key, value in vars(ev.figures).items():
            if isinstance(value, (int, float, str)):
                self.user_properties.append((key, value))
        for text in ev.warnings:
            warnings.warn(RobustcheckWarning(text), stacklevel=1)
        if ev.failure is not None:
            raise ev.failure
        if ev.partial is not None:
            pytest.skip(ev.partial)

    def evaluate(self, run: ModelRun) -> Evaluation:
        raise NotImplementedError

    def outcome(self, verdict: Verdict, exc: BaseException | None) -> ItemOutcome:
        """This item's outcome for the run record (built once, after it ran)."""
        message = outcome_message(exc)
        info = self.model_info
        if info is None:  # the model could not be loaded: this item says why
            info = ModelInfo(name=self.path.stem, file=self.rc.relpath(self.path), error=message or None)
        elif isinstance(exc, RobustcheckError):
            info = replace(info, error=message)
        ev = self.evaluation
        item = ItemRecord(nodeid=self.claim_nodeid, model=self.path.stem, kind=self.kind, name=self.name,
                          verdict=verdict, message=message, figures=None if ev is None else ev.figures,
                          duration_s=self.duration_s)
        if ev is None:
            return ItemOutcome(item=item, model=info)
        return ItemOutcome(item=item, model=info, attacks=ev.attacks, counterexamples=ev.counterexamples,
                           findings=ev.findings, baseline=ev.baseline)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        exc = excinfo.value
        if isinstance(exc, (RobustcheckError, ClaimFailure)):
            return str(exc)
        config = self.config
        if config.getoption("verbose") > 0 or config.getoption("tbstyle", "auto") == "long":
            return str(super().repr_failure(excinfo, style=style))
        return internal_error_line(exc)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"{self.path.name}::{self.name}"

    def reproduce(self) -> str:
        return self.rc.reproduce_command(self.claim_nodeid)

    def square_stage(self, run: ModelRun, check: Check | None = None) -> bool:
        """The fixed-ε cascade ends with Square Attack (L∞): a gradient-masking error fired for the
        model. The check's own attack runs first, so the diagnostics see it as they would later."""
        check = check or self.check
        if check.norm != "linf":
            return False
        run.attack_pool(check.attack, check)
        return any(f.severity == "error" for f in self.rc.findings(run))


class CleanAccuracyItem(RobustcheckItem):
    kind = "clean-accuracy"

    def evaluate(self, run: ModelRun) -> Evaluation:
        acc = run.clean_accuracy
        gate = run.config.min_clean_accuracy
        figures = CleanAccuracyFigures(clean_accuracy=acc, dataset_size=len(run.clean_rows), min=gate)
        if not run.share.whole:  # this part's rows: the parts' counts add up when merged
            return Evaluation(figures, partial=partial_message(f"{run.share.part + 1}/{run.share.parts}"))
        failure = None
        if gate is not None and not gate_met(acc, gate):
            failure = GateFailure(clean_accuracy_failure(run.name, acc, len(run.data), gate))
        return Evaluation(figures, failure=failure)


class RobustAccuracyItem(RobustcheckItem):
    kind = "robust-accuracy"

    def evaluate(self, run: ModelRun) -> Evaluation:
        check = self.check
        if check.min is None:
            raise ConfigError(f"{check.id}: a robust-accuracy check needs 'min'")
        acc, worst = run.robust_accuracy(check, square=self.square_stage(run))
        result = worst.result
        found = run.counterexamples(check.attack, check.id, check.epsilon, worst.combined, self.reproduce(),
                                    rows=run.own_pool_rows(check.attack, check))
        broken = int(worst.broken.sum())
        median = float(np.median(result.distances[result.norm][result.success])) if result.success.any() else None
        figures = RobustAccuracyFigures(
            attack=check.attack, norm=check.norm, epsilon=check.epsilon, targeted=check.targeted,
            robust_accuracy=acc, min=check.min, samples=len(run.eval_set), broken=broken,
            attack_success_rate=result.success_rate, median_distortion=median, broken_by=worst.broken_by,
            winners=worst.winners)
        exact = run.exact_robust_accuracy(check)
        if exact is not None:  # adaptive gradients: the exact ones' figure is the evidence beside it
            figures.gradient_mode = "adaptive"
            figures.exact_robust_accuracy, figures.exact_attack_success_rate = exact[0], exact[1].success_rate
        attacks = [run.attack_record(check.attack, result, run.pool_rows(check.attack, check))]
        if not run.share.whole:  # this part's pool blocks: the parts' counts add up when merged
            return Evaluation(figures, attacks=attacks, counterexamples=found,
                              partial=partial_message(f"{run.share.part + 1}/{run.share.parts}"))
        failure = None
        if not gate_met(acc, check.min, check.epsilon):
            saved = None if not found else (self.rc.relpath(Path(str(found[0].npz))),
                                            self.rc.relpath(Path(str(found[0].png))))
            failure = GateFailure(robust_accuracy_failure(run.name, figures, found[0] if found else None, saved,
                                                          self.reproduce()))
        return Evaluation(figures, attacks=attacks, counterexamples=found, failure=failure)


class _Found(Exception):
    def __init__(self, index: int, offset: int, attack_seed: int, target: int | None) -> None:
        self.index, self.offset, self.attack_seed, self.target = index, offset, attack_seed, target


class PropertyItem(RobustcheckItem):
    """"No verified adversarial example within ε", as a Hypothesis property over samples, targets, seeds."""

    kind = "robust"

    def evaluate(self, run: ModelRun) -> Evaluation:
        check = self.check
        if not math.isfinite(check.epsilon) or check.epsilon <= 0:
            raise ConfigError(f"{check.id}: epsilon must be a positive finite number, got {check.epsilon!r}")
        pool = run.pool
        if len(pool) == 0:
            raise GateFailure(f"{run.name}: no correctly classified sample to test {check.id} on")
        classes = run.model.num_classes
        randomized = run.make_attack(check.attack, check).stochastic
        split = not run.share.whole and splits_by_sample(check, randomized)
        rows = run.own_pool_rows(check.attack, check) if split else np.arange(len(pool))
        rc = self.rc
        db = DirectoryBasedExampleDatabase(str(rc.store.hypothesis_dir()))
        calls: dict[str, int | None] = {"examples": 0, "first_failure_at": None}

        def prop(index: int, offset: int, attack_seed: int) -> None:
            calls["examples"] = (calls["examples"] or 0) + 1
            target = None if offset == 0 else int((pool.y[index] + offset) % classes)
            result = run.attack_one(check.attack, check, index, target, attack_seed)
            if result.within(check.epsilon)[0]:
                if calls["first_failure_at"] is None:
                    calls["first_failure_at"] = calls["examples"]
                raise _Found(index, offset, attack_seed, target)

        strategy_offset = st.integers(1, classes - 1) if check.targeted else st.just(0)
        strategy_seed = st.integers(0, 2**16) if randomized else st.just(0)
        strategy_index = st.sampled_from(rows.tolist()) if split else st.integers(0, len(pool) - 1)
        test = given(index=strategy_index, offset=strategy_offset, attack_seed=strategy_seed)(prop)
        if not check.targeted:
            # The untargeted pool run exists anyway (its record goes with the item): a row it breaks
            # within ε fails the property whatever Hypothesis draws, the first such row (where shrinking
            # would lead), so the verdict never depends on the draws (nor on how a sharded run split the rows).
            pooled = run.attack_pool(check.attack, check, whole=not split)
            hits = np.flatnonzero(pooled.within(check.epsilon))
            if len(hits):
                test = example(index=int(rows[hits.min()]), offset=0, attack_seed=0)(test)
        stored = rc.store.load(run.name, check.id, dataset_size=len(run.data), classes=classes)
        positions = {int(d): i for i, d in enumerate(pool.index)}
        replayed = 0
        own = set(rows.tolist())
        for entry in reversed(stored.entries):
            if entry.dataset_index in positions and (entry.target_offset == 0) != check.targeted \
                    and positions[entry.dataset_index] in own:
                test = example(index=positions[entry.dataset_index], offset=entry.target_offset,
                               attack_seed=entry.seed)(test)
                replayed += 1
        # Hypothesis's pytest plugin only knows test functions: give each model × property its
        # own database key and seed, so replays and shrinking never mix between items.
        inner = test.hypothesis.inner_test  # type: ignore[attr-defined]
        inner._hypothesis_internal_add_digest = f"robustcheck:{run.name}:{check.id}".encode()
        test = seed(stable_seed(rc.seed, run.name, check.id))(test)
        budget = split_budget(rc.profile.examples, run, check) if split else rc.profile.examples
        test = settings(
            max_examples=max(1, budget), database=db, deadline=None, derandomize=False,
            suppress_health_check=list(HealthCheck), report_multiple_bugs=False, print_blob=False,
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        )(test)
        failed: _Found | None = None
        try:
            test()
        except _Found as found:
            failed = found
        searched = RobustPropertyFigures(
            attack=check.attack, norm=check.norm, epsilon=check.epsilon, targeted=check.targeted, pool=len(rows),
            max_examples=rc.profile.examples, examples=int(calls["examples"] or 0), replayed=replayed,
            first_failure_at=calls["first_failure_at"], store_warnings=stored.skipped)
        exact = None if check.targeted or split else run.exact_robust_accuracy(check)
        if exact is not None:  # adaptive gradients: the exact ones' figure is the evidence beside the pool run's
            searched.gradient_mode, searched.exact_robust_accuracy = "adaptive", exact[0]
        from robustcheck.certified_items import with_sample_verdicts

        if failed is not None:
            verdicts = searched if split else with_sample_verdicts(run, check, searched, failed.index)
            return self._fail(run, check, failed, verdicts, split)
        if not split:  # a part's rows alone cannot say proven / violated for the pool; the lead's whole run does
            searched = with_sample_verdicts(run, check, searched)
        attacks = [] if check.targeted else [
            run.attack_record(check.attack, run.attack_pool(check.attack, check, whole=not split), rows)]
        partial = partial_message(f"{run.share.part + 1}/{run.share.parts}") if split else None
        return Evaluation(searched, attacks=attacks, warnings=stored.skipped, partial=partial)

    def _fail(self, run: ModelRun, check: Check, found: _Found, searched: RobustPropertyFigures,
              split: bool = False) -> Evaluation:
        """The counterexample Hypothesis found (shrunk), saved and stored, and the smallest of the pool."""
        result = run.attack_one(check.attack, check, found.index, found.target, found.attack_seed)
        described = run.describe_sample(result, 0, check.attack, check.id, check.epsilon, sample_index=found.index)
        saved = run.save_counterexample(result, 0, described, self.reproduce())
        stored = self.rc.store.save(run.name, check.id, StoredExample(
            int(run.pool.index[found.index]), found.offset, found.attack_seed, run.model.sha256),
            dataset_size=len(run.data), classes=run.model.num_classes)
        smallest, count = None, 1
        attacks: list[AttackRecord] = []
        counterexamples = [saved]
        if not check.targeted:
            pooled = run.attack_pool(check.attack, check, whole=not split)
            rows = run.own_pool_rows(check.attack, check) if split else np.arange(len(run.pool))
            attacks.append(run.attack_record(check.attack, pooled, rows))
            hits = np.flatnonzero(pooled.within(check.epsilon))
            count = max(1, len(hits))
            if len(hits):
                best = int(hits[np.argmin(pooled.distances[pooled.norm][hits])])
                smallest = run.describe_sample(pooled, best, check.attack, check.id, check.epsilon,
                                               sample_index=int(rows[best]))
                if int(rows[best]) != found.index:
                    counterexamples.append(run.save_counterexample(pooled, best, smallest, self.reproduce()))
        figures = replace(searched, sample=found.index, dataset_index=saved.dataset_index,
                          true_label=saved.true_label, adv_label=saved.adv_label, distances=dict(saved.distances),
                          counterexamples_found=count)
        files = (self.rc.relpath(Path(str(saved.npz))), self.rc.relpath(Path(str(saved.png))),
                 f"store {self.rc.relpath(stored)}")
        failure = RobustnessViolation(saved, smallest, count, saved=files)
        return Evaluation(figures, attacks=attacks, counterexamples=counterexamples, failure=failure,
                          warnings=list(searched.store_warnings))


class MaskingItem(RobustcheckItem):
    """No gradient-masking symptom: the diagnostics find no `error` finding."""

    kind = "gradient-masking"

    def evaluate(self, run: ModelRun) -> Evaluation:
        findings = self.rc.findings(run)
        errors = [f for f in findings if f.severity == "error"]
        figures = GradientMaskingFigures(errors=len(errors), warnings=sum(f.severity == "warning" for f in findings),
                                         findings=[f.id for f in findings], policy=run.config.masking)
        if not errors:
            return Evaluation(figures, findings=findings)
        # The evidence a reviewer wants to see: what the strongest attack found where the weak ones did not.
        found: list[Counterexample] = []
        for label, result in run.minimal_norm_results():
            found += run.counterexamples(label, self.name, None, result, self.reproduce(),
                                         limit=MASKING_COUNTEREXAMPLES)
        lines = [f"{run.name}: {len(errors)} gradient-masking finding(s); gradient-based verdicts on this model "
                 "cannot be trusted"]
        for f in errors:
            lines.append(f"  [{f.id}] {f.title}")
            lines.append(f"    remedy: {f.remedy}")
        if found:
            c = min(found, key=lambda c: c.distance)
            lines.append(f"  {len(found)} verified counterexample(s) from the strong attacks; the smallest: "
                         f"{c.describe()}")
            lines.append(f"    saved: {self.rc.relpath(Path(str(c.png)))}")
        text = "\n".join(lines)
        if run.config.masking == "fail":
            return Evaluation(figures, counterexamples=found, findings=findings, failure=GateFailure(text))
        return Evaluation(figures, counterexamples=found, findings=findings, warnings=[text])


class BaselineItem(RobustcheckItem):
    """No regression against the last release's record (robust accuracy, masking findings)."""

    kind = "baseline"

    def evaluate(self, run: ModelRun) -> Evaluation:
        base = self.rc.baseline.model(run.name) if self.rc.baseline else None
        if base is None:
            return Evaluation(BaselineFigures(in_baseline=False))
        deltas: list[BaselineDelta] = []
        tolerance = run.config.baseline_tolerance
        old_figures = {i.name: i.figures for i in base.items}
        for check in run.config.checks:
            old = old_figures.get(check.id)
            if not isinstance(check, Check) or check.type != "robust-accuracy" or \
                    not isinstance(old, RobustAccuracyFigures):
                continue
            before = old.robust_accuracy if math.isfinite(old.robust_accuracy) else None
            now, _ = run.robust_accuracy(check, square=self.square_stage(run, check), whole=True)
            regressed = before is not None and not gate_met(now, before - tolerance)
            deltas.append(BaselineDelta(run.name, check.id, before, now, tolerance, regressed))
        old_errors = {f.id for f in base.findings if f.severity == "error"}
        new_errors = sorted({f.id for f in self.rc.findings(run) if f.severity == "error"} - old_errors)
        deltas.append(BaselineDelta(run.name, "masking-findings", float(len(old_errors)),
                                    float(len(old_errors) + len(new_errors)), None, bool(new_errors),
                                    note=", ".join(new_errors)))
        figures = BaselineFigures(in_baseline=True, regressions=sum(d.regressed for d in deltas))
        bad = [d for d in deltas if d.regressed]
        failure = None
        if bad:
            lines = [f"{run.name}: regressed against the baseline {self.rc.baseline_path}"]
            for d in bad:
                if d.metric == "masking-findings":
                    lines.append(f"  new gradient-masking finding(s): {d.note}")
                else:
                    lines.append(f"  {d.metric}: robust accuracy {d.baseline:.1%} -> {d.current:.1%} "
                                 f"(tolerance {d.tolerance:.1%})")
            failure = GateFailure("\n".join(lines))
        return Evaluation(figures, baseline=deltas, failure=failure)


SESSION_KEY: pytest.StashKey[RobustcheckSession] = pytest.StashKey()
