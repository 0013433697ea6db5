"""Streaming pcap/pcapng reader and classic pcap writer with located errors."""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import BinaryIO, NamedTuple

from e810pipe.errors import OutputError, PcapError, UsageError

__all__ = [
    "LINKTYPE_ETHERNET",
    "MAX_CAPLEN",
    "Packet",
    "PcapWriter",
    "iter_packets",
    "iter_pcap_from",
    "write_pcap",
]

LINKTYPE_ETHERNET = 1
#: Largest captured length accepted for one packet; bigger values mean a corrupt file.
MAX_CAPLEN = 0x40000
#: Largest pcapng block read into memory whole (packet blocks, SHB, IDB).
MAX_BLOCK = 0x1000000

_BUFSIZE = 1 << 17
STDIN = "-"  # the capture path that names standard input
_SKIP_CHUNK = 1 << 16

# Classic pcap magics, as read with a little-endian u32.
_MAGIC_US_LE = 0xA1B2C3D4
_MAGIC_NS_LE = 0xA1B23C4D
_MAGIC_US_BE = 0xD4C3B2A1
_MAGIC_NS_BE = 0x4D3CB2A1

# pcapng block types.
_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_OPB = 0x00000002
_SPB = 0x00000003
_EPB = 0x00000006
_BOM = 0x1A2B3C4D

_BLOCK_NAMES = {
    _SHB: "Section Header Block",
    _IDB: "Interface Description Block",
    _OPB: "Packet Block",
    _SPB: "Simple Packet Block",
    _EPB: "Enhanced Packet Block",
}

# Smallest valid total length of each block type read into memory.
_MIN_BLOCK = {_SHB: 28, _IDB: 20, _OPB: 32, _SPB: 16, _EPB: 32}

_U32_LE = struct.Struct("<I")
_PCAP_HDR = {"<": struct.Struct("<IHHiIII"), ">": struct.Struct(">IHHiIII")}
_PCAP_REC = {"<": struct.Struct("<IIII"), ">": struct.Struct(">IIII")}


class _NgLayout(NamedTuple):
    """Precompiled structs for one pcapng byte order."""

    head: struct.Struct  # block type, total length
    u32: struct.Struct
    shb: struct.Struct  # major, minor, section length
    idb: struct.Struct  # linktype, reserved, snaplen
    opt: struct.Struct  # option code, option length
    i64: struct.Struct
    epb: struct.Struct  # interface, ts high, ts low, caplen, orig len
    opb: struct.Struct  # interface, drops, ts high, ts low, caplen, orig len


def _ng_layout(order: str) -> _NgLayout:
    return _NgLayout(
        struct.Struct(order + "II"),
        struct.Struct(order + "I"),
        struct.Struct(order + "HHq"),
        struct.Struct(order + "HHI"),
        struct.Struct(order + "HH"),
        struct.Struct(order + "q"),
        struct.Struct(order + "IIIII"),
        struct.Struct(order + "HHIIII"),
    )


_NG = {"<": _ng_layout("<"), ">": _ng_layout(">")}


class Packet(NamedTuple):
    """One captured packet: its 0-based index in the file, bytes, time and link type.

    ``index`` shadows ``tuple.index``; use ``packet.index`` for the packet number.
    """

    index: int  # type: ignore[assignment]
    data: bytes
    ts: float
    linktype: int
    orig_len: int


class _Interface(NamedTuple):
    """A pcapng interface: link type, snap length and timestamp scaling."""

    linktype: int
    snaplen: int
    divisor: int  # timestamp units per second
    tsoffset: int  # seconds added to every timestamp


def _fail(path: str, index: int | None, offset: int, message: str) -> PcapError:
    return PcapError(message, path, index, offset)


