"""Regenerate every bundled example capture under pcaps/ from Scapy, deterministically.

    python pcaps/generate.py              # rewrite the captures next to this script
    python pcaps/generate.py --out DIR    # write them into DIR instead

Every capture is built from its own fixed-seed ``random.Random``; every field Scapy
would otherwise fill in from the host (MAC and IP addresses, random IDs) is set
explicitly; timestamps are fixed (a constant base plus a constant step per packet).
Two runs therefore produce byte-identical files, as long as the Scapy version is the
same (tests/test_pcaps_generate.py checks the committed files against a fresh run).
All frames are padded to the 60-byte Ethernet minimum, as a NIC receives them (no FCS).

Captures
--------
mixed-tunnels.pcap  ~2000 packets, shuffled: plain IPv4/IPv6 TCP/UDP, single VLAN, QinQ
                    (0x88a8 + 0x8100), MPLS stacks of 1-3 labels over IPv4/IPv6, GRE in
                    all eight C/K/S variants over IPv4/IPv6 outer carrying IPv4/IPv6,
                    NVGRE, VXLAN (UDP 4789), GENEVE (UDP 6081) with and without options,
                    IPv6 with extension headers (and fragment headers), IPv4 fragments.
gre-kinds.pcap      GRE over IPv4, 20 packets per kind, in this order: plain GRE/IPv4,
                    GRE with key, GRE with sequence number, GRE with checksum, NVGRE
                    (TEB), and the custom protocol type 0x88b5 with a vendor header
                    (layout below).
vxlan.pcap          VXLAN on UDP 4789, VXLAN on the non-standard UDP 8472 (Linux's old
                    default), and plain UDP to other ports, shuffled.
mpls.pcap           MPLS stacks of 1 to 6 labels over IPv4 and IPv6, varied label values
                    (the reserved labels 0, 2 and 7 among them).
geneve-gtpu.pcap    GENEVE on UDP 6081 with and without options, and GTP-U on UDP 2152
                    with and without the PDU session container extension header, with
                    inner IPv4 and IPv6, shuffled.

The vendor header behind GRE protocol type 0x88b5 (gre-kinds.pcap)
------------------------------------------------------------------
0x88b5 is the IEEE "local experimental EtherType 1"; here it names an 8-byte vendor
shim header that sits between the GRE header and an inner IPv4 packet::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  version = 1  |   type = 4    |            flow_id            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                            tenant                             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |          inner IPv4 header (then UDP) ...                     |

    offset 0  version  8 bits   always 1
    offset 1  type     8 bits   what follows the shim, by IP version: 4 = IPv4,
                                6 = IPv6 (this capture carries IPv4 only: type 4)
    offset 2  flow_id 16 bits   big-endian
    offset 4  tenant  32 bits   big-endian tenant/VRF identifier
    offset 8  IPv4 header, then UDP and payload

All multi-byte fields are in network byte order. The GRE header in front of it is a
plain 4-byte GRE header (no C/K/S bits) with protocol type 0x88b5, so over an untagged
outer IPv4 header the shim is at offset 38, the inner IPv4 at 46 and the UDP at 66.
profiles/examples/custom-gre.ddp is a DDP profile for this header.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from pathlib import Path

from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
from scapy.contrib.mpls import MPLS
from scapy.fields import ByteField, IntField, ShortField
from scapy.layers.inet import GRE, IP, TCP, UDP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    PadN,
)
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw, bind_layers

try:
    from e810pipe.pcapio import write_pcap
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from e810pipe.pcapio import write_pcap

HERE = Path(__file__).resolve().parent

#: Base seed; each capture derives its own seed from it (see :data:`CAPTURES`).
SEED = 0xE810
#: Timestamps: packet i of every capture is at BASE_TS + i * TS_STEP_US microseconds.
BASE_TS = 1_700_000_000  # 2023-11-14T22:13:20Z
TS_STEP_US = 125
#: Smallest Ethernet frame without the FCS.
MIN_FRAME = 60

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_TEB = 0x6558  # transparent Ethernet bridging (NVGRE, GENEVE)
ETH_VENDOR = 0x88B5


class VendorShim(Packet):
    """The 8-byte vendor header carried by GRE protocol type 0x88b5 (see the docstring)."""

    name = "VendorShim"
    fields_desc = [
        ByteField("version", 1),
        ByteField("type", 4),
        ShortField("flow_id", 0),
        IntField("tenant", 0),
    ]


bind_layers(GRE, VendorShim, proto=ETH_VENDOR)
bind_layers(VendorShim, IP, type=4)
bind_layers(VendorShim, IPv6, type=6)


# --------------------------------------------------------------------- building blocks


def mac(rng: random.Random) -> str:
    """A locally administered unicast MAC address."""
    b = [0x02] + [rng.randrange(256) for _ in range(5)]
    return ":".join(f"{x:02x}" for x in b)


def ip4(rng: random.Random, prefix: str = "10") -> str:
    head = prefix.split(".")
    rest = [str(rng.randrange(256)) for _ in range(3 - len(head))] + [str(rng.randrange(1, 255))]
    return ".".join(head + rest)


def ip6(rng: random.Random, prefix: str = "2001:db8") -> str:
    head = prefix.split(":")
    return ":".join(head + [f"{rng.randrange(0x10000):x}" for _ in range(8 - len(head))])


def payload(rng: random.Random, lo: int = 0, hi: int = 200) -> bytes:
    return rng.randbytes(rng.randint(lo, hi))


def pad(frame: bytes) -> bytes:
    if len(frame) < MIN_FRAME:
        return frame + bytes(MIN_FRAME - len(frame))
    return frame


class Flow:
    """The fixed addresses and ports of one flow; packets of the flow vary only in payload."""

    def __init__(self, rng: random.Random, v6: bool, proto: str) -> None:
        self.v6 = v6
        self.proto = proto  # "tcp" or "udp"
        self.src = ip6(rng) if v6 else ip4(rng)
        self.dst = ip6(rng) if v6 else ip4(rng)
        self.sport = rng.randrange(1024, 65536)
        # Ports without a well-known dissector: the payloads are random bytes.
        self.dport = rng.choice((5201, 9000, 12345, 40000))
        self.seq = rng.randrange(1 << 32)
        self.ack = rng.randrange(1 << 32)
        self.ident = rng.randrange(1 << 16)
        self.ttl = rng.choice((64, 63, 128, 255))

    def l3(self) -> Packet:
        if self.v6:
            return IPv6(src=self.src, dst=self.dst, hlim=self.ttl)
        return IP(src=self.src, dst=self.dst, id=self.ident, ttl=self.ttl, flags="DF")

    def l4(self, rng: random.Random, size: int) -> Packet:
        """The L4 header of the next segment, carrying size payload bytes."""
        if self.proto == "tcp":
            seq = self.seq
            self.seq = (seq + size) & 0xFFFFFFFF
            return TCP(
                sport=self.sport,
                dport=self.dport,
                seq=seq,
                ack=self.ack,
                flags="PA",
                window=rng.choice((502, 8192, 65535)),
            )
        return UDP(sport=self.sport, dport=self.dport)

    def l4_payload(self, rng: random.Random, lo: int = 0) -> Packet:
        """L4 header plus a random payload of lo-200 bytes."""
        data = payload(rng, lo)
        return self.l4(rng, len(data)) / Raw(data)

    def packet(self, rng: random.Random) -> Packet:
        """The flow's L3 + L4 + a random payload of 0-200 bytes."""
        return self.l3() / self.l4_payload(rng)


