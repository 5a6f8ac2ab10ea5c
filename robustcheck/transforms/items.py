"""pytest items for transformation claims: `robust[rotate@10]` and `accuracy-under[rotate@15]`.

`TransformPropertyItem` runs `search.find_smallest_failure` over the model's pool (correctly
classified evaluation rows): stored failures replay first as explicit examples, a new failure
is shrunk to its smallest magnitude, saved as `.npz` (arrays `x` and `x_adv`, as the report's
gallery reads them, plus the parameters) and `.png` (original | difference | transformed), and
put first in the counterexample store, its (level, offset) packed into the store's seed.
`AccuracyUnderItem` measures the fixed-level accuracy over the evaluation rows and its curve
at fractions of the level. Both return an `Evaluation` with typed figures.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis.database import DirectoryBasedExampleDatabase

from robustcheck.errors import ClaimFailure, ConfigError
from robustcheck.evaluation import Evaluation, GateFailure, gate_met
from robustcheck.figures import AccuracyUnderFigures, TransformPropertyFigures
from robustcheck.items import RobustcheckItem
from robustcheck.metrics import distances
from robustcheck.model_run import ModelRun, stable_seed
from robustcheck.paths import safe_name, write_atomic
from robustcheck.record import Counterexample
from robustcheck.store import StoredExample
from robustcheck.transforms.checks import TransformCheck
from robustcheck.transforms.probe import TransformProbe
from robustcheck.transforms.search import Draw, TransformOutcome, describe_outcome, find_smallest_failure
from robustcheck.transforms.sweep import accuracy_curve


class TransformViolation(ClaimFailure):
    """A sample whose label changed under the transformation within the claimed max."""


class TransformItem(RobustcheckItem):
    def __init__(self, *, transform_check: TransformCheck, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.transform_check = transform_check

    def probe(self, run: ModelRun) -> TransformProbe:
        probe = TransformProbe(run.model, self.transform_check.spec)
        channels = probe.format.to_nchw(run.data.x[:1]).shape[1]
        probe.spec.check_format(probe.format, channels, f"{run.name}: {self.transform_check.id}")
        return probe


class TransformPropertyItem(TransformItem):
    """"No pool sample changes its label under the transformation up to its max", shrunk."""

    kind = "transform"

    def evaluate(self, run: ModelRun) -> Evaluation:
        check, rc, pool = self.transform_check, self.rc, run.pool
        if len(pool) == 0:
            raise GateFailure(f"{run.name}: no correctly classified sample to test {check.id} on")
        probe = self.probe(run)
        spec = probe.spec
        stored = rc.store.load(run.name, check.id, dataset_size=len(run.data), classes=run.model.num_classes)
        positions = {int(d): i for i, d in enumerate(pool.index)}
        replay = [Draw.unpack(e.seed, positions[e.dataset_index]) for e in stored.entries
                  if e.dataset_index in positions and e.target_offset == 0]
        found = find_smallest_failure(
            probe, pool.x, pool.y, examples=rc.profile.examples, seed_value=stable_seed(rc.seed, run.name, check.id),
            database=DirectoryBasedExampleDatabase(str(rc.store.hypothesis_dir())),
            key=f"robustcheck:{run.name}:{check.id}".encode(), replay=replay)
        figures = TransformPropertyFigures(
            transform=spec.name, max=list(spec.levels), unit=", ".join(f.unit.strip() for f in spec.families),
            pool=len(pool), max_examples=rc.profile.examples, examples=probe.checks,
            replayed=len(replay), model_calls=probe.calls, store_warnings=stored.skipped)
        if found is None:
            return Evaluation(figures, warnings=stored.skipped)
        i = found.draw.index
        outcome = describe_outcome(run.model, spec, i, pool.x[i], int(pool.y[i]), found, probe.calls)
        dataset_index = int(pool.index[i])
        saved = self._save(run, outcome, pool.x[i], found.verdict.image, dataset_index)
        store = rc.store.save(run.name, check.id, StoredExample(dataset_index, 0, found.draw.packed,
                                                                run.model.sha256),
                              dataset_size=len(run.data), classes=run.model.num_classes)
        figures.first_failure_level = spec.level_text(found.first_level)
        figures.magnitude, figures.magnitude_text = list(outcome.magnitudes), outcome.text
        figures.params, figures.sample, figures.dataset_index = dict(outcome.params), i, dataset_index
        figures.true_label, figures.adv_label = saved.true_label, saved.adv_label
        figures.confidence_true, figures.confidence_adv = saved.confidence_true, saved.confidence_adv
        lines = [f"{run.name}: {check.id} violated: {saved.where()}, {saved.label_change()} under "
                 f"{spec.name} {outcome.text} ({outcome.description})",
                 f"  smallest failing magnitude found: {outcome.text} (Hypothesis first failed at "
                 f"{figures.first_failure_level}, shrunk in {found.examples} examples)",
                 f"  saved: {rc.relpath(Path(str(saved.npz)))}  {rc.relpath(Path(str(saved.png)))}  "
                 f"store {rc.relpath(store)}",
                 f"  reproduce: {self.reproduce()}"]
        return Evaluation(figures, counterexamples=[saved], failure=TransformViolation("\n".join(lines)),
                          warnings=stored.skipped)

    def _save(self, run: ModelRun, outcome: TransformOutcome, x: np.ndarray, image: np.ndarray,
              dataset_index: int) -> Counterexample:
        """The counterexample as .npz (with its parameters) and .png (before | difference | after)."""
        from robustcheck.report.images import write_counterexample_png

        check, spec = self.transform_check, run.model.input_spec
        adv_label = -1 if outcome.predicted is None else outcome.predicted   # always set for a failure
        stem = f"{safe_name(check.id)}-sample{outcome.sample}"     # "@0.3" holds a dot: no with_suffix
        buffer = io.BytesIO()
        np.savez_compressed(buffer, x=x, x_adv=image, y=outcome.label, adv_label=adv_label,
                            transform=outcome.transform, params=json.dumps(outcome.params),
                            layout=str(spec.layout), input_range=np.array(spec.input_range))
        npz, png = run.counterexample_dir / f"{stem}.npz", run.counterexample_dir / f"{stem}.png"
        write_atomic(npz, buffer.getvalue())
        write_counterexample_png(png, x, image, spec.layout, spec.input_range)
        d = distances(x[None], image[None])
        return Counterexample(
            model=run.name, property=check.id, attack=outcome.transform, norm="linf", sample_index=outcome.sample,
            dataset_index=dataset_index, true_label=outcome.label, adv_label=adv_label,
            target=None, confidence_true=float(outcome.confidence_label or 0.0),
            confidence_adv=float(outcome.confidence_predicted or 0.0), distances={k: float(v[0]) for k, v in d.items()},
            epsilon=None, npz=str(npz), png=str(png), reproduce=self.reproduce())


class AccuracyUnderItem(TransformItem):
    """Accuracy over the evaluation rows at a fixed level (every direction must keep the label) ≥ min."""

    kind = "accuracy-under"

    def evaluate(self, run: ModelRun) -> Evaluation:
        check = self.transform_check
        if check.min is None:
            raise ConfigError(f"{check.id}: an accuracy-under check needs 'min'")
        probe = self.probe(run)
        rows = run.eval_set
        curve = accuracy_curve(probe, rows.x, rows.y, run.eval_correct)
        accuracy = curve[-1][1]
        first = probe.spec.families[0]
        figures = AccuracyUnderFigures(
            transform=probe.spec.name, level=list(probe.spec.levels), accuracy=accuracy, min=check.min,
            samples=len(rows), broken=int(run.eval_correct.sum()) - int(round(accuracy * len(rows))),
            curve_levels=[first.level(probe.spec.magnitudes(k)[0]) for k, _ in curve],
            curve_accuracy=[a for _, a in curve])
        failure = None
        if not gate_met(accuracy, check.min):
            level = probe.spec.level_text(probe.spec.steps)
            failure = GateFailure(
                f"{run.name}: accuracy {accuracy:.1%} under {probe.spec.name} at {level} "
                f"(every direction) is below the gate {check.min:.1%} ({figures.broken} of {len(rows)} samples "
                f"changed their label)\n  reproduce: {self.reproduce()}")
        return Evaluation(figures, failure=failure)


#: Check type → item class.
TRANSFORM_ITEMS: dict[str, type[TransformItem]] = {
    "transform": TransformPropertyItem,
    "accuracy-under": AccuracyUnderItem,
}
