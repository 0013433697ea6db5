"""Read YAML files keeping where each value came from, for located error messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import E810PipeError


class ConfigError(E810PipeError, ValueError):
    """A device, rules or scenario file is invalid.

    The message reads ``file:line:column: what is wrong``; fix the file there. The
    README documents the schema of each file.
    """

    exit_code = 2

    def __init__(self, message: str, path: str, line: int = 0, column: int = 0) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        super().__init__(f"{path}:{line}:{column}: {message}")


@dataclass(frozen=True)
class Located:
    """A YAML value plus the file, line and column it started at (1-based)."""

    value: Any
    path: str
    line: int
    column: int
    keys: dict[str, tuple[int, int]] | None = None  # mapping keys' own positions

    def error(self, message: str) -> ConfigError:
        return ConfigError(message, self.path, self.line, self.column)

    def key_error(self, key: str, message: str) -> ConfigError:
        """An error located at mapping key `key` (not at its value)."""
        line, col = (self.keys or {}).get(key, (self.line, self.column))
        return ConfigError(message, self.path, line, col)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    # convenience accessors for mappings and lists of Located
    def get(self, key: str) -> Located | None:
        if isinstance(self.value, dict):
            return self.value.get(key)
        return None

    def list_of(self, key: str) -> list[Located]:
        """The list under `key`, or [] when the key is absent."""
        node = self.get(key)
        return node.list() if node is not None else []

    def items(self) -> list[tuple[str, Located]]:
        if not isinstance(self.value, dict):
            raise self.error("expected a mapping")
        return list(self.value.items())

    def list(self) -> list[Located]:
        if not isinstance(self.value, list):
            raise self.error("expected a list")
        return list(self.value)

    def plain(self) -> Any:
        """The value with all positions stripped."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value

    def require(self, kind: type | tuple[type, ...], what: str) -> Any:
        if not isinstance(self.value, kind) or isinstance(self.value, bool) and kind is int:
            raise self.error(f"expected {what}, got {self.plain()!r}")
        return self.value


def _convert(node: yaml.Node, path: str) -> Located:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Located] = {}
        keys: dict[str, tuple[int, int]] = {}
        for k, v in node.value:
            key = _convert(k, path)
            if not isinstance(key.value, (str, int)):
                raise key.error("mapping keys must be names")
            if str(key.value) in out:
                raise key.error(f"duplicate key '{key.value}'")
            out[str(key.value)] = _convert(v, path)
            keys[str(key.value)] = (key.line, key.column)
        return Located(out, path, line, col, keys)
    if isinstance(node, yaml.SequenceNode):
        return Located([_convert(v, path) for v in node.value], path, line, col)
    if isinstance(node, yaml.ScalarNode) and node.style in ('"', "'"):
        col += 1  # point at the text, not at its opening quote
    try:
        value = yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as err:
        raise Located(None, path, line, col).error(
            f"unsupported YAML value: {err.problem}"
        ) from None
    return Located(value, path, line, col)


def load(path: str | Path, text: str | None = None) -> Located:
    """Parse a YAML file safely (no tags that run code) into Located values."""
    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise ConfigError(f"cannot read: {err.strerror or err}", name) from None
        except UnicodeDecodeError:
            raise ConfigError("not UTF-8 text", name) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise ConfigError(f"YAML syntax error: {err.problem or err}", name, line, col) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"YAML error: {err}", name) from None
    if node is None:
        return Located({}, name, 1, 1)
    try:
        return _convert(node, name)
    except yaml.YAMLError as err:
        raise ConfigError(f"YAML error: {err}", name) from None