def flows(rng: random.Random, n: int, v6: bool | None = None) -> list[Flow]:
    """n flows; v6 None mixes IPv4 and IPv6, TCP and UDP."""
    out = []
    for _ in range(n):
        six = rng.random() < 0.35 if v6 is None else v6
        out.append(Flow(rng, six, rng.choice(("tcp", "udp"))))
    return out


def l3_type(inner: Packet) -> int:
    return ETH_IPV6 if isinstance(inner, IPv6) else ETH_IPV4


class Link:
    """An Ethernet pair of addresses."""

    def __init__(self, rng: random.Random) -> None:
        self.src = mac(rng)
        self.dst = mac(rng)

    def eth(self, etype: int) -> Packet:
        return Ether(src=self.src, dst=self.dst, type=etype)


class Outer:
    """An outer (underlay) IPv4 or IPv6 header pair of a tunnel (198.18/16, 2001:db8:ff::/48)."""

    def __init__(self, rng: random.Random, v6: bool = False) -> None:
        self.v6 = v6
        self.link = Link(rng)
        self.src = ip6(rng, "2001:db8:ff") if v6 else ip4(rng, "198.18")
        self.dst = ip6(rng, "2001:db8:ff") if v6 else ip4(rng, "198.18")
        self.ident = rng.randrange(1 << 16)

    def ip(self, proto: int) -> Packet:
        if self.v6:
            return self.link.eth(ETH_IPV6) / IPv6(src=self.src, dst=self.dst, nh=proto, hlim=64)
        self.ident = (self.ident + 1) & 0xFFFF
        return self.link.eth(ETH_IPV4) / IP(
            src=self.src, dst=self.dst, proto=proto, id=self.ident, ttl=64, flags="DF"
        )

    def udp(self, sport: int, dport: int) -> Packet:
        # Like Linux: no outer UDP checksum over IPv4, a computed one over IPv6.
        if self.v6:
            return self.ip(17) / UDP(sport=sport, dport=dport)
        return self.ip(17) / UDP(sport=sport, dport=dport, chksum=0)