def iter_packets(path: str | os.PathLike[str]) -> Iterator[Packet]:
    """Yield the packets of a pcap or pcapng file one by one, without loading the file.

    Every problem (unreadable file, bad header, truncation, corrupt record) raises
    :class:`PcapError` naming the packet index and the byte offset of the record.
    Errors are raised while iterating, not when the generator is created.
    """
    name = os.fsdecode(path)
    try:
        if name == STDIN:  # `-`: the capture comes on standard input, read as a stream
            name = "standard input"
            f = open(0, "rb", buffering=_BUFSIZE, closefd=False)
        else:
            f = open(path, "rb", buffering=_BUFSIZE)
    except OSError as exc:
        raise _fail(name, None, 0, f"cannot open: {exc.strerror or exc}") from None
    with f:
        magic = f.read(4)
        if not magic:
            raise _fail(name, None, 0, "empty file: no pcap or pcapng header")
        if len(magic) < 4:
            raise _fail(
                name, None, 0, f"truncated header: needs 4 bytes for the magic, {len(magic)} left"
            )
        (value,) = _U32_LE.unpack(magic)
        if value in (_MAGIC_US_LE, _MAGIC_NS_LE):
            yield from _iter_pcap(f, name, "<", value == _MAGIC_NS_LE)
        elif value in (_MAGIC_US_BE, _MAGIC_NS_BE):
            yield from _iter_pcap(f, name, ">", value == _MAGIC_NS_BE)
        elif value == _SHB:
            yield from _iter_pcapng(f, name)
        else:
            raise _fail(name, None, 0, f"not a pcap or pcapng file (magic 0x{magic.hex()})")


def iter_pcap_from(path: str | os.PathLike[str], index: int, offset: int) -> Iterator[Packet]:
    """The packets of a classic pcap file from packet `index`, whose record starts at
    byte `offset` (found by an earlier pass over the file), to the end.

    Packets keep their index in the file and errors read as :func:`iter_packets`
    gives them. A pcapng file, or any other, raises :class:`PcapError`.
    """
    name = os.fsdecode(path)
    try:
        if name == STDIN:  # `-`: the capture comes on standard input, read as a stream
            name = "standard input"
            f = open(0, "rb", buffering=_BUFSIZE, closefd=False)
        else:
            f = open(path, "rb", buffering=_BUFSIZE)
    except OSError as exc:
        raise _fail(name, None, 0, f"cannot open: {exc.strerror or exc}") from None
    with f:
        magic = f.read(4)
        (value,) = _U32_LE.unpack(magic) if len(magic) == 4 else (0,)
        if value in (_MAGIC_US_LE, _MAGIC_NS_LE):
            yield from _iter_pcap(f, name, "<", value == _MAGIC_NS_LE, index, offset)
        elif value in (_MAGIC_US_BE, _MAGIC_NS_BE):
            yield from _iter_pcap(f, name, ">", value == _MAGIC_NS_BE, index, offset)
        else:
            raise _fail(name, None, 0, "not a classic pcap file: cannot start at an offset")


def _iter_pcap(
    f: BinaryIO, name: str, order: str, nano: bool, index: int = 0, pos: int = 24
) -> Iterator[Packet]:
    """Classic pcap: the magic has been read; read the rest of the header and the records
    (from packet `index` at byte `pos`, when an earlier pass gave them)."""
    rest = f.read(20)
    if len(rest) < 20:
        raise _fail(name, None, 0, f"truncated header: needs 24 bytes, {4 + len(rest)} left")
    if pos != 24:
        f.seek(pos)
    header = _PCAP_HDR[order].unpack(b"\0\0\0\0" + rest)
    linktype = header[6] & 0xFFFF  # the upper bits carry FCS information
    divisor = 1_000_000_000 if nano else 1_000_000
    read = f.read
    unpack = _PCAP_REC[order].unpack
    new = tuple.__new__
    while True:
        head = read(16)
        if len(head) != 16:
            if not head:
                return
            raise _fail(name, index, pos, f"truncated: record needs 16 bytes, {len(head)} left")
        sec, frac, caplen, orig_len = unpack(head)
        if caplen > MAX_CAPLEN:
            raise _fail(name, index, pos, f"absurd caplen {caplen} (more than {MAX_CAPLEN} bytes)")
        data = read(caplen)
        if len(data) != caplen:
            raise _fail(
                name,
                index,
                pos,
                f"truncated: record needs {16 + caplen} bytes, {16 + len(data)} left",
            )
        yield new(Packet, (index, data, sec + frac / divisor, linktype, orig_len))
        index += 1
        pos += 16 + caplen


