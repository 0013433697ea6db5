"""Locate the shipped grammars and stock profiles, in a wheel or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    """Return the directory `name` ("grammars" or "profiles").

    An installed wheel carries them inside the package; a checkout (or an editable
    install) keeps them at the top of the repository, next to the package.
    """
    inside = _PACKAGE_DIR / name
    if inside.is_dir():
        return inside
    return _PACKAGE_DIR.parent / name


def grammar_path(name: str = "ddp.lark") -> Path:
    return _data_dir("grammars") / name


def profiles_dir() -> Path:
    return _data_dir("profiles")


def stock_profile_names() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.ddp"))


def resolve_profile_ref(ref: str, relative_to: Path | None = None) -> Path:
    """A stock profile name ("os-default", "comms") or a path to a .ddp file."""
    stock = profiles_dir() / f"{ref}.ddp"
    if "/" not in ref and not ref.endswith(".ddp") and stock.is_file():
        return stock
    p = Path(ref)
    if not p.is_absolute() and not p.exists():
        for base in (relative_to, profiles_dir()):
            if base is not None and (base / p).is_file():
                return base / p
    return p