# A kind is a factory: given the capture's rng it prepares its flows and returns a
# function producing one packet (bytes) of that kind per call, or a list of packets
# that belong together (the fragments of one datagram).
Kind = Callable[[random.Random], Callable[[], bytes | list[bytes]]]


def kind_plain(v6: bool, proto: str) -> Kind:
    def make(rng: random.Random) -> Callable[[], bytes]:
        fl = [Flow(rng, v6, proto) for _ in range(8)]
        links = [Link(rng) for _ in range(3)]

        def one() -> bytes:
            f = rng.choice(fl)
            inner = f.packet(rng)
            return bytes(rng.choice(links).eth(l3_type(inner)) / inner)

        return one

    return make


def kind_vlan(rng: random.Random) -> Callable[[], bytes]:
    fl = flows(rng, 8)
    vids = [rng.randrange(1, 4095) for _ in range(4)]
    link = Link(rng)

    def one() -> bytes:
        inner = rng.choice(fl).packet(rng)
        tag = Dot1Q(vlan=rng.choice(vids), prio=rng.randrange(8), type=l3_type(inner))
        return bytes(link.eth(0x8100) / tag / inner)

    return one


def kind_qinq(rng: random.Random) -> Callable[[], bytes]:
    fl = flows(rng, 8)
    pairs = [(rng.randrange(1, 4095), rng.randrange(1, 4095)) for _ in range(4)]
    link = Link(rng)

    def one() -> bytes:
        inner = rng.choice(fl).packet(rng)
        svid, cvid = rng.choice(pairs)
        return bytes(
            link.eth(0x88A8)
            / Dot1AD(vlan=svid, type=0x8100)
            / Dot1Q(vlan=cvid, prio=rng.randrange(8), type=l3_type(inner))
            / inner
        )

    return one


def mpls_stack(labels: list[int], ttl: int) -> Packet:
    """MPLS label stack entries, bottom-of-stack set on the last one."""
    stack = MPLS(label=labels[0], cos=0, s=int(len(labels) == 1), ttl=ttl)
    for i, label in enumerate(labels[1:], 2):
        stack = stack / MPLS(label=label, cos=0, s=int(i == len(labels)), ttl=ttl)
    return stack


def mpls_label(rng: random.Random, special: float = 0.0) -> int:
    """A label value; with probability special a reserved one."""
    if rng.random() < special:
        return rng.choice((0, 2, 7))  # IPv4/IPv6 explicit null, entropy label indicator
    return rng.choice((rng.randrange(16, 1024), rng.randrange(16, 1 << 20)))


def kind_mpls(max_labels: int) -> Kind:
    def make(rng: random.Random) -> Callable[[], bytes]:
        fl = flows(rng, 8)
        link = Link(rng)
        lsps = [[mpls_label(rng) for _ in range(rng.randint(1, max_labels))] for _ in range(12)]

        def one() -> bytes:
            inner = rng.choice(fl).packet(rng)
            return bytes(link.eth(0x8847) / mpls_stack(rng.choice(lsps), 64) / inner)

        return one

    return make


def gre_header(c: int, k: int, s: int, proto: int, key: int, seq: int) -> Packet:
    hdr = GRE(chksum_present=c, key_present=k, seqnum_present=s, proto=proto)
    if c:
        hdr.offset = 0  # the checksum itself is computed by Scapy
    if k:
        hdr.key = key
    if s:
        hdr.sequence_number = seq
    return hdr


