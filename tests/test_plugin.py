"""The pytest plugin, driven through pytester on a small real suite (tests/toy_suite.py).

Every run is a subprocess: pytester's in-process runs restore sys.modules afterwards, and
torch does not survive being imported twice in one process.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from toy_suite import write_suite

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


SMOKE = ("--robustcheck", "models", "--robustcheck-profile", "smoke", "-p", "no:cacheprovider")


def _record(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / "reports" / "robustcheck.json").read_text())


def _verdicts(record: dict) -> dict[str, str]:
    return {i["nodeid"]: i["verdict"] for m in record["models"] for i in m["items"]}


def test_plain_pytest_ignores_onnx_files_and_does_not_import_torch(pytester: pytest.Pytester) -> None:
    write_suite(pytester.path / "models")
    pytester.makepyfile(test_plain="""
        import sys

        def test_light():
            assert "torch" not in sys.modules
            assert "onnxruntime" not in sys.modules
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "toy.onnx" not in result.stdout.str()


def test_collects_one_item_per_claim(pytester: pytest.Pytester) -> None:
    write_suite(pytester.path / "models", robust_eps=0.01, gate_eps=0.02)
    result = pytester.runpytest_subprocess("--robustcheck", "models", "--collect-only", "-q")
    out = result.stdout.str()
    for name in ("toy.onnx::clean-accuracy", "toy.onnx::robust[cw-l2@0.01]",
                 "toy.onnx::robust-accuracy[cw-l2@0.02]", "toy.onnx::gradient-masking"):
        assert name in out, out
    selected = pytester.runpytest_subprocess("--robustcheck", "models", "--collect-only", "-q", "-k", "robust-accuracy")
    assert "robust-accuracy[cw-l2@0.02]" in selected.stdout.str()
    assert "clean-accuracy" not in selected.stdout.str()


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ("[defaults]\nsampels = 3\n", "unknown key 'defaults.sampels'"),
        ("[defaults]\nsamples = 'many'\n", "'defaults.samples' must be a positive integer"),
        ("[defaults]\ndataset = 'missing.npz'\n", "missing.npz, which does not exist"),
        ("[[defaults.check]]\ntype = 'robust'\nattack = 'cw-l9'\nepsilon = 1\n",
         "'defaults.check[0].attack' must be one of"),
        ("[defaults\n", "invalid TOML"),
        ("[[defaults.check]]\ntype = 'robust-accuracy'\nattack = 'cw-l2'\nepsilon = nan\nmin = 1.0\n",
         "'defaults.check[0].epsilon' must be a positive finite number, got nan"),
    ],
)
def test_config_errors_are_usage_errors(pytester: pytest.Pytester, toml: str, words: str) -> None:
    write_suite(pytester.path / "models", toml=toml)
    result = pytester.runpytest_subprocess("--robustcheck", "models")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert words in err and "robustcheck.toml" in err, err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "robustcheck.toml" in line]) == 1


def test_passing_suite_exits_zero_and_writes_reports(pytester: pytest.Pytester) -> None:
    write_suite(pytester.path / "models", robust_eps=1e-3, gate_eps=1e-3)
    result = pytester.runpytest_subprocess(*SMOKE)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    record = _record(pytester)
    assert set(_verdicts(record).values()) == {"passed"}
    model = record["models"][0]
    assert model["clean_accuracy"] > 0.9 and len(model["sha256"]) == 64
    assert (pytester.path / "reports" / "robustcheck.html").is_file()


def test_failing_gate_exits_one_with_a_counterexample_and_no_traceback(pytester: pytest.Pytester) -> None:
    write_suite(pytester.path / "models", robust_eps=5.0, gate_eps=5.0, gate_min=0.5)
    result = pytester.runpytest_subprocess(*SMOKE)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "robust[cw-l2@5] violated: sample 0" in out  # shrunk to the first sample
    assert "distances: L0" in out and "reproduce: pytest --robustcheck" in out
    assert "robust accuracy 0.0% under cw-l2" in out
    assert "Traceback" not in out and "def evaluate" not in out
    record = _record(pytester)
    saved = record["models"][0]["counterexamples"]
    assert saved and all(Path(c["npz"]).is_file() and Path(c["png"]).is_file() for c in saved)


