"""The JSON report: strict JSON, atomic, and valid against robustcheck/record.schema.json."""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from pathlib import Path

import pytest
from report_fixtures import hostile_record, realistic_record

from robustcheck import record as rec
from robustcheck.figures import FIGURES, GradientMaskingFigures, RobustAccuracyFigures
from robustcheck.report import write_reports
from robustcheck.report.json_report import (
    RecordValidationError,
    dumps,
    json_ready,
    load_schema,
    validate,
    validation_errors,
    write_json,
)
from robustcheck.typed_data import PlainDataError

V1_RECORD = Path(__file__).parent / "data" / "record-v1.json"

jsonschema = pytest.importorskip("jsonschema")


def test_written_record_validates_and_round_trips(tmp_path):
    record = realistic_record(tmp_path)
    path = write_json(record, tmp_path / "reports" / "robustcheck.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert validation_errors(data) == []
    jsonschema.Draft202012Validator.check_schema(load_schema())
    again = rec.load_record(path)
    assert json_ready(again) == json_ready(record)
    assert again == record
    assert again.models[1].findings[0].severity == "error"
    assert [m.name for m in again.models] == ["baseline", "distilled", "distilled-softmax"]


def test_nan_and_infinity_are_written_as_null(tmp_path):
    record = realistic_record(tmp_path)
    attack = record.models[0].attacks[0]
    attack.success_rate = float("nan")
    attack.min_distances[:2] = [float("inf"), float("nan")]
    attack.distortion[0].mean = float("-inf")
    record.models[0].counterexamples[0].distances["l2"] = float("inf")
    record.models[0].items[0].figures.clean_accuracy = float("nan")
    path = write_json(record, tmp_path / "r.json")
    text = path.read_text(encoding="utf-8")
    for token in ("NaN", "Infinity"):
        assert token not in text
    data = json.loads(text)
    a = data["models"][0]["attacks"][0]
    assert a["success_rate"] is None and a["min_distances"][:2] == [None, None]
    assert a["distortion"][0]["mean"] is None
    assert data["models"][0]["counterexamples"][0]["distances"]["l2"] is None
    assert validation_errors(data) == []
    json.loads(dumps(record), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


def test_numpy_values_become_plain_json(tmp_path):
    np = pytest.importorskip("numpy")
    record = realistic_record(tmp_path)
    record.models[0].attacks[0].params.update(count=np.int64(3), acc=np.float32(0.5), arr=np.arange(3),
                                              bad=np.float64("nan"))
    data = json.loads(write_json(record, tmp_path / "r.json").read_text())
    assert data["models"][0]["attacks"][0]["params"] == {**data["models"][0]["attacks"][0]["params"],
                                                         "count": 3, "acc": 0.5, "arr": [0, 1, 2], "bad": None}


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d.update(schema_version=3), "schema_version"),
    (lambda d: d.update(verdict="fine"), "run verdict"),
    (lambda d: d["models"][0]["items"][2].update(figures={"attack": "cw-l2"}), "figures of the item's kind"),
    (lambda d: d["models"][0]["items"][1]["figures"].update(clean_accuracy=3), "clean_accuracy"),
    (lambda d: d.pop("run"), "run"),
    (lambda d: d["models"][0]["items"][0].update(verdict="maybe"), "verdict"),
    (lambda d: d["models"][1]["findings"][0].update(severity="fatal"), "severity"),
    (lambda d: d["models"][0]["attacks"][0].update(success_rate=1.5), "success_rate"),
    (lambda d: d["models"][0]["attacks"][0].update(min_distances=["far"]), "min_distances"),
    (lambda d: d["models"][0]["counterexamples"][0].pop("npz"), "npz"),
    (lambda d: d["models"][0].update(sha256="not-a-hash"), "sha256"),
    (lambda d: d["baseline"][0].update(regressed="yes"), "regressed"),
    (lambda d: d["run"].update(seed="zero"), "seed"),
])
def test_invalid_records_fail_validation(tmp_path, mutate, where):
    data = json_ready(realistic_record(tmp_path))
    mutate(data)
    errors = validation_errors(data)
    assert errors, f"schema accepted a record with a bad {where}"
    with pytest.raises(RecordValidationError, match="does not match record.schema.json"):
        validate(data)


def test_invalid_record_is_not_written(tmp_path):
    record = realistic_record(tmp_path)
    target = tmp_path / "robustcheck.json"
    target.write_text('{"old": true}')
    record.models[0].items[0].verdict = "bogus"  # type: ignore[assignment]
    with pytest.raises(RecordValidationError, match=r"verdict"):
        write_json(record, target)
    assert json.loads(target.read_text()) == {"old": True}  # the previous file is untouched


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path):
    record = realistic_record(tmp_path)
    target = tmp_path / "out" / "robustcheck.json"
    write_json(record, target)
    first = target.read_text()
    record.models[0].clean_accuracy = 0.5
    write_json(record, target)
    assert target.read_text() != first
    assert sorted(p.name for p in target.parent.iterdir()) == ["robustcheck.json"]


def _record_classes() -> set[type]:
    """Every dataclass reachable from RunRecord and ItemOutcome through type hints (figures included)."""
    seen: set[type] = set()
    todo: list[typing.Any] = [rec.RunRecord, rec.ItemOutcome, *FIGURES.values()]
    while todo:
        hint = todo.pop()
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            if hint not in seen:
                seen.add(hint)
                todo += typing.get_type_hints(hint).values()
        else:
            todo += typing.get_args(hint)
    return seen


