"""Read YAML files keeping where each value came from, for located error messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import E810PipeError
from .inputs import clip, read_text


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
        super().__init__(f"{path}:{line}:{column}: {message}" if line else f"{path}: {message}")


@dataclass(frozen=True, slots=True)
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
            shown = self.value if isinstance(self.value, (str, int, float)) else self.plain()
            raise self.error(f"expected {what}, got {clip(repr(shown))}")
        return self.value


_new = object.__new__
_set = object.__setattr__


def _loc(
    value: Any, path: str, line: int, column: int, keys: dict[str, tuple[int, int]] | None = None
) -> Located:
    """Located(value, path, line, column, keys), without the frozen dataclass's
    per-field __setattr__ calls: a 16K-rule file makes half a million of them."""
    loc = _new(Located)
    _set(loc, "value", value)
    _set(loc, "path", path)
    _set(loc, "line", line)
    _set(loc, "column", column)
    _set(loc, "keys", keys)
    return loc


# Bounds on a YAML document (README, "Input limits").
MAX_DEPTH = 64  # nested mappings and lists
MAX_NODES = 2_000_000  # values in the document, counting every use of an alias in full
MAX_SCALAR_DIGITS = 40  # digits of one number

_CORE_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}
_MAP_TAG = "tag:yaml.org,2002:map"
_SCALAR_EVENT = yaml.ScalarEvent
_SEQ_TAG = "tag:yaml.org,2002:seq"
# libyaml's C parser when PyYAML was built with it; the same events and marks
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_resolver = yaml.resolver.Resolver()
_constructor = yaml.constructor.SafeConstructor()


def _tag_name(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag


class _Frame:
    """A mapping or list being built: its items, position and expanded size."""

    __slots__ = ("items", "keys", "key", "is_map", "line", "col", "anchor", "size")

    def __init__(self, is_map: bool, line: int, col: int, anchor: str | None) -> None:
        self.items: Any = {} if is_map else []
        self.keys: dict[str, tuple[int, int]] = {}
        self.key: Located | None = None  # a mapping's key waiting for its value
        self.is_map = is_map
        self.line = line
        self.col = col
        self.anchor = anchor
        self.size = 1


# First characters for which the resolver has an implicit (non-string) tag to try; a
# plain scalar starting with any other character is a string (Resolver.resolve)
_IMPLICIT_FIRST = frozenset(_resolver.yaml_implicit_resolvers)
_PLAIN_STR_FAST = None not in _IMPLICIT_FIRST and not _resolver.yaml_path_resolvers


def _scalar(ev: Any, path: str, line: int, col: int) -> Located:
    return _loc(_scalar_value(ev, path, line, col), path, line, col)


def _scalar_value(ev: Any, path: str, line: int, col: int) -> Any:
    """A scalar event's value, as SafeConstructor gives it (core-schema tags only)."""
    value = ev.value
    tag = ev.tag
    if tag is None and _PLAIN_STR_FAST:
        # what Resolver.resolve and SafeConstructor give, for the common scalars: a
        # quoted one is a string; a plain one whose first character no implicit tag
        # starts with is a string; plain decimal digits (no leading 0) are an int
        if not ev.implicit[0]:
            return value
        if value and value[0] not in _IMPLICIT_FIRST:
            return value
        if (
            value.isdigit()
            and value.isascii()
            and (value[0] != "0" or len(value) == 1)
            and len(value) <= MAX_SCALAR_DIGITS
        ):
            return int(value)
    if tag is None or tag == "!":
        tag = (
            _resolver.resolve(yaml.ScalarNode, value, ev.implicit)
            if tag is None
            else "tag:yaml.org,2002:str"
        )
    if tag not in _CORE_TAGS:
        raise ConfigError(
            f"unsupported YAML tag '{_tag_name(tag)}': use plain values", path, line, col
        )
    if tag == "tag:yaml.org,2002:str":
        return value
    if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
        if sum(ch.isdigit() for ch in value) > MAX_SCALAR_DIGITS:
            raise ConfigError(
                f"number of {len(value)} characters is too large "
                f"(at most {MAX_SCALAR_DIGITS} digits)",
                path,
                line,
                col,
            )
    node = yaml.ScalarNode(tag, value, ev.start_mark, ev.end_mark, ev.style)
    try:
        out = _constructor.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError) as err:
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"unsupported YAML value: {problem}", path, line, col) from None
    return out


