"""pytest plugin entry module (work in progress: options land here)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("robustcheck", "adversarial robustness tests of ONNX classifiers")
    group.addoption("--robustcheck", action="store_true", default=False,
                    help="collect *.onnx files as robustness test items")
