"""Small file helpers shared by every layer: atomic writes (temporary file in the same folder, then
rename), so a killed writer never leaves a file that looks complete.

Temporaries are hidden and named after their target and the writing process:
``.NAME.pid<PID>.<random><suffix>`` (suffix ``.part``, or ``.tmp.mp4`` for videos). The next write of the
same target removes the ones left by processes that no longer run (:func:`clean_stale`), so kills do
not make them pile up. Outputs get the usual permissions (``0666`` less the umask), not mkstemp's 0600.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def apply_umask(path: Path) -> None:
    """Give ``path`` the mode a plain ``open()`` would: 0666 less the umask (for writers that create their
    file themselves, with mode 0600)."""
    os.chmod(path, 0o666 & ~_umask())


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists (another user's process) or we cannot tell: keep its file
    return True


def clean_stale(path: Path) -> list[Path]:
    """Remove the hidden temporaries of ``path`` (``.NAME.pid<PID>.<random>.part`` or ``.tmp.<ext>``) whose
    writing process no longer runs, and those of painface versions that did not name the pid
    (``.NAME.<random>.part``). Returns the removed paths; never raises."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    removed: list[Path] = []
    pattern = re.compile(re.escape(f".{path.name}.") + r"(?:pid(\d+)\.)?[A-Za-z0-9_]{8}(?:\.part|\.tmp\.\w+)")
    try:
        candidates = list(folder.glob(f".{glob_escape(path.name)}.*"))
    except OSError:
        return removed
    for p in candidates:
        m = pattern.fullmatch(p.name)
        if m is None or (m.group(1) is not None and _pid_alive(int(m.group(1)))):
            continue
        try:
            if p.is_file():
                p.unlink()
                removed.append(p)
        except OSError:
            pass
    return removed


def clean_stale_in(folder: Path) -> list[Path]:
    """:func:`clean_stale` for every target in ``folder`` at once: remove the hidden temporaries
    (``.NAME.pid<PID>.*``) whose writing process no longer runs. For writers of many files that skip the
    per-file search (``atomic_write_bytes(..., clean=False)``). Returns the removed paths; never raises."""
    removed: list[Path] = []
    try:
        candidates = list(Path(folder).glob(".*.pid*.*"))
    except OSError:
        return removed
    for p in candidates:
        m = re.search(r"\.pid(\d+)\.[A-Za-z0-9_]{8}(?:\.part|\.tmp\.\w+)$", p.name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def temp_beside(path: Path, suffix: str = ".part", clean: bool = True) -> Path:
    """Create (empty) and return a hidden temporary file beside ``path`` for an atomic write, after
    removing stale temporaries of the same target (unless ``clean`` is False: the caller cleans them
    in bulk); its mode is 0666 less the umask."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if clean:
        clean_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.pid{os.getpid()}.", suffix=suffix, dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ".part", *, clean: bool = True) -> Iterator[Path]:
    """The one atomic writer: yield a hidden temporary path beside ``path`` (see :func:`temp_beside`) for
    the caller to fill (open it, or hand it to a library that writes files: safetensors, a video encoder),
    then rename it onto ``path``. On any error the temporary is removed and ``path`` is left as it was.
    The temporary gets mode 0666 less the umask again before the rename, since libraries that create
    their file themselves give it 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path, suffix, clean=clean)
    try:
        yield tmp
        apply_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, write: Any, *, durable: bool = True, clean: bool = True) -> None:
    """Write a file atomically: ``write(fileobj)`` fills a temporary file that is then renamed to ``path``.

    ``durable=False`` skips the fsync before the rename: still atomic against a killed process (the page
    cache survives it), not against a power cut; for bulk outputs whose completion a later durable
    file records (the images of a dataset shard, committed by the shard's table). ``clean=False`` skips
    the per-file search for stale temporaries (see :func:`clean_stale`; for callers that clean a whole
    folder once)."""
    with atomic_path(path, clean=clean) as tmp, open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        if durable:
            os.fsync(fh.fileno())


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
    hints = typing.get_type_hints(cls)
    for key, value in d.items():
        expected = _scalar_type(hints.get(key))
        if expected is None:
            continue
        ok = (isinstance(value, expected) and not (isinstance(value, bool) and expected is not bool)
              or (expected is float and isinstance(value, int) and not isinstance(value, bool)))
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if not ok:
            raise InputError(f"{name}: {key} = {value!r}; expected a finite {expected.__name__}")
    try:
        return cls(**d)
    except TypeError as e:
        raise InputError(f"{name}: {e}") from None


def _scalar_type(hint: Any) -> type | None:
    """int, float, bool, str or dict for a field annotated so (or ``X | None``); else None (not checked)."""
    import types

    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1:
            return None
        hint = args[0]
    hint = typing.get_origin(hint) or hint
    return hint if hint in (int, float, bool, str, dict, list) else None


def check_output(path: Path, option: str = "--out", suffixes: tuple[str, ...] = (), *, make_folder: bool = False
                 ) -> Path:
    """Check, before any work, that ``path`` can be written as a file: not a folder, one of ``suffixes``
    (when given), in an existing folder (``make_folder``: created when missing) where a file can really
    be created (tried, so read-only mounts, /proc and the like are caught even as root). Raises
    InputError naming ``option``."""
    from painface.errors import InputError

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder; expected a file name"
                         + (f" ending in {'/'.join(suffixes)}" if suffixes else ""))
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(f"{option} {path}: expected a file name ending in {'/'.join(suffixes)}")
    folder = path.parent if str(path.parent) else Path(".")
    if make_folder and not folder.exists():
        try:
            folder.mkdir(parents=True)
        except OSError as e:
            raise InputError(f"{option} {path}: cannot create the folder {folder}: {e.strerror or e}") from None
    if not folder.is_dir():
        raise InputError(f"{option} {path}: cannot write: folder {folder} does not exist (or is not a folder)")
    try:
        temp_beside(path).unlink()
    except OSError as e:
        raise InputError(f"{option} {path}: cannot write in {folder}: {e.strerror or e}") from None
    return path


def check_npz(path: Path, what: str = "input") -> Path:
    """Check that ``path`` is a whole npz (zip) file: present, not empty, every member's CRC intact.
    Raises InputError naming ``what`` and the file."""
    import zipfile

    from painface.errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{what} {path}: empty file; expected an .npz (a zip of arrays)")
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise InputError(f"{what} {path}: not a readable .npz (truncated or corrupt?): {e}") from None
    if bad is not None:
        raise InputError(f"{what} {path}: member {bad} is corrupt (truncated file?)")
    return path


def read_json_config(path: Path, option: str = "--config") -> dict:
    """A JSON object of config keys from ``path``: refuses unreadable or binary files, invalid JSON,
    NaN/Infinity and anything but an object, with an InputError naming ``option``."""
    from painface.errors import InputError

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not allowed")

    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=no_constant)
    except OSError as e:
        raise InputError(f"{option} {path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise InputError(f"{option} {path}: not a UTF-8 text file; expected a JSON object") from None
    except ValueError as e:  # JSONDecodeError, NaN/Infinity
        raise InputError(f"{option} {path}: not valid JSON ({str(e)[:80]}); expected a JSON object") from None
    if not isinstance(d, dict):
        raise InputError(f"{option} {path}: expected a JSON object of config keys, got {type(d).__name__}")
    return d