def kind_gre(c: int, k: int, s: int) -> Kind:
    def make(rng: random.Random) -> Callable[[], bytes]:
        fl = flows(rng, 6)
        tunnels = [(Outer(rng, v6=rng.random() < 0.25), rng.randrange(1 << 32)) for _ in range(3)]
        seqs = [rng.randrange(1 << 20) for _ in tunnels]  # per-tunnel sequence numbers

        def one() -> bytes:
            i = rng.randrange(len(tunnels))
            outer, key = tunnels[i]
            seqs[i] += 1
            inner = rng.choice(fl).packet(rng)
            gre = gre_header(c, k, s, l3_type(inner), key, seqs[i])
            return bytes(outer.ip(47) / gre / inner)

        return one

    return make


def kind_nvgre(rng: random.Random) -> Callable[[], bytes]:
    fl = flows(rng, 8, v6=False)
    tunnels = [(Outer(rng), rng.randrange(1, 1 << 24), Link(rng)) for _ in range(4)]

    def one() -> bytes:
        outer, vsid, vm = rng.choice(tunnels)
        inner = rng.choice(fl).packet(rng)
        key = (vsid << 8) | rng.randrange(256)  # 24-bit VSID + 8-bit FlowID
        gre = gre_header(0, 1, 0, ETH_TEB, key, 0)
        return bytes(outer.ip(47) / gre / vm.eth(l3_type(inner)) / inner)

    return one


def kind_vxlan(port: int, inner_v6: bool | None = False, vlan: bool = False) -> Kind:
    def make(rng: random.Random) -> Callable[[], bytes]:
        fl = flows(rng, 8, v6=inner_v6)
        tunnels = [
            (Outer(rng, v6=rng.random() < 0.2), rng.randrange(1, 1 << 24), Link(rng))
            for _ in range(4)
        ]

        def one() -> bytes:
            outer, vni, vm = rng.choice(tunnels)
            inner = rng.choice(fl).packet(rng)
            sport = rng.randrange(49152, 65536)  # the flow-entropy source port
            if vlan and rng.random() < 0.5:
                l2 = vm.eth(0x8100) / Dot1Q(vlan=rng.randrange(1, 4095), type=l3_type(inner))
            else:
                l2 = vm.eth(l3_type(inner))
            return bytes(outer.udp(sport, port) / VXLAN(flags=0x08, vni=vni) / l2 / inner)

        return one

    return make


def geneve_options(rng: random.Random) -> list[Packet]:
    opts = []
    for _ in range(rng.randint(1, 3)):
        words = rng.randint(1, 4)
        opts.append(
            GeneveOptions(
                classid=rng.choice((0x0102, 0x0103, 0xFFFF)),
                type=rng.choice((0x80, 0x01, 0x7F)),
                data=rng.randbytes(4 * words),
            )
        )
    return opts


def kind_geneve(with_options: bool, inner_v6: bool | None = None) -> Kind:
    def make(rng: random.Random) -> Callable[[], bytes]:
        fl = flows(rng, 8, v6=inner_v6)
        tunnels = [
            (Outer(rng, v6=rng.random() < 0.2), rng.randrange(1, 1 << 24), Link(rng))
            for _ in range(4)
        ]

        def one() -> bytes:
            outer, vni, vm = rng.choice(tunnels)
            inner = rng.choice(fl).packet(rng)
            opts = geneve_options(rng) if with_options else []
            gen = GENEVE(proto=ETH_TEB, vni=vni, options=opts)
            sport = rng.randrange(49152, 65536)
            return bytes(outer.udp(sport, 6081) / gen / vm.eth(l3_type(inner)) / inner)

        return one

    return make


def kind_gtpu(pdu_session: bool) -> Kind:
    def make(rng: random.Random) -> Callable[[], bytes]:
        fl = flows(rng, 8)
        tunnels = [(Outer(rng), rng.randrange(1, 1 << 32)) for _ in range(4)]

        def one() -> bytes:
            outer, teid = rng.choice(tunnels)
            inner = rng.choice(fl).packet(rng)
            if pdu_session:
                gtp = GTP_U_Header(teid=teid, gtp_type=255, E=1, next_ex=0x85) / (
                    GTPPDUSessionContainer(
                        type=rng.randrange(2), QFI=rng.randrange(1, 64), NextExtHdr=0
                    )
                )
            else:
                gtp = GTP_U_Header(teid=teid, gtp_type=255)
            return bytes(outer.udp(2152, 2152) / gtp / inner)

        return one

    return make


