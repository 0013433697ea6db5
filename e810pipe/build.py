"""Build a device and its pipeline from options: the one place that does it.

The command line, the testpmd console, ``fuzz``, ``graph``, ``--workers`` and the
scenario runner all describe a device the same way (profiles, UDP tunnel ports,
double-VLAN mode, the parser window, rules files and commands) and get it built
here. Nothing in the package imports the command-line module.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from .control import Setup, configure, read_setup
from .errors import UsageError
from .package import Package, load_package
from .parser import DEFAULT_WINDOW, Parser, ParseResult
from .pcapio import LINKTYPE_ETHERNET, Packet, iter_packets
from .pipeline import Pipeline
from .resources import stock_profile_names


def profile_stack(refs: Sequence[str] | None) -> list[str]:
    """Turn repeated --profile options into a stack: one stock package, then user files.

    A stock name ("os-default", "comms") picks the base package; any other value is
    a path to a user profile added on top. Without a stock name the base is
    os-default.
    """
    stock = stock_profile_names()
    base = "os-default"
    users: list[str] = []
    for ref in refs or ():
        if ref in stock:
            base = ref
        else:
            users.append(ref)
    return [base, *users]


def add_parser_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        action="append",
        metavar="NAME|PATH",
        help="stock package (os-default, comms) or a user profile to add on top; repeatable",
    )
    p.add_argument("--vxlan-port", type=int, action="append", default=[], metavar="N")
    p.add_argument("--geneve-port", type=int, action="append", default=[], metavar="N")
    p.add_argument("--vxlan-gpe-port", type=int, action="append", default=[], metavar="N")
    p.add_argument("--dvm", action="store_true", help="double-VLAN mode")
    p.add_argument(
        "--window",
        type=int,
        default=DEFAULT_WINDOW,
        metavar="BYTES",
        help=f"parser window in bytes (default {DEFAULT_WINDOW}, as ICE_PARSER_MAX_PKT_LEN)",
    )


def check_parser_options(args: argparse.Namespace) -> None:
    for name in ("vxlan_port", "geneve_port", "vxlan_gpe_port"):
        for port in getattr(args, name):
            if not 0 < port < 65536:
                raise UsageError(f"--{name.replace('_', '-')} {port}: a UDP port is 1..65535")
    if not 14 <= args.window <= 65535:
        raise UsageError(f"--window {args.window}: use 14..65535 bytes")


def build_parser(args: argparse.Namespace) -> Parser:
    check_parser_options(args)
    package = load_package(profile_stack(args.profile))
    return Parser.load(
        package=package,
        vxlan_ports=args.vxlan_port,
        geneve_ports=args.geneve_port,
        vxlan_gpe_ports=args.vxlan_gpe_port,
        dvm=args.dvm,
        window=args.window,
    )


def ethernet_packets(paths: Sequence[str], skipped: list[str]) -> Iterator[tuple[str, int, bytes]]:
    """Yield (file, index, bytes) for Ethernet packets; note the others in `skipped`."""
    for path, pkt in ethernet_records(paths, skipped):
        yield path, pkt.index, pkt.data


def ethernet_records(paths: Sequence[str], skipped: list[str]) -> Iterator[tuple[str, Packet]]:
    """Yield (file, packet record: index, bytes, timestamp...) for Ethernet packets."""
    for path in paths:
        for pkt in iter_packets(path):
            if pkt.linktype != LINKTYPE_ETHERNET:
                skipped.append(f"{path}: packet {pkt.index}: link type {pkt.linktype}")
                continue
            yield path, pkt


def po_text(res: ParseResult, parser: Parser) -> str:
    names = {v: k for k, v in parser.package.proto_ids.items()}
    return " ".join(f"{names.get(pid, pid)}@{off}" for pid, off in res.po)


def read_args_setup(args: argparse.Namespace) -> tuple[Package, Setup]:
    """The package and setup that --profile, --rules, --cmd and the parser options give."""
    check_parser_options(args)
    package = load_package(profile_stack(args.profile))
    setup = read_setup(args.rules, args.cmd, package.protocols)
    for kind, ports in (
        ("vxlan", args.vxlan_port),
        ("geneve", args.geneve_port),
        ("vxlan_gpe", args.vxlan_gpe_port),
    ):
        setup.ports.setdefault(kind, set()).update(ports)
    setup.dvm = setup.dvm or args.dvm
    return package, setup


def setup_pipeline(args: argparse.Namespace, out: TextIO | None = None) -> Pipeline:
    """Build the pipeline from --profile, --rules, --cmd and the tunnel-port options."""
    package, setup = read_args_setup(args)
    pipe, lines = configure(package, setup, window=args.window)
    if out is not None and lines and not getattr(args, "json", False):
        quiet = bool(getattr(args, "quiet", False))
        many = len(lines) > CREATED_LINES_MAX and not _tty(out)
        for line in summarise_created(lines) if quiet or many else lines:
            out.write(f"# {line}\n")
    return pipe


# More answers than this and the output is not a terminal, or -q: the `Flow rule #N
# created` lines are summed up in one line instead of one line per rule.
CREATED_LINES_MAX = 20
_CREATED = re.compile(r"Flow rule #\d+ created \((\w+)\)")


def _tty(out: TextIO) -> bool:
    isatty = getattr(out, "isatty", None)
    return bool(isatty is not None and isatty())


def summarise_created(lines: Sequence[str]) -> list[str]:
    """testpmd's answers with the `Flow rule #N created (engine)` lines folded into one
    count per engine (after every other answer, which is kept in order)."""
    created: Counter[str] = Counter()
    others: list[str] = []
    for line in lines:
        m = _CREATED.fullmatch(line)
        if m is not None:
            created[m[1]] += 1
        else:
            others.append(line)
    if not created:
        return others
    by = ", ".join(f"{k} {v}" for k, v in sorted(created.items()))
    return [*others, f"{sum(created.values())} flow rule(s) created ({by})"]


def add_rule_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="FILE",
        help="testpmd commands (text) or a YAML device-and-rules file; repeatable",
    )
    p.add_argument(
        "--cmd",
        action="append",
        default=[],
        metavar="TESTPMD COMMAND",
        help="one testpmd command, e.g. 'flow create 0 pattern ... / end actions ... / end'",
    )
    p.add_argument(
        "--port",
        type=int,
        default=0,
        metavar="N",
        help="the port (PF) the packets arrive on (default 0)",
    )


# ---------------------------------------------------------------- testpmd launch

_EAL_WITH_VALUE = frozenset(
    "-l -c -n -m -d -r -b --lcores --file-prefix --socket-mem --socket-limit --huge-dir "
    "--proc-type --iova-mode --vdev --main-lcore --base-virtaddr --vfio-intr --mbuf-pool-ops-name "
    "--trace --trace-dir --telemetry".split()
)
_EAL_FLAGS = frozenset(
    "--in-memory --no-huge --legacy-mem --single-file-segments --no-pci --no-shconf "
    "--no-telemetry --match-allocations --create-uio-dev -v".split()
)
_APP_WITH_VALUE = frozenset(
    "--nb-cores --nb-ports --burst --rxd --txd --total-num-mbufs --max-pkt-len --mbuf-size "
    "--forward-mode --coremask --rxfreet --rxpt --rxht --rxwt --txfreet --txpt --txht --txwt "
    "--txrst --stats-period --numa --port-numa-config --ring-numa-config --socket-num "
    "--eth-peers-configfile --eth-peer --flow-isolate-all --hairpinq --rx-offloads "
    "--tx-offloads --max-lro-pkt-size --rxoffs --rxpkts --txpkts --mp-alloc".split()
)
_APP_FLAGS = frozenset(
    "--auto-start --enable-rx-cksum --no-flush-rx --no-lsc-interrupt --no-rmv-interrupt "
    "--enable-lro --enable-scatter --enable-hw-vlan --enable-hw-vlan-filter "
    "--enable-hw-vlan-strip --enable-hw-vlan-extend --enable-hw-qinq-strip --disable-crc-strip "
    "--record-core-cycles --record-burst-stats --no-numa --mp-anon --tx-first "
    "--disable-device-start --rss-level-outer --rss-level-inner --txonly-multi-flow "
    "--enable-drop-en --disable-link-check --no-mlockall --mlockall".split()
)
_PCI = re.compile(
    r"(?:(?P<dom>[0-9a-fA-F]{4}):)?(?P<bus>[0-9a-fA-F]{2}):(?P<dev>[0-9a-fA-F]{2})"
    r"\.(?P<fn>[0-7])"
)


@dataclass(frozen=True)
class PortSpec:
    """One ``-a PCI[,devargs]`` port.

    A PCI device number of 00 is a PF (its function number is the PF index); a device
    number of 01 or more is a VF, VF id ``(device - 1) * 8 + function``, as SR-IOV lays
    VFs out behind the PF: of PF 0 on the first bus (18), of PF 1 on the next (19), and
    so on. ``cap=dcf`` makes a VF a DCF port (a trusted VF whose switch and ACL rules
    act for the whole device).
    """

    number: int
    pci: str
    pf: int
    vf: int | None = None
    devargs: tuple[tuple[str, str], ...] = ()
    representor: bool = False  # a DCF's port representor of VF `vf` (representor=[...])

    @property
    def kind(self) -> str:
        if self.representor:
            return "repr"
        return "pf" if self.vf is None else "vf"

    @property
    def dcf(self) -> bool:
        return dict(self.devargs).get("cap") == "dcf"


@dataclass(frozen=True)
class VfSpec:
    """``--vf mac=MAC,trust=on,queues=N[,pf=P]``: a VF the host created (on PF 0
    unless ``pf`` says otherwise); the VFs of a PF are numbered in the order given."""

    mac: str | None = None
    trust: bool = False
    queues: int | None = None
    pf: int = 0


@dataclass(frozen=True)
class LaunchOptions:
    """testpmd's launch options, as they change the model (and the ones that do not)."""

    ports: tuple[PortSpec, ...]
    rxq: int = 1
    txq: int = 1
    rss_types: tuple[str, ...] = ("ip",)
    interactive: bool = False
    cmdline_file: str | None = None
    portmask: int | None = None
    topology: str = "paired"
    log_info: bool = False
    profiles: tuple[str, ...] = ()
    dvm: bool | None = None  # None: as ice_set_vlan_mode picks (DVM if the package has it)
    tunnel_ports: tuple[tuple[str, int], ...] = ()
    vfs: tuple[VfSpec, ...] = ()
    window: int = DEFAULT_WINDOW
    pipeline_mode: bool = False
    # testpmd before DPDK 25.07 (commit 24e94a4c86): `port config N rss-hash-key TYPE
    # KEY` set the key and left the port's hash types as they were
    rss_key_keeps_types: bool = False
    ignored: tuple[str, ...] = ()

    def rxq_for(self, spec: PortSpec) -> int:
        return self.rxq

    def port_mac(self, spec: PortSpec) -> str:
        if spec.vf is not None:
            return vf_mac(self, spec.vf, spec.pf)
        return f"B4:96:91:00:00:{spec.pf:02X}"

    def peer(self, port: int, nports: int) -> int:
        """The Tx port of `port` under --port-topology (paired, chained, loop)."""
        if self.topology == "loop" or nports == 1:
            return port
        if self.topology == "chained":
            return (port + 1) % nports
        peer = port ^ 1
        return peer if peer < nports else port

    @classmethod
    def parse(cls, argv: Sequence[str]) -> LaunchOptions:
        """Read testpmd's command line; EAL options before ``--``, the application's
        after it (both are accepted on either side)."""
        args = list(argv)
        kw: dict = {}
        ports: list[PortSpec] = []
        ignored: list[str] = []
        profiles: list[str] = []
        tunnels: list[tuple[str, int]] = []
        vfs: list[VfSpec] = []
        rss: tuple[str, ...] | None = None
        i = 0

        def value(opt: str) -> str:
            nonlocal i
            if "=" in opt and opt.startswith("--"):
                return opt.split("=", 1)[1]
            if len(opt) > 2 and not opt.startswith("--"):
                return opt[2:]  # -a0000:18:00.0
            i += 1
            if i >= len(args):
                raise UsageError(f"testpmd option {opt} needs a value")
            return args[i]

        def number(opt: str, lo: int, hi: int) -> int:
            v = value(opt)
            try:
                n = int(v, 0)
            except ValueError:
                raise UsageError(f"{opt.split('=')[0]}: '{v}' is not a number") from None
            if not lo <= n <= hi:
                raise UsageError(f"{opt.split('=')[0]}={n}: give {lo}..{hi}")
            return n

        while i < len(args):
            a = args[i]
            name = a.split("=", 1)[0] if a.startswith("--") else a[:2]
            if a == "--":
                pass
            elif name in ("-a", "-w") or name == "--allow":
                spec = _port_spec(len(ports), value(a))
                ports.append(spec)
                # representor=[1,2] on a DCF port: one port per listed VF, after it
                for vf in _representors(dict(spec.devargs).get("representor", "")):
                    ports.append(PortSpec(len(ports), spec.pci, spec.pf, vf, (), True))
            elif name in ("-i", "--interactive"):
                kw["interactive"] = True
            elif name == "--rxq":
                kw["rxq"] = number(a, 1, 256)
            elif name == "--txq":
                kw["txq"] = number(a, 1, 256)
            elif name == "--disable-rss":
                rss = ()
            elif name == "--rss-ip":
                rss = ("ip",)
            elif name == "--rss-udp":
                rss = ("udp",)
            elif name == "--portmask":
                kw["portmask"] = number(a, 0, (1 << 64) - 1)
            elif name == "--port-topology":
                topo = value(a)
                if topo not in ("paired", "chained", "loop"):
                    raise UsageError(f"--port-topology={topo}: use paired, chained or loop")
                kw["topology"] = topo
            elif name == "--cmdline-file":
                kw["cmdline_file"] = value(a)
            elif name == "--log-level":
                v = value(a)
                ignored.append(f"--log-level={v}")
                m = re.fullmatch(r"(.*?)[,:](\d+|info|debug)", v)
                if m and re.search(m.group(1).replace("*", ".*"), "pmd.net.ice.driver"):
                    level = m.group(2)
                    if level in ("info", "debug") or int(level) >= 7:
                        kw["log_info"] = True
                        ignored.pop()
            elif name == "--profile":
                profiles.append(value(a))
            elif name == "--dvm":
                kw["dvm"] = True
            elif name == "--svm":
                kw["dvm"] = False
            elif name in ("--vxlan-port", "--geneve-port", "--vxlan-gpe-port"):
                kind = name[2:].rsplit("-port", 1)[0].replace("-", "_")
                tunnels.append((kind, number(a, 1, 65535)))
            elif name == "--vf":
                vfs.append(_vf_spec(value(a)))
            elif name == "--rss-key-keeps-types":
                kw["rss_key_keeps_types"] = True
            elif name == "--window":
                kw["window"] = number(a, 14, 65535)
            elif name in _EAL_WITH_VALUE or name in _APP_WITH_VALUE:
                ignored.append(f"{name}={value(a)}")
            elif name in _EAL_FLAGS or name in _APP_FLAGS:
                ignored.append(name)
            else:
                raise UsageError(
                    f"unknown testpmd option '{a}'; see the README's console section for "
                    "the options e810pipe models and the ones it accepts and ignores"
                )
            i += 1
        if not ports:
            ports = [_port_spec(0, "0000:18:00.0")]
        pipeline = any(dict(p.devargs).get("pipeline-mode-support") == "1" for p in ports)
        return cls(
            ports=tuple(ports),
            rss_types=rss if rss is not None else ("ip",),
            profiles=tuple(profiles),
            tunnel_ports=tuple(tunnels),
            vfs=tuple(vfs),
            pipeline_mode=pipeline,
            ignored=tuple(ignored),
            **kw,
        )


