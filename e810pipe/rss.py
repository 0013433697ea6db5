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
# The RSS stage: the hash profiles, scheme, key and lookup tables of a VSI.

HASH_TYPES = ("ipv4", "ipv6", "tcp", "udp", "sctp", "gtpu")
# The kernel's default_rss_cfgs: IP addresses and TCP/UDP/SCTP ports.
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


def parse_types(words: Iterable[str]) -> frozenset[str]:
    """`port config all rss TYPES` in the short form of YAML setups and ``--rss``:
    names such as ip, tcp, udp, sctp, all, none."""
    out: set[str] = set()
    for w in words:
        if w not in TYPE_ALIASES:
            raise UsageError(
                f"unknown RSS type '{w}'; use one of {', '.join(sorted(TYPE_ALIASES))}"
            )
        out.update(TYPE_ALIASES[w])
    return frozenset(out)


def types_hf(types: Iterable[str]) -> int:
    """The rss_hf bits of the short type names (:data:`HASH_TYPES`)."""
    from . import hash as h

    bits = {
        "ipv4": h.IPV4,
        "ipv6": h.IPV6,
        "tcp": h.IPV4_TCP | h.IPV6_TCP,
        "udp": h.IPV4_UDP | h.IPV6_UDP,
        "sctp": h.IPV4_SCTP | h.IPV6_SCTP,
        "gtpu": h.GTPU,
    }
    hf = 0
    for t in types:
        hf |= bits.get(t, 0)
    return hf


PLAN_CACHE = 1 << 13  # hash plans per generation (each keeps a parse result alive)


