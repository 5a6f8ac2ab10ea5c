"""A sharded run merged (`python -m robustcheck merge`) equals the unsharded run: verdicts and figures.

One model and two shards, so the model's samples are split between the jobs (the harder case:
a model-level split only copies records). Real runs of the toy suite, in subprocesses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustcheck.__main__ import main as robustcheck_main
from robustcheck.cli import merge
from tests.toy_suite import write_suite

TOML = """
[defaults]
dataset = "data.npz"
samples = 16
min_clean_accuracy = 0.9
masking = "warn"

[defaults.attacks.cw-l2]
batch_size = 4                      # 4 blocks: the two shards attack two each

# C&W's minimal L2 distances on this suite span 0.18-0.44: one row breaks within 0.2, half within 0.3.
[[defaults.check]]
type = "robust"
attack = "cw-l2"
epsilon = 0.2

[[defaults.check]]
type = "robust-accuracy"
attack = "cw-l2"
epsilon = 0.3
min = 0.6
"""

ARGS = ("--robustcheck", "models", "--robustcheck-profile", "smoke", "-p", "no:cacheprovider")


def _run(pytester: pytest.Pytester, report: str, *extra: str) -> dict:
    pytester.runpytest_subprocess(*ARGS, "--robustcheck-report", report, *extra)
    return json.loads((pytester.path / report / "robustcheck.json").read_text())


def _items(record: dict) -> dict[str, dict]:
    return {i["nodeid"]: i for m in record["models"] for i in m["items"]}


def test_two_shards_merged_equal_the_unsharded_run(pytester: pytest.Pytester,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    write_suite(pytester.path / "models", toml=TOML)
    whole = _run(pytester, "whole")
    parts = [_run(pytester, f"shard{k}", "--robustcheck-shard", f"{k}/2") for k in (1, 2)]
    assert [p["run"]["shard"] for p in parts] == ["1/2", "2/2"]
    assert [p["models"][0]["share"] for p in parts] == ["0/2", "1/2"]
    # Each part attacks its own blocks only, and leaves the claims over rows to the merge.
    sizes = [next(a for a in p["models"][0]["attacks"] if a["attack"] == "cw-l2")["samples"] for p in parts]
    pool = next(a for a in whole["models"][0]["attacks"] if a["attack"] == "cw-l2")["samples"]
    assert 0 < min(sizes) and sum(sizes) == pool
    assert any(i["verdict"] == "skipped" and "merge" in i["message"] for i in _items(parts[1]).values())

    out = pytester.path / "merged"
    capsys.readouterr()  # the runs' own output
    code = robustcheck_main(["merge", str(pytester.path / "shard1" / "robustcheck.json"),
                             str(pytester.path / "shard2" / "robustcheck.json"), "--out", str(out)])
    printed = capsys.readouterr().out
    merged = json.loads((out / "robustcheck.json").read_text())
    assert (out / "robustcheck.html").is_file()
    assert code == 1  # both robustness claims fail, in one merged report
    assert "FAILED models/toy.onnx::robust-accuracy" in printed and "robust accuracy 50.0%" in printed

    mine, theirs = _items(merged), _items(whole)
    assert mine.keys() == theirs.keys()
    assert sorted(i["verdict"] for i in theirs.values()) == ["failed", "failed", "passed", "passed"]
    for nodeid, item in theirs.items():
        assert mine[nodeid]["verdict"] == item["verdict"], nodeid
        if item["kind"] in ("clean-accuracy", "robust-accuracy"):
            assert mine[nodeid]["figures"] == item["figures"], nodeid
        if item["kind"] == "robust":  # the same first broken row, whichever job attacked it
            for key in ("pool", "sample", "dataset_index", "distances", "counterexamples_found"):
                assert mine[nodeid]["figures"][key] == item["figures"][key], key
    model, unsharded = merged["models"][0], whole["models"][0]
    assert model["share"] is None and model["clean_accuracy"] == unsharded["clean_accuracy"]
    keep = ("samples", "success_rate", "distortion", "min_distances", "curve")
    assert [{k: a[k] for k in keep} for a in model["attacks"]] == [{k: a[k] for k in keep} for a in
                                                                    unsharded["attacks"]]
    assert merged["run"]["items_collected"] == whole["run"]["items_collected"]
    for c in model["counterexamples"]:
        assert Path(c["npz"]).is_file() and Path(c["npz"]).is_relative_to(out)

    # A missing shard is one clear line, not a half-merged report.
    assert merge.main([str(pytester.path / "shard1" / "robustcheck.json"), "--out", str(pytester.path / "x")]) == 2
    assert "shard(s) 2/2 missing" in capsys.readouterr().err