def test_stored_counterexample_is_replayed_first(pytester: pytest.Pytester) -> None:
    write_suite(pytester.path / "models", robust_eps=5.0)
    args = ("--robustcheck", "models", "--robustcheck-profile", "smoke", "-p", "no:cacheprovider",
            "-k", "robust[")
    first = pytester.runpytest_subprocess(*args)
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    before = next(i for i in _record(pytester)["models"][0]["items"] if i["kind"] == "robust")
    assert before["figures"]["replayed"] == 0
    store = pytester.path / ".robustcheck" / "counterexamples" / "toy"
    assert list(store.glob("*.json"))
    shutil.rmtree(pytester.path / ".robustcheck" / "hypothesis")  # only robustcheck's own store remains
    second = pytester.runpytest_subprocess(*args)
    assert second.ret == pytest.ExitCode.TESTS_FAILED
    first_item = next(i for i in _record(pytester)["models"][0]["items"] if i["kind"] == "robust")
    assert first_item["figures"]["replayed"] == 1
    assert first_item["figures"]["first_failure_at"] == 1, "the stored counterexample ran first and failed"


def test_broken_model_fails_its_own_items_only(pytester: pytest.Pytester) -> None:
    folder = write_suite(pytester.path / "models", models=("good",))
    (folder / "broken.onnx").write_bytes(b"\x00garbage, not a model")
    result = pytester.runpytest_subprocess(*SMOKE)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "INTERNALERROR" not in out and "Traceback" not in out
    assert "broken.onnx: not a valid ONNX model" in out
    verdicts = _verdicts(_record(pytester))
    assert all(v == "passed" for k, v in verdicts.items() if k.startswith("models/good.onnx"))
    assert all(v in ("failed", "error") for k, v in verdicts.items() if k.startswith("models/broken.onnx"))


def test_dataset_that_does_not_fit_fails_that_model(pytester: pytest.Pytester) -> None:
    import numpy as np

    folder = write_suite(pytester.path / "models")
    np.savez(folder / "data.npz", x=np.zeros((10, 5), np.float32), y=np.zeros(10, np.int64))
    result = pytester.runpytest_subprocess(*SMOKE)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "do not fit input" in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_junit_xml_carries_key_figures(pytester: pytest.Pytester) -> None:
    write_suite(pytester.path / "models")
    pytester.runpytest_subprocess("--robustcheck", "models", "--robustcheck-profile", "smoke", "-p", "no:cacheprovider",
                       "--junitxml", "junit.xml")
    tree = ET.parse(pytester.path / "junit.xml")
    props = {p.get("name"): p.get("value") for p in tree.iter("property")}
    assert float(props["clean_accuracy"]) > 0.9
    assert "robust_accuracy" in props


def test_baseline_regression_fails_the_release_gate(pytester: pytest.Pytester) -> None:
    write_suite(pytester.path / "models", gate_eps=0.3, gate_min=0.0)
    args = ("--robustcheck", "models", "--robustcheck-profile", "smoke", "-p", "no:cacheprovider", "-k", "not robust[")
    assert pytester.runpytest_subprocess(*args).ret == pytest.ExitCode.OK
    baseline = _record(pytester)
    (pytester.path / "same.json").write_text(json.dumps(baseline))
    same = pytester.runpytest_subprocess(*args, "--robustcheck-baseline", "same.json")
    assert same.ret == pytest.ExitCode.OK, same.stdout.str()
    for model in baseline["models"]:
        for item in model["items"]:
            if item["kind"] == "robust-accuracy":
                item["figures"]["robust_accuracy"] = min(1.0, item["figures"]["robust_accuracy"] + 0.5)
    (pytester.path / "better.json").write_text(json.dumps(baseline))
    worse = pytester.runpytest_subprocess(*args, "--robustcheck-baseline", "better.json")
    assert worse.ret == pytest.ExitCode.TESTS_FAILED
    assert "regressed against the baseline" in worse.stdout.str()
    assert _record(pytester)["baseline"], "the comparison is part of the record"
    missing = pytester.runpytest_subprocess(*args, "--robustcheck-baseline", "nope.json")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR


