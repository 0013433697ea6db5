"""Tests for e810pipe.pcapio: the streaming pcap/pcapng reader and the pcap writer."""

from __future__ import annotations

import csv
import shutil
import struct
import subprocess
import tracemalloc
import types
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import CookedLinux, Ether
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw
from scapy.utils import EDecimal, PcapNgWriter, rdpcap, wrpcap, wrpcapng

from e810pipe.errors import E810PipeError, OutputError, PcapError, UsageError
from e810pipe.pcapio import (
    LINKTYPE_ETHERNET,
    MAX_CAPLEN,
    Packet,
    PcapWriter,
    iter_packets,
    write_pcap,
)

REAL_DIR = Path(__file__).parent / "data" / "real"
REAL_FILES = sorted(
    p for p in REAL_DIR.rglob("*") if p.suffix in (".pcap", ".pcapng") and p.is_file()
)

LINKTYPE_RAW = 101
LINKTYPE_IPV4 = 228
LINKTYPE_LINUX_SLL = 113


# ---------------------------------------------------------------- builders


def pcap_bytes(
    records: Iterable[tuple[bytes, int, int]],
    order: str = "<",
    nano: bool = False,
    linktype: int = 1,
    snaplen: int = 65535,
) -> bytes:
    """A classic pcap file from (data, ts_sec, ts_frac) records, built with struct."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for data, sec, frac in records:
        out.append(struct.pack(order + "IIII", sec, frac, len(data), len(data)) + data)
    return b"".join(out)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def block(btype: int, body: bytes, order: str = "<") -> bytes:
    """A pcapng block with a padded body and matching leading/trailing lengths."""
    body = _pad(body)
    n = 12 + len(body)
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def shb(order: str = "<") -> bytes:
    return block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def opt(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + _pad(value)


def idb(linktype: int, order: str = "<", snaplen: int = 0, options: bytes = b"") -> bytes:
    if options:
        options += struct.pack(order + "HH", 0, 0)
    return block(1, struct.pack(order + "HHI", linktype, 0, snaplen) + options, order)


def epb(iface: int, ts: int, data: bytes, order: str = "<", orig_len: int | None = None) -> bytes:
    orig = len(data) if orig_len is None else orig_len
    head = struct.pack(order + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), orig)
    return block(6, head + data, order)


def spb(data: bytes, order: str = "<", orig_len: int | None = None) -> bytes:
    orig = len(data) if orig_len is None else orig_len
    return block(3, struct.pack(order + "I", orig) + data, order)


def frame(n: int, seed: int = 0) -> bytes:
    """n bytes of recognisable frame content."""
    return bytes((seed * 7 + i) & 0xFF for i in range(n))


def write(tmp_path: Path, data: bytes, name: str = "f.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_error(path: Path) -> tuple[PcapError, list[Packet]]:
    """Iterate a file that must fail; return the error and the packets read before it."""
    got: list[Packet] = []
    with pytest.raises(PcapError) as info:
        for pkt in iter_packets(path):
            got.append(pkt)
    return info.value, got


# ---------------------------------------------------------------- classic pcap


def test_pcap_microseconds_from_scapy(tmp_path: Path) -> None:
    pkts = []
    for i in range(5):
        p: ScapyPacket = (
            Ether(src="02:00:00:00:00:01") / IP(dst=f"10.0.0.{i}") / UDP() / Raw(frame(i * 10))
        )
        p.time = 1_700_000_000 + i + 0.123456
        pkts.append(p)
    path = tmp_path / "us.pcap"
    wrpcap(str(path), pkts)
    got = list(iter_packets(path))
    assert [p.index for p in got] == list(range(5))
    assert [p.data for p in got] == [bytes(p) for p in pkts]
    assert all(p.linktype == LINKTYPE_ETHERNET for p in got)
    assert [p.orig_len for p in got] == [len(bytes(p)) for p in pkts]
    for i, g in enumerate(got):
        assert g.ts == pytest.approx(1_700_000_000 + i + 0.123456, abs=1e-6)
    assert isinstance(got[0], tuple) and isinstance(got[0].ts, float)


def test_pcap_nanoseconds_from_scapy(tmp_path: Path) -> None:
    p = Ether() / IP() / UDP()
    p.time = EDecimal("1700000000.123456789")
    q = Ether() / IP() / UDP(dport=99)
    q.time = EDecimal("5.123456789")
    path = tmp_path / "ns.pcap"
    wrpcap(str(path), [p, q], nano=True)
    assert path.read_bytes()[:4] == bytes.fromhex("4d3cb2a1")
    got = list(iter_packets(path))
    assert [g.data for g in got] == [bytes(p), bytes(q)]
    # A double near 1.7e9 s resolves about 0.24 us; near 5 s the nanoseconds survive.
    assert got[0].ts == pytest.approx(1_700_000_000.123456789, abs=3e-7)
    assert round((got[1].ts - 5) * 1e9) == 123_456_789


@pytest.mark.parametrize("nano", [False, True])
def test_pcap_big_endian_by_hand(tmp_path: Path, nano: bool) -> None:
    frac = 500_000_000 if nano else 500_000
    data = pcap_bytes([(frame(60), 10, frac), (frame(61, 1), 11, 0)], order=">", nano=nano)
    assert data[:4] == (b"\xa1\xb2\x3c\x4d" if nano else b"\xa1\xb2\xc3\xd4")
    got = list(iter_packets(write(tmp_path, data)))
    assert got == [
        Packet(0, frame(60), 10.5, 1, 60),
        Packet(1, frame(61, 1), 11.0, 1, 61),
    ]


def test_pcap_big_endian_from_scapy(tmp_path: Path) -> None:
    pkts = [Ether() / IP(dst="192.0.2.1") / UDP(dport=i) for i in range(3)]
    path = tmp_path / "be.pcap"
    wrpcap(str(path), pkts, endianness=">")
    assert path.read_bytes()[:4] == b"\xa1\xb2\xc3\xd4"
    assert [p.data for p in iter_packets(path)] == [bytes(p) for p in pkts]


def test_pcap_keeps_every_linktype(tmp_path: Path) -> None:
    data = pcap_bytes([(frame(20), 1, 0)], linktype=LINKTYPE_RAW)
    (got,) = list(iter_packets(write(tmp_path, data)))
    assert got.linktype == LINKTYPE_RAW


def test_pcap_linktype_ignores_fcs_bits(tmp_path: Path) -> None:
    # libpcap puts FCS information in the upper bits of the link-type field.
    data = pcap_bytes([(frame(20), 1, 0)], linktype=1 | 1 << 28 | 2 << 26)
    (got,) = list(iter_packets(write(tmp_path, data)))
    assert got.linktype == 1


def test_pcap_caplen_smaller_than_orig_len(tmp_path: Path) -> None:
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 64, 1)
    rec = struct.pack("<IIII", 5, 7, 64, 1514) + frame(64)
    (got,) = list(iter_packets(write(tmp_path, head + rec)))
    assert (got.orig_len, len(got.data), got.ts) == (1514, 64, 5.000007)


def test_pcap_header_only_has_no_packets(tmp_path: Path) -> None:
    assert list(iter_packets(write(tmp_path, pcap_bytes([])))) == []


# ---------------------------------------------------------------- pcapng


def test_pcapng_two_interfaces_from_scapy(tmp_path: Path) -> None:
    a: ScapyPacket = Ether() / IP() / UDP()
    a.time, a.sniffed_on = 1.5, "eth0"
    b: ScapyPacket = IP(dst="198.51.100.1") / UDP()
    b.time, b.sniffed_on = 2.25, "tun0"
    c: ScapyPacket = CookedLinux() / IP()
    c.time, c.sniffed_on = 3.0, "any"
    path = tmp_path / "two.pcapng"
    with PcapNgWriter(str(path)) as w:
        for p in (a, b, c):
            w.write(p)
    got = list(iter_packets(path))
    assert [p.data for p in got] == [bytes(a), bytes(b), bytes(c)]
    assert [p.linktype for p in got] == [LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_LINUX_SLL]
    assert [p.ts for p in got] == [1.5, 2.25, 3.0]
    assert [p.index for p in got] == [0, 1, 2]


def test_pcapng_wrpcapng(tmp_path: Path) -> None:
    pkts: list[ScapyPacket] = [Ether() / IP() / UDP(sport=i) / Raw(frame(i)) for i in range(1, 8)]
    for i, p in enumerate(pkts):
        p.time = 100 + i / 4
    path = tmp_path / "w.pcapng"
    wrpcapng(str(path), pkts)
    got = list(iter_packets(path))
    assert [p.data for p in got] == [bytes(p) for p in pkts]
    assert [p.ts for p in got] == [100 + i / 4 for i in range(7)]


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_by_hand_interfaces_tsresol_and_skipped_blocks(tmp_path: Path, order: str) -> None:
    nrb = block(
        4, struct.pack(order + "HH", 1, 8) + bytes(8) + struct.pack(order + "HH", 0, 0), order
    )
    isb = block(5, struct.pack(order + "III", 0, 0, 0), order)
    custom = block(0x00000BAD, struct.pack(order + "I", 32473) + b"private data", order)
    data = b"".join(
        [
            shb(order),
            idb(1, order),  # default resolution: microseconds
            nrb,
            idb(LINKTYPE_RAW, order, options=opt(9, b"\x09", order)),  # nanoseconds
            idb(147, order, options=opt(9, b"\x94", order)),  # 2^-20 seconds
            idb(
                1,
                order,
                options=opt(9, b"\x03", order) + opt(14, struct.pack(order + "q", 1000), order),
            ),
            epb(0, 1_500_000, frame(60), order),
            custom,
            epb(1, 2_250_000_001, frame(41, 1), order, orig_len=1400),
            epb(2, 3 << 20 | 1 << 19, frame(3, 2), order),
            isb,
            epb(3, 1_250, frame(14, 3), order),
        ]
    )
    got = list(iter_packets(write(tmp_path, data)))
    assert got == [
        Packet(0, frame(60), 1.5, 1, 60),
        Packet(1, frame(41, 1), 2.250000001, LINKTYPE_RAW, 1400),
        Packet(2, frame(3, 2), 3.5, 147, 3),
        Packet(3, frame(14, 3), 1001.25, 1, 14),
    ]


def test_pcapng_several_sections_reset_interfaces(tmp_path: Path) -> None:
    data = b"".join(
        [
            shb("<"),
            idb(1, "<"),
            epb(0, 1_000_000, frame(20), "<"),
            shb(">"),  # a new section in the other byte order
            idb(LINKTYPE_RAW, ">"),
            epb(0, 2_000_000, frame(21, 1), ">"),
            shb("<"),
            idb(LINKTYPE_LINUX_SLL, "<"),
            idb(1, "<"),
            epb(1, 3_000_000, frame(22, 2), "<"),
            epb(0, 4_000_000, frame(23, 3), "<"),
        ]
    )
    got = list(iter_packets(write(tmp_path, data)))
    assert [(p.index, p.linktype, p.ts, p.data) for p in got] == [
        (0, 1, 1.0, frame(20)),
        (1, LINKTYPE_RAW, 2.0, frame(21, 1)),
        (2, 1, 3.0, frame(22, 2)),
        (3, LINKTYPE_LINUX_SLL, 4.0, frame(23, 3)),
    ]


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_simple_packet_block(tmp_path: Path, order: str) -> None:
    data = b"".join(
        [
            shb(order),
            idb(LINKTYPE_RAW, order, snaplen=50),
            spb(frame(33), order),
            spb(frame(50, 1), order, orig_len=1500),  # cut at the snap length
            epb(0, 7_000_000, frame(9, 2), order),
        ]
    )
    got = list(iter_packets(write(tmp_path, data)))
    assert got == [
        Packet(0, frame(33), 0.0, LINKTYPE_RAW, 33),
        Packet(1, frame(50, 1), 0.0, LINKTYPE_RAW, 1500),
        Packet(2, frame(9, 2), 7.0, LINKTYPE_RAW, 9),
    ]


def test_pcapng_obsolete_packet_block(tmp_path: Path) -> None:
    body = struct.pack("<HHIIII", 0, 0, 0, 2_000_000, 5, 60) + frame(5)
    data = shb() + idb(1) + block(2, body)
    assert list(iter_packets(write(tmp_path, data))) == [Packet(0, frame(5), 2.0, 1, 60)]


def test_pcapng_without_packets(tmp_path: Path) -> None:
    assert list(iter_packets(write(tmp_path, shb()))) == []
    assert list(iter_packets(write(tmp_path, shb() + idb(1)))) == []


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pcap"
    err, _ = read_error(path)
    assert (err.index, err.offset, err.path) == (None, 0, str(path))
    assert "cannot open" in str(err) and "No such file or directory" in str(err)


def test_directory_is_not_a_capture(tmp_path: Path) -> None:
    err, _ = read_error(tmp_path)
    assert (err.index, err.offset) == (None, 0)


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, b"")
    err, _ = read_error(path)
    assert (err.index, err.offset) == (None, 0)
    assert str(err) == f"{path}: file header, byte offset 0: empty file: no pcap or pcapng header"
    assert isinstance(err, ValueError) and isinstance(err, E810PipeError)
    assert err.exit_code == 4


def test_garbage_file(tmp_path: Path) -> None:
    err, _ = read_error(write(tmp_path, b"GET / HTTP/1.1\r\n\r\n"))
    assert (err.index, err.offset) == (None, 0)
    assert "not a pcap or pcapng file (magic 0x47455420)" in str(err)


def test_file_shorter_than_magic(tmp_path: Path) -> None:
    err, _ = read_error(write(tmp_path, b"\xd4\xc3"))
    assert (err.index, err.offset) == (None, 0)
    assert "truncated header" in str(err)


@pytest.mark.parametrize("cut", [4, 10, 23])
def test_truncated_global_header(tmp_path: Path, cut: int) -> None:
    err, _ = read_error(write(tmp_path, pcap_bytes([(frame(60), 0, 0)])[:cut]))
    assert (err.index, err.offset) == (None, 0)
    assert str(err).endswith(f"truncated header: needs 24 bytes, {cut} left")


@pytest.mark.parametrize("cut", [4, 8, 12, 27])
def test_truncated_section_header(tmp_path: Path, cut: int) -> None:
    err, _ = read_error(write(tmp_path, (shb() + idb(1))[:cut]))
    assert (err.index, err.offset) == (None, 0)
    assert "truncated" in str(err)


def test_pcap_truncated_in_the_middle_of_a_packet(tmp_path: Path) -> None:
    pkts = [Ether() / IP() / UDP() / Raw(frame(n)) for n in (18, 28, 38)]  # 60, 70, 80 bytes
    path = tmp_path / "cut.pcap"
    wrpcap(str(path), pkts)
    full = path.read_bytes()
    # header 24; packet 0 at 24 (16+60), packet 1 at 100 (16+70), packet 2 at 186 (16+80)
    assert len(full) == 24 + 76 + 86 + 96 == 282
    path.write_bytes(full[: 186 + 16 + 30])
    err, got = read_error(path)
    assert [p.data for p in got] == [bytes(p) for p in pkts[:2]]  # streamed before the error
    assert (err.index, err.offset) == (2, 186)
    assert (
        str(err) == f"{path}: packet 2, byte offset 186: truncated: record needs 96 bytes, 46 left"
    )


def test_pcap_truncated_in_a_record_header(tmp_path: Path) -> None:
    data = pcap_bytes([(frame(60), 0, 0), (frame(70), 0, 0)])
    err, got = read_error(write(tmp_path, data[: 24 + 76 + 5]))
    assert len(got) == 1
    assert (err.index, err.offset) == (1, 100)
    assert str(err).endswith("truncated: record needs 16 bytes, 5 left")


def test_pcap_absurd_caplen(tmp_path: Path) -> None:
    data = pcap_bytes([(frame(60), 0, 0)]) + struct.pack("<IIII", 0, 0, MAX_CAPLEN + 1, 60)
    err, got = read_error(write(tmp_path, data + bytes(100)))
    assert len(got) == 1
    assert (err.index, err.offset) == (1, 100)
    assert f"absurd caplen {MAX_CAPLEN + 1}" in str(err)


def test_pcap_caplen_at_the_limit_is_fine(tmp_path: Path) -> None:
    big = frame(MAX_CAPLEN)
    (got,) = list(iter_packets(write(tmp_path, pcap_bytes([(big, 0, 0)], snaplen=MAX_CAPLEN))))
    assert got.data == big


def test_pcapng_truncated_in_the_middle_of_a_packet(tmp_path: Path) -> None:
    head = shb() + idb(1)  # 28 + 20 = 48
    p0, p1 = epb(0, 0, frame(60)), epb(0, 0, frame(70))  # 92 and 104 bytes
    assert (len(head), len(p0), len(p1)) == (48, 92, 104)
    err, got = read_error(write(tmp_path, (head + p0 + p1)[: 48 + 92 + 50]))
    assert [p.data for p in got] == [frame(60)]
    assert (err.index, err.offset) == (1, 140)
    assert str(err).endswith("truncated: record needs 104 bytes, 50 left (Enhanced Packet Block)")


def test_pcapng_block_length_not_multiple_of_4(tmp_path: Path) -> None:
    bad = bytearray(epb(0, 0, frame(60)))
    struct.pack_into("<I", bad, 4, 90)
    err, _ = read_error(write(tmp_path, shb() + idb(1) + bytes(bad)))
    assert (err.index, err.offset) == (0, 48)
    assert "block length 90 is not a multiple of 4" in str(err)


def test_pcapng_block_length_below_12(tmp_path: Path) -> None:
    data = shb() + idb(1) + epb(0, 0, frame(4)) + struct.pack("<II", 5, 8) + bytes(8)
    err, got = read_error(write(tmp_path, data))
    assert len(got) == 1
    assert (err.index, err.offset) == (1, 48 + 36)
    assert "block length 8 is smaller than 12" in str(err)


def test_pcapng_trailing_length_mismatch(tmp_path: Path) -> None:
    bad = bytearray(epb(0, 0, frame(60)))
    struct.pack_into("<I", bad, len(bad) - 4, 96)
    err, _ = read_error(write(tmp_path, shb() + idb(1) + epb(0, 0, frame(8)) + bytes(bad)))
    assert (err.index, err.offset) == (1, 48 + 40)
    assert "block length mismatch: leading 92, trailing 96" in str(err)


def test_pcapng_trailing_length_mismatch_in_skipped_block(tmp_path: Path) -> None:
    bad = bytearray(block(5, bytes(12)))
    struct.pack_into("<I", bad, len(bad) - 4, 4)
    err, _ = read_error(write(tmp_path, shb() + idb(1) + bytes(bad)))
    assert (err.index, err.offset) == (0, 48)
    assert "block length mismatch: leading 24, trailing 4" in str(err)


def test_pcapng_bad_section_header_length(tmp_path: Path) -> None:
    bad = bytearray(shb())
    struct.pack_into("<I", bad, 4, 30)
    err, _ = read_error(write(tmp_path, bytes(bad) + idb(1)))
    assert (err.index, err.offset) == (None, 0)
    assert "block length 30 is not a multiple of 4" in str(err)


def test_pcapng_bad_byte_order_magic(tmp_path: Path) -> None:
    bad = bytearray(shb())
    bad[8:12] = b"\x01\x02\x03\x04"
    err, _ = read_error(write(tmp_path, bytes(bad)))
    assert (err.index, err.offset) == (None, 0)
    assert "byte-order magic" in str(err)


def test_pcapng_unknown_interface(tmp_path: Path) -> None:
    data = shb() + idb(1) + epb(0, 0, frame(8)) + epb(3, 0, frame(8))
    err, got = read_error(write(tmp_path, data))
    assert len(got) == 1
    assert (err.index, err.offset) == (1, 88)
    assert "unknown interface id 3 (the section defines 1)" in str(err)


def test_pcapng_interface_of_earlier_section_is_unknown(tmp_path: Path) -> None:
    data = shb() + idb(1) + idb(1) + shb() + idb(1) + epb(1, 0, frame(8))
    err, _ = read_error(write(tmp_path, data))
    assert (err.index, err.offset) == (0, 28 + 20 + 20 + 28 + 20)


def test_pcapng_spb_without_interface(tmp_path: Path) -> None:
    err, _ = read_error(write(tmp_path, shb() + spb(frame(8))))
    assert (err.index, err.offset) == (0, 28)


def test_pcapng_caplen_beyond_block(tmp_path: Path) -> None:
    bad = bytearray(epb(0, 0, frame(60)))
    struct.pack_into("<I", bad, 20, 61)
    err, _ = read_error(write(tmp_path, shb() + idb(1) + bytes(bad)))
    assert (err.index, err.offset) == (0, 48)
    assert "caplen 61 does not fit in block length 92" in str(err)


def test_pcapng_absurd_caplen(tmp_path: Path) -> None:
    bad = bytearray(epb(0, 0, frame(60)))
    struct.pack_into("<I", bad, 20, 0x7FFFFFFF)
    err, _ = read_error(write(tmp_path, shb() + idb(1) + bytes(bad)))
    assert (err.index, err.offset) == (0, 48)
    assert "absurd caplen" in str(err)


def test_pcapng_malformed_idb_option(tmp_path: Path) -> None:
    options = struct.pack("<HH", 9, 200) + b"\x06\0\0\0"
    data = shb() + block(1, struct.pack("<HHI", 1, 0, 0) + options)
    err, _ = read_error(write(tmp_path, data))
    assert (err.index, err.offset) == (0, 28)
    assert "overruns" in str(err)


def _valid_pcapng() -> bytes:
    return b"".join(
        [
            shb(),
            idb(1, options=opt(9, b"\x09")),
            epb(0, 5, frame(13)),
            block(4, bytes(4)),
            spb(frame(21, 1)),
            shb(">"),
            idb(LINKTYPE_RAW, ">"),
            epb(0, 6, frame(30, 2), ">"),
        ]
    )


def _check_only_pcap_errors(path: Path) -> int:
    n = 0
    try:
        for _ in iter_packets(path):
            n += 1
    except PcapError:
        pass
    return n


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_every_truncation_is_clean_or_a_pcap_error(tmp_path: Path, kind: str) -> None:
    if kind == "pcap":
        full = pcap_bytes([(frame(n, n), n, n) for n in (0, 1, 14, 60)])
    else:
        full = _valid_pcapng()
    path = tmp_path / "t.bin"
    complete = len(list(iter_packets(write(tmp_path, full, "t.bin"))))
    assert complete == (4 if kind == "pcap" else 3)
    for cut in range(len(full)):
        path.write_bytes(full[:cut])
        n = _check_only_pcap_errors(path)
        assert n <= complete


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    kind=st.sampled_from(["pcap", "pcapng"]),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 10_000),
)
def test_fuzzed_files_raise_only_pcap_errors(
    tmp_path: Path, kind: str, edits: list[tuple[int, int]], cut: int
) -> None:
    if kind == "pcap":
        data = bytearray(pcap_bytes([(frame(n, n), n, n) for n in (0, 1, 14, 60)]))
    else:
        data = bytearray(_valid_pcapng())
    for pos, value in edits:
        data[pos % len(data)] = value
    path = write(tmp_path, bytes(data[: max(cut, 4)]), "fuzz.bin")
    _check_only_pcap_errors(path)  # any other exception fails the test


# ---------------------------------------------------------------- streaming


def test_reader_streams_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.pcap"
    payload = frame(1500)
    count = write_pcap(path, (payload for _ in range(6000)))  # about 9 MB
    assert path.stat().st_size > 9_000_000
    tracemalloc.start()
    try:
        n = 0
        for pkt in iter_packets(path):
            n += len(pkt.data) == 1500
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == count == 6000
    assert peak < 1_000_000


def test_generator_closes_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, pcap_bytes([(frame(10), 0, 0)] * 3))
    it = iter_packets(path)
    assert isinstance(it, types.GeneratorType)
    assert next(it).index == 0
    it.close()  # must not leak the file (pytest reports ResourceWarnings)


# ---------------------------------------------------------------- writer


def test_writer_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "w.pcap"
    with PcapWriter(path) as w:
        w.write(frame(60), 1.25)
        w.write(frame(70, 1), 1_700_000_000.999_999_7)  # rounds up to the next second
        w.write(frame(80, 2), 3.000001, orig_len=1514)
        w.write(b"")
    assert w.count == 4
    raw = path.read_bytes()
    assert raw[:24] == struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    got = list(iter_packets(path))
    assert got == [
        Packet(0, frame(60), 1.25, 1, 60),
        Packet(1, frame(70, 1), 1_700_000_001.0, 1, 70),
        Packet(2, frame(80, 2), 3.000001, 1, 1514),
        Packet(3, b"", 0.0, 1, 0),
    ]
    scapy_pkts = rdpcap(str(path))
    assert [p.original for p in scapy_pkts] == [p.data for p in got]
    assert [p.wirelen for p in scapy_pkts] == [60, 70, 1514, 0]


def test_writer_snaplen_and_linktype(tmp_path: Path) -> None:
    path = tmp_path / "s.pcap"
    with PcapWriter(path, linktype=LINKTYPE_RAW, snaplen=64) as w:
        w.write(frame(100), 2.5)
        w.write(frame(10))
    got = list(iter_packets(path))
    assert got == [
        Packet(0, frame(64), 2.5, LINKTYPE_RAW, 100),
        Packet(1, frame(10), 0.0, LINKTYPE_RAW, 10),
    ]


def test_writer_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        PcapWriter(tmp_path / "a.pcap", linktype=70000)
    with pytest.raises(UsageError):
        PcapWriter(tmp_path / "a.pcap", snaplen=0)
    w = PcapWriter(tmp_path / "a.pcap")
    with pytest.raises(UsageError):
        w.write(frame(10), orig_len=5)
    for ts in (-1.0, 2.0**32, float("nan"), float("inf")):
        with pytest.raises(UsageError):
            w.write(frame(10), ts=ts)
    w.close()
    w.close()  # idempotent
    with pytest.raises(UsageError):
        w.write(frame(10))
    assert list(iter_packets(tmp_path / "a.pcap")) == []


def test_writer_cannot_create(tmp_path: Path) -> None:
    # an output problem, not a capture that cannot be read: its own error and exit code
    with pytest.raises(OutputError) as info:
        PcapWriter(tmp_path / "missing-dir" / "a.pcap")
    assert info.value.exit_code == 6
    assert str(info.value).endswith("a.pcap: cannot write: No such file or directory")


def test_write_pcap(tmp_path: Path) -> None:
    path = tmp_path / "c.pcap"
    n = write_pcap(path, [frame(20), (frame(30, 1), 4.5), b"\x01\x02"], linktype=LINKTYPE_RAW)
    assert n == 3
    got = list(iter_packets(path))
    assert [(p.data, p.ts, p.linktype) for p in got] == [
        (frame(20), 0.0, LINKTYPE_RAW),
        (frame(30, 1), 4.5, LINKTYPE_RAW),
        (b"\x01\x02", 0.0, LINKTYPE_RAW),
    ]
    assert write_pcap(tmp_path / "empty.pcap", []) == 0


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_writer_round_trip_through_tshark(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    pkts = [bytes(Ether() / IP() / UDP(dport=i) / Raw(frame(i))) for i in range(1, 6)]
    with PcapWriter(path) as w:
        for i, data in enumerate(pkts):
            w.write(data, 1_000 + i * 0.5, orig_len=len(data) + i)
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.len", "-e", "frame.cap_len"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split("\t") for line in out.splitlines() if line]
    assert rows == [[str(len(d) + i), str(len(d))] for i, d in enumerate(pkts)]
    got = list(iter_packets(path))
    assert [p.orig_len for p in got] == [int(r[0]) for r in rows]


# ---------------------------------------------------------------- real captures


def test_real_captures_are_present() -> None:
    assert len(REAL_FILES) >= 78
    assert (REAL_DIR / "SOURCES.md").is_file()


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: str(p.relative_to(REAL_DIR)))
def test_real_capture_matches_scapy(path: Path) -> None:
    ours = list(iter_packets(path))
    theirs = rdpcap(str(path))
    assert len(ours) == len(theirs)
    for mine, ref in zip(ours, theirs, strict=True):
        assert mine.data == ref.original
        assert mine.orig_len == ref.wirelen
        assert mine.ts == pytest.approx(float(ref.time), abs=1e-6)
    assert [p.index for p in ours] == list(range(len(ours)))


def test_real_captures_match_tshark_oracle() -> None:
    with open(REAL_DIR / "oracle-tshark.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    expected: dict[str, list[int]] = {}
    for row in rows:
        expected.setdefault(row["file"], []).append(int(row["len"]))
    assert set(expected) == {str(p.relative_to(REAL_DIR)) for p in REAL_FILES}
    for name, lens in expected.items():
        assert [p.orig_len for p in iter_packets(REAL_DIR / name)] == lens, name
