"""One record from the records of a sharded run's jobs (`python -m robustcheck merge`).

A model run whole by one job is copied as it is. A model whose samples were split between
jobs (`shard.py`) comes back in parts: the claims that are sums over rows are added up from
the parts' figures and per-sample attack lists, with the same arithmetic an unsharded run
uses (`attack_records.py`, `evaluation.py`), so the merged verdicts and figures equal an
unsharded run's; the other claims were evaluated whole by the lead part and are copied.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from robustcheck import attack_records
from robustcheck.errors import ConfigError, RobustcheckError
from robustcheck.evaluation import clean_accuracy_failure, gate_met, robust_accuracy_failure
from robustcheck.figures import CleanAccuracyFigures, RobustAccuracyFigures, RobustPropertyFigures
from robustcheck.record import (
    AttackRecord,
    Counterexample,
    ItemRecord,
    ModelRecord,
    RunInfo,
    RunRecord,
    severity_rank,
)
from robustcheck.shard import Shard

#: The most counterexamples a robust-accuracy claim keeps (as model_run.MAX_COUNTEREXAMPLES_SAVED).
MAX_COUNTEREXAMPLES = 8


class MergeError(RobustcheckError):
    """The records cannot be merged (not one sharded run, shards missing or repeated)."""


def merge_records(records: Sequence[RunRecord], names: Sequence[str] | None = None) -> RunRecord:
    """The record an unsharded run would have written, from every shard's record.

    `names` (one per record, e.g. their files) label the errors. Raises `MergeError`.
    """
    names = list(names) if names is not None else [f"record {i + 1}" for i in range(len(records))]
    _check_shards(records, names)
    by_model: dict[str, list[ModelRecord]] = {}
    for rec in records:
        for model in rec.models:
            by_model.setdefault(model.name, []).append(model)
    models = [_merge_model(name, parts, records[0].run) for name, parts in sorted(by_model.items())]
    deltas = {(d.model, d.metric): d for rec in records for d in rec.baseline}
    return RunRecord(run=_merge_info(records, models), models=models,
                     baseline=[deltas[k] for k in sorted(deltas)])


def _check_shards(records: Sequence[RunRecord], names: Sequence[str]) -> None:
    if not records:
        raise MergeError("no records to merge")
    shards: dict[Shard, str] = {}
    for rec, name in zip(records, names):
        if rec.run.shard is None:
            raise MergeError(f"{name}: not the record of a sharded run (run without --robustcheck-shard)")
        try:
            shard = Shard.parse(rec.run.shard)
        except ConfigError:
            raise MergeError(f"{name}: shard {rec.run.shard!r} is not one job's K/N (a merged record?)") from None
        if shard in shards:
            raise MergeError(f"{name}: shard {shard} already given by {shards[shard]}")
        shards[shard] = name
    counts = {s.count for s in shards}
    if len(counts) != 1:
        raise MergeError(f"the records come from runs split in different numbers of shards: {sorted(counts)}")
    count = counts.pop()
    missing = [f"{k}/{count}" for k in range(1, count + 1) if Shard(k, count) not in shards]
    if missing:
        raise MergeError(f"shard(s) {', '.join(missing)} missing: merge the records of every job")
    first = records[0].run
    for rec, name in zip(records, names):
        if (rec.run.profile, rec.run.seed) != (first.profile, first.seed):
            raise MergeError(f"{name}: profile {rec.run.profile} seed {rec.run.seed}, but {names[0]} has profile "
                             f"{first.profile} seed {first.seed}: not one run")


def _merge_info(records: Sequence[RunRecord], models: list[ModelRecord]) -> RunInfo:
    runs = [r.run for r in records]
    first = min(runs, key=lambda r: r.started)
    unfinished = sum(max(0, (r.run.items_collected or 0) - r.items_recorded) for r in records)
    collected = None if any(r.items_collected is None for r in runs) else \
        sum(len(m.items) for m in models) + unfinished
    durations = [r.duration_s for r in runs if r.duration_s is not None]
    finished = [r.finished for r in runs if r.finished is not None]
    return replace(
        first, finished=max(finished) if finished else None, duration_s=max(durations) if durations else None,
        workers=max(r.workers for r in runs), interrupted=any(r.interrupted for r in runs),
        items_collected=collected,
        shard=",".join(sorted((str(r.shard) for r in runs), key=lambda s: Shard.parse(s).index)),
        config_files=sorted({f for r in runs for f in r.config_files}),
        baseline_file=next((r.baseline_file for r in runs if r.baseline_file), None))


def _merge_model(name: str, parts: list[ModelRecord], run: RunInfo) -> ModelRecord:
    if len(parts) == 1 and parts[0].share is None:
        return parts[0]
    shares = [p.share for p in parts]
    if any(s is None for s in shares):
        raise MergeError(f"{name}: run whole by more than one shard")
    count = {int(str(s).split("/")[1]) for s in shares}
    owned = sorted(int(str(s).split("/")[0]) for s in shares)
    if len(count) != 1 or owned != list(range(count.pop())):
        raise MergeError(f"{name}: parts {', '.join(sorted(map(str, shares)))} do not make up the whole model")
    parts = sorted(parts, key=lambda p: int(str(p.share).split("/")[0]))
    lead = parts[0]
    evaluated = int(lead.samples or 0)
    attacks = _merge_attacks(name, parts, evaluated)
    items: list[ItemRecord] = []
    counterexamples: list[Counterexample] = []
    by_node: dict[str, list[ItemRecord]] = {}
    for part in parts:
        for item in part.items:
            by_node.setdefault(item.nodeid, []).append(item)
    every = [c for p in parts for c in p.counterexamples]
    clean_accuracy = lead.clean_accuracy
    for nodeid in sorted(by_node):
        group = by_node[nodeid]
        own = [c for c in every if c.property == group[0].name]
        if len(group) == 1:  # evaluated whole by the lead part
            items.append(group[0])
            counterexamples += _unique(own)
            continue
        merged, kept = _merge_item(name, group, own, attacks, evaluated, run)
        items.append(merged)
        counterexamples += kept
        if isinstance(merged.figures, CleanAccuracyFigures):
            clean_accuracy = merged.figures.clean_accuracy
    findings = {f.id: f for p in reversed(parts) for f in p.findings}
    return replace(
        lead, share=None, error=next((p.error for p in parts if p.error), None), clean_accuracy=clean_accuracy,
        items=items, attacks=sorted(attacks, key=lambda a: (a.attack, a.targeted, str(sorted(a.params.items())))),
        counterexamples=sorted(_unique(counterexamples), key=lambda c: (c.property, c.distance, c.sample_index)),
        findings=sorted(findings.values(), key=lambda f: (severity_rank(f.severity), f.id)))


def _unique(found: list[Counterexample]) -> list[Counterexample]:
    return list({(c.property, c.sample_index, c.attack): c for c in reversed(found)}.values())


def _merge_attacks(name: str, parts: list[ModelRecord], evaluated: int) -> list[AttackRecord]:
    """Each attack run rebuilt over the whole pool from the parts' per-sample lists."""
    groups: dict[tuple[str, str, bool], list[AttackRecord]] = {}
    for part in parts:
        for a in part.attacks:
            groups.setdefault((a.attack, json.dumps(a.params, sort_keys=True, default=str), a.targeted), []).append(a)
    out = []
    for records in groups.values():
        head = records[0]
        if any(not a.sample_distances for a in records):  # a run the parts did not split: kept as recorded
            out.append(head)
            continue
        rows: dict[int, dict[str, float | None]] = {}
        for a in records:
            for i, row in enumerate(a.pool_rows):
                rows[row] = {n: values[i] for n, values in a.sample_distances.items()}
        if sorted(rows) != list(range(len(rows))):
            raise MergeError(f"{name}: the parts' runs of {head.attack} do not cover its pool")
        order = sorted(rows)
        success = np.array([rows[r][head.norm] is not None for r in order], dtype=bool)
        distances = {n: attack_records.per_sample([rows[r][n] for r in order])[1] for n in head.sample_distances}
        out.append(attack_records.build(
            head.attack, head.norm, head.params, success, distances,
            wall_time=sum(a.wall_time_s for a in records), replica_disagreements=sum(a.replica_disagreements
                                                                                     for a in records),
            epsilon=head.epsilon, targeted=head.targeted, minimal_norm=head.minimal_norm, evaluated=evaluated))
    return out