def _compose(text: str, path: str) -> Located | None:
    """Build Located values straight from the parser's events: no recursion (a
    document nested deeper than MAX_DEPTH is an error), aliases counted in full
    against MAX_NODES (an alias bomb is an error), only core-schema tags."""
    loader = _Loader(text)
    anchors: dict[str, tuple[Located, int]] = {}
    stack: list[_Frame] = []
    root: Located | None = None
    done: Located
    total = 0
    documents = 0
    try:
        while True:
            ev = loader.get_event()
            if ev is None or isinstance(ev, yaml.StreamEndEvent):
                break
            mark = ev.start_mark
            line, col = mark.line + 1, mark.column + 1
            cls = type(ev)
            if cls is _SCALAR_EVENT:  # the most common event first
                if ev.style in ('"', "'"):
                    col += 1  # point at the text, not at its opening quote
                done = _scalar(ev, path, line, col)
                anchor = ev.anchor
                total += 1
                size = 1
                if total > MAX_NODES:
                    raise ConfigError(
                        f"more than {MAX_NODES} values in one document", path, line, col
                    )
                if anchor is not None:
                    anchors[anchor] = (done, size)
                if not stack:
                    root = done
                    continue
                parent = stack[-1]
                parent.size += 1
                if not parent.is_map:
                    parent.items.append(done)
                elif parent.key is None:
                    v = done.value
                    if not isinstance(v, (str, int)) or isinstance(v, bool):
                        raise done.error("mapping keys must be names")
                    name = str(v)
                    if name in parent.items:
                        raise done.error(f"duplicate key '{name}'")
                    parent.key = done
                else:
                    key = parent.key
                    name = str(key.value)
                    parent.items[name] = done
                    parent.keys[name] = (key.line, key.column)
                    parent.key = None
                continue
            if isinstance(ev, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise ConfigError(
                        "a second YAML document ('---'); give one document per file",
                        path,
                        line,
                        col,
                    )
                continue
            if isinstance(ev, (yaml.StreamStartEvent, yaml.DocumentEndEvent)):
                continue
            size = 1
            if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                is_map = isinstance(ev, yaml.MappingStartEvent)
                want = _MAP_TAG if is_map else _SEQ_TAG
                if ev.tag not in (None, "!", want):
                    raise ConfigError(
                        f"unsupported YAML tag '{_tag_name(ev.tag)}': use plain values",
                        path,
                        line,
                        col,
                    )
                if len(stack) >= MAX_DEPTH:
                    raise ConfigError(
                        f"YAML nested too deeply (more than {MAX_DEPTH} levels)", path, line, col
                    )
                stack.append(_Frame(is_map, line, col, ev.anchor))
                total += 1
                continue
            if isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                fr = stack.pop()
                if fr.is_map:
                    done = _loc(fr.items, path, fr.line, fr.col, fr.keys)
                else:
                    done = _loc(fr.items, path, fr.line, fr.col)
                size = fr.size
                anchor = fr.anchor
            elif isinstance(ev, yaml.AliasEvent):
                if ev.anchor not in anchors:
                    raise ConfigError(f"unknown alias '*{ev.anchor}'", path, line, col)
                done, size = anchors[ev.anchor]
                total += size
                if total > MAX_NODES:
                    raise ConfigError(
                        f"aliases expand the document past {MAX_NODES} values "
                        "(an alias bomb?); write the values out",
                        path,
                        line,
                        col,
                    )
                anchor = None
            else:  # a scalar
                if ev.style in ('"', "'"):
                    col += 1  # point at the text, not at its opening quote
                done = _scalar(ev, path, line, col)
                anchor = ev.anchor
                total += 1
            if total > MAX_NODES:
                raise ConfigError(f"more than {MAX_NODES} values in one document", path, line, col)
            if anchor is not None:
                anchors[anchor] = (done, size)
            if not stack:
                root = done
                continue
            parent = stack[-1]
            parent.size += size
            if not parent.is_map:
                parent.items.append(done)
            elif parent.key is None:
                if not isinstance(done.value, (str, int)) or isinstance(done.value, bool):
                    raise done.error("mapping keys must be names")
                name = str(done.value)
                if name in parent.items:
                    raise done.error(f"duplicate key '{name}'")
                parent.key = done
            else:
                name = str(parent.key.value)
                parent.items[name] = done
                parent.keys[name] = (parent.key.line, parent.key.column)
                parent.key = None
    finally:
        loader.dispose()
    return root


def load(path: str | Path, text: str | None = None) -> Located:
    """Parse a YAML file safely (core-schema values only; no tag runs code) into
    Located values. The file must be a regular file of at most LIMITS["yaml"] bytes."""
    name = str(path)
    if text is None:

        def error(message: str, line: int, column: int) -> ConfigError:
            return ConfigError(f"cannot read: {message}", name, line, column)

        text = read_text(path, "yaml", error)
    try:
        node = _compose(text, name)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = clip(str(err.problem or err))
        raise ConfigError(f"YAML syntax error: {problem}", name, line, col) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"YAML error: {clip(str(err))}", name) from None
    if node is None:
        return Located({}, name, 1, 1)
    return node


