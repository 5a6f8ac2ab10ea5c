"""Exceptions robustcheck raises on purpose. Import-light: no torch, no onnxruntime."""

from __future__ import annotations


class RobustcheckError(Exception):
    """Base class of robustcheck's own errors; the message is one line meant for a user."""


class ModelError(RobustcheckError):
    """A model file cannot be loaded or used. The message names the file and the problem."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """A foreign exception's message as one short line, for quoting inside a robustcheck message."""
    text = str(exc).strip() or type(exc).__name__
    line = text.splitlines()[0].strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


class ReplicaUnavailable(RobustcheckError):
    """A gradient-based attack needs the torch replica, which this model does not have."""


class ConfigError(RobustcheckError):
    """The suite configuration is invalid. The message names the file, the key and what was expected."""


class DataError(RobustcheckError):
    """A dataset cannot be read or does not fit the model."""


class ClaimFailure(AssertionError):
    """A robustness claim was checked and does not hold (a gate missed, a counterexample found).

    The only exceptions that make an item "failed"; any other exception means the claim could
    not be checked ("error"). See `robustcheck.record.classify_outcome`.
    """


class RobustcheckWarning(UserWarning):
    """Something a run skipped or could not trust, shown in pytest's warnings summary."""


class AttackParamError(RobustcheckError, ValueError):
    """An attack hyper-parameter is unknown or has a wrong type or value.

    `label` is the attack (config label or class name), `key` the parameter ("" when the label
    itself is unknown), `message` what was expected and what was given. The config layer
    prefixes the file it read the value from.
    """

    def __init__(self, label: str, key: str, message: str) -> None:
        self.label, self.key, self.message = label, key, message
        where = f"attack '{label}', parameter '{key}'" if key else f"attack '{label}'"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:  # pickles across xdist workers
        return (type(self), (self.label, self.key, self.message))


class AttackPluginError(RobustcheckError):
    """A third-party attack registered under the `robustcheck.attacks` entry-point group cannot be
    loaded (import error, not an attack, or a label that is already taken)."""