def _merge_item(name: str, group: list[ItemRecord], own: list[Counterexample], attacks: list[AttackRecord],
                evaluated: int, run: RunInfo) -> tuple[ItemRecord, list[Counterexample]]:
    """One claim from the parts that each evaluated it on their rows."""
    head = group[0]
    duration = sum(i.duration_s for i in group)
    errored = next((i for i in group if i.verdict == "error"), None)
    if errored is not None:
        return replace(errored, duration_s=duration), _unique(own)
    figures = [i.figures for i in group]
    if all(isinstance(f, CleanAccuracyFigures) for f in figures):
        return _clean_accuracy(name, head, [f for f in figures if isinstance(f, CleanAccuracyFigures)], duration), []
    if all(isinstance(f, RobustAccuracyFigures) for f in figures):
        parts = [f for f in figures if isinstance(f, RobustAccuracyFigures)]
        return _robust_accuracy(name, head, parts, own, attacks, run, duration)
    if all(isinstance(f, RobustPropertyFigures) for f in figures):
        return _robust_property(head, group, own, duration)
    raise MergeError(f"{head.nodeid}: a {head.kind} claim evaluated by several parts cannot be merged")


def _clean_accuracy(name: str, head: ItemRecord, parts: list[CleanAccuracyFigures],
                    duration: float) -> ItemRecord:
    rows = sum(f.dataset_size for f in parts)
    correct = sum(round(f.clean_accuracy * f.dataset_size) for f in parts)
    acc = float(np.float64(correct) / rows) if rows else 0.0
    gate = parts[0].min
    figures = CleanAccuracyFigures(clean_accuracy=acc, dataset_size=rows, min=gate)
    if gate is not None and not gate_met(acc, gate):
        return replace(head, verdict="failed", message=clean_accuracy_failure(name, acc, rows, gate),
                       figures=figures, duration_s=duration)
    return replace(head, verdict="passed", message="", figures=figures, duration_s=duration)


