"""The oracle: an onnxruntime session with onnxruntime's telemetry off.

The CPU provider runs it; the CUDA provider when the replica runs on a GPU and the installed
onnxruntime has that provider (see robustcheck/device.py).

onnxruntime 1.29+ on Linux/macOS sends usage telemetry (1DS): on import it creates
`~/.cache/Microsoft/DeveloperTools/.onnxruntime/` (a device id and an SQLite event store)
and background threads later resolve and contact `mobile.events.data.microsoft.com`.
`onnxruntime.disable_telemetry_events()` stops neither. The environment variable
`ORT_DISABLE_TELEMETRY=1`, read once when onnxruntime initialises (at import), stops all of
it for the life of the process. So robustcheck imports onnxruntime here, with the variable
set for the duration of the import only, unless the user has set it themselves (to any
value, which is then respected). If the process imported onnxruntime before robustcheck,
its choice stands; `TELEMETRY_DISABLED` records what happened.
"""

from __future__ import annotations

import os
import sys

import onnx
import torch

from robustcheck.device import onnxruntime_providers
from robustcheck.errors import ModelError, first_line

TELEMETRY_VARIABLE = "ORT_DISABLE_TELEMETRY"
_TRUTHY = ("1", "true", "yes", "on")  # what onnxruntime 1.32 takes as "disable" (case-insensitive)


def _user_disabled() -> bool:
    return os.environ.get(TELEMETRY_VARIABLE, "").strip().lower() in _TRUTHY


def _import_onnxruntime_quietly() -> bool:
    """Import onnxruntime with its telemetry off when robustcheck is the first to import it.

    Returns whether telemetry is off by robustcheck's doing or the user's variable.
    """
    if "onnxruntime" in sys.modules or TELEMETRY_VARIABLE in os.environ:
        import onnxruntime  # noqa: F401

        return _user_disabled()
    os.environ[TELEMETRY_VARIABLE] = "1"
    try:
        import onnxruntime  # noqa: F401, F811
    finally:
        os.environ.pop(TELEMETRY_VARIABLE, None)  # the decision is latched; do not leak it to subprocesses
    return True


#: Whether onnxruntime's telemetry is off in this process (as far as robustcheck can tell).
TELEMETRY_DISABLED = _import_onnxruntime_quietly()

import onnxruntime as ort  # noqa: E402  (imported above, with the variable set)

InferenceSession = ort.InferenceSession


def make_session(proto: onnx.ModelProto, label: str, threads: int | None,
                 device: torch.device | None = None) -> ort.InferenceSession:
    """An onnxruntime session for `proto` (from memory: onnxruntime never opens a file for it);
    on onnxruntime's CUDA provider when `device` is a GPU and the installed onnxruntime has it."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    # onnxruntime's workers spin after each run by default; interleaved with torch (attacks judge
    # iterates on the oracle) the spinning threads steal the cores torch needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Errors come back as exceptions and become one-line ModelErrors; onnxruntime's own log lines
    # on stderr would repeat them (with its source paths) in the console.
    options.log_severity_level = 4
    try:
        providers = onnxruntime_providers(device or torch.device("cpu"), ort.get_available_providers())
        return ort.InferenceSession(proto.SerializeToString(), options, providers=providers)
    except Exception as exc:
        raise ModelError(f"{label}: onnxruntime cannot run the graph ({first_line(exc)})") from None