def kind_ipv6_ext(rng: random.Random) -> Callable[[], bytes]:
    fl = flows(rng, 8, v6=True)
    link = Link(rng)
    hops = [ip6(rng) for _ in range(4)]
    chains = (("hbh",), ("rt",), ("dst",), ("hbh", "dst"), ("hbh", "rt", "dst"), ("frag",))
    frag_id = [rng.randrange(1 << 32)]

    def one() -> bytes:
        i = rng.randrange(len(fl))
        f = fl[i]
        chain = rng.choice(chains)
        exts: list[Packet] = []
        first_hop = f.dst
        for name in chain:
            if name == "hbh":
                exts.append(IPv6ExtHdrHopByHop(options=[PadN(optdata=bytes(rng.choice((4, 12))))]))
            elif name == "rt":
                n = 1 + i % 3  # a fixed source route per flow
                # The first hop is the IPv6 destination, the flow's own one comes last.
                route = hops[1:n] + [f.dst]
                first_hop = hops[0]
                exts.append(IPv6ExtHdrRouting(addresses=route, segleft=len(route)))
            elif name == "dst":
                exts.append(IPv6ExtHdrDestOpt(options=[PadN(optdata=bytes(4))]))
            else:
                frag_id[0] = (frag_id[0] + 1) & 0xFFFFFFFF
                # an atomic fragment (RFC 6946: offset 0, M=0), the whole datagram
                exts.append(IPv6ExtHdrFragment(id=frag_id[0], m=0, offset=0))
        pkt = f.l3()
        pkt.dst = first_hop
        for e in exts:
            pkt = pkt / e
        return bytes(link.eth(ETH_IPV6) / pkt / f.l4_payload(rng))

    return one


def ipv4_fragments(rng: random.Random, f: Flow, link: Link) -> list[bytes]:
    """One UDP or TCP datagram of 64-200 payload bytes split into 2+ IPv4 fragments."""
    f.ident = (f.ident + 1) & 0xFFFF
    whole = IP(src=f.src, dst=f.dst, id=f.ident, ttl=f.ttl) / f.l4_payload(rng, 64)
    raw = bytes(whole)
    body = raw[20:]
    size = rng.choice((32, 48, 64, 96))
    out = []
    for off in range(0, len(body), size):
        chunk = body[off : off + size]
        more = off + size < len(body)
        frag = IP(
            src=f.src,
            dst=f.dst,
            id=f.ident,
            ttl=f.ttl,
            proto=whole.proto,
            flags="MF" if more else 0,
            frag=off // 8,
        )
        out.append(bytes(link.eth(ETH_IPV4) / frag / Raw(chunk)))
    return out


def kind_ipv4_frag(rng: random.Random) -> Callable[[], list[bytes]]:
    fl = flows(rng, 6, v6=False)
    link = Link(rng)

    def one() -> list[bytes]:
        return ipv4_fragments(rng, rng.choice(fl), link)

    return one


# --------------------------------------------------------------------------- captures


def mix(rng: random.Random, kinds: list[tuple[Kind, int]]) -> list[bytes]:
    """Build each kind's packets (count each) and interleave the kinds at random.

    The interleaving keeps every kind's own packets in order, so the packets of a flow
    stay in sequence (TCP sequence numbers grow). A kind may return a list of packets
    per call (the IPv4 fragments of one datagram); those stay together and in order.
    """
    queues: list[list[list[bytes]]] = []
    for make, count in kinds:
        one = make(rng)
        groups: list[list[bytes]] = []
        made = 0
        while made < count:
            got = one()
            group = got if isinstance(got, list) else [got]
            groups.append([pad(p) for p in group])
            made += len(group)
        groups.reverse()  # pop() from the end takes them in order
        queues.append(groups)
    out: list[bytes] = []
    while True:
        live = [q for q in queues if q]
        if not live:
            return out
        q = rng.choices(live, weights=[len(x) for x in live])[0]
        out.extend(q.pop())


def mixed_tunnels(rng: random.Random) -> list[bytes]:
    kinds: list[tuple[Kind, int]] = [
        (kind_plain(False, "tcp"), 220),
        (kind_plain(False, "udp"), 180),
        (kind_plain(True, "tcp"), 110),
        (kind_plain(True, "udp"), 90),
        (kind_vlan, 120),
        (kind_qinq, 80),
        (kind_mpls(3), 120),
    ]
    for c in (0, 1):
        for k in (0, 1):
            for s in (0, 1):
                kinds.append((kind_gre(c, k, s), 40))
    kinds += [
        (kind_nvgre, 80),
        (kind_vxlan(4789, inner_v6=False), 240),
        (kind_geneve(True), 90),
        (kind_geneve(False), 70),
        (kind_ipv6_ext, 120),
        (kind_ipv4_frag, 120),
    ]
    return mix(rng, kinds)


