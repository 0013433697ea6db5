"""The fast paths of rule loading read exactly what the slow ones read."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from e810pipe.testpmd import _ipv4, _ipv6

ODD = [
    "01.2.3.4", "1.2.3", "256.1.1.1", "1.2.3.4.5", " 1.2.3.4", "1.2.3.04", "0.0.0.0",
    "1..2.3", "1.2.3.4\n", "\uff11.2.3.4", "::", "::1", "fe80::1%eth0", "::ffff:1.2.3.4",
    "::ffff:01.2.3.4", "1:2:3:4:5:6:7:8:9", "12345::", ":::", "1:2::3::4", "", "g::",
    "1:2:3:4:5:6:1.2.3.4", "0001:2:3:4:5:6:7:8", "00001::", "::\uff11",
]  # fmt: skip


def reference(cls: type, text: str) -> int | None:
    try:
        return int(cls(text))
    except ValueError:
        return None


def test_odd_addresses_read_as_ipaddress_reads_them() -> None:
    for text in ODD:
        assert _ipv4(text) == reference(ipaddress.IPv4Address, text), text
        assert _ipv6(text) == reference(ipaddress.IPv6Address, text), text


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**128 - 1), st.booleans())
def test_addresses_read_as_ipaddress_reads_them(v4: int, v6: int, exploded: bool) -> None:
    assert _ipv4(str(ipaddress.IPv4Address(v4))) == v4
    a6 = ipaddress.IPv6Address(v6)
    assert _ipv6(a6.exploded if exploded else str(a6)) == v6


@given(st.text(alphabet="0123456789abcdef.:%", max_size=45))
def test_any_text_reads_as_ipaddress_reads_it(text: str) -> None:
    assert _ipv4(text) == reference(ipaddress.IPv4Address, text)
    assert _ipv6(text) == reference(ipaddress.IPv6Address, text)
