"""The run's state: options, configs, model runs, and the record built from item reports.

One `RobustcheckSession` is registered as a pytest plugin when `--robustcheck` is given.
Each item's `ItemOutcome` travels on its test report as `outcome.to_dict()` (xdist ships
reports to the controller); the controller alone rebuilds the outcomes, assembles the
`RunRecord` from them and writes the reports.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from robustcheck import __version__
from robustcheck.config import CONFIG_NAME, ModelConfig, SuiteConfig, find_config_files, load_suite_config
from robustcheck.errors import ConfigError
from robustcheck.profiles import PROFILES, Profile
from robustcheck.record import (
    Finding,
    ItemOutcome,
    ModelInfo,
    ModelRecord,
    RunInfo,
    RunRecord,
    classify_outcome,
    load_record,
    severity_rank,
)
from robustcheck.store import CounterexampleStore
from robustcheck.typed_data import PlainDataError

if TYPE_CHECKING:
    from robustcheck.model_run import ModelRun


class RobustcheckSession:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.profile: Profile = PROFILES[config.getoption("robustcheck_profile")]
        self.seed: int = config.getoption("robustcheck_seed")
        self.rootdir = Path(config.rootpath)
        self.report_dir = self._path(config.getoption("robustcheck_report"))
        self.store = CounterexampleStore(self._path(config.getoption("robustcheck_store")))
        baseline = config.getoption("robustcheck_baseline")
        self.baseline_path = None if baseline is None else self._path(baseline)
        self.baseline: RunRecord | None = None
        if self.baseline_path is not None:
            try:
                self.baseline = load_record(self.baseline_path)
            except FileNotFoundError:
                raise pytest.UsageError(f"{self.baseline_path}: baseline record not found") from None
            except (PlainDataError, ValueError, UnicodeDecodeError) as exc:
                raise pytest.UsageError(f"{self.baseline_path}: not a robustcheck record ({exc})") from None
        self.is_worker = hasattr(config, "workerinput")
        self._suites: dict[tuple[Path, ...], SuiteConfig] = {}
        self._runs: dict[Path, ModelRun] = {}
        self._findings: dict[Path, list[Finding]] = {}
        self.outcomes: list[ItemOutcome] = []
        #: robustcheck items collected for the run (None until known); fewer outcomes = incomplete run.
        self.items_collected: int | None = None
        self.started = datetime.now(timezone.utc)
        self._t0 = time.perf_counter()
        self.record_path = self.report_dir / "robustcheck.json"
        self.html_path = self.report_dir / "robustcheck.html"

    def _path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else Path(self.config.invocation_params.dir) / path

    # -- configuration --------------------------------------------------------------------
    def validate_configs(self, args: list[str]) -> None:
        """Read every config file the run will use, so config errors are usage errors."""
        for arg in args:
            target = Path(arg.split("::")[0])
            if not target.is_absolute():
                target = Path(self.config.invocation_params.dir) / target
            if target.is_file() and target.suffix == ".onnx":
                self.suite_for(target)
            elif target.is_dir():
                # Every config file below the path, even one beside no model yet, and every model's.
                for found in sorted(target.rglob(CONFIG_NAME)):
                    self.suite_for(found.parent / CONFIG_NAME)
                for model in sorted(target.rglob("*.onnx")):
                    self.suite_for(model)

    def suite_for(self, model_path: Path) -> SuiteConfig:
        files = tuple(find_config_files(model_path, self.rootdir))
        if files not in self._suites:
            try:
                self._suites[files] = load_suite_config(list(files))
            except ConfigError as exc:
                raise pytest.UsageError(str(exc)) from None
        return self._suites[files]

    def model_config(self, model_path: Path) -> ModelConfig:
        return self.suite_for(model_path).for_model(model_path.stem)

    # -- per-model state ------------------------------------------------------------------
    def model_run(self, path: Path) -> ModelRun:
        if path not in self._runs:
            from robustcheck.model_run import ModelRun

            run = ModelRun(path, self.model_config(path), self.profile, self.seed, self.report_dir)
            run.clear_counterexamples()  # this run rewrites the model's folder: no stale files beside new ones
            self._runs[path] = run
        return self._runs[path]

    def model_info(self, run: ModelRun) -> ModelInfo:
        """Everything a record says about the model itself; raises when the model cannot be loaded."""
        model = run.model
        return ModelInfo(name=run.name, file=self.relpath(run.path), sha256=model.sha256, spec=model.spec(),
                         config=run.config.to_dict(), clean_accuracy=run.clean_accuracy, samples=run.n_samples)

    def findings(self, run: ModelRun) -> list[Finding]:
        """The diagnostics for a model, computed once per process (masking and baseline items share them)."""
        if run.path not in self._findings:
            from robustcheck.diagnostics import diagnose

            self._findings[run.path] = diagnose(run.model, run.pool.x, run.pool.y, results=run.all_results(),
                                                budget=self.profile.diagnostics, seed=self.seed)
        return self._findings[run.path]

    def relpath(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.rootdir.resolve()))
        except ValueError:
            return str(path)

    def reproduce_command(self, nodeid: str) -> str:
        parts = ["pytest", "--robustcheck", nodeid, f"--robustcheck-profile={self.profile.name}",
                 f"--robustcheck-seed={self.seed}"]
        if self.store.root != self._path(".robustcheck"):
            parts.append(f"--robustcheck-store={self.store.root}")
        return " ".join(shlex.quote(p) for p in parts)

    # -- pytest hooks ---------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        # The call phase, or a setup that failed or skipped (then there is no call phase).
        if hasattr(item, "outcome") and (call.when == "call" or (call.when == "setup" and not report.passed)):
            exc = None if call.excinfo is None else call.excinfo.value
            outcome = item.outcome(classify_outcome(report.outcome, exc), exc)
            report.robustcheck = outcome.to_dict()
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "robustcheck", None)
        if data is None or self.is_worker:
            return
        self.outcomes.append(ItemOutcome.from_dict(data))
        self._write_json(interrupted=True)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from robustcheck.items import RobustcheckItem

        self.items_collected = sum(isinstance(i, RobustcheckItem) for i in session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.config.option.dist == "loadgroup":
            node.workerinput["robustcheck_loadgroup"] = True

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        # The controller collects nothing itself; every worker reports the same collection.
        self.items_collected = sum(nodeid.split("::", 1)[0].endswith(".onnx") for nodeid in ids)

    def build_record(self, *, interrupted: bool) -> RunRecord:
        """The run's record, built from the outcomes so far; serial and xdist runs give equal content."""
        info = RunInfo(
            robustcheck=__version__, versions=_versions(), profile=self.profile.name, seed=self.seed,
            machine={"platform": platform.platform(), "python": platform.python_version(),
                     "cpus": os.cpu_count() or 1, "machine": platform.machine()},
            started=self.started.isoformat(timespec="seconds"),
            finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            duration_s=round(time.perf_counter() - self._t0, 3),
            workers=int(getattr(self.config.option, "numprocesses", 0) or 0),
            interrupted=interrupted,
            items_collected=self.items_collected,
            config_files=sorted({f for s in self._suites.values() for f in s.files}),
            baseline_file=None if self.baseline_path is None else str(self.baseline_path),
            report_dir=str(self.report_dir),
        )
        deltas = sorted((d for o in self.outcomes for d in o.baseline), key=lambda d: (d.model, d.metric))
        return RunRecord(run=info, models=assemble_models(self.outcomes), baseline=deltas)

    def _write_json(self, *, interrupted: bool) -> RunRecord:
        """The record so far, rewritten after every item: an interrupted run leaves what finished."""
        from robustcheck.report.json_report import write_json

        record = self.build_record(interrupted=interrupted)
        write_json(record, self.record_path, check=False)
        return record

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker or self.config.option.collectonly:
            return
        record = self.build_record(interrupted=_interrupted(exitstatus))
        from robustcheck.report import write_reports

        write_reports(record, self.record_path, self.html_path)

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int) -> None:
        if self.is_worker or not self.outcomes:
            return
        from robustcheck.report.console import render_summary
        from robustcheck.report.terminal import make_console

        config = self.config
        color = {"yes": True, "no": False}.get(config.getoption("color"), None)
        console = make_console(terminalreporter._tw, color=color, width=terminalreporter._tw.fullwidth,
                               quiet=config.getoption("verbose") < 0)
        terminalreporter.section("robustcheck")
        render_summary(self.build_record(interrupted=_interrupted(exitstatus)), console=console,
                       html_path=self.html_path)


