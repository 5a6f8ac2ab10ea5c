"""The run's state: options, configs, model runs, and the record built from item reports.

One `RobustcheckSession` is registered as a pytest plugin when `--robustcheck` is given.
Items leave a plain-data payload on their test report; xdist ships reports to the
controller, which alone merges payloads into the `RunRecord` and writes the reports.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from robustcheck import __version__
from robustcheck.config import CONFIG_NAME, ModelConfig, SuiteConfig, find_config_files, load_suite_config
from robustcheck.errors import ConfigError
from robustcheck.profiles import PROFILES, Profile
from robustcheck.record import (
    AttackRecord, BaselineDelta, Counterexample, FindingRecord, ItemRecord, ModelRecord, RunInfo, RunRecord, _build,
    load_record,
)
from robustcheck.store import CounterexampleStore


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
            except (ValueError, TypeError, KeyError) as exc:
                raise pytest.UsageError(f"{self.baseline_path}: not a robustcheck record ({exc})") from None
        self.is_worker = hasattr(config, "workerinput")
        self._suites: dict[tuple[Path, ...], SuiteConfig] = {}
        self._runs: dict[Path, Any] = {}
        self._findings: dict[Path, list[Any]] = {}
        self.models: dict[str, ModelRecord] = {}
        self.deltas: list[BaselineDelta] = []
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
    def model_run(self, path: Path) -> Any:
        if path not in self._runs:
            from robustcheck.model_run import ModelRun

            self._runs[path] = ModelRun(path, self.model_config(path), self.profile, self.seed, self.report_dir)
        return self._runs[path]

    def model_info(self, run: Any) -> dict[str, Any]:
        info: dict[str, Any] = {"config": run.config.to_dict()}
        model = run.model
        info.update(sha256=model.sha256, spec=run.spec(), samples=run.n_samples)
        return info

    def findings(self, run: Any) -> list[Any]:
        """The diagnostics for a model, computed once per process (masking and baseline items share them)."""
        if run.path not in self._findings:
            from robustcheck.diagnostics import diagnose

            self._findings[run.path] = diagnose(run.model, run.pool.x, run.pool.y, results=run.all_results(),
                                                budget=self.profile.diagnose, seed=self.seed)
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
        payload = getattr(item, "payload", None)
        if call.when == "call" and payload is not None and hasattr(item, "record"):
            verdict = report.outcome if report.outcome != "failed" else "failed"
            message = ""
            if report.failed:
                message = str(report.longrepr)
                if call.excinfo is not None and not isinstance(call.excinfo.value, AssertionError) \
                        and "Error" in type(call.excinfo.value).__name__:
                    verdict = "error"
            report.robustcheck = item.record(verdict, message)  # type: ignore[attr-defined]
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payload = getattr(report, "robustcheck", None)
        if payload is None or self.is_worker:
            return
        self._merge(payload)
        self._write_json(interrupted=True)

    def _merge(self, payload: dict[str, Any]) -> None:
        info = payload["model"]
        record = self.models.setdefault(info["name"], ModelRecord(name=info["name"], file=info["file"]))
        for key in ("sha256", "error", "spec", "config", "clean_accuracy", "samples"):
            if info.get(key) is not None and not getattr(record, key):
                setattr(record, key, info[key])
        record.items.append(_build(ItemRecord, payload["item"]))
        for data in payload["attacks"]:
            attack = _build(AttackRecord, data)
            same = [a for a in record.attacks if (a.attack, a.params, a.targeted) == (attack.attack, attack.params, attack.targeted)]
            if not same:
                record.attacks.append(attack)
        seen = {(c.property, c.sample_index, c.attack) for c in record.counterexamples}
        for data in payload["counterexamples"]:
            c = _build(Counterexample, data)
            if (c.property, c.sample_index, c.attack) not in seen:
                record.counterexamples.append(c)
                seen.add((c.property, c.sample_index, c.attack))
        ids = {f.id for f in record.findings}
        record.findings += [_build(FindingRecord, f) for f in payload["findings"] if f["id"] not in ids]
        self.deltas += [_build(BaselineDelta, d) for d in payload["baseline"]]

    def build_record(self, *, interrupted: bool) -> RunRecord:
        """The run's record, sorted so that serial and xdist runs give equal content."""
        models = sorted(self.models.values(), key=lambda m: m.name)
        for m in models:
            m.items.sort(key=lambda i: i.nodeid)
            m.attacks.sort(key=lambda a: (a.attack, a.targeted, str(sorted(a.params.items()))))
            m.counterexamples.sort(key=lambda c: (c.property, c.distances.get(c.norm, 0.0), c.sample_index))
            m.findings.sort(key=lambda f: ({"error": 0, "warning": 1}.get(f.severity, 2), f.id))
        info = RunInfo(
            robustcheck=__version__, versions=_versions(), profile=self.profile.name, seed=self.seed,
            machine={"platform": platform.platform(), "python": platform.python_version(),
                     "cpus": os.cpu_count() or 1, "machine": platform.machine()},
            started=self.started.isoformat(timespec="seconds"),
            finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            duration_s=round(time.perf_counter() - self._t0, 3),
            workers=int(getattr(self.config.option, "numprocesses", 0) or 0),
            interrupted=interrupted,
            config_files=sorted({f for s in self._suites.values() for f in s.files}),
            baseline_file=None if self.baseline_path is None else str(self.baseline_path),
            report_dir=str(self.report_dir),
        )
        deltas = sorted(self.deltas, key=lambda d: (d.model, d.metric))
        return RunRecord(run=info, models=models, baseline=deltas)

    def _write_json(self, *, interrupted: bool) -> RunRecord:
        """The record so far, rewritten after every item: an interrupted run leaves what finished."""
        from robustcheck.report.json_report import write_json

        record = self.build_record(interrupted=interrupted)
        write_json(record, self.record_path, check=False)
        return record

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            return
        interrupted = exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
        record = self.build_record(interrupted=interrupted)
        from robustcheck.report import write_reports

        write_reports(record, self.record_path, self.html_path)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or not self.models:
            return
        from robustcheck.report.console import make_console, render_summary

        config = self.config
        color = {"yes": True, "no": False}.get(config.getoption("color"), None)
        console = make_console(terminalreporter._tw, color=color, width=terminalreporter._tw.fullwidth,
                               quiet=config.getoption("verbose") < 0)
        terminalreporter.section("robustcheck")
        render_summary(self.build_record(interrupted=False), console=console, html_path=self.html_path)


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in ("torch", "onnxruntime", "onnx", "numpy", "hypothesis", "pytest"):
        try:
            from importlib.metadata import version

            out[name] = version(name)
        except Exception:
            out[name] = "unknown"
    return out