def _parse_idb(body: bytes, lay: _NgLayout) -> _Interface | str:
    """Decode an IDB body (after the 8-byte block head); return an error text if malformed."""
    end = len(body) - 4  # the trailing length field
    if end < 8:
        return "Interface Description Block too short"
    linktype, _reserved, snaplen = lay.idb.unpack_from(body, 0)
    divisor = 1_000_000
    tsoffset = 0
    pos = 8
    while pos + 4 <= end:
        code, length = lay.opt.unpack_from(body, pos)
        if code == 0:
            break
        pos += 4
        if pos + length > end:
            return f"IDB option {code} of {length} bytes overruns the block"
        if code == 9 and length >= 1:  # if_tsresol
            exp = body[pos]
            divisor = 2 ** (exp & 0x7F) if exp & 0x80 else 10**exp
        elif code == 14 and length == 8:  # if_tsoffset
            (tsoffset,) = lay.i64.unpack_from(body, pos)
        pos += (length + 3) & ~3
    return _Interface(linktype, snaplen, divisor, tsoffset)


def _iter_pcapng(f: BinaryIO, name: str) -> Iterator[Packet]:
    """pcapng: the first block type (SHB) has been read; read the blocks."""
    read = f.read
    new = tuple.__new__
    index = 0
    pos = 0  # offset of the current block
    first = True
    lay = _NG["<"]
    head_unpack = lay.head.unpack
    epb_unpack = lay.epb.unpack_from
    u32_unpack = lay.u32.unpack_from
    ifaces: list[_Interface] = []
    head = b"\x0a\x0d\x0d\x0a"
    while True:
        # The block head: 8 bytes, of which the SHB's first 4 were read already.
        if not first:
            head = read(8)
        else:
            head += read(4)
        if len(head) != 8:
            if not head:
                return
            if first:
                raise _fail(name, None, 0, f"truncated header: needs 28 bytes, {len(head)} left")
            raise _fail(name, index, pos, f"truncated: record needs 8 bytes, {len(head)} left")
        btype, blen = head_unpack(head)

        if btype == _EPB and blen & 3 == 0 and 32 <= blen <= MAX_BLOCK:
            # Fast path for the common packet block.
            body = read(blen - 8)
            if len(body) != blen - 8:
                raise _fail(
                    name,
                    index,
                    pos,
                    f"truncated: record needs {blen} bytes, {8 + len(body)} left"
                    " (Enhanced Packet Block)",
                )
            iface_id, ts_high, ts_low, caplen, orig_len = epb_unpack(body, 0)
            if caplen > MAX_CAPLEN:
                raise _fail(
                    name, index, pos, f"absurd caplen {caplen} (more than {MAX_CAPLEN} bytes)"
                )
            if caplen + 32 > blen:
                raise _fail(
                    name, index, pos, f"EPB caplen {caplen} does not fit in block length {blen}"
                )
            (trail,) = u32_unpack(body, blen - 12)
            if trail != blen:
                raise _fail(
                    name,
                    index,
                    pos,
                    f"block length mismatch: leading {blen}, trailing {trail}"
                    " (Enhanced Packet Block)",
                )
            if iface_id >= len(ifaces):
                raise _fail(
                    name,
                    index,
                    pos,
                    f"EPB refers to unknown interface id {iface_id}"
                    f" (the section defines {len(ifaces)})",
                )
            iface = ifaces[iface_id]
            ts = ((ts_high << 32) | ts_low) / iface.divisor + iface.tsoffset
            yield new(Packet, (index, body[20 : 20 + caplen], ts, iface.linktype, orig_len))
            index += 1
            pos += blen
            continue

        where: int | None = index
        if btype == _SHB:
            # A new section: its byte-order magic decides how to read everything.
            bom = read(4)
            if len(bom) != 4:
                raise _fail(
                    name,
                    None if first else index,
                    pos,
                    f"truncated header: needs 28 bytes, {8 + len(bom)} left",
                )
            if bom == b"\x4d\x3c\x2b\x1a":
                lay = _NG["<"]
            elif bom == b"\x1a\x2b\x3c\x4d":
                lay = _NG[">"]
            else:
                raise _fail(
                    name,
                    None if first else index,
                    pos,
                    f"bad pcapng byte-order magic 0x{bom.hex()}",
                )
            head_unpack = lay.head.unpack
            epb_unpack = lay.epb.unpack_from
            u32_unpack = lay.u32.unpack_from
            btype, blen = head_unpack(head)
            ifaces = []
            if first:
                where = None
                first = False
            consumed = 12
        else:
            consumed = 8
        label = _BLOCK_NAMES.get(btype, f"block type 0x{btype:08x}")

        if blen & 3:
            raise _fail(name, where, pos, f"block length {blen} is not a multiple of 4 ({label})")
        if blen < 12:
            raise _fail(name, where, pos, f"block length {blen} is smaller than 12 ({label})")

        if btype not in _BLOCK_NAMES:
            # Unknown or uninteresting block (NRB, ISB, DSB, custom...): skip it.
            remaining = blen - consumed - 4
            while remaining > 0:
                chunk = read(min(remaining, _SKIP_CHUNK))
                if not chunk:
                    break
                remaining -= len(chunk)
                consumed += len(chunk)
            tail = read(4) if remaining == 0 else b""
            if len(tail) != 4:
                raise _fail(
                    name,
                    where,
                    pos,
                    f"truncated: record needs {blen} bytes, {consumed + len(tail)} left ({label})",
                )
            (trail,) = lay.u32.unpack(tail)
            if trail != blen:
                raise _fail(
                    name,
                    where,
                    pos,
                    f"block length mismatch: leading {blen}, trailing {trail} ({label})",
                )
            pos += blen
            continue

        minimum = _MIN_BLOCK[btype]
        if blen < minimum:
            raise _fail(
                name, where, pos, f"block length {blen} is too small for a {label} ({minimum})"
            )
        if blen > MAX_BLOCK:
            raise _fail(name, where, pos, f"block length {blen} is too large ({label})")
        body = read(blen - consumed)
        if len(body) != blen - consumed:
            raise _fail(
                name,
                where,
                pos,
                f"truncated: record needs {blen} bytes, {consumed + len(body)} left ({label})",
            )
        (trail,) = u32_unpack(body, len(body) - 4)
        if trail != blen:
            raise _fail(
                name,
                where,
                pos,
                f"block length mismatch: leading {blen}, trailing {trail} ({label})",
            )

        if btype == _IDB:
            parsed = _parse_idb(body, lay)
            if isinstance(parsed, str):
                raise _fail(name, where, pos, parsed)
            ifaces.append(parsed)
        elif btype == _SPB:
            if not ifaces:
                raise _fail(name, index, pos, "Simple Packet Block before any interface")
            iface = ifaces[0]
            (orig_len,) = u32_unpack(body, 0)
            caplen = min(orig_len, blen - 16)
            if iface.snaplen:
                caplen = min(caplen, iface.snaplen)
            if caplen > MAX_CAPLEN:
                raise _fail(
                    name, index, pos, f"absurd caplen {caplen} (more than {MAX_CAPLEN} bytes)"
                )
            yield new(Packet, (index, body[4 : 4 + caplen], 0.0, iface.linktype, orig_len))
            index += 1
        elif btype == _OPB:
            # The obsolete Packet Block. (Every valid EPB took the fast path above; an EPB
            # of a bad length has been rejected by the length checks.)
            iface_id, _drops, ts_high, ts_low, caplen, orig_len = lay.opb.unpack_from(body, 0)
            if caplen > MAX_CAPLEN:
                raise _fail(
                    name, index, pos, f"absurd caplen {caplen} (more than {MAX_CAPLEN} bytes)"
                )
            if caplen + 32 > blen:
                raise _fail(
                    name, index, pos, f"caplen {caplen} does not fit in block length {blen}"
                )
            if iface_id >= len(ifaces):
                raise _fail(
                    name,
                    index,
                    pos,
                    f"Packet Block refers to unknown interface id {iface_id}"
                    f" (the section defines {len(ifaces)})",
                )
            iface = ifaces[iface_id]
            ts = ((ts_high << 32) | ts_low) / iface.divisor + iface.tsoffset
            yield new(Packet, (index, body[20 : 20 + caplen], ts, iface.linktype, orig_len))
            index += 1
        # An SHB body (versions, section length, options) needs nothing more.
        pos += blen