class RssStage:
    """The RSS state of a VSI: its hash profiles, hash scheme, key and lookup tables.

    Profiles come from port RSS (:meth:`set_hf`, as ``ice_rss_hash_set``) and from
    hash-engine rules (:meth:`add_cfg`, :meth:`rem_cfg`, as ``ice_add_rss_cfg`` and
    ``ice_rem_rss_cfg``); see :mod:`e810pipe.hash`. A packet is hashed by the newest
    profile covering its PTYPE; a packet no profile covers has no hash.

    ``version`` grows with every change (key, profiles, scheme, RETA), so callers
    that cache hash results or queues know when to drop them.
    """

    def __init__(
        self,
        key: bytes = DEFAULT_KEY,
        function: str = "toeplitz",
        types: frozenset[str] = DEFAULT_TYPES,
        pf_lut_size: int = 512,
        vsi_lut_size: int = 64,
        rss_hf: int | None = None,
    ) -> None:
        if function not in FUNCTIONS:
            raise UsageError(f"unknown RSS function '{function}'; use {', '.join(FUNCTIONS)}")
        if pf_lut_size not in LUT_SIZES or vsi_lut_size not in LUT_SIZES:
            raise UsageError(f"RSS lookup table sizes are {LUT_SIZES}")
        self.version = 0
        self._ranges_memo: dict[tuple, tuple[tuple[int, int], ...]] = {}
        self.listeners: list[Callable[[], None]] = []  # called after every change
        self.pf_lut_size = pf_lut_size
        self.vsi_lut_size = vsi_lut_size
        self.luts: dict[int, Lut] = {}
        self._custom: set[int] = set()
        self.profiles: list = []  # HashProfile, oldest first
        self.xor = function == "simple_xor"  # VSIQF_HASH_CTL scheme 2
        self._symm = function == "symmetric_toeplitz"
        self._types = types
        self.rss_hf = 0
        self._plans: dict = {}
        self._plans_old: dict = {}
        self.set_key(key)
        self.set_hf(types_hf(types) if rss_hf is None else rss_hf)

    def _changed(self) -> None:
        self.version += 1
        self._plans = {}
        self._plans_old = {}
        self._memo: dict[bytes, int] = {}
        for listener in getattr(self, "listeners", ()):
            listener()

    # ------------------------------------------------------------ configuration

    @property
    def types(self) -> frozenset[str]:
        """The short type names last set (``types = ...`` sets port RSS from them)."""
        return self._types

    @types.setter
    def types(self, value: frozenset[str]) -> None:
        self._types = value
        self.set_hf(types_hf(value))

    @property
    def function(self) -> str:
        """The hash function: simple_xor when the VSI's scheme is simple XOR, else
        symmetric_toeplitz when port profiles are symmetric, else toeplitz."""
        if self.xor:
            return "simple_xor"
        return "symmetric_toeplitz" if self._symm else "toeplitz"

    @function.setter
    def function(self, value: str) -> None:
        if value not in FUNCTIONS:
            raise UsageError(f"unknown RSS function '{value}'; use {', '.join(FUNCTIONS)}")
        self.xor = value == "simple_xor"
        self._symm = value == "symmetric_toeplitz"
        self.set_hf(self.rss_hf)

    def set_scheme(self, scheme: str) -> None:
        """The VSI's hash scheme (``VSIQF_HASH_CTL``): simple_xor or a Toeplitz one."""
        self.xor = scheme == "simple_xor"
        self._changed()

    def set_hf(self, hf: int) -> None:
        """Port RSS as ``ice_rss_hash_set`` applies it: every profile of the VSI is
        removed, then the outer IPv4/IPv6/TCP/UDP/SCTP (and PPPoE) profiles of `hf`
        are added; ``rss_hf`` keeps the types it covers (ICE_RSS_HF_ALL)."""
        from .hash import ICE_RSS_HF_ALL, port_cfgs, profile_of

        self.profiles = []
        for cfg in port_cfgs(hf, self._symm):
            self._add(profile_of(cfg))
        self.rss_hf = hf & ICE_RSS_HF_ALL
        self._changed()

    def _add(self, prof) -> None:  # noqa: ANN001 - HashProfile
        for i, old in enumerate(self.profiles):
            if old.segs == prof.segs:
                if old.fields == prof.fields:
                    self.profiles[i] = prof  # only the symmetric flag changes
                    return
                del self.profiles[i]  # same headers, other fields: replaced
                break
        self.profiles.append(prof)

    def add_cfg(self, cfg) -> None:  # noqa: ANN001 - HashCfg
        """``ice_add_rss_cfg`` (ice_add_rss_cfg_sync): add, update or replace a profile."""
        from .hash import profile_of

        self._add(profile_of(cfg))
        self._changed()

    def add_profile(self, prof) -> None:  # noqa: ANN001 - HashProfile or RawHashProfile
        """Install a profile as it is (raw profiles: one per PTYPE group)."""
        self._add(prof)
        self._changed()

    def rem_profile(self, prof) -> None:  # noqa: ANN001
        """Remove the profile with `prof`'s segments (a raw profile: its PTYPE's)."""
        for i, old in enumerate(self.profiles):
            if old.segs == prof.segs:
                del self.profiles[i]
                self._changed()
                return

    def rem_cfg(self, cfg) -> None:  # noqa: ANN001 - HashCfg
        """``ice_rem_rss_cfg``: remove the profile with these segments and fields."""
        from .hash import profile_of

        prof = profile_of(cfg)
        for i, old in enumerate(self.profiles):
            if old.segs == prof.segs and old.fields == prof.fields:
                del self.profiles[i]
                self._changed()
                return

    def copy(self) -> RssStage:
        """A stage with the same key, function, profiles and table sizes, default tables."""
        new = RssStage(self.key, "toeplitz", self._types, self.pf_lut_size, self.vsi_lut_size)
        new.xor, new._symm, new.rss_hf = self.xor, self._symm, self.rss_hf
        new.profiles = list(self.profiles)
        new._changed()
        return new

    def set_key(self, key: bytes) -> None:
        _check_key(key)
        self.key = key
        self._toeplitz = Toeplitz(key)
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

    # ------------------------------------------------------------------ packets

    def _plan(self, data: bytes, res):  # noqa: ANN001, ANN202 - ParseResult -> plan
        """The profile and hash plan for a packet parsed as `res` (None: no hash)."""
        from .hash import gtpu_attr

        attr = gtpu_attr(data, res) if "tunnel_gtpu" in res.flags else "session"
        key = (id(res), attr)
        got = self._plans.get(key)
        if got is not None and got[0] is res:
            return got[1]
        # Each entry keeps its parse result alive: two generations of at most
        # PLAN_CACHE entries (as the parser's and the flow cache), so the plans of
        # results the parser has let go are let go too, and memory stays bounded.
        got = self._plans_old.get(key)
        plan = got[1] if got is not None and got[0] is res else self._choose(res, attr)
        if len(self._plans) >= PLAN_CACHE:
            self._plans_old, self._plans = self._plans, {}
        self._plans[key] = (res, plan)
        return plan

    def _choose(self, res, attr: str):  # noqa: ANN001, ANN202
        from .hash import RawHashProfile, _attr_ok, hash_plan, raw_plan, seg_ptypes

        for prof in reversed(self.profiles):
            if isinstance(prof, RawHashProfile):
                if res.ptype == prof.ptype:
                    return (prof, raw_plan(prof, res))
                continue
            ptypes, want = _PTYPE_CACHE.get(prof.segs) or _ptypes(prof.segs, seg_ptypes)
            if res.ptype in ptypes and _attr_ok(want, attr):
                return (prof, hash_plan(prof, res))
        return None

    def profile_for(self, data: bytes, res) -> object | None:  # noqa: ANN001
        """The profile that hashes this packet, or None."""
        plan = self._plan(data, res)
        return None if plan is None else plan[0]

    def input_ranges(self, res) -> tuple[tuple[int, int], ...]:  # noqa: ANN001
        """Byte ranges of packets parsed as `res` that their hash depends on."""
        out: list[tuple[int, int]] = []
        attrs: tuple[str, ...] = ("session",)
        if "tunnel_gtpu" in res.flags:
            attrs = ("session", "eh", "down", "up")
            for h in res.headers:
                if h.name == "gtpu_ext":
                    out.append((h.offset + 1, h.offset + 2))
        for attr in attrs:
            plan = self._choose(res, attr)
            if plan is not None:
                out.extend((a, b) for a, b, _ in plan[1][0])
        return tuple(out)

    def hash_of(self, data: bytes, res) -> int | None:  # noqa: ANN001
        """The packet's RSS hash, or None when no profile hashes it."""
        from .hash import hash_input

        plan = self._plan(data, res)
        if plan is None:
            return None
        inp = hash_input(data, plan[1])
        if not inp:
            return 0
        h = self._memo.get(inp)
        if h is None:
            if self.xor:
                h = simple_xor(inp)
            else:
                if len(inp) > self._toeplitz.max_len:
                    inp = inp[: self._toeplitz.max_len]
                h = self._toeplitz(inp)
            if len(self._memo) < 1 << 16:
                self._memo[inp] = h
        return h


_PTYPE_CACHE: dict[tuple[int, ...], tuple[frozenset[int], str | None]] = {}


def _ptypes(segs: tuple[int, ...], fn: Callable) -> tuple[frozenset[int], str | None]:
    got = fn(segs)
    _PTYPE_CACHE[segs] = got
    return got