def _refs(node: typing.Any) -> set[str]:
    if isinstance(node, dict):
        out = {node["$ref"].split("/")[-1]} if "$ref" in node else set()
        for value in node.values():
            out |= _refs(value)
        return out
    if isinstance(node, list):
        return set().union(*map(_refs, node)) if node else set()
    return set()


def test_schema_and_dataclasses_are_in_step():
    """Every record dataclass has a $defs entry of its name with exactly its fields (and derived
    properties), all required; a field holding dataclasses refers to their $defs; every item kind's
    figures class is the one the schema names for that kind."""
    schema = load_schema()
    defs = schema["$defs"]
    for cls in _record_classes() - {rec.ItemOutcome, rec.ModelInfo}:  # transport only, not in the file
        sub = schema if cls is rec.RunRecord else defs[cls.__name__]
        names = {f.name for f in dataclasses.fields(cls)} | set(getattr(cls, "__derived__", ()))
        assert set(sub["properties"]) == names, cls.__name__
        assert set(sub["required"]) == names, cls.__name__
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            nested = {c.__name__ for c in _record_classes() if c.__name__ in str(hints[f.name])}
            if f.name != "figures":
                assert _refs(sub["properties"][f.name]) - {"number", "fraction", "count", "verdict", "severity",
                                                           "norm", "plain"} == nested, (cls.__name__, f.name)
    kinds = {rule["if"]["properties"]["kind"]["const"]: _refs(rule["then"]) for rule in defs["ItemRecord"]["allOf"]}
    assert kinds == {kind: {cls.__name__} for kind, cls in FIGURES.items()}
    assert schema["properties"]["schema_version"]["const"] == rec.SCHEMA_VERSION


def test_record_rebuilds_from_json_by_type_hints(tmp_path):
    record = realistic_record(tmp_path)
    again = rec.RunRecord.from_json(dumps(record))
    assert again == record
    masking = next(i for i in again.models[1].items if i.kind == "gradient-masking")
    assert isinstance(masking.figures, GradientMaskingFigures) and masking.figures.errors == 2
    assert again.to_dict()["verdict"] == record.verdict == "failed"


def test_unknown_keys_are_ignored_and_wrong_types_named(tmp_path):
    data = json_ready(realistic_record(tmp_path))
    data["future_key"] = 1
    data["models"][0]["items"][0]["figures"]["future_figure"] = 2.5
    data["models"][0]["items"].append({**data["models"][0]["items"][0], "kind": "some-future-kind",
                                       "figures": {"anything": 1}})
    again = rec.RunRecord.from_dict(data)
    assert again.models[0].items[-1].figures is None  # a kind this version does not know
    k, clean = next((k, i) for k, i in enumerate(data["models"][0]["items"]) if i["kind"] == "clean-accuracy")
    clean["figures"]["clean_accuracy"] = "high"
    with pytest.raises(PlainDataError, match=rf"models\[0\]\.items\[{k}\]\.figures\.clean_accuracy: expected a number"):
        rec.RunRecord.from_dict(data)
    del clean["figures"]["clean_accuracy"]
    with pytest.raises(PlainDataError, match="missing key 'clean_accuracy'"):
        rec.RunRecord.from_dict(data)
    with pytest.raises(PlainDataError, match="schema version 7"):
        rec.RunRecord.from_dict({**data, "schema_version": 7})


def test_item_outcome_round_trips_as_plain_json(tmp_path):
    record = realistic_record(tmp_path)
    model = record.models[1]
    info = rec.ModelInfo(**{f.name: getattr(model, f.name) for f in dataclasses.fields(rec.ModelInfo)})
    outcome = rec.ItemOutcome(item=model.items[2], model=info, attacks=model.attacks[:1],
                              counterexamples=model.counterexamples[:2], findings=model.findings,
                              baseline=record.baseline[:1])
    data = json.loads(json.dumps(outcome.to_dict()))  # what execnet can carry
    assert rec.ItemOutcome.from_dict(data) == outcome


def test_version_1_records_are_read_for_baselines():
    record = rec.load_record(V1_RECORD)
    assert record.schema_version == rec.SCHEMA_VERSION
    figures = {(m.name, i.name): i.figures for m in record.models for i in m.items}
    gate = figures[("baseline", "robust-accuracy[cw-l2@1]")]
    assert isinstance(gate, RobustAccuracyFigures) and gate.robust_accuracy == 0.71875 and not gate.targeted
    masking = figures[("distilled", "gradient-masking")]
    assert isinstance(masking, GradientMaskingFigures)
    assert masking.findings == ["vanishing-softmax-gradients", "weak-vs-strong"]
    assert record.models[2].spec is not None and record.models[2].spec.output.kind == "cut-softmax"
    assert validation_errors(json_ready(record)) == []


def test_hostile_text_is_still_valid_json(tmp_path):
    data = json.loads(write_json(hostile_record(tmp_path), tmp_path / "h.json").read_text(encoding="utf-8"))
    assert "<script>" in data["models"][0]["name"]  # kept verbatim: escaping is the HTML view's job


def test_write_reports_writes_json_then_html(tmp_path):
    record = realistic_record(tmp_path)
    write_reports(record, tmp_path / "reports" / "robustcheck.json", tmp_path / "reports" / "robustcheck.html")
    assert validation_errors(json.loads((tmp_path / "reports" / "robustcheck.json").read_text())) == []
    assert (tmp_path / "reports" / "robustcheck.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_json_ready_keeps_finite_values():
    data = json_ready({"a": [1.5, math.inf, -0.0], "b": {"c": None, "d": True}})
    assert data == {"a": [1.5, None, -0.0], "b": {"c": None, "d": True}}
