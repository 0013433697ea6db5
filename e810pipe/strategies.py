"""Hypothesis strategies that build packets for a parser's profiles, capped to its window.

The packets come from a walk of the parser's compiled parse graph, so they follow
whatever the loaded profiles declare (a user profile's protocols and edges, the
registered tunnel ports, double-VLAN mode) and shrink towards short, simple walks::

    from hypothesis import given
    from e810pipe.parser import Parser
    from e810pipe.strategies import packets

    parser = Parser.load(["os-default", "my.ddp"], vxlan_ports=[4789])

    @given(packets(parser))
    def test_my_header_is_reached(data):
        assert parser.parse(data).status != "no_match"

Every strategy caps packets at the parser window (504 bytes unless the parser was
built with another); pass ``max_size`` to go past it, e.g. to test what happens at
the edge of the window. This module needs Hypothesis (the ``fuzz`` extra:
``pip install 'e810pipe[fuzz]'``); nothing else in e810pipe imports it.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

try:
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError(
        "e810pipe.strategies needs Hypothesis: pip install 'e810pipe[fuzz]'"
    ) from None

from .fuzz import (
    Generated,
    GraphModel,
    PacketBuilder,
    cut_points,
    mutate_bits,
    mutate_length,
    mutate_select,
)
from .parser import Parser

__all__ = ["generated", "mutated_packets", "packets", "raw_packets", "any_packets"]

_MODELS: weakref.WeakKeyDictionary[Parser, tuple[GraphModel, PacketBuilder]] = (
    weakref.WeakKeyDictionary()
)


def _builder(parser: Parser) -> tuple[GraphModel, PacketBuilder]:
    got = _MODELS.get(parser)
    if got is None:
        model = GraphModel(parser)
        got = (model, PacketBuilder(model))
        _MODELS[parser] = got
    return got


class _Draw:
    """A :class:`e810pipe.fuzz.Source` over a Hypothesis ``draw``."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def blob(self, n: int) -> bytes:
        return self.draw(st.binary(min_size=n, max_size=n)) if n > 0 else b""

    def weighted(self, weights: Sequence[float]) -> int:
        # Shrinks towards the first choice; weights still shape what is drawn.
        total = sum(weights)
        x = self.draw(st.integers(0, 1 << 16)) / (1 << 16) * total
        acc = 0.0
        for i, w in enumerate(weights):
            acc += w
            if x <= acc:
                return i
        return len(weights) - 1


def _cap(parser: Parser, max_size: int | None) -> int:
    cap = parser.window if max_size is None else max_size
    if not 0 <= cap <= 65535:
        raise ValueError(f"max_size {cap}: use 0..65535 bytes")
    return cap


def generated(
    parser: Parser, *, max_size: int | None = None, deep: bool = False
) -> st.SearchStrategy[Generated]:
    """Packets walked from the graph, with the headers the walk laid out.

    Each header satisfies its protocol's fields and length expression and its
    select values lead along an edge of the graph; ``deep`` favours walks that go
    on (cycles, long headers) up to ``max_size``. The result's ``data`` is at most
    ``max_size`` bytes (default: the parser window); ``headers`` lists
    (node, offset, length, tunnel level) as the builder laid them out.
    """
    cap = _cap(parser, max_size)
    _model, builder = _builder(parser)

    @st.composite
    def build(draw: st.DrawFn) -> Generated:
        src = _Draw(draw)
        target = draw(st.integers(0, cap))
        return builder.build(src, target=target, limit=cap, deep=deep)

    return build()


def packets(
    parser: Parser, *, max_size: int | None = None, deep: bool = False
) -> st.SearchStrategy[bytes]:
    """Well-formed packets for the parser's profiles, at most the window long."""
    return generated(parser, max_size=max_size, deep=deep).map(lambda g: g.data)


def mutated_packets(
    parser: Parser, *, max_size: int | None = None, deep: bool = False
) -> st.SearchStrategy[bytes]:
    """A generated packet with one mutation: cut at or inside a header, a length
    field (or a flag that adds optional words) that lies, a select field set to a
    value with no binding, or flipped bits."""
    cap = _cap(parser, max_size)
    model, builder = _builder(parser)

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        src = _Draw(draw)
        target = draw(st.integers(0, cap))
        gen = builder.build(src, target=target, limit=cap, deep=deep)
        kind = draw(st.integers(0, 3))
        out: bytes | None = None
        if kind == 0:
            cuts = cut_points(gen)
            if cuts:
                out = gen.data[: cuts[draw(st.integers(0, len(cuts) - 1))]]
        elif kind == 1:
            out = mutate_length(model, gen, src)
        elif kind == 2:
            out = mutate_select(model, gen, src)
        if out is None:
            out = mutate_bits(gen.data, src)
        return out[:cap]

    return build()


def raw_packets(parser: Parser, *, max_size: int | None = None) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, at most the window long."""
    return st.binary(max_size=_cap(parser, max_size))


def any_packets(parser: Parser, *, max_size: int | None = None) -> st.SearchStrategy[bytes]:
    """Well-formed, mutated or arbitrary packets."""
    return st.one_of(
        packets(parser, max_size=max_size),
        mutated_packets(parser, max_size=max_size),
        raw_packets(parser, max_size=max_size),
    )