def _split_devargs(text: str) -> list[str]:
    """Split on commas outside brackets: ``18:01.0,cap=dcf,representor=[1,2]``."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _representors(text: str) -> list[int]:
    """``[1,2]``, ``vf[1-3]`` or ``1``: the VF ids a representor devarg lists."""
    body = text.strip().removeprefix("vf").strip("[]")
    out: list[int] = []
    for part in filter(None, body.split(",")):
        lo, _, hi = part.partition("-")
        try:
            out.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise UsageError(f"representor={text}: expected VF ids such as [1,2]") from None
    return out


def _port_spec(number: int, text: str) -> PortSpec:
    pci, *rest = _split_devargs(text)
    m = _PCI.fullmatch(pci)
    if m is None:
        raise UsageError(f"-a {text}: expected a PCI address such as 0000:18:00.0[,devargs]")
    devargs = []
    for kv in rest:
        k, _, v = kv.partition("=")
        devargs.append((k, v))
    dev, fn = int(m.group("dev"), 16), int(m.group("fn"))
    if dev == 0:
        return PortSpec(number, pci, fn, None, tuple(devargs))
    pf = max(0, int(m.group("bus"), 16) - 0x18)  # VFs of PF N sit on bus 18 + N
    return PortSpec(number, pci, pf, (dev - 1) * 8 + fn, tuple(devargs))


def _vf_spec(text: str) -> VfSpec:
    kw: dict = {}
    for part in filter(None, text.split(",")):
        k, _, v = part.partition("=")
        if k == "mac":
            kw["mac"] = v
        elif k == "trust":
            kw["trust"] = v in ("on", "1", "true")
        elif k in ("queues", "pf"):
            try:
                kw[k] = int(v)
            except ValueError:
                raise UsageError(f"--vf {text}: {k}={v!r} is not a number") from None
        else:
            raise UsageError(f"--vf {text}: unknown key '{k}'; use mac=, trust=, queues=, pf=")
    return VfSpec(**kw)


def pf_vfs(opts: LaunchOptions, pf: int) -> list[VfSpec]:
    """The --vf entries of PF `pf`, in VF id order."""
    return [v for v in opts.vfs if v.pf == pf]


def vf_mac(opts: LaunchOptions, vf: int, pf: int = 0) -> str:
    """A VF's MAC: the one --vf gives, else 00:00:00:00:0P:NN (P the PF, N the VF id)."""
    given = pf_vfs(opts, pf)
    if vf < len(given) and given[vf].mac:
        return str(given[vf].mac)
    return f"00:00:00:00:{pf + 1:02x}:{vf:02x}"


