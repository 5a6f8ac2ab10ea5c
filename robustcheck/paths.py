"""Files robustcheck writes: names derived from model and property names, and atomic writes.

Model file stems and property names end up in paths (counterexample files, store entries).
`safe_name` turns any such name into one path part that stays inside its folder and never
collides with another name's; `write_atomic` writes a file so that readers (and a run killed
mid-write) see the old content or the new one, never a partial file. Import-light.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9._@-]")


def safe_name(name: str) -> str:
    """`name` as one path part: unchanged when it is already plain, else cleaned and made unique.

    Plain means letters, digits and `._@-`, starting with a letter or digit, at most 100
    characters. Anything else (`..`, separators, brackets, spaces, a leading dot, a long name)
    has its unsafe characters replaced by `_` and a short hash of the original appended, so
    `a b` and `a_b`, or `..` and `__`, never share a file.
    """
    if _SAFE.fullmatch(name):
        return name
    cleaned = _UNSAFE_CHAR.sub("_", name).strip("._")[:60]
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned}-{digest}" if cleaned else digest


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp creates 0600 files; reports are shared artefacts: use the usual umask-derived mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target
