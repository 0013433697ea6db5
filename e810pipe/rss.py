"""RSS: the Toeplitz hash, its symmetric variant, the simple XOR hash and the LUT.

The E810 selects a hash scheme per VSI (``VSIQF_HASH_CTL``,
``ICE_AQ_VSI_Q_OPT_RSS_*``): 0 Toeplitz, 1 symmetric Toeplitz, 2 simple XOR,
3 JHash (JHash is not modelled here). The hash input is the RSS field vector
words the profile selects (for the default profiles: IP source and destination
addresses, then the L4 ports); this module only sees the assembled input bytes.

The hashed value picks an entry of the lookup table (:class:`Lut`), whose
content is the queue the packet goes to, unless a Switch or Flow Director rule
assigned a queue first (Switch queue > FD queue > RSS).

Microsoft's ordering of the input is used throughout: source address,
destination address, source port, destination port, each in network byte order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import reduce
from operator import xor

from e810pipe.errors import UsageError

__all__ = [
    "DEFAULT_KEY",
    "KEY_SIZES",
    "LUT_SIZES",
    "MS_KEY",
    "Lut",
    "Toeplitz",
    "simple_xor",
    "symmetric_input",
    "toeplitz",
]

#: Microsoft's 40-byte verification key ("Verifying the RSS Hash Calculation").
MS_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
)

#: The emulator's default 52-byte key: :data:`MS_KEY` followed by its own first
#: 12 bytes (``6d5a56da255b0ec24167253d``) as the 12-byte extended part. This is
#: a choice of this model, not the hardware's: DPDK draws a random key
#: (``rte_rand``) and the kernel uses ``netdev_rss_key_fill``. Because the
#: Toeplitz hash of an ``n``-byte input only reads the first ``n + 4`` key
#: bytes, every input of up to 36 bytes (the IPv6 4-tuple) hashes exactly as
#: with :data:`MS_KEY`, so Microsoft's published vectors hold for the default.
DEFAULT_KEY = MS_KEY + MS_KEY[:12]

#: Accepted key lengths: 40 (standard part only) and 52 (40 standard + 12
#: extended, ``ICE_AQC_GET_SET_RSS_KEY_DATA_RSS_KEY_SIZE`` + ``HASH_KEY_SIZE``).
KEY_SIZES = (40, 52)

#: Valid LUT sizes: 64 (VSI LUT), 128 and 512 (PF or global LUT), 2048 (PF LUT).
LUT_SIZES = (64, 128, 512, 2048)

_MASK32 = 0xFFFFFFFF


def _check_key(key: bytes) -> None:
    if len(key) not in KEY_SIZES:
        raise UsageError(
            f"RSS key length {len(key)} bytes is not valid; the key must be 40 or 52 bytes"
        )


def _check_length(key: bytes, data: bytes) -> None:
    if len(data) > len(key) - 4:
        raise UsageError(
            f"RSS input of {len(data)} bytes is too long for a {len(key)}-byte key "
            f"(at most {len(key) - 4} bytes)"
        )


def toeplitz(key: bytes, data: bytes) -> int:
    """The Microsoft Toeplitz hash of ``data`` under ``key`` (a 32-bit integer).

    For every bit of ``data`` that is set, taken most significant bit of the
    first byte first, the result is XORed with the 32 key bits starting at that
    bit's position in the key (the key read as one big-endian bit string).

    This is the plain bit-by-bit reference; :class:`Toeplitz` computes the same
    value from precomputed tables and is the one to use per packet.

    Raises:
        UsageError: the key is not 40 or 52 bytes, or ``data`` is longer than
            ``len(key) - 4`` bytes (the key would run out of bits).
    """
    _check_key(key)
    _check_length(key, data)
    key_bits = len(key) * 8
    k = int.from_bytes(key, "big")
    result = 0
    for i, byte in enumerate(data):
        for b in range(8):
            if byte & (0x80 >> b):
                result ^= (k >> (key_bits - 32 - (8 * i + b))) & _MASK32
    return result


class Toeplitz:
    """A Toeplitz hasher for one key, driven by per-byte lookup tables.

    For every input byte position ``i`` below ``max_len = len(key) - 4`` it
    precomputes a 256-entry table: entry ``v`` is the 32-bit value the byte
    ``v`` contributes at position ``i``. Hashing an input is then the XOR of one
    table lookup per byte. The Toeplitz hash is linear over XOR, so this is
    exactly :func:`toeplitz`.

    Raises:
        UsageError: the key is not 40 or 52 bytes.
    """

    __slots__ = ("key", "max_len", "_tables")

    def __init__(self, key: bytes = DEFAULT_KEY) -> None:
        _check_key(key)
        self.key = bytes(key)
        self.max_len = len(key) - 4
        key_bits = len(key) * 8
        k = int.from_bytes(key, "big")
        tables: list[list[int]] = []
        for i in range(self.max_len):
            # bit_value[b]: contribution of bit b (b = 0 is the byte's MSB).
            bit_value = [(k >> (key_bits - 32 - (8 * i + b))) & _MASK32 for b in range(8)]
            table = [0] * 256
            for v in range(1, 256):
                low = (v & -v).bit_length() - 1  # lowest set bit, as a shift count
                table[v] = table[v & (v - 1)] ^ bit_value[7 - low]
            tables.append(table)
        self._tables = tables

    def __call__(self, data: bytes) -> int:
        """The Toeplitz hash of ``data`` (at most ``max_len`` bytes)."""
        if len(data) > self.max_len:
            _check_length(self.key, data)
        # One table per position (there are at least as many tables as bytes): the XOR
        # of one lookup per byte, with the loop in C (map stops at the shorter input).
        return reduce(xor, map(list.__getitem__, self._tables, data), 0)

    def __repr__(self) -> str:
        return f"Toeplitz(key=bytes.fromhex({self.key.hex()!r}))"


def symmetric_input(src: bytes, dst: bytes, sport: bytes = b"", dport: bytes = b"") -> bytes:
    """The hash input of symmetric Toeplitz for one flow direction.

    Returns ``(src ^ dst) | (src ^ dst) | (sport ^ dport) | (sport ^ dport)``
    (``|`` is concatenation, ``^`` bytewise XOR): every source word is replaced
    by itself XOR its destination partner and every destination word likewise,
    so swapping source and destination gives the same bytes and the same hash.
    Pass ``sport = dport = b""`` for an L3-only hash.

    This follows the kernel's ``ice_rss_config_xor``, which writes each
    ``GLQF_HSYMM`` pair both ways (source word XOR destination word, and
    destination word XOR source word) for IPv4/IPv6 addresses and TCP/UDP/SCTP
    ports, and matches the "Symmetric-XOR" transform in the kernel's
    ``Documentation/networking/scaling.rst``. UNCONFIRMED: the fact sheet does
    not pin down the byte layout of the hardware's hash input (the order in
    which the field-vector words, stored inverted in ``GLQF_HINSET``, reach the
    Toeplitz engine); this model keeps Microsoft's src/dst/sport/dport order.

    Raises:
        UsageError: ``src``/``dst`` or ``sport``/``dport`` differ in length.
    """
    if len(src) != len(dst):
        raise UsageError(
            f"symmetric_input: src ({len(src)} bytes) and dst ({len(dst)} bytes) "
            "must have the same length"
        )
    if len(sport) != len(dport):
        raise UsageError(
            f"symmetric_input: sport ({len(sport)} bytes) and dport ({len(dport)} bytes) "
            "must have the same length"
        )
    addr = bytes(a ^ b for a, b in zip(src, dst, strict=True))
    port = bytes(a ^ b for a, b in zip(sport, dport, strict=True))
    return addr + addr + port + port


def simple_xor(data: bytes) -> int:
    """The SIMPLE_XOR hash (scheme 2): XOR of ``data`` in 32-bit big-endian words.

    ``data`` is zero-padded at the end to a multiple of 4 bytes. The key is not
    used. UNCONFIRMED: the fact sheet only records that DPDK's SIMPLE_XOR writes
    scheme 2 (``ice_hash.c``); the word size, byte order and padding are this
    model's assumption.
    """
    padded = data + b"\x00" * (-len(data) % 4)
    result = 0
    for i in range(0, len(padded), 4):
        result ^= int.from_bytes(padded[i : i + 4], "big")
    return result


class Lut:
    """An RSS lookup table (the redirection table, RETA): hash -> queue.

    ``size`` is 64 (VSI LUT), 128 or 512 (PF or global LUT) or 2048 (PF LUT).
    Entry ``i`` starts as ``i % nqueues``, as DPDK and the kernel fill it.
    ``queue_for(hash)`` reads entry ``hash & (size - 1)``, the hash's low bits.
    UNCONFIRMED: the fact sheet has no primary text saying the LUT index is
    taken from the hash's least significant bits.

    Raises:
        UsageError: ``size`` is not a valid LUT size or ``nqueues`` < 1.
    """

    __slots__ = ("size", "nqueues", "_mask", "_entries")

    def __init__(self, size: int = 512, nqueues: int = 1) -> None:
        if size not in LUT_SIZES:
            raise UsageError(
                f"LUT size {size} is not valid; valid sizes are 64 (VSI), 128, 512, 2048 (PF)"
            )
        if nqueues < 1:
            raise UsageError(f"nqueues {nqueues} is not valid; at least 1 queue is needed")
        self.size = size
        self.nqueues = nqueues
        self._mask = size - 1
        self._entries = [i % nqueues for i in range(size)]

    def set(self, index: int, queue: int) -> None:
        """Point entry ``index`` at ``queue`` (``port config N rss reta (index,queue)``).

        Raises:
            UsageError: ``index`` is outside ``0..size-1`` or ``queue`` outside
                ``0..nqueues-1``.
        """
        if not 0 <= index < self.size:
            raise UsageError(
                f"RETA index {index} is out of range; the LUT has {self.size} entries "
                f"(0..{self.size - 1})"
            )
        if not 0 <= queue < self.nqueues:
            raise UsageError(
                f"RETA queue {queue} is out of range; there are {self.nqueues} queues "
                f"(0..{self.nqueues - 1})"
            )
        self._entries[index] = queue

    def update(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Apply several ``(index, queue)`` updates; all are checked before any is applied."""
        checked = list(pairs)
        probe = Lut(self.size, self.nqueues)
        for index, queue in checked:
            probe.set(index, queue)
        for index, queue in checked:
            self._entries[index] = queue

    def queue_for(self, hash_value: int) -> int:
        """The queue for a 32-bit hash: entry ``hash_value & (size - 1)``."""
        return self._entries[hash_value & self._mask]

    def __getitem__(self, index: int) -> int:
        return self._entries[index]

    def __len__(self) -> int:
        return self.size

    @property
    def entries(self) -> tuple[int, ...]:
        """A copy of the table, entry 0 first."""
        return tuple(self._entries)

    def __repr__(self) -> str:
        return f"Lut(size={self.size}, nqueues={self.nqueues})"


