"""Small file helpers shared by every layer: atomic writes (temporary file in the same folder, then
rename), so a killed writer never leaves a file that looks complete."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Write a file atomically: ``write(fileobj)`` fills a temporary file that is then renamed to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (indent 1, UTF-8)."""
    data = json.dumps(obj, indent=1, ensure_ascii=False).encode()
    atomic_write_bytes(path, lambda fh: fh.write(data))


def config_from_dict(cls: Any, d: Any, name: str) -> Any:
    """Build the dataclass ``cls`` from a JSON-like dict, refusing unknown keys and wrong types with an
    error that names the config (``name``) and the keys it accepts."""
    import dataclasses

    from painface.errors import InputError

    if not isinstance(d, dict):
        raise InputError(f"{name}: expected a JSON object, got {type(d).__name__}")
    known = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise InputError(f"{name}: unknown key(s) {unknown}; expected some of {known}")
    try:
        return cls(**d)
    except TypeError as e:
        raise InputError(f"{name}: {e}") from None
