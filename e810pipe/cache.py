"""The on-disk cache of work that does not change between runs.

Two things are kept, in ``$XDG_CACHE_HOME/e810pipe`` (``~/.cache/e810pipe`` when the
variable is unset; ``E810PIPE_CACHE_DIR`` overrides both):

- the profile grammar's LALR tables (Lark's own ``cache=`` file, ``ddp-*.lark.cache``),
  which Lark rebuilds itself when the grammar or Lark's version changes;
- compiled packages (``package-*.pickle``): :func:`e810pipe.package.load_package`
  stores the resolved :class:`~e810pipe.package.Package` of a profile stack, keyed by
  the stack, the working directory and e810pipe's own code, and records the text of
  every profile file it read. A cached package is used only if every one of those
  files still reads exactly the same; otherwise it is rebuilt and replaced.

The cache is an optimisation only: a file that cannot be read, unpickled, or is not
what it should be is ignored (and rewritten); a directory that cannot be written is
not used. ``E810PIPE_NO_CACHE=1`` turns it off entirely. Files are written to a
temporary name and renamed, so a concurrent reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

FORMAT = 1  # bump when what is stored changes shape
_CODE = ("package.py", "ddp.py", "ddp_model.py", "cache.py")


def enabled() -> bool:
    return os.environ.get("E810PIPE_NO_CACHE", "") in ("", "0")


def cache_dir() -> Path | None:
    """The cache directory, created if needed; None if caching is off or impossible."""
    if not enabled():
        return None
    root = os.environ.get("E810PIPE_CACHE_DIR")
    if root:
        path = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        path = Path(xdg) / "e810pipe" if xdg else Path.home() / ".cache" / "e810pipe"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path, os.W_OK | os.X_OK) else None


_fingerprint: str | None = None


def code_fingerprint() -> str:
    """A hash of the modules whose classes a cached package holds, and the grammar."""
    global _fingerprint
    if _fingerprint is None:
        from . import __version__
        from .resources import grammar_path

        h = hashlib.sha256(f"{FORMAT} {__version__}".encode())
        here = Path(__file__).resolve().parent
        for name in _CODE:
            h.update((here / name).read_bytes())
        h.update(grammar_path().read_bytes())
        _fingerprint = h.hexdigest()
    return _fingerprint


def key_for(*parts: object) -> str:
    h = hashlib.sha256(code_fingerprint().encode())
    h.update(repr(parts).encode())
    return h.hexdigest()[:32]


def load(name: str) -> Any | None:
    """The object stored as `name`, or None (missing, unreadable, corrupt, caching off)."""
    d = cache_dir()
    if d is None:
        return None
    try:
        with open(d / name, "rb") as f:
            return pickle.load(f)
    except Exception:  # any damage: behave as if there were no cache
        return None


def store(name: str, obj: Any) -> None:
    """Write `obj` as `name` atomically; failures are ignored (the cache is optional)."""
    d = cache_dir()
    if d is None:
        return
    import tempfile

    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, d / name)
        tmp = None
    except Exception:
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


__all__ = ["cache_dir", "code_fingerprint", "enabled", "key_for", "load", "store"]
