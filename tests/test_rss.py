"""Tests for e810pipe.rss: Toeplitz (Microsoft vectors), symmetric input, XOR, LUT."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from e810pipe.errors import UsageError
from e810pipe.rss import (
    DEFAULT_KEY,
    MS_KEY,
    Lut,
    Toeplitz,
    simple_xor,
    symmetric_input,
    toeplitz,
)

# Microsoft, "Verifying the RSS Hash Calculation", rows as published: the
# "Destination" column comes first, then "Source", then the hash of the addresses
# only, then the hash with the TCP ports. The hash input is
# source address | destination address | source port | destination port.
# (destination, dst port, source, src port, hash without ports, hash with ports)
IPV4_VECTORS = [
    ("161.142.100.80", 1766, "66.9.149.187", 2794, 0x323E8FC2, 0x51CCC178),
    ("65.69.140.83", 4739, "199.92.111.2", 14230, 0xD718262A, 0xC626B0EA),
    ("12.22.207.184", 38024, "24.19.198.95", 12898, 0xD2D0A5DE, 0x5C2B394A),
    ("209.142.163.6", 2217, "38.27.205.30", 48228, 0x82989176, 0xAFC7327F),
    ("202.188.127.2", 1303, "153.39.163.191", 44251, 0x5D1809C5, 0x10E828A2),
]

IPV6_VECTORS = [
    ("3ffe:2501:200:3::1", 1766, "3ffe:2501:200:1fff::7", 2794, 0x2CC18CD5, 0x40207D3D),
    ("ff02::1", 4739, "3ffe:501:8::260:97ff:fe40:efab", 14230, 0x0F0C461C, 0xDDE51BBF),
    (
        "fe80::200:f8ff:fe21:67cf",
        38024,
        "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
        44251,
        0x4B61E985,
        0x02D1FEEF,
    ),
]

ALL_VECTORS = IPV4_VECTORS + IPV6_VECTORS


def _addr(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def _port(port: int) -> bytes:
    return port.to_bytes(2, "big")


def _inputs(dst: str, dport: int, src: str, sport: int) -> tuple[bytes, bytes]:
    l3 = _addr(src) + _addr(dst)
    return l3 + _port(sport) + _port(dport), l3


MS = Toeplitz(MS_KEY)
DEFAULT = Toeplitz(DEFAULT_KEY)


@pytest.mark.parametrize(("dst", "dport", "src", "sport", "l3_only", "with_ports"), ALL_VECTORS)
def test_microsoft_vectors_reference(
    dst: str, dport: int, src: str, sport: int, l3_only: int, with_ports: int
) -> None:
    l4_input, l3_input = _inputs(dst, dport, src, sport)
    assert toeplitz(MS_KEY, l4_input) == with_ports
    assert toeplitz(MS_KEY, l3_input) == l3_only


@pytest.mark.parametrize(("dst", "dport", "src", "sport", "l3_only", "with_ports"), ALL_VECTORS)
def test_microsoft_vectors_table_driven(
    dst: str, dport: int, src: str, sport: int, l3_only: int, with_ports: int
) -> None:
    l4_input, l3_input = _inputs(dst, dport, src, sport)
    assert MS(l4_input) == with_ports
    assert MS(l3_input) == l3_only
    # The default 52-byte key starts with the Microsoft key, so inputs of up to
    # 36 bytes hash the same under it.
    assert DEFAULT(l4_input) == with_ports
    assert toeplitz(DEFAULT_KEY, l3_input) == l3_only


def test_default_key() -> None:
    assert len(DEFAULT_KEY) == 52
    assert DEFAULT_KEY[:40] == MS_KEY
    assert DEFAULT_KEY[40:] == bytes.fromhex("6d5a56da255b0ec24167253d")
    assert Toeplitz().key == DEFAULT_KEY


def test_empty_input_hashes_to_zero() -> None:
    assert toeplitz(MS_KEY, b"") == 0
    assert MS(b"") == 0


def test_single_bit_is_key_window() -> None:
    # The first bit of the input selects the first 32 key bits.
    assert toeplitz(MS_KEY, b"\x80") == 0x6D5A56DA
    assert MS(b"\x80") == 0x6D5A56DA
    # The last bit of byte 0 selects the key window starting at bit 7.
    expected = (int.from_bytes(MS_KEY[:5], "big") >> 1) & 0xFFFFFFFF
    assert MS(b"\x01") == expected


@given(
    key=st.one_of(st.binary(min_size=40, max_size=40), st.binary(min_size=52, max_size=52)),
    data=st.binary(max_size=48),
)
def test_table_matches_reference(key: bytes, data: bytes) -> None:
    data = data[: len(key) - 4]
    assert Toeplitz(key)(data) == toeplitz(key, data)


@given(data=st.binary(max_size=48))
def test_table_matches_reference_default_key(data: bytes) -> None:
    assert DEFAULT(data) == toeplitz(DEFAULT_KEY, data)


@given(a=st.binary(min_size=12, max_size=12), b=st.binary(min_size=12, max_size=12))
def test_toeplitz_is_linear(a: bytes, b: bytes) -> None:
    x = bytes(p ^ q for p, q in zip(a, b, strict=True))
    assert MS(x) == MS(a) ^ MS(b)


@pytest.mark.parametrize("length", [0, 1, 16, 39, 41, 51, 53, 64])
def test_bad_key_length(length: int) -> None:
    with pytest.raises(UsageError, match=rf"\b{length}\b"):
        Toeplitz(bytes(length))
    with pytest.raises(UsageError, match=rf"\b{length}\b"):
        toeplitz(bytes(length), b"\x01")


def test_usage_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        Toeplitz(bytes(41))


def test_input_too_long() -> None:
    assert MS(bytes(36)) == 0
    with pytest.raises(UsageError, match="37 bytes"):
        MS(bytes(37))
    with pytest.raises(UsageError, match="37 bytes"):
        toeplitz(MS_KEY, bytes(37))
    assert DEFAULT(bytes(48)) == 0
    with pytest.raises(UsageError, match="49 bytes"):
        DEFAULT(bytes(49))


# --- symmetric Toeplitz ---------------------------------------------------------


@pytest.mark.parametrize(("dst", "dport", "src", "sport", "l3_only", "with_ports"), ALL_VECTORS)
def test_symmetric_vectors_swap(
    dst: str, dport: int, src: str, sport: int, l3_only: int, with_ports: int
) -> None:
    forward = symmetric_input(_addr(src), _addr(dst), _port(sport), _port(dport))
    reverse = symmetric_input(_addr(dst), _addr(src), _port(dport), _port(sport))
    assert forward == reverse
    assert DEFAULT(forward) == DEFAULT(reverse)
    # The plain hash is not symmetric for these flows.
    plain_fwd = _addr(src) + _addr(dst) + _port(sport) + _port(dport)
    plain_rev = _addr(dst) + _addr(src) + _port(dport) + _port(sport)
    assert MS(plain_fwd) != MS(plain_rev)


def test_symmetric_input_layout() -> None:
    src = bytes([1, 2, 3, 4])
    dst = bytes([0x10, 0x20, 0x30, 0x40])
    out = symmetric_input(src, dst, b"\x00\x50", b"\x12\x34")
    assert out == bytes([0x11, 0x22, 0x33, 0x44] * 2) + b"\x12\x64" * 2
    assert symmetric_input(src, dst) == bytes([0x11, 0x22, 0x33, 0x44] * 2)


@given(
    width=st.sampled_from([4, 16]),
    data=st.data(),
    key=st.binary(min_size=52, max_size=52),
)
def test_symmetric_hash_same_both_directions(width: int, data: st.DataObject, key: bytes) -> None:
    src = data.draw(st.binary(min_size=width, max_size=width))
    dst = data.draw(st.binary(min_size=width, max_size=width))
    sport = data.draw(st.binary(min_size=2, max_size=2))
    dport = data.draw(st.binary(min_size=2, max_size=2))
    hasher = Toeplitz(key)
    assert hasher(symmetric_input(src, dst, sport, dport)) == hasher(
        symmetric_input(dst, src, dport, sport)
    )


def test_symmetric_input_length_mismatch() -> None:
    with pytest.raises(UsageError, match="src"):
        symmetric_input(bytes(4), bytes(16))
    with pytest.raises(UsageError, match="sport"):
        symmetric_input(bytes(4), bytes(4), bytes(2), b"")


# --- simple XOR -----------------------------------------------------------------


def test_simple_xor() -> None:
    assert simple_xor(b"") == 0
    assert simple_xor(bytes.fromhex("01020304")) == 0x01020304
    assert simple_xor(bytes.fromhex("0102030410203040")) == 0x11223344
    # Zero padding at the end: 6 bytes -> two words, the second 0x0506_0000.
    assert simple_xor(bytes.fromhex("010203040506")) == 0x01020304 ^ 0x05060000


def test_simple_xor_ipv4_tuple() -> None:
    src, dst = _addr("161.142.100.80"), _addr("66.9.149.187")
    data = src + dst + _port(1766) + _port(2794)
    expected = 0xA18E6450 ^ 0x420995BB ^ ((1766 << 16) | 2794)
    assert simple_xor(data) == expected


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_simple_xor_concatenation(a: bytes, b: bytes) -> None:
    a4 = a + b"\x00" * (-len(a) % 4)
    assert simple_xor(a4 + b) == simple_xor(a) ^ simple_xor(b)
    assert 0 <= simple_xor(a) <= 0xFFFFFFFF


# --- lookup table ---------------------------------------------------------------


@pytest.mark.parametrize("size", [64, 128, 512, 2048])
def test_lut_default_fill(size: int) -> None:
    lut = Lut(size, nqueues=3)
    assert len(lut) == size
    assert lut.entries == tuple(i % 3 for i in range(size))


@pytest.mark.parametrize("size", [0, 1, 32, 63, 100, 256, 1024, 4096])
def test_lut_bad_size(size: int) -> None:
    with pytest.raises(UsageError) as info:
        Lut(size, nqueues=4)
    message = str(info.value)
    assert str(size) in message
    for valid in ("64", "128", "512", "2048"):
        assert valid in message


def test_lut_bad_nqueues() -> None:
    with pytest.raises(UsageError, match="nqueues"):
        Lut(64, nqueues=0)


def test_lut_queue_for_uses_low_bits() -> None:
    lut = Lut(128, nqueues=4)
    assert lut.queue_for(0) == 0
    assert lut.queue_for(5) == 1
    assert lut.queue_for(0x51CCC178) == (0x51CCC178 & 127) % 4
    assert lut.queue_for(0xFFFFFF80) == 0
    assert lut.queue_for(0xFFFFFFFF) == 127 % 4


def test_lut_reta_update() -> None:
    lut = Lut(512, nqueues=8)
    lut.set(0, 7)
    lut.set(511, 5)
    assert lut[0] == 7
    assert lut[511] == 5
    assert lut.queue_for(512) == 7  # 512 & 511 == 0
    assert lut.queue_for(0xFFFFFFFF) == 5
    assert lut[1] == 1


def test_lut_reta_bounds() -> None:
    lut = Lut(64, nqueues=4)
    with pytest.raises(UsageError, match="index 64"):
        lut.set(64, 0)
    with pytest.raises(UsageError, match="index -1"):
        lut.set(-1, 0)
    with pytest.raises(UsageError, match="queue 4"):
        lut.set(0, 4)
    with pytest.raises(UsageError, match="queue -1"):
        lut.set(0, -1)
    assert lut.entries == tuple(i % 4 for i in range(64))


def test_lut_update_is_all_or_nothing() -> None:
    lut = Lut(64, nqueues=4)
    with pytest.raises(UsageError):
        lut.update([(0, 3), (1, 9)])
    assert lut[0] == 0
    lut.update([(0, 3), (1, 2)])
    assert (lut[0], lut[1]) == (3, 2)


def test_hash_to_queue_end_to_end() -> None:
    lut = Lut(128, nqueues=16)
    dst, dport, src, sport, _, with_ports = IPV4_VECTORS[0]
    l4_input, _l3 = _inputs(dst, dport, src, sport)
    assert lut.queue_for(DEFAULT(l4_input)) == (with_ports & 127) % 16