def gre_kinds(rng: random.Random) -> list[bytes]:
    per_kind = 20
    out: list[bytes] = []
    for c, k, s in ((0, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 0)):
        fl = flows(rng, 5, v6=False)
        tunnels = [(Outer(rng), rng.randrange(1 << 32)) for _ in range(4)]
        seqs = [rng.randrange(1 << 16) for _ in tunnels]
        for _ in range(per_kind):
            i = rng.randrange(len(tunnels))
            outer, key = tunnels[i]
            seqs[i] += 1
            gre = gre_header(c, k, s, ETH_IPV4, key, seqs[i])
            out.append(bytes(outer.ip(47) / gre / rng.choice(fl).packet(rng)))
    nv = kind_nvgre(rng)
    out += [nv() for _ in range(per_kind)]
    # The custom 0x88b5 kind: GRE / vendor shim / IPv4 / UDP.
    fl = [Flow(rng, False, "udp") for _ in range(5)]
    tunnels = [Outer(rng) for _ in range(3)]
    shims = [(rng.randrange(1 << 16), rng.randrange(1, 1 << 32)) for _ in range(6)]
    for _ in range(per_kind):
        flow_id, tenant = rng.choice(shims)
        shim = VendorShim(version=1, type=4, flow_id=flow_id, tenant=tenant)
        gre = gre_header(0, 0, 0, ETH_VENDOR, 0, 0)
        out.append(bytes(rng.choice(tunnels).ip(47) / gre / shim / rng.choice(fl).packet(rng)))
    return [pad(p) for p in out]


def vxlan_capture(rng: random.Random) -> list[bytes]:
    return mix(
        rng,
        [
            (kind_vxlan(4789, inner_v6=None, vlan=True), 80),
            (kind_vxlan(8472, inner_v6=None, vlan=True), 60),
            (kind_plain(False, "udp"), 40),
            (kind_plain(True, "udp"), 20),
        ],
    )


def mpls_capture(rng: random.Random) -> list[bytes]:
    link = Link(rng)
    pools = {v6: flows(rng, 6, v6=v6) for v6 in (False, True)}
    out = []
    for depth in range(1, 7):
        for v6 in (False, True):
            for _ in range(10):
                labels = [mpls_label(rng, special=0.15) for _ in range(depth)]
                inner = rng.choice(pools[v6]).packet(rng)
                ttl = rng.choice((64, 255))
                out.append(bytes(link.eth(0x8847) / mpls_stack(labels, ttl) / inner))
    return [pad(p) for p in out]


def geneve_gtpu_capture(rng: random.Random) -> list[bytes]:
    return mix(
        rng,
        [
            (kind_geneve(True), 60),
            (kind_geneve(False), 30),
            (kind_gtpu(False), 50),
            (kind_gtpu(True), 60),
        ],
    )


#: file name -> (seed offset, builder). The seed of a capture is SEED + its offset, so
#: changing one capture's builder does not change the others.
CAPTURES: dict[str, tuple[int, Callable[[random.Random], list[bytes]]]] = {
    "mixed-tunnels.pcap": (1, mixed_tunnels),
    "gre-kinds.pcap": (2, gre_kinds),
    "vxlan.pcap": (3, vxlan_capture),
    "mpls.pcap": (4, mpls_capture),
    "geneve-gtpu.pcap": (5, geneve_gtpu_capture),
}


def timestamps(packets: list[bytes]) -> list[tuple[bytes, float]]:
    """Pair each packet with its fixed timestamp (whole seconds + exact microseconds)."""
    out = []
    for i, p in enumerate(packets):
        sec, usec = divmod(i * TS_STEP_US, 1_000_000)
        out.append((p, BASE_TS + sec + usec / 1e6))
    return out


def generate(out: Path) -> dict[str, int]:
    """Write every capture into out; return file name -> packet count."""
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, (offset, build) in CAPTURES.items():
        # Scapy itself draws from the global generator for a few unset fields; every
        # field is set explicitly, but seed it anyway so nothing can leak in.
        random.seed(SEED + offset)
        packets = build(random.Random(SEED + offset))
        counts[name] = write_pcap(out / name, timestamps(packets))
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE, help="output directory (default: pcaps/)")
    args = ap.parse_args(argv)
    for name, count in generate(args.out).items():
        print(f"{args.out / name}: {count} packets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