# --------------------------------------------------------------------------
# The RSS stage: which fields of a packet are hashed, and the per-VSI tables.

HASH_TYPES = ("ipv4", "ipv6", "tcp", "udp", "sctp", "gtpu")
# The kernel's default_rss_cfgs: IP addresses, TCP/UDP ports (inner headers for
# tunnels), SCTP on the outer headers only, and GTP TEIDs with the COMMS package.
DEFAULT_TYPES = frozenset(HASH_TYPES)
TYPE_ALIASES = {
    "all": HASH_TYPES,
    "default": HASH_TYPES,
    "ip": ("ipv4", "ipv6"),
    "ipv4": ("ipv4",),
    "ipv6": ("ipv6",),
    "tcp": ("tcp",),
    "udp": ("udp",),
    "sctp": ("sctp",),
    "gtpu": ("gtpu",),
    "none": (),
}
FUNCTIONS = ("toeplitz", "symmetric_toeplitz", "simple_xor")

# Hardware protocol IDs the stage reads (enum ice_prot_id).
_IPV4 = (33, 32)  # inner first
_IPV6 = (41, 40)
_TCP, _UDP, _UDP_OF, _SCTP = 49, 53, 52, 96


def parse_types(words: Iterable[str]) -> frozenset[str]:
    """`port config all rss TYPES`: names such as ip, tcp, udp, sctp, all, none."""
    out: set[str] = set()
    for w in words:
        if w not in TYPE_ALIASES:
            raise UsageError(
                f"unknown RSS type '{w}'; use one of {', '.join(sorted(TYPE_ALIASES))}"
            )
        out.update(TYPE_ALIASES[w])
    return frozenset(out)


