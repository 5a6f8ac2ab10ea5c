"""The JSON report: strict JSON, atomic, and valid against robustcheck/record.schema.json."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from report_fixtures import hostile_record, realistic_record
from robustcheck import record as rec
from robustcheck.report import write_reports
from robustcheck.report.json_report import (
    RecordValidationError, dumps, load_schema, to_plain, validate, validation_errors, write_json,
)

jsonschema = pytest.importorskip("jsonschema")


def test_written_record_validates_and_round_trips(tmp_path):
    record = realistic_record(tmp_path)
    path = write_json(record, tmp_path / "reports" / "robustcheck.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert validation_errors(data) == []
    jsonschema.Draft202012Validator.check_schema(load_schema())
    again = rec.load_record(path)
    assert again.to_dict() == to_plain(record)
    assert again.models[1].findings[0].severity == "error"
    assert [m.name for m in again.models] == ["baseline", "distilled", "distilled-softmax"]


def test_nan_and_infinity_are_written_as_null(tmp_path):
    record = realistic_record(tmp_path)
    attack = record.models[0].attacks[0]
    attack.success_rate = float("nan")
    attack.min_distances[:2] = [float("inf"), float("nan")]
    attack.distortion[0].mean = float("-inf")
    record.models[0].counterexamples[0].distances["l2"] = float("inf")
    record.models[0].items[0].figures["ratio"] = float("nan")
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
    record.models[0].items[0].figures.update(count=np.int64(3), acc=np.float32(0.5), arr=np.arange(3),
                                             bad=np.float64("nan"))
    data = json.loads(write_json(record, tmp_path / "r.json").read_text())
    assert data["models"][0]["items"][0]["figures"] == {**data["models"][0]["items"][0]["figures"],
                                                        "count": 3, "acc": 0.5, "arr": [0, 1, 2], "bad": None}


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d.update(schema_version=2), "schema_version"),
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
    data = to_plain(realistic_record(tmp_path))
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


def test_schema_covers_every_record_field():
    """record.py and record.schema.json must change together: every field is described and required."""
    schema = load_schema()
    defs = schema["$defs"]
    pairs = {rec.RunRecord: schema, rec.RunInfo: defs["run"], rec.ModelRecord: defs["model"],
             rec.ItemRecord: defs["item"], rec.AttackRecord: defs["attack"], rec.Distortion: defs["distortion"],
             rec.CurvePoint: defs["curvePoint"], rec.Counterexample: defs["counterexample"],
             rec.FindingRecord: defs["finding"], rec.BaselineDelta: defs["baselineDelta"]}
    for cls, sub in pairs.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(sub["properties"]) == fields, cls.__name__
        assert set(sub["required"]) == fields, cls.__name__
    assert schema["properties"]["schema_version"]["const"] == rec.SCHEMA_VERSION


def test_hostile_text_is_still_valid_json(tmp_path):
    data = json.loads(write_json(hostile_record(tmp_path), tmp_path / "h.json").read_text(encoding="utf-8"))
    assert "<script>" in data["models"][0]["name"]  # kept verbatim: escaping is the HTML view's job


def test_write_reports_writes_json_then_html(tmp_path):
    record = realistic_record(tmp_path)
    write_reports(record, tmp_path / "reports" / "robustcheck.json", tmp_path / "reports" / "robustcheck.html")
    assert validation_errors(json.loads((tmp_path / "reports" / "robustcheck.json").read_text())) == []
    assert (tmp_path / "reports" / "robustcheck.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_to_plain_keeps_finite_values():
    data = to_plain({"a": [1.5, math.inf, -0.0], "b": {"c": None, "d": True}})
    assert data == {"a": [1.5, None, -0.0], "b": {"c": None, "d": True}}