def test_xdist_gives_the_serial_verdicts(pytester: pytest.Pytester) -> None:
    write_suite(pytester.path / "models", robust_eps=0.3, gate_eps=0.3, models=("a", "b"))
    base = ("--robustcheck", "models", "--robustcheck-profile", "smoke", "-p", "no:cacheprovider")
    serial = pytester.runpytest_subprocess(*base)
    serial_record = _record(pytester)
    parallel = pytester.runpytest_subprocess(*base, "-n", "2")
    assert parallel.ret == serial.ret
    parallel_record = _record(pytester)
    assert _verdicts(parallel_record) == _verdicts(serial_record)
    strip = lambda r: [{k: v for k, v in m.items() if k != "items"} for m in r["models"]]  # noqa: E731
    for m in parallel_record["models"] + serial_record["models"]:
        for a in m["attacks"]:
            a.pop("wall_time_s")
    assert strip(parallel_record) == strip(serial_record)


def _store_file(root: Path, model: str, prop: str) -> Path:
    from robustcheck.store import CounterexampleStore

    return CounterexampleStore(root).path(model, prop)


def test_sigint_reads_interrupted_everywhere(pytester: pytest.Pytester) -> None:
    """A real Ctrl-C after the first item: never PASSED, in the console, the JSON and the HTML."""
    import signal
    import subprocess
    import sys
    import time

    toml = ("[defaults]\ndataset = 'data.npz'\nsamples = 300\nmasking = 'warn'\n"
            "[[defaults.check]]\ntype = 'robust'\nattack = 'cw-l2'\nepsilon = 1e-4\ntargeted = true\n")
    write_suite(pytester.path / "models", toml=toml)
    record = pytester.path / "reports" / "robustcheck.json"
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "--robustcheck", "models", "--robustcheck-profile",
                             "thorough", "-p", "no:cacheprovider"], cwd=pytester.path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not record.is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)  # the clean-accuracy item has been recorded; the targeted property is running
    assert record.is_file() and proc.poll() is None, "the run ended before it could be interrupted"
    # Python may drop a KeyboardInterrupt that lands in a gc callback (it reports it as unraisable):
    # press Ctrl-C again, as a user would, until the run stops.
    for _ in range(10):
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=15)
            break
        except subprocess.TimeoutExpired:
            continue
    else:
        proc.kill()
        pytest.fail("the run did not stop on SIGINT")
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out[-2000:]
    assert "robustcheck: INTERRUPTED" in out and "robustcheck: PASSED" not in out, out[-2000:]
    data = json.loads(record.read_text())
    assert data["verdict"] == "interrupted" and data["run"]["interrupted"] is True
    assert [i["verdict"] for m in data["models"] for i in m["items"]] == ["passed"]  # what finished is kept
    html = (pytester.path / "reports" / "robustcheck.html").read_text()
    assert "robustcheck report — INTERRUPTED" in html
    assert '<span class="badge interrupted big">INTERRUPTED</span>' in html


def test_stopped_run_reads_incomplete(pytester: pytest.Pytester) -> None:
    write_suite(pytester.path / "models", robust_eps=5.0, gate_eps=1e-3)
    result = pytester.runpytest_subprocess("--robustcheck", "models", "--robustcheck-profile", "smoke",
                                           "-p", "no:cacheprovider", "-x")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "robustcheck: INCOMPLETE" in out, out
    data = _record(pytester)
    assert data["verdict"] == "incomplete" and data["run"]["items_collected"] == 4
    assert len(_verdicts(data)) == 2
    assert "robustcheck report — INCOMPLETE" in (pytester.path / "reports" / "robustcheck.html").read_text()


def test_internal_errors_are_one_line_and_stay_with_their_model(pytester: pytest.Pytester) -> None:
    """A fault deliberately injected into robustcheck for one model: that model's items error with one
    line, the other model passes, and the traceback appears only with --tb=long."""
    write_suite(pytester.path / "models", models=("good", "bad"))
    pytester.makeconftest("""
        from robustcheck.model_run import ModelRun

        original = ModelRun.attack_pool

        def broken(self, label, check=None):
            if self.name == "bad":
                raise RuntimeError("injected fault\\nsecond line")
            return original(self, label, check)

        ModelRun.attack_pool = broken
    """)
    args = ("--robustcheck", "models", "--robustcheck-profile", "smoke", "-p", "no:cacheprovider")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    line = ("internal error in robustcheck: RuntimeError: injected fault "
            "(run with --tb=long or -v for the traceback)")
    assert line in out and "Traceback" not in out and "_pytest" not in out and "second line" not in out, out
    record = _record(pytester)
    verdicts = _verdicts(record)
    assert all(v == "passed" for k, v in verdicts.items() if k.startswith("models/good.onnx"))
    bad = [i for m in record["models"] for i in m["items"] if m["name"] == "bad" and i["verdict"] == "error"]
    assert bad and all(i["message"] == line for i in bad)
    long = pytester.runpytest_subprocess(*args, "--tb=long")
    assert "raise RuntimeError" in long.stdout.str()
    assert all(i["message"] == line for m in _record(pytester)["models"] for i in m["items"] if i["verdict"] == "error")