_WRITE_HDR = struct.Struct("<IHHiIII")
_WRITE_REC = struct.Struct("<IIII")
_WRITE_BUF = 1 << 18  # bytes of whole records buffered before a write


def _record_lengths(data: bytes, orig_len: int | None, snaplen: int) -> tuple[bytes, int, int]:
    """A record's data cut to the snap length, its captured and its original length."""
    caplen = len(data)
    if orig_len is None:
        orig_len = caplen
    elif not caplen <= orig_len <= 0xFFFFFFFF:
        raise UsageError(f"orig_len {orig_len} is smaller than the data ({caplen} bytes)")
    if caplen > snaplen:
        return data[:snaplen], snaplen, orig_len
    return data, caplen, orig_len


class PcapWriter:
    """Write packets to a classic little-endian, microsecond pcap file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        linktype: int = LINKTYPE_ETHERNET,
        snaplen: int = MAX_CAPLEN,
    ) -> None:
        if not 0 <= linktype <= 0xFFFF:
            raise UsageError(f"linktype {linktype} is out of range 0..65535")
        if not 0 < snaplen <= 0xFFFFFFFF:
            raise UsageError(f"snaplen {snaplen} is out of range 1..4294967295")
        self.path = os.fsdecode(path)
        self.linktype = linktype
        self.snaplen = snaplen
        self.count = 0
        self._buf = bytearray(_WRITE_HDR.pack(_MAGIC_US_LE, 2, 4, 0, 0, snaplen, linktype))
        self._disk = 0  # bytes on disk, always a whole number of records
        self._broken = False  # a write to the file failed or was interrupted midway
        try:
            self._fd: int | None = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666
            )
        except OSError as exc:
            raise OutputError(self.path, exc) from None

    def write(self, data: bytes, ts: float = 0.0, orig_len: int | None = None) -> None:
        """Append one packet; data longer than the snap length is cut, keeping orig_len."""
        if self._fd is None:
            raise UsageError("PcapWriter.write called after close()")
        data, caplen, orig_len = _record_lengths(data, orig_len, self.snaplen)
        if not math.isfinite(ts):
            raise UsageError(f"timestamp {ts} does not fit a pcap file")
        sec = math.floor(ts)
        usec = round((ts - sec) * 1_000_000)
        if usec >= 1_000_000:
            sec += 1
            usec -= 1_000_000
        if not 0 <= sec <= 0xFFFFFFFF:
            raise UsageError(f"timestamp {ts} does not fit a pcap file")
        buf = self._buf
        buf += _WRITE_REC.pack(sec, usec, caplen, orig_len)
        buf += data
        self.count += 1
        if len(buf) >= _WRITE_BUF:
            self._flush()

    def _flush(self) -> None:
        """Write the buffered whole records; on any failure (a full disk, Ctrl-C) the
        file is marked broken and close() cuts it back to the records on disk."""
        buf = self._buf
        if not buf or self._fd is None or self._broken:
            return
        try:
            with memoryview(buf) as view:
                done = 0
                while done < len(buf):
                    done += os.write(self._fd, view[done:])
        except OSError as exc:
            self._broken = True
            raise OutputError(self.path, exc) from None
        except BaseException:
            self._broken = True
            raise
        self._disk += len(buf)
        buf.clear()

    def close(self) -> None:
        """Write what is buffered and close the file; further writes raise UsageError.

        The file ends on a whole record even when a write was cut short (Ctrl-C,
        a full disk): it is truncated to the last whole record written."""
        fd = self._fd
        if fd is None:
            return
        problem: BaseException | None = None
        try:
            self._flush()
        except BaseException as exc:
            problem = exc
        self._fd = None
        try:
            if self._broken:
                os.ftruncate(fd, self._disk)
        except OSError:
            pass
        finally:
            os.close(fd)
        if problem is not None:
            raise problem

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_pcap(
    path: str | os.PathLike[str],
    packets: Iterable[bytes | tuple[bytes, float]],
    linktype: int = LINKTYPE_ETHERNET,
) -> int:
    """Write packets (bytes, or (bytes, timestamp) pairs) to a pcap file; return the count."""
    with PcapWriter(path, linktype) as writer:
        for item in packets:
            if isinstance(item, tuple):
                writer.write(item[0], item[1])
            else:
                writer.write(item)
        return writer.count


_NG_EPB_HEAD = struct.Struct("<IIIIIII")  # type, length, interface, ts hi, ts lo, caplen, len
_NG_OPT = struct.Struct("<HH")


def _ng_pad(n: int) -> int:
    return -n & 3


class PcapngWriter(PcapWriter):
    """Write packets to a pcapng file (one section, one Ethernet interface with the
    default microsecond resolution), each packet an Enhanced Packet Block that may
    carry a comment (``opt_comment``, shown by ``tshark -Y 'frame.comment ...'``).
    Buffered, cut back to whole blocks, and errors raised as :class:`PcapWriter`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        linktype: int = LINKTYPE_ETHERNET,
        snaplen: int = MAX_CAPLEN,
    ) -> None:
        super().__init__(path, linktype, snaplen)
        # Section Header Block: byte-order magic, version 1.0, section length unknown
        shb = struct.pack("<IIIHHq", _SHB, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
        # Interface Description Block: link type, reserved, snap length
        idb = struct.pack("<IIHHI", 1, 20, linktype, 0, snaplen) + struct.pack("<I", 20)
        self._buf = bytearray(shb + idb)

    def write(
        self, data: bytes, ts: float = 0.0, orig_len: int | None = None, comment: str = ""
    ) -> None:
        """Append one packet, with `comment` (UTF-8) as its opt_comment if given."""
        if self._fd is None:
            raise UsageError("PcapngWriter.write called after close()")
        data, caplen, orig_len = _record_lengths(data, orig_len, self.snaplen)
        if not math.isfinite(ts) or ts < 0:
            raise UsageError(f"timestamp {ts} does not fit a pcapng file")
        usec = round(ts * 1_000_000)
        if usec >> 64:
            raise UsageError(f"timestamp {ts} does not fit a pcapng file")
        opts = b""
        if comment:
            text = comment.encode()[:0xFFFF]
            opts = _NG_OPT.pack(1, len(text)) + text + bytes(_ng_pad(len(text)))
            opts += _NG_OPT.pack(0, 0)
        blen = _NG_EPB_HEAD.size + caplen + _ng_pad(caplen) + len(opts) + 4
        buf = self._buf
        buf += _NG_EPB_HEAD.pack(6, blen, 0, usec >> 32, usec & 0xFFFFFFFF, caplen, orig_len)
        buf += data
        buf += bytes(_ng_pad(caplen))
        buf += opts
        buf += struct.pack("<I", blen)
        self.count += 1
        if len(buf) >= _WRITE_BUF:
            self._flush()
