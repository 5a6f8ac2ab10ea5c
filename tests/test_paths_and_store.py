"""File names from model/property names, atomic writes, and the counterexample store's validation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robustcheck.paths import safe_name, write_atomic
from robustcheck.store import MAX_KEPT, CounterexampleStore, StoredExample

SHA = "ab" * 32


@pytest.mark.parametrize("name", ["baseline", "distilled-softmax", "gradient-masking", "model_v2.1", "a@b"])
def test_plain_names_are_kept(name: str) -> None:
    assert safe_name(name) == name


@given(st.text(min_size=0, max_size=200))
def test_any_name_is_one_safe_path_part(name: str) -> None:
    part = safe_name(name)
    assert part and "/" not in part and "\\" not in part and "\x00" not in part
    assert part not in (".", "..") and not part.startswith(".")
    assert len(part) <= 100
    assert Path("root", part).resolve().parent == Path("root").resolve()


@given(st.text(max_size=30), st.text(max_size=30))
def test_different_names_never_share_a_file(a: str, b: str) -> None:
    if a != b:
        assert safe_name(a) != safe_name(b)


def test_names_that_clean_to_the_same_text_stay_apart() -> None:
    names = ["a b", "a_b", "a/b", "..", "__", ".", "robust[cw-l2@1]", "robust_cw-l2@1_"]
    assert len({safe_name(n) for n in names}) == len(names)


def test_write_atomic_keeps_the_old_file_when_the_write_fails(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "out" / "x.npz"
    write_atomic(target, b"old")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, b"new content")
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["x.npz"]  # no temporary file left


def _store(tmp_path: Path, rows: object) -> CounterexampleStore:
    store = CounterexampleStore(tmp_path)
    path = store.path("toy", "robust[cw-l2@1]")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rows if isinstance(rows, str) else json.dumps(rows))
    return store


def _entry(**changes: object) -> dict:
    return {"dataset_index": 3, "target_offset": 0, "seed": 7, "model_sha256": SHA, **changes}


@pytest.mark.parametrize(("bad", "problem"), [
    (_entry(seed="abc"), "seed must be an integer, got 'abc'"),
    (_entry(seed=1e300), "seed must be an integer, got 1e+300"),
    (_entry(seed=2**32), "seed must be in [0, 4294967296)"),
    (_entry(seed=-1), "seed must be in [0, 4294967296)"),
    (_entry(dataset_index=[1, 2]), "dataset_index must be an integer, got [1, 2]"),
    (_entry(dataset_index=100), "dataset_index must be in [0, 100)"),
    (_entry(dataset_index=True), "dataset_index must be an integer, got True"),
    (_entry(target_offset=10), "target_offset must be in [0, 10)"),
    (_entry(model_sha256="xyz"), "model_sha256 must be 64 lowercase hex digits"),
    ({"dataset_index": 3}, "missing target_offset, seed, model_sha256"),
    ("not an object", "expected an object"),
])
def test_damaged_entries_are_skipped_and_reported(tmp_path: Path, bad: object, problem: str) -> None:
    store = _store(tmp_path, [bad, _entry(dataset_index=4)])
    loaded = store.load("toy", "robust[cw-l2@1]", dataset_size=100, classes=10)
    assert loaded.entries == [StoredExample(4, 0, 7, SHA)]
    assert len(loaded.skipped) == 1 and f"entry 0 skipped: {problem}" in loaded.skipped[0]


@pytest.mark.parametrize("text", ["{not json", '{"a": 1}', "[1, 2", ""])
def test_unreadable_store_files_are_reported(tmp_path: Path, text: str) -> None:
    loaded = _store(tmp_path, text).load("toy", "robust[cw-l2@1]", dataset_size=100, classes=10)
    assert loaded.entries == [] and len(loaded.skipped) == 1


def test_loading_is_capped_at_the_newest_entries(tmp_path: Path) -> None:
    rows = [_entry(dataset_index=i % 100, seed=i) for i in range(5000)]
    store = _store(tmp_path, rows)
    loaded = store.load("toy", "robust[cw-l2@1]", dataset_size=100, classes=10)
    assert [e.seed for e in loaded.entries] == list(range(MAX_KEPT))
    assert loaded.skipped == [f"{store.path('toy', 'robust[cw-l2@1]')}: {5000 - MAX_KEPT} entries beyond the "
                              f"newest {MAX_KEPT} not replayed"]
    store.save("toy", "robust[cw-l2@1]", StoredExample(5, 1, 99, SHA), dataset_size=100, classes=10)
    again = store.load("toy", "robust[cw-l2@1]", dataset_size=100, classes=10)
    assert again.entries[0] == StoredExample(5, 1, 99, SHA) and len(again.entries) == MAX_KEPT and not again.skipped


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_entries = st.lists(st.fixed_dictionaries({}, optional={
    "dataset_index": _json | st.integers(-5, 200), "target_offset": _json | st.integers(-2, 12),
    "seed": _json | st.integers(-5, 2**33), "model_sha256": _json | st.just(SHA),
}) | _json, max_size=30)


@settings(max_examples=200, deadline=None)
@given(rows=_entries | _json)
def test_random_store_json_is_skipped_and_reported_never_raised(tmp_path_factory, rows: object) -> None:
    store = _store(tmp_path_factory.mktemp("store"), json.dumps(rows))
    loaded = store.load("toy", "robust[cw-l2@1]", dataset_size=100, classes=10)
    for e in loaded.entries:
        assert 0 <= e.dataset_index < 100 and 0 <= e.target_offset < 10 and 0 <= e.seed < 2**32
        assert isinstance(e.model_sha256, str) and len(e.model_sha256) == 64
    total = len(rows) if isinstance(rows, list) else 1
    assert len(loaded.entries) + len(loaded.skipped) <= total + 1
    assert all("\n" not in line for line in loaded.skipped)