def testpmd_pipeline(opts: LaunchOptions) -> Pipeline:
    """The device and pipeline a testpmd session with these launch options drives."""
    from .device import MAX_VF_QUEUES, Device
    from .hash import ICE_RSS_OFFLOAD_ALL, rss_hf
    from .pipeline import PipelineConfig, PortBinding

    stack = profile_stack(list(opts.profiles))
    package = load_package(stack)
    npf = max([p.pf for p in opts.ports] + [v.pf for v in opts.vfs]) + 1
    pfs = []
    for pf in range(npf):
        spec: dict = {
            "rxq": opts.rxq if any(p.pf == pf and p.vf is None for p in opts.ports) else 1
        }
        vf_ports = {p.vf for p in opts.ports if p.vf is not None and p.pf == pf}
        given = pf_vfs(opts, pf)
        nvf = max([len(given)] + [v + 1 for v in vf_ports])
        vfl = []
        for v in range(nvf):
            vs = given[v] if v < len(given) else VfSpec(pf=pf)
            q = vs.queues or (min(opts.rxq, MAX_VF_QUEUES) if v in vf_ports else 4)
            vfl.append({"queues": q, "mac": vf_mac(opts, v, pf)})
        if vfl:
            spec["vfs"] = vfl
        pfs.append(spec)
    device = Device.from_dict({"pfs": pfs}, where="testpmd launch options")
    ports: dict[str, set[int]] = {}
    for kind, port in opts.tunnel_ports:
        ports.setdefault(kind, set()).add(port)
    dvm = opts.dvm if opts.dvm is not None else "dvm" in package.options
    from .rss import RssStage

    # testpmd's rss_hf (RTE_ETH_RSS_IP unless --rss-udp or --disable-rss), masked with
    # the port's flow_type_rss_offloads (init_port_config), applied by ice_init_rss
    hf = rss_hf(opts.rss_types) & ICE_RSS_OFFLOAD_ALL
    rss = RssStage(rss_hf=hf)
    pipe = Pipeline(
        package,
        device,
        ports=ports,
        dvm=dvm,
        window=opts.window,
        config=PipelineConfig(pipeline_mode=opts.pipeline_mode),
        rss=rss,
    )
    bindings = []
    backer: int | None = None
    for p in opts.ports:
        if p.vf is None:
            vsi = device.pfs[p.pf].vsi.number
        else:
            vsi = [v for v in device.pfs[p.pf].vsis if v.kind == "vf"][p.vf].number
        kind = p.kind if p.kind != "vf" else ("dcf" if p.dcf else "vf")
        if kind != "repr":
            backer = p.number  # a representor is backed by the DCF port it follows
        bindings.append(PortBinding(p.number, vsi, p.pf, kind, backer if kind == "repr" else None))
    pipe.set_ports(bindings)
    return pipe


__all__ = [
    "LaunchOptions",
    "PortSpec",
    "VfSpec",
    "testpmd_pipeline",
    "add_parser_options",
    "add_rule_options",
    "build_parser",
    "check_parser_options",
    "ethernet_packets",
    "ethernet_records",
    "po_text",
    "profile_stack",
    "read_args_setup",
    "setup_pipeline",
]


def packet_arg(text: str) -> bytes:
    """`--packet`: hex bytes (spaces and colons allowed), or a Scapy layer string such
    as ``Ether()/IP(dst='10.0.0.1')/UDP(dport=53)`` (the scenarios' safe subset: no
    code runs, no name is looked up)."""
    hexed = "".join(text.split()).replace(":", "")
    if hexed[:2] in ("0x", "0X"):
        hexed = hexed[2:]
    try:
        data = bytes.fromhex(hexed)
    except ValueError:
        from .layerspec import LayerSpecError, build

        try:
            data = build(text)
        except LayerSpecError as err:
            raise UsageError(f"--packet: neither hex bytes nor a layer spec: {err}") from None
    if len(data) < 14:
        raise UsageError(f"--packet: {len(data)} byte(s); an Ethernet frame has at least 14")
    return data