def test_a_dataset_with_no_rows_fails_its_model_in_one_line(pytester: pytest.Pytester) -> None:
    import numpy as np

    folder = write_suite(pytester.path / "models")
    np.savez(folder / "data.npz", x=np.zeros((0, 8), np.float32), y=np.zeros(0, np.int64))
    result = pytester.runpytest_subprocess("--robustcheck", "models", "--robustcheck-profile", "smoke",
                                           "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out, out
    assert set(_verdicts(_record(pytester)).values()) == {"error"}


def test_damaged_store_entries_are_skipped_and_reported(pytester: pytest.Pytester) -> None:
    write_suite(pytester.path / "models", robust_eps=1e-3)
    store = _store_file(pytester.path / ".robustcheck", "toy", "robust[cw-l2@0.001]")
    store.parent.mkdir(parents=True)
    sha = "0" * 64
    store.write_text(json.dumps([
        {"dataset_index": 0, "target_offset": 0, "seed": "abc", "model_sha256": sha},
        {"dataset_index": 0, "target_offset": 0, "seed": 1e300, "model_sha256": sha},
        {"dataset_index": [1, 2], "target_offset": 0, "seed": 0, "model_sha256": sha},
        {"dataset_index": 1, "target_offset": 0, "seed": 0, "model_sha256": sha},
    ]))
    result = pytester.runpytest_subprocess("--robustcheck", "models", "--robustcheck-profile", "smoke",
                                           "-p", "no:cacheprovider", "-k", "robust[")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    out = result.stdout.str()
    assert "entry 0 skipped: seed must be an integer, got 'abc'" in out, out
    item = next(i for m in _record(pytester)["models"] for i in m["items"] if i["kind"] == "robust")
    assert len(item["figures"]["store_warnings"]) == 3 and item["figures"]["replayed"] == 1


def test_model_stems_cannot_escape_or_collide_and_stale_files_go(pytester: pytest.Pytester) -> None:
    folder = write_suite(pytester.path / "models", robust_eps=5.0, gate_eps=5.0, models=("..",))
    assert (folder / "...onnx").is_file()
    args = ("--robustcheck", "models", "--robustcheck-profile", "smoke", "-p", "no:cacheprovider")
    assert pytester.runpytest_subprocess(*args).ret == pytest.ExitCode.TESTS_FAILED
    reports = pytester.path / "reports"
    assert sorted(p.name for p in reports.iterdir()) == ["counterexamples", "robustcheck.html", "robustcheck.json"]
    (saved,) = (reports / "counterexamples").iterdir()
    assert saved.name not in ("..", ".")
    assert any(saved.glob("*.npz"))
    (stored,) = (pytester.path / ".robustcheck" / "counterexamples").iterdir()
    assert stored.name == saved.name
    # A later passing run of the same model leaves no counterexample file of the earlier run behind.
    config = folder / "robustcheck.toml"
    config.write_text(config.read_text().replace("epsilon = 5.0", "epsilon = 0.001"))
    assert pytester.runpytest_subprocess(*args).ret == pytest.ExitCode.OK
    assert not any(saved.iterdir())


def test_a_crashed_worker_makes_the_run_incomplete(pytester: pytest.Pytester) -> None:
    """A worker killed mid-item (os._exit, as an OOM kill would) leaves that item unrecorded: INCOMPLETE."""
    write_suite(pytester.path / "models", models=("a", "b"))
    pytester.makeconftest("""
        import os

        from robustcheck.session import RobustcheckSession

        original = RobustcheckSession.findings

        def crash(self, run):
            if run.name == "b":
                os._exit(3)
            return original(self, run)

        RobustcheckSession.findings = crash
    """)
    result = pytester.runpytest_subprocess(*SMOKE, "-n", "2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "crashed" in out and "robustcheck: INCOMPLETE" in out, out
    data = _record(pytester)
    assert data["verdict"] == "incomplete" and data["run"]["items_collected"] == 8
    assert "models/b.onnx::gradient-masking" not in _verdicts(data)