def _interrupted(exitstatus: int) -> bool:
    return exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)


def assemble_models(outcomes: list[ItemOutcome]) -> list[ModelRecord]:
    """One record per model from its items' outcomes, sorted, the first of any duplicate kept."""
    by_model: dict[str, list[ItemOutcome]] = {}
    for outcome in sorted(outcomes, key=lambda o: o.item.nodeid):
        by_model.setdefault(outcome.model.name, []).append(outcome)
    models = []
    for name in sorted(by_model):
        group = by_model[name]
        infos = [o.model for o in group]
        # Every item reports the same model info; an item that could not load the model says why.
        info = next((i for i in infos if i.spec is not None), infos[0])
        error = next((i.error for i in infos if i.error), None)
        attacks = {(a.attack, json.dumps(a.params, sort_keys=True, default=str), a.targeted): a
                   for o in reversed(group) for a in o.attacks}
        counterexamples = {(c.property, c.sample_index, c.attack): c
                           for o in reversed(group) for c in o.counterexamples}
        findings = {f.id: f for o in reversed(group) for f in o.findings}
        models.append(ModelRecord(
            **{**vars(info), "error": error},
            items=[o.item for o in group],
            attacks=sorted(attacks.values(), key=lambda a: (a.attack, a.targeted, str(sorted(a.params.items())))),
            counterexamples=sorted(counterexamples.values(), key=lambda c: (c.property, c.distance, c.sample_index)),
            findings=sorted(findings.values(), key=lambda f: (severity_rank(f.severity), f.id)),
        ))
    return models


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in ("torch", "onnxruntime", "onnx", "numpy", "hypothesis", "pytest"):
        try:
            from importlib.metadata import version

            out[name] = version(name)
        except Exception:
            out[name] = "unknown"
    return out