class NeedLocations(Exception):
    """The shallow reader met something only the located reader handles (an error,
    an anchor or alias, a tag): read the file again with load()."""


_MAP_START = yaml.MappingStartEvent
_SEQ_START = yaml.SequenceStartEvent
_MAP_END = yaml.MappingEndEvent
_SEQ_END = yaml.SequenceEndEvent
_QUIET = (yaml.StreamStartEvent, yaml.DocumentStartEvent, yaml.DocumentEndEvent)


def load_shallow(path: str | Path, key: str) -> Located:
    """The file as load() reads it, except that each element of the list under the
    top-level `key` is a Located whose value is plain (dicts, lists, scalars without
    positions below it): half a million located values cost more than a second for
    a 16K-rule file. Anything but a well-formed file of plain values (any error, an
    anchor, an alias, a tag, a second document, the bounds) raises NeedLocations,
    and the caller reads the file with load(), which says where the error is."""
    name = str(path)

    def error(message: str, line: int, column: int) -> ConfigError:
        return ConfigError(f"cannot read: {message}", name, line, column)

    text = read_text(path, "yaml", error)
    try:
        node = _compose_shallow(text, name, key)
    except (yaml.YAMLError, ConfigError):
        raise NeedLocations from None
    return node if node is not None else Located({}, name, 1, 1)


def _compose_shallow(text: str, path: str, key: str) -> Located | None:
    loader = _Loader(text)
    stack: list[_Frame] = []
    root: Located | None = None
    done: Any
    total = 0
    documents = 0
    plain = 0  # depth inside a plain element (0: located values)
    try:
        while True:
            ev = loader.get_event()
            if ev is None or type(ev) is yaml.StreamEndEvent:
                break
            cls = type(ev)
            if cls is _SCALAR_EVENT:
                if ev.anchor is not None:
                    raise NeedLocations
                mark = ev.start_mark
                if plain:
                    done = ev.value  # a string, the commonest case, as _scalar_value says
                    if (
                        ev.tag is not None
                        or not _PLAIN_STR_FAST
                        or ev.implicit[0]
                        and (not done or done[0] in _IMPLICIT_FIRST)
                    ):
                        done = _scalar_value(ev, path, mark.line + 1, mark.column + 1)
                else:
                    line, col = mark.line + 1, mark.column + 1
                    if ev.style in ('"', "'"):
                        col += 1
                    done = _scalar(ev, path, line, col)
                total += 1
            elif cls is _MAP_START or cls is _SEQ_START:
                if ev.anchor is not None or ev.tag is not None or len(stack) >= MAX_DEPTH:
                    raise NeedLocations
                mark = ev.start_mark
                fr = _Frame(cls is _MAP_START, mark.line + 1, mark.column + 1, None)
                if plain or (len(stack) == 2 and _element_plain(stack, key)):
                    plain += 1
                    fr.anchor = "plain"
                stack.append(fr)
                total += 1
                continue
            elif cls is _MAP_END or cls is _SEQ_END:
                fr = stack.pop()
                if plain:
                    plain -= 1
                    done = fr.items
                    if not plain:  # a whole element of the list
                        done = _loc(done, path, fr.line, fr.col)
                elif fr.is_map:
                    done = _loc(fr.items, path, fr.line, fr.col, fr.keys)
                else:
                    done = _loc(fr.items, path, fr.line, fr.col)
            elif cls in _QUIET:
                if cls is yaml.DocumentStartEvent:
                    documents += 1
                    if documents > 1:
                        raise NeedLocations
                continue
            else:  # an alias
                raise NeedLocations
            if total > MAX_NODES:
                raise NeedLocations
            if not stack:
                root = done
                continue
            parent = stack[-1]
            inner = plain and parent.anchor == "plain"
            if not parent.is_map:
                parent.items.append(done)
            elif parent.key is None:
                v = done if inner else done.value
                if not isinstance(v, (str, int)) or isinstance(v, bool) or str(v) in parent.items:
                    raise NeedLocations
                parent.key = done
            else:
                k = parent.key
                if inner:
                    parent.items[str(k)] = done
                else:
                    kname = str(k.value)
                    parent.items[kname] = done
                    parent.keys[kname] = (k.line, k.column)
                parent.key = None
    finally:
        loader.dispose()
    return root


def _element_plain(stack: list[_Frame], key: str) -> bool:
    """Whether the next value is an element of the top-level list under `key`."""
    top, lst = stack
    return top.is_map and not lst.is_map and top.key is not None and top.key.value == key
