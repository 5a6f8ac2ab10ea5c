"""pytest11 entry module: options, collection of `*.onnx` files, xdist wiring.

Import-light on purpose: pytest imports this module in every run of every project where
robustcheck is installed, so it imports neither torch nor onnxruntime. The heavy modules
load only when `--robustcheck` is given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

PROFILE_NAMES = ("smoke", "ci", "thorough")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("robustcheck", "adversarial robustness tests of ONNX classifiers")
    group.addoption("--robustcheck", action="store_true", default=False,
                    help="collect *.onnx files under the given paths as robustness test items")
    group.addoption("--robustcheck-profile", choices=PROFILE_NAMES, default="ci",
                    help="budget: samples, Hypothesis examples and attack iterations (default: ci)")
    group.addoption("--robustcheck-report", default="reports", metavar="DIR",
                    help="directory for robustcheck.json, robustcheck.html and counterexamples (default: reports)")
    group.addoption("--robustcheck-seed", type=int, default=0, metavar="N",
                    help="seed for sample draws and attack random starts (default: 0)")
    group.addoption("--robustcheck-store", default=".robustcheck", metavar="DIR",
                    help="counterexample store replayed first on the next run; cache or commit it in CI "
                         "(default: .robustcheck)")
    group.addoption("--robustcheck-baseline", default=None, metavar="FILE",
                    help="robustcheck.json of the last release: fail models whose robust accuracy fell by more "
                         "than the configured tolerance or that gained a masking finding")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): robustcheck keeps a model's items on one worker")
    if not config.getoption("robustcheck"):
        return
    from robustcheck.items import SESSION_KEY
    from robustcheck.session import RobustcheckSession

    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        # Share the cores between workers instead of letting each take them all.
        import torch

        threads = max(1, (os.cpu_count() or 1) // int(workerinput.get("workercount", 1)))
        torch.set_num_threads(threads)
        # Workers re-parse the command line, so they do not see the controller's switch to
        # loadgroup below; without this they would not tag items with their group.
        if workerinput.get("robustcheck_loadgroup"):
            config.option.loadgroup = True
    if getattr(config.option, "dist", "no") == "load":
        # Items of one model share a loaded model and its attack results: keep them together.
        config.option.dist = "loadgroup"
    rc = RobustcheckSession(config)
    config.stash[SESSION_KEY] = rc
    rc.validate_configs(config.args)
    config.pluginmanager.register(rc, "robustcheck-session")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Any:
    if file_path.suffix != ".onnx" or not parent.config.getoption("robustcheck"):
        return None
    from robustcheck.items import OnnxFile

    return OnnxFile.from_parent(parent, path=file_path)


@pytest.fixture(scope="session")
def robustcheck_model() -> Any:
    """Factory fixture: `robustcheck_model(path, **load_model_kwargs)` loads (and caches) a Model."""
    from robustcheck.model import load_model

    cache: dict[tuple[str, str], Any] = {}

    def load(path: str | os.PathLike[str], **kwargs: Any) -> Any:
        key = (str(Path(path).resolve()), repr(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = load_model(path, **kwargs)
        return cache[key]

    return load


@pytest.fixture(scope="session")
def robustcheck_dataset() -> Any:
    """Factory fixture: `robustcheck_dataset(path, **load_dataset_kwargs)` reads (and caches) a Dataset."""
    from robustcheck.data import load_dataset

    cache: dict[tuple[str, str], Any] = {}

    def load(path: str | os.PathLike[str], **kwargs: Any) -> Any:
        key = (str(Path(path).resolve()), repr(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = load_dataset(path, **kwargs)
        return cache[key]

    return load
