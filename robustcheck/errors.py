"""Exceptions robustcheck raises on purpose. Import-light: no torch, no onnxruntime."""

from __future__ import annotations


class RobustcheckError(Exception):
    """Base class of robustcheck's own errors; the message is one line meant for a user."""


class ModelError(RobustcheckError):
    """A model file cannot be loaded or used. The message names the file and the problem."""


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