def _robust_accuracy(name: str, head: ItemRecord, parts: list[RobustAccuracyFigures], own: list[Counterexample],
                     attacks: list[AttackRecord], run: RunInfo,
                     duration: float) -> tuple[ItemRecord, list[Counterexample]]:
    first = parts[0]
    samples = first.samples
    # A part's robust accuracy is (its pool rows - its broken rows) / every evaluated row.
    pool = sum(round(f.robust_accuracy * samples) + f.broken for f in parts)
    broken = sum(f.broken for f in parts)
    successes = sum(round(f.attack_success_rate * (round(f.robust_accuracy * samples) + f.broken)) for f in parts)
    broken_by = _summed([f.broken_by for f in parts])
    # The attack's own breaks (the fixed-ε cascade after it may have broken more).
    record = _attack_of(first, attacks, pool, broken_by.get(first.attack, broken))
    median = None
    if record is not None:
        success, distance = attack_records.per_sample(record.min_distances)
        median = float(np.median(distance[success])) if success.any() else None
    figures = replace(first, robust_accuracy=attack_records.robust_fraction(pool, broken, samples), broken=broken,
                      attack_success_rate=float(successes / pool) if pool else 0.0, median_distortion=median,
                      broken_by=broken_by, winners=_summed([f.winners for f in parts]))
    kept = sorted(_unique(own), key=lambda c: (c.distance, c.sample_index))[:MAX_COUNTEREXAMPLES]
    if gate_met(figures.robust_accuracy, figures.min, figures.epsilon):
        return replace(head, verdict="passed", message="", figures=figures, duration_s=duration), kept
    smallest = kept[0] if kept else None
    saved = None if smallest is None else (str(smallest.npz), str(smallest.png))
    reproduce = smallest.reproduce if smallest is not None and smallest.reproduce else " ".join(
        shlex.quote(p) for p in ["pytest", "--robustcheck", head.nodeid, f"--robustcheck-profile={run.profile}",
                                 f"--robustcheck-seed={run.seed}"])
    message = robust_accuracy_failure(name, figures, smallest, saved, reproduce)
    return replace(head, verdict="failed", message=message, figures=figures, duration_s=duration), kept


def _attack_of(figures: RobustAccuracyFigures, attacks: list[AttackRecord], pool: int,
               broken: int) -> AttackRecord | None:
    """The merged untargeted pool run a robust-accuracy claim read (its label, pool and count within ε)."""
    for a in attacks:
        if a.attack != figures.attack or a.targeted or a.samples != pool:
            continue
        success, distance = attack_records.per_sample(a.min_distances)
        if int(attack_records.within(success, distance, figures.epsilon).sum()) == broken:
            return a
    return None


def _summed(counts: list[dict[str, int]]) -> dict[str, int]:
    """Per-label counts of the parts added up, in the first part's label order."""
    total: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return total


def _robust_property(head: ItemRecord, group: list[ItemRecord], own: list[Counterexample],
                     duration: float) -> tuple[ItemRecord, list[Counterexample]]:
    parts = [i.figures for i in group if isinstance(i.figures, RobustPropertyFigures)]
    total = replace(parts[0], pool=sum(f.pool for f in parts), examples=sum(f.examples for f in parts),
                    replayed=sum(f.replayed for f in parts),
                    store_warnings=[w for f in parts for w in f.store_warnings])
    failed = [i for i in group if i.verdict == "failed" and isinstance(i.figures, RobustPropertyFigures)]
    if not failed:
        return replace(head, verdict="passed", message="", figures=total, duration_s=duration), []

    def first_row(item: ItemRecord) -> float:
        f = item.figures
        return float(f.sample) if isinstance(f, RobustPropertyFigures) and f.sample is not None else np.inf

    chosen = min(failed, key=first_row)  # an unsharded search fails on the first broken row too
    found = chosen.figures
    assert isinstance(found, RobustPropertyFigures)
    figures = replace(total, first_failure_at=found.first_failure_at, sample=found.sample,
                      dataset_index=found.dataset_index, true_label=found.true_label, adv_label=found.adv_label,
                      distances=dict(found.distances),
                      counterexamples_found=sum(i.figures.counterexamples_found for i in failed
                                                if isinstance(i.figures, RobustPropertyFigures)))
    return replace(chosen, figures=figures, duration_s=duration), _unique(own)