class RssStage:
    """Hash input selection, the hash function and the lookup tables of each VSI.

    ``version`` grows with every change (key, types, function, RETA), so callers
    that cache hash results or queues know when to drop them.
    """

    def __init__(
        self,
        key: bytes = DEFAULT_KEY,
        function: str = "toeplitz",
        types: frozenset[str] = DEFAULT_TYPES,
        pf_lut_size: int = 512,
        vsi_lut_size: int = 64,
    ) -> None:
        if function not in FUNCTIONS:
            raise UsageError(f"unknown RSS function '{function}'; use {', '.join(FUNCTIONS)}")
        if pf_lut_size not in LUT_SIZES or vsi_lut_size not in LUT_SIZES:
            raise UsageError(f"RSS lookup table sizes are {LUT_SIZES}")
        self.version = 0
        self._ranges_memo: dict[tuple, tuple[tuple[int, int], ...]] = {}
        self.listeners: list[Callable[[], None]] = []  # called after every change
        self.function = function
        self.types = types
        self.pf_lut_size = pf_lut_size
        self.vsi_lut_size = vsi_lut_size
        self.luts: dict[int, Lut] = {}
        self._custom: set[int] = set()
        self.set_key(key)

    def _changed(self) -> None:
        self.version += 1
        self._ranges_memo = {}
        for listener in getattr(self, "listeners", ()):
            listener()

    @property
    def types(self) -> frozenset[str]:
        """The hashed field types (`port config all rss TYPES`)."""
        return self._types

    @types.setter
    def types(self, value: frozenset[str]) -> None:
        self._types = value
        self._changed()

    @property
    def function(self) -> str:
        return self._function

    @function.setter
    def function(self, value: str) -> None:
        self._function = value
        self._memo: dict[bytes, int] = {}
        self._changed()

    def copy(self) -> RssStage:
        """A stage with the same key, function, types and table sizes, default tables."""
        return RssStage(self.key, self.function, self.types, self.pf_lut_size, self.vsi_lut_size)

    def set_key(self, key: bytes) -> None:
        _check_key(key)
        self.key = key
        self._toeplitz = Toeplitz(key)
        self._memo = {}
        self._changed()

    def lut(self, vsi: int, kind: str, nqueues: int) -> Lut:
        lut = self.luts.get(vsi)
        if lut is None or (vsi not in self._custom and lut.nqueues != nqueues):
            size = self.pf_lut_size if kind == "pf" else self.vsi_lut_size
            lut = Lut(size, nqueues)
            self.luts[vsi] = lut
        return lut

    def reta(self, vsi: int, kind: str, nqueues: int, pairs: Iterable[tuple[int, int]]) -> None:
        self.lut(vsi, kind, nqueues).update(pairs)
        self._custom.add(vsi)
        self._changed()

    def _ranges(self, po: dict[int, int], flags: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
        """`input_ranges`, remembered per (protocol offsets, flags) until the next change."""
        key = (tuple(po.items()), flags)
        got = self._ranges_memo.get(key)
        if got is None:
            if len(self._ranges_memo) >= 1 << 14:
                self._ranges_memo.clear()
            got = self._ranges_memo[key] = self.input_ranges(po, flags)
        return got

    def input_ranges(
        self, po: dict[int, int], flags: tuple[str, ...]
    ) -> tuple[tuple[int, int], ...]:
        """Byte ranges of the packet that are hashed: source and destination
        address, then ports (or the GTP TEID), in Microsoft's order."""
        types = self.types
        gtp = "tunnel_gtpu" in flags
        addr: tuple[tuple[int, int], ...] = ()
        for v4, v6 in zip(_IPV4[1:] if gtp else _IPV4, _IPV6[1:] if gtp else _IPV6):
            if v4 in po:
                if "ipv4" in types:
                    b = po[v4]
                    addr = ((b + 12, b + 16), (b + 16, b + 20))
                break
            if v6 in po:
                if "ipv6" in types:
                    b = po[v6]
                    addr = ((b + 8, b + 24), (b + 24, b + 40))
                break
        if not addr:
            return ()
        if gtp:
            if "gtpu" in types and _UDP_OF in po:
                b = po[_UDP_OF] + 12
                return (*addr, (b, b + 4))
            return addr
        if "fragment" in flags:
            return addr
        for pid, kind in ((_TCP, "tcp"), (_UDP, "udp")):
            if pid in po:
                if kind in types:
                    b = po[pid]
                    return (*addr, (b, b + 2), (b + 2, b + 4))
                return addr
        if _SCTP in po and "sctp" in types and not any(f.startswith("tunnel_") for f in flags):
            b = po[_SCTP]
            return (*addr, (b, b + 2), (b + 2, b + 4))
        return addr

    def hash_input(self, data: bytes, po: dict[int, int], flags: tuple[str, ...]) -> bytes:
        """The bytes hashed for a packet (symmetric Toeplitz folds the directions)."""
        ranges = self._ranges(po, flags)
        if not ranges:
            return b""
        parts = [data[a:b] for a, b in ranges]
        if self.function == "symmetric_toeplitz":
            ports = parts[2:] if len(parts) == 4 else [b"", b""]
            return symmetric_input(parts[0], parts[1], ports[0], ports[1])
        return b"".join(parts)

    def hash(self, data: bytes, po: dict[int, int], flags: tuple[str, ...]) -> int:
        inp = self.hash_input(data, po, flags)
        if not inp:
            return 0
        h = self._memo.get(inp)
        if h is None:
            h = simple_xor(inp) if self.function == "simple_xor" else self._toeplitz(inp)
            if len(self._memo) < 1 << 16:
                self._memo[inp] = h
        return h
