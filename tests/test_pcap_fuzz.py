"""Fuzz the capture reader: corrupted, truncated and empty files, wrong link types.

Every damaged file must read as packets up to the damage and then either end or
raise a PcapError that names the file, the packet (or the file header) and a byte
offset inside the file; a packet of another link type is skipped and counted by
the command line. ``E810PIPE_FUZZ_SCALE=20`` runs twenty times as many mutants.
"""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import pytest

from e810pipe.cli import main
from e810pipe.errors import PcapError
from e810pipe.pcapio import Packet, iter_packets

SCALE = int(os.environ.get("E810PIPE_FUZZ_SCALE", "1"))
ETH = bytes.fromhex("ffffffffffff00000000000108004500001c00000000401100000a0000010a000002")
ETH += bytes.fromhex("0035003500080000")


def pcap(order: str = "<", nano: bool = False, linktype: int = 1) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for i, p in enumerate((ETH, ETH[:14], b"", ETH + bytes(30))):
        out += struct.pack(order + "IIII", 1000 + i, 5, len(p), len(p) + 4) + p
    return out


def _block(order: str, btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    n = len(body) + 12
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def _opt(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def pcapng(order: str = "<", linktypes: tuple[int, ...] = (1, 101), sections: int = 2) -> bytes:
    """Sections with an SHB, IDBs (with options), EPBs, an SPB, an old Packet Block,
    and blocks the reader skips (ISB, NRB)."""
    out = b""
    for _ in range(sections):
        shb = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
        out += _block(order, 0x0A0D0D0A, shb + _opt(order, 1, b"fuzz") + _opt(order, 0, b""))
        for lt in linktypes:
            idb = struct.pack(order + "HHI", lt, 0, 0) + _opt(order, 9, bytes([0x86]))
            idb += _opt(order, 14, struct.pack(order + "q", 7)) + _opt(order, 0, b"")
            out += _block(order, 1, idb)
        for i, p in enumerate((ETH, ETH[:3])):
            epb = struct.pack(order + "IIIII", i % len(linktypes), 0, 99, len(p), len(p))
            out += _block(order, 6, epb + p)
        out += _block(order, 3, struct.pack(order + "I", len(ETH)) + ETH)
        opb = struct.pack(order + "HHIIII", 0, 0, 0, 9, len(ETH), len(ETH))
        out += _block(order, 2, opb + ETH)
        out += _block(order, 5, bytes(20)) + _block(order, 4, bytes(8))
    return out


def record_ends(data: bytes) -> set[int]:
    """Offsets at which a record (pcap) or block (pcapng) ends."""
    ends = set()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        pos, order = 0, "<"
        while pos < len(data):
            if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":  # a section: its byte order
                order = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            pos += struct.unpack_from(order + "I", data, pos + 4)[0]
            ends.add(pos)
        return ends
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    pos = 24
    ends.add(pos)
    while pos < len(data):
        pos += 16 + struct.unpack_from(order + "I", data, pos + 8)[0]
        ends.add(pos)
    return ends


FORMATS = {
    "pcap-le": pcap(),
    "pcap-be": pcap(">"),
    "pcap-ns": pcap(nano=True),
    "pcap-be-ns-raw-ip": pcap(">", True, 101),
    "pcapng-le": pcapng(),
    "pcapng-be": pcapng(">"),
    "pcapng-one": pcapng("<", (1,), 1),
}


def read(path: Path) -> tuple[list[Packet], PcapError | None]:
    """All packets up to the end or the first error, and the error."""
    size = path.stat().st_size
    got: list[Packet] = []
    try:
        for p in iter_packets(path):
            assert isinstance(p, Packet) and p.index == len(got)
            assert isinstance(p.data, bytes) and isinstance(p.ts, float)
            assert isinstance(p.linktype, int) and isinstance(p.orig_len, int)
            got.append(p)
    except PcapError as err:
        assert err.path == str(path)
        assert 0 <= err.offset <= size, f"offset {err.offset} outside the {size}-byte file"
        assert err.index is None or 0 <= err.index <= len(got)
        assert "byte offset" in str(err) and str(path) in str(err)
        return got, err
    return got, None


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_truncation(name: str, tmp_path: Path) -> None:
    whole = FORMATS[name]
    path = tmp_path / "f.cap"
    path.write_bytes(whole)
    full, err = read(path)
    assert err is None and len(full) >= 4
    ends = record_ends(whole)
    for cut in range(len(whole)):
        path.write_bytes(whole[:cut])
        got, err = read(path)
        # what was read is what the whole file starts with
        assert [p.data for p in got] == [p.data for p in full[: len(got)]], cut
        # a file cut between records reads cleanly; cut anywhere else, it is an error
        assert (err is None) == (cut in ends), (cut, err)
    path.write_bytes(b"")
    _, err = read(path)
    assert err is not None and "empty file" in str(err) and err.index is None


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_random_corruption(name: str, tmp_path: Path) -> None:
    rng = random.Random(f"pcap-fuzz:{name}")
    whole = FORMATS[name]
    path = tmp_path / "f.cap"
    errors = 0
    for _ in range(400 * SCALE):
        b = bytearray(whole)
        op = rng.randrange(4)
        if op == 0:
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1:  # a length, caplen or type word set to an awkward value
            at = rng.randrange(len(b) - 4)
            value = rng.choice([0, 1, 3, 12, 28, 32, 0x7FFFFFFF, 0xFFFFFFFF, 0x1000000, 0x40001])
            b[at : at + 4] = struct.pack("<I", value)
        elif op == 2:
            at = rng.randrange(len(b))
            b[at:at] = rng.randbytes(rng.randint(1, 8))
        else:
            at = rng.randrange(len(b))
            del b[at : at + rng.randint(1, 8)]
        path.write_bytes(bytes(b))
        _, err = read(path)
        errors += err is not None
    assert errors > 100  # most damage is noticed


def test_tiny_files(tmp_path: Path) -> None:
    path = tmp_path / "f.cap"
    for data in (b"\xd4", b"\xd4\xc3\xb2", pcap()[:4], pcap()[:23], b"GIF89a.....", bytes(64)):
        path.write_bytes(data)
        got, err = read(path)
        assert not got and err is not None and err.index is None
    path.write_bytes(pcap()[:24])  # a header and no packet: an empty capture
    assert read(path) == ([], None)


def test_wrong_link_types_are_skipped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ng = tmp_path / "mixed.pcapng"
    ng.write_bytes(pcapng())  # per section: 2 EPBs (interfaces 1 and 101), SPB and OPB on 1
    raw = tmp_path / "raw.pcap"
    raw.write_bytes(pcap(">", True, 101))
    code = main(["parse", str(ng), str(raw), "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and len(out.splitlines()) == 6
    assert "skipped 6 packet(s) that are not Ethernet" in err
    assert "link type 101" in err


def test_command_line_never_crashes_on_damaged_captures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random("pcap-fuzz:cli")
    path = tmp_path / "f.cap"
    for i in range(60 * SCALE):
        b = bytearray(FORMATS[sorted(FORMATS)[i % len(FORMATS)]])
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        path.write_bytes(bytes(b[: rng.randrange(len(b) + 1)]))
        code = main(["parse", str(path), "--json"])
        _, err = capsys.readouterr()
        assert code in (0, 4), err
        assert "internal error" not in err and "Traceback" not in err
        if code == 4:
            assert f"e810pipe: {path}: " in err and "byte offset" in err
