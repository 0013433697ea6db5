"""``e810pipe testpmd``: an emulated E810 driven as testpmd drives the real one.

The console takes testpmd's launch options (EAL ``-a PCI[,devargs]`` per port,
application options after ``--`` such as ``--rxq=N``), reads commands from a
terminal (``testpmd>`` prompt, line editing, history), a ``--cmdline-file`` or a
pipe, and prints what testpmd prints: ``Flow rule #N created``, rte_flow errors as
``port_flow_complain()`` writes them, the verbose Rx lines of ``set verbose 1`` in
rxonly mode, and the forward statistics ``stop`` shows. ``inject PORT PACKET`` is
e810pipe's extension: the tester's side, sending frames into a port.

Front end only: it reads text into commands (:mod:`e810pipe.testpmd`) and launch
options (:class:`e810pipe.build.LaunchOptions`), builds the device with
:func:`e810pipe.build.testpmd_pipeline` and formats the results; the engines never
see text.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from .build import LaunchOptions, PortSpec, testpmd_pipeline
from .errors import E810PipeError, RuleError, UsageError
from .hash import ICE_RSS_OFFLOAD_ALL, RSS_TYPE_BITS, key_update, rss_hf
from .inputs import clip
from .mbuf import (
    INNER_L2_MASK,
    INNER_L3_MASK,
    INNER_L4_MASK,
    RX_FDIR,
    RX_FDIR_ID,
    RX_RSS_HASH,
    TUNNEL_MASK,
    checksum_flags,
    hw_ptype,
    ptype_name,
    rx_ol_flag_list,
    sw_ptype,
)
from .pipeline import Decision, Pipeline
from .testpmd import (
    Command,
    FlowCommand,
    NoopCommand,
    RetaCommand,
    RssKeyCommand,
    RssTypesCommand,
    RxqCommand,
    SessionCommand,
    TestpmdError,
    TunnelPortCommand,
    parse_command,
    rss_default_queues,
)

ENGINE_TYPES = {"fd": 1, "switch": 2, "hash": 3, "acl": 4}  # enum ice_flow_engine_type
MIN_FRAME = 60  # frames shorter than this are padded on the wire (without the FCS)
BURST = 32  # testpmd's default burst size: packets printed per "received N packets"
# Commands read from standard input: a longer line is skipped, not held (testpmd's own
# cmdline keeps LINE_MAX, 2048, characters; e810pipe's rules may be longer: raw patterns)
MAX_LINE = 1 << 20
ECHO_LINE = 4096  # characters of a command echoed back when stdin is not a terminal
ITEM_NAMES = {"vxlan-gpe": "VXLAN_GPE", "gre_key": "GRE_KEY", "ipv6_frag_ext": "IPV6_FRAG_EXT"}


@dataclass
class PortState:
    """What testpmd knows of one ethdev port: its kind, queues and statistics."""

    spec: PortSpec
    rxq: int
    txq: int
    started: bool = True
    rx_packets: int = 0
    rx_dropped: int = 0
    rx_bytes: int = 0
    queue_packets: dict[int, int] = field(default_factory=dict)
    # counters at the last `start` (testpmd prints the difference at `stop`)
    base: tuple[int, int, dict[int, int]] = (0, 0, {})


class Testpmd:
    """One testpmd session on an emulated E810.

    Args:
        argv: testpmd's launch options (EAL part, ``--``, application part) plus
            e810pipe's own (``--profile``, ``--dvm``/``--svm``, tunnel ports, ``--vf``).
        out: where output goes (also returned by :meth:`execute`).
    """

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(self, argv: Sequence[str] = (), out: TextIO | None = None) -> None:
        self.opts = LaunchOptions.parse(argv)
        self.out = out
        self.pipe: Pipeline = testpmd_pipeline(self.opts)
        self.ports = [
            PortState(spec, self.opts.rxq_for(spec), self.opts.txq) for spec in self.opts.ports
        ]
        self.verbose = 0
        self.fwd = "io"
        self.forwarding = False
        self.log_info = self.opts.log_info
        # testpmd's rss_hf as each port reports it (ice_rss_hash_conf_get: pf->rss_hf)
        self.rss_hf = {p.number: self._stage(p.number).rss_hf for p in self.opts.ports}
        # testpmd's global rss_hf: the launch option's types, then each `port config all
        # rss TYPE` as requested (cmd_config_rss_parsed); an rss action's default types
        self.global_rss_hf = rss_hf(self.opts.rss_types)
        self.quit = False
        self.portlist: list[int] | None = None  # set portlist: the forwarding ports

    # ---------------------------------------------------------------- output

    def _emit(self, text: str) -> str:
        if self.out is not None and text:
            self.out.write(text)
            self.out.flush()
        return text

    def banner(self) -> str:
        lines = []
        if self.opts.ignored:
            lines.append(
                "e810pipe: accepted and ignored (no effect in the model): "
                + " ".join(self.opts.ignored)
            )
        for p in self.opts.ports:
            vsi = self.pipe.device.vsi(self.pipe.port_binding(p.number).vsi)
            lines.append(
                f"Port {p.number}: {p.pci} ({p.kind}{', dcf' if p.dcf else ''}) "
                f"-> VSI {vsi.number} ({vsi.name}), {vsi.num_queues} Rx queue(s)"
            )
        pkg = self.pipe.package
        mode = "double" if self.pipe.dvm else "single"
        # ice_load_pkg_type()'s NOTICE line (ice_ethdev.c)
        lines.append(
            f"ice_load_pkg_type(): Active package is: {pkg.version}, {pkg.name} ({mode} VLAN mode)"
        )
        return self._emit("\n".join(lines) + "\n")

    # ---------------------------------------------------------------- commands

    def execute(self, line: str, where: str = "<console>") -> str:
        """Run one console line; returns (and writes to ``out``) what testpmd prints."""
        text = line.strip()
        if not text or text.startswith("#"):
            return ""
        if text.split()[0] == "inject":
            try:
                return self._emit(self._inject_command(text))
            except E810PipeError as err:
                return self._emit(f"inject: {err}\n")
        try:
            cmd = parse_command(text, where)
        except TestpmdError:
            return self._emit("Bad arguments\n")
        try:
            return self._emit(self.apply(cmd))
        except RuleError as err:
            return self._emit(_complain(err))
        except UsageError as err:
            return self._emit(f"{err}\n")

    def apply(self, cmd: Command) -> str:
        if isinstance(cmd, FlowCommand):
            return self._flow(cmd)
        if isinstance(cmd, SessionCommand):
            return self._session(cmd)
        if isinstance(cmd, TunnelPortCommand):
            if (bad := self._bad_port(cmd.port)) is not None:
                return bad
            self.pipe.set_tunnel_port(cmd.tunnel, cmd.udp_port, add=cmd.op == "add")
            return ""
        if isinstance(cmd, RxqCommand):
            return self._rxq(cmd)
        if isinstance(cmd, RssKeyCommand):
            if (bad := self._bad_port(cmd.port)) is not None:
                return bad
            stage = self._stage(cmd.port)
            out = key_update(stage, cmd.rss_type, cmd.key, self.opts.rss_key_keeps_types)
            self.rss_hf[cmd.port] = stage.rss_hf
            return out
        if isinstance(cmd, RetaCommand):
            # cmd_set_rss_reta_parsed: the port's reta_size (ice: the PF LUT, 512; iavf:
            # 64), parse_reta_config's index check, then rte_eth_dev_rss_reta_update's
            # queue check (-EINVAL)
            port = cmd.port or 0
            if (bad := self._bad_port(port)) is not None:
                return bad
            vsi = self.pipe.pf_vsi(port)
            stage = self._stage(port)
            size = stage.lut(vsi.number, vsi.kind, vsi.num_queues).size
            out = f"The reta size of port {port} is {size}\n"
            for index, _ in cmd.entries:
                if index >= size:
                    return (
                        out + f"Invalid RETA hash index={index}\n"
                        "Invalid RSS Redirection Table config entered\n"
                    )
            if any(q >= vsi.num_queues for _, q in cmd.entries):
                return out + "Bad redirection table parameter, return code = -22\n"
            stage.reta(vsi.number, vsi.kind, vsi.num_queues, cmd.entries)
            return out
        if isinstance(cmd, RssTypesCommand):
            return self._rss_types(cmd)
        if isinstance(cmd, NoopCommand):
            return ""
        return ""  # pragma: no cover

    def _bad_port(self, port: int | None) -> str | None:
        if port is not None and not 0 <= port < len(self.ports):
            return f"Invalid port {port}\n"
        return None

    def _stage(self, port: int):  # noqa: ANN202 - RssStage
        vsi = self.pipe.pf_vsi(port).number
        if vsi not in self.pipe._rss_stages:
            self.pipe.set_rss(vsi, self.pipe.rss_for(vsi).copy())
        return self.pipe.rss_for(vsi)

    def _ports_of(self, port: int | None) -> list[int]:
        return list(range(len(self.ports))) if port is None else [port]

    def _rxq(self, cmd: RxqCommand) -> str:
        for p in self._ports_of(cmd.port):
            if (bad := self._bad_port(p)) is not None:
                return bad
            state = self.ports[p]
            if state.started and self.ports[p].spec.kind == "pf":
                return f"Please stop port {p} first\n"
            state.rxq = cmd.queues
            vsi = self.pipe.pf_vsi(p)
            vsi.num_queues = cmd.queues
        self.pipe.device.set_rxq(-1, 1)  # renumber only (no PF has number -1)
        self.pipe.invalidate()
        return ""

    def _rss_types(self, cmd: RssTypesCommand) -> str:
        """``port config all rss TYPE`` as cmd_config_rss_parsed does it: the types'
        rss_hf (rss_type_table), masked with what the port offers, then
        rte_eth_dev_rss_hash_update (ice_rss_hash_update -> ice_rss_hash_set)."""
        words = cmd.types
        default = words == ("default",)
        hf = 0
        for w in words:
            if w.isdigit():
                hf |= 1 << int(w) if 0 < int(w) < 64 else 0
            elif w in RSS_TYPE_BITS:
                hf |= RSS_TYPE_BITS[w]
            elif not w.startswith("level-") and w != "default":
                return "Unknown parameter\n"
        out = ""
        for p in self._ports_of(cmd.port):
            offered = ICE_RSS_OFFLOAD_ALL
            want = offered if default else hf
            local = want & offered
            if local != want:
                out += (
                    f"Port {p} modified RSS hash function based on hardware support,"
                    f"requested:{want:#x} configured:{local:#x}\n"
                )
            stage = self._stage(p)
            stage.set_hf(local)
            self.rss_hf[p] = stage.rss_hf
        if not default:
            self.global_rss_hf = hf
            out += f"rss_hf {hf:#x}\n"
        return out

    def _flow(self, cmd: FlowCommand) -> str:
        pipe = self.pipe
        nports = len(self.ports)
        if cmd.verb in ("validate", "create"):
            assert cmd.rule is not None
            if not 0 <= cmd.port < nports:
                # rte_flow_validate/create on a port that does not exist (rte_flow.c)
                return (
                    "port_flow_complain(): Caught PMD error type 1 (cause unspecified): "
                    "No such device: No such device\n"
                )
            rule = rss_default_queues(cmd.rule, self.ports[cmd.port].rxq, self.global_rss_hf)
            if cmd.verb == "validate":
                pipe.validate(rule)
                return "Flow rule validated\n"
            try:
                rid = pipe.create(rule)
            except RuleError as err:
                # ice_flow_create's PMD_DRV_LOG(ERR, ...), printed at every log level
                pmd = "iavf" if self.ports[cmd.port].spec.kind == "vf" else "ice"
                log = "".join(f"{line}\n" for line in err.log)
                return log + f"{pmd}_flow_create(): Failed to create flow\n" + _complain(err)
            entry = pipe.rule(cmd.port, rid)
            assert entry is not None
            out = ""
            if self.log_info:
                out += (
                    f"ice_flow_create(): Succeeded to create ({ENGINE_TYPES[entry.engine]}) flow\n"
                )
            return out + f"Flow rule #{rid} created\n"
        if not 0 <= cmd.port < nports:
            return f"Invalid port {cmd.port}\n"
        if cmd.verb == "destroy":
            out = ""
            for rid in cmd.rule_ids:
                if pipe.destroy(cmd.port, rid):
                    out += f"Flow rule #{rid} destroyed\n"
            return out
        if cmd.verb == "flush":
            pipe.flush(cmd.port)
            return ""
        if cmd.verb == "list":
            return self._flow_list(cmd.port, cmd.groups)
        # query
        out = ""
        for rid in cmd.rule_ids:
            entry = pipe.rule(cmd.port, rid)
            if entry is None:
                out += f"Flow rule #{rid} not found\n"
                continue
            fd = entry.engine == "fd"
            if entry.rule.action("count") is None:
                # ice_fdir_query_count: a rule without a counter
                why = "FDIR counters not available" if fd else "count action not found"
                out += _complain(RuleError(why, "specific action", 16, None, 22))
                continue
            # ice_fdir_query_count reads the hit counter only (bytes_set 0)
            nbytes = (0, 0) if fd else (1, entry.bytes)
            out += (
                f"{cmd.action or 'count'}:\n hits_set: 1\n bytes_set: {nbytes[0]}\n"
                f" hits: {entry.hits}\n bytes: {nbytes[1]}\n"
            )
        return out

    def _flow_list(self, port: int, groups: tuple[int, ...]) -> str:
        """``port_flow_list``: by group, priority and id."""
        entries = [e for e in self.pipe.port_rules(port) if not groups or e.rule.group in groups]
        entries.sort(key=lambda e: (e.rule.group, e.rule.priority, e.rule_id))
        out = "ID\tGroup\tPrio\tAttr\tRule\n" if entries else ""
        for e in entries:
            r = e.rule
            items = "".join(
                ITEM_NAMES.get(i.type, i.type.upper().replace("-", "_")) + " "
                for i in r.pattern
                if i.type not in ("end", "void")
            )
            acts = "".join(" " + a.type.upper() for a in r.actions if a.type != "void")
            out += f"{e.rule_id}\t{r.group}\t{r.priority}\ti--\t{items}=>{acts}\n"
        return out

    # ---------------------------------------------------------------- session

    def _session(self, cmd: SessionCommand) -> str:
        v = cmd.verb
        if v == "quit":
            self.quit = True
            out = self._stop() if self.forwarding else ""
            return out + "\nBye...\n"
        if v == "start":
            if self.forwarding:
                return "Packet forwarding already started\n"
            self.forwarding = True
            for p in self.ports:
                p.base = (p.rx_packets, p.rx_dropped, dict(p.queue_packets))
            streams = sum(min(p.rxq, p.txq) for p in self.ports)
            return (
                f"{self.fwd} packet forwarding - ports={len(self.ports)} - cores=1 - "
                f"streams={streams} - NUMA support enabled, MP allocation mode: native\n"
            )
        if v == "stop":
            if not self.forwarding:
                return "Packet forwarding not started\n"
            return self._stop()
        if v == "set-verbose":
            old, self.verbose = self.verbose, int(cmd.value or 0)
            return f"Change verbose level from {old} to {self.verbose}\n"
        if v == "set-fwd":
            self.fwd = str(cmd.value)
            return f"Set {self.fwd} packet forwarding mode\n"
        if v in ("show-port-stats", "clear-port-stats"):
            if (bad := self._bad_port(cmd.port)) is not None:
                return bad
            out = ""
            for n in self._ports_of(cmd.port):
                out += self._show_stats(n) if v.startswith("show") else self._clear_stats(n)
            return out
        if v in ("show-rss-hash", "show-rss-key"):
            if (bad := self._bad_port(cmd.port)) is not None:
                return bad
            return self._show_rss(cmd.port or 0, v == "show-rss-key")
        if v == "set-portlist":
            self.portlist = [int(x) for x in str(cmd.value).split(",") if x.isdigit()]
            return ""
        if v in ("mcast_addr-add", "mcast_addr-remove"):
            if (bad := self._bad_port(cmd.port)) is not None:
                return bad
            return self._mcast(v.endswith("add"), cmd.port or 0, str(cmd.value))
        if v in ("port-stop", "port-start", "port-reset", "port-close"):
            if (bad := self._bad_port(cmd.port)) is not None:
                return bad
            return self._port_state(v.split("-")[1], cmd.port)
        return ""

    def _mcast(self, add: bool, port: int, mac: str) -> str:
        """testpmd's mcast_addr_add / mcast_addr_remove (app/test-pmd/config.c): the
        port's multicast list goes to the PMD (rte_eth_dev_set_mc_addr_list); a VF's
        iavf_set_mc_addr_list asks the PF, which adds a MAC filter for each address to
        the VF's VSI (ice_vc_add_mac_addr), so those frames reach the VF."""
        octets = bytes(int(x, 16) for x in mac.split(":"))
        if not octets[0] & 1:
            return f"Invalid multicast addr {':'.join(f'{b:02X}' for b in octets)}\n"
        vsi = self.pipe.device.vsi(self.pipe.port_binding(port).vsi)
        known = [m for m in vsi.mcast if m.lower() == mac.lower()]
        if add and known:
            return "multicast address already filtered by port\n"
        if not add and not known:
            return f"multicast address not filtered by port {port}\n"
        if add:
            vsi.mcast.append(mac)
        else:
            vsi.mcast.remove(known[0])
        self.pipe.switch.refresh_macs()
        self.pipe.invalidate()
        return ""

    def _port_state(self, what: str, port: int | None) -> str:
        out = ""
        for p in self._ports_of(port):
            st = self.ports[p]
            if what == "stop":
                out += "Stopping ports...\nChecking link statuses...\nDone\n"
                st.started = False
            elif what == "start":
                st.started = True
                out += f"Port {p}: {self.opts.port_mac(st.spec)}\nChecking link statuses...\nDone\n"
            elif what == "reset":
                # a port reset re-initialises the device: ice drops its flow rules
                self.pipe.flush(p)
                out += "Resetting ports...\nDone\n"
            else:
                self.pipe.flush(p)  # port close frees the rules (ice_dev_close)
                st.started = False
                out += f"Closing ports...\nPort {p} is closed\nDone\n"
        return out

    def _show_stats(self, p: int) -> str:
        st = self.ports[p]
        b = "########################"
        return (
            f"\n  {b} NIC statistics for port {p:<2d} {b}\n"
            f"  RX-packets: {st.rx_packets:<10d} RX-missed: {st.rx_dropped:<10d} "
            f"RX-bytes:  {st.rx_bytes}\n"
            "  RX-errors: 0\n  RX-nombuf:  0         \n"
            "  TX-packets: 0          TX-errors: 0          TX-bytes:  0\n\n"
            "  Throughput (since last show)\n"
            f"  Rx-pps: {0:12d}          Rx-bps: {0:12d}\n"
            f"  Tx-pps: {0:12d}          Tx-bps: {0:12d}\n"
            f"  {b}############################{b}\n"
        )

    def _clear_stats(self, p: int) -> str:
        st = self.ports[p]
        st.rx_packets = st.rx_dropped = st.rx_bytes = 0
        st.queue_packets = {}
        st.base = (0, 0, {})
        return f"\n  NIC statistics for port {p} cleared\n"

    def _show_rss(self, port: int, key: bool) -> str:
        """``show port N rss-hash [key]`` (port_rss_hash_conf_show, rss_types_display)."""
        hf = self._stage(port).rss_hf
        if not hf:
            return "RSS disabled\n"
        out = "RSS functions:\n" + _types_display(hf) + "\n"
        if key:
            out += "RSS key:\n" + self._stage(port).key.hex().upper() + "\n"
        return out

    def _stop(self) -> str:
        self.forwarding = False
        out = "Telling cores to stop...\nWaiting for lcores to finish...\n"
        total_rx = total_drop = 0
        streams = sum(p.rxq for p in self.ports) > len(self.ports)
        per_port = []
        for n, st in enumerate(self.ports):
            rx0, drop0, q0 = st.base
            rx, drop = st.rx_packets - rx0, st.rx_dropped - drop0
            total_rx += rx
            total_drop += drop
            if streams:
                peer = self.opts.peer(n, len(self.ports))
                for q in sorted(st.queue_packets):
                    k = st.queue_packets[q] - q0.get(q, 0)
                    if k == 0:
                        continue
                    out += (
                        f"\n  ------- Forward Stats for RX Port={n:2d}/Queue={q:2d} -> "
                        f"TX Port={peer:2d}/Queue={q:2d} -------\n"
                        f"  RX-packets: {k:<14d} TX-packets: {0:<14d} TX-dropped: {0:<14d}\n"
                    )
            per_port.append((n, rx, drop))
        line = "----------------------"
        for n, rx, drop in per_port:
            out += (
                f"\n  {line} Forward statistics for port {n:<2d} {line}\n"
                f"  RX-packets: {rx:<14d} RX-dropped: {drop:<14d}RX-total: {rx + drop}\n"
                f"  TX-packets: {0:<14d} TX-dropped: {0:<14d}TX-total: 0\n"
                f"  {line}--------------------------------{line}\n"
            )
        acc = "+++++++++++++++"
        out += (
            f"\n  {acc} Accumulated forward statistics for all ports{acc}\n"
            f"  RX-packets: {total_rx:<14d} RX-dropped: {total_drop:<14d}"
            f"RX-total: {total_rx + total_drop}\n"
            f"  TX-packets: {0:<14d} TX-dropped: {0:<14d}TX-total: 0\n"
            f"  {acc}++++++++++++++++++++++++++++++++++++++++++++++{acc}\n"
            "\nDone.\n"
        )
        return out

    # ---------------------------------------------------------------- packets

    def _inject_command(self, text: str) -> str:
        """``inject PORT PACKET [count N]``; PACKET is a Scapy layer string,
        ``hex:HEX`` or ``pcap:FILE``."""
        m = re.fullmatch(r"inject\s+(\d+)\s+(.+?)(?:\s+count\s+(\d+))?", text, re.S)
        if m is None:
            raise UsageError(
                "usage: inject PORT PACKET [count N] (PACKET: Scapy layers, hex:HEX or pcap:FILE)"
            )
        port, spec, count = int(m.group(1)), m.group(2).strip(), int(m.group(3) or 1)
        if not 1 <= count <= 1_000_000:
            raise UsageError(f"count {count}: give 1..1000000")
        frames = read_packets(spec)
        return self.inject(port, [f for f in frames for _ in range(count)])

    def inject(self, port: int, frames: Iterable[bytes], wire: bool = False) -> str:
        """Send `frames` into ethdev port `port` from the tester's side (with `wire`: onto
        the wire of PF `port`, whichever VFs or ports it then reaches); returns the
        verbose lines the receiving ports print. A VF port's frames arrive on its PF's
        wire and go where the switch sends them."""
        if not wire and (bad := self._bad_port(port)) is not None:
            raise UsageError(bad.strip())
        pf = port if wire else self.pipe.port_binding(port).pf
        out: list[str] = []
        run: list[tuple[int, int, bytes, Decision]] = []  # consecutive on one queue

        def flush() -> None:
            if not run:
                return
            rxport, q = run[0][0], run[0][1]
            if self.verbose:
                out.append(f"port {rxport}/queue {q}: received {len(run)} packets\n")
                for _, _, data, dec in run:
                    out.append(self._verbose(rxport, q, data, dec))
            run.clear()

        for data in frames:
            if len(data) < MIN_FRAME:
                data = data + bytes(MIN_FRAME - len(data))
            first = self.pipe.process(data, wire=pf)
            for dec in self._copies(first):
                target = self._receiver(dec)
                if target is None:
                    continue  # landed on a VSI no port of this session is
                st = self.ports[target]
                if not st.started:
                    continue  # a stopped port's link is down: the frame never arrives
                if dec.drop:
                    st.rx_dropped += 1  # counted as imissed, printed nowhere
                    flush()
                    continue
                q = dec.vsi_queue or 0
                st.rx_packets += 1
                st.rx_bytes += len(data)
                if not self.forwarding:
                    continue  # DMA'd to the ring, but nothing polls it (start flushes it)
                st.queue_packets[q] = st.queue_packets.get(q, 0) + 1
                if run and (run[0][0] != target or run[0][1] != q or len(run) >= BURST):
                    flush()
                run.append((target, q, data, dec))
        flush()
        return "".join(out)

    def _copies(self, dec: Decision) -> list[Decision]:
        """The packet as each VSI of a switch VSI list receives it: the switch replicates
        a frame to every VSI of the list (ice_add_adv_rule's ICE_FWD_TO_VSI_LIST). The
        first VSI's copy is the pipeline's decision; the others take their own RSS
        queue for the same hash (Flow Director is not looked up for them)."""
        sw = dec.verdicts[0] if dec.verdicts else None
        if dec.drop or sw is None or sw.action != "to_vsi_list" or len(sw.vsis) < 2:
            return [dec]
        out = [dec]
        dev = self.pipe.device
        for v in sw.vsis:
            if v == dec.vsi:
                continue
            vsi = dev.vsi(v)
            lut = self.pipe.rss_for(v).lut(v, vsi.kind, vsi.num_queues)
            q = lut.queue_for(dec.rss_hash)
            out.append(
                dec._replace(
                    vsi=v, vsi_name=vsi.name, vsi_queue=q, queue=vsi.absolute(q), mark=None
                )
            )
        return out

    def _receiver(self, dec: Decision) -> int | None:
        """The ethdev port whose VSI got the packet (for a drop: the VSI it was for)."""
        if dec.vsi is None:
            return 0 if self.ports and self.ports[0].spec.kind == "pf" else None
        for b in self.pipe.eth_ports:
            if b.vsi == dec.vsi and b.kind != "repr":  # representors receive nothing here
                return b.number
        return None

    def _verbose(self, port: int, queue: int, d: bytes, dec: Decision) -> str:
        """One packet as ``dump_pkt_burst`` (app/test-pmd/util.c) prints it."""
        hw = hw_ptype(dec.ptype)
        flags = checksum_flags(d, hw)
        s = f"  src={_mac(d[6:12])} - dst={_mac(d[0:6])} - pool=mb_pool_0 - "
        s += f"type=0x{int.from_bytes(d[12:14], 'big'):04x} - length={len(d)} - nb_segs=1"
        if self._hashed(port, dec):
            flags |= RX_RSS_HASH
            s += f" - RSS hash=0x{dec.rss_hash:x} - RSS queue=0x{queue:x}"
        if dec.mark is not None:
            flags |= RX_FDIR | RX_FDIR_ID
            s += f" - FDIR matched ID=0x{dec.mark:x}"
        if hw:
            s += f" - hw ptype: {ptype_name(hw)}"
        sw, lens = sw_ptype(d)
        s += f" - sw ptype: {ptype_name(sw)}"
        for mask, name, val in (
            (0xF, "l2_len", lens.l2_len),
            (0xF0, "l3_len", lens.l3_len),
            (0xF00, "l4_len", lens.l4_len),
            (TUNNEL_MASK, "tunnel_len", lens.tunnel_len),
            (INNER_L2_MASK, "inner_l2_len", lens.inner_l2_len),
            (INNER_L3_MASK, "inner_l3_len", lens.inner_l3_len),
            (INNER_L4_MASK, "inner_l4_len", lens.inner_l4_len),
        ):
            if sw & mask:
                s += f" - {name}={val}"
        s += _l4_note(d, hw)
        s += f" - Receive queue=0x{queue:x}\n  ol_flags: {rx_ol_flag_list(flags)}\n"
        return s

    def _hashed(self, port: int, dec: Decision) -> bool:
        """Whether the packet carries an RSS hash (RTE_MBUF_F_RX_RSS_HASH): the
        descriptor's RSS-valid bit, set when a profile of its VSI hashed it."""
        return dec.vsi is not None and dec.hashed


def _types_display(hf: int, width: int = 64) -> str:
    """rss_types_display: every rss_type_table entry whose bits `hf` has, two spaces
    before each, a new line before one that would pass `width` characters."""
    out, total = "", 0
    for name, bits in RSS_TYPE_BITS.items():
        if not bits or hf & bits != bits:
            continue
        n = len(name) + 2
        if total + n > width:
            out += "\n"
            total = 0
        out += f"  {name}"
        total += n
    return out


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02X}" for x in b)


def _l4_note(d: bytes, hw: int) -> str:
    """The UDP/TCP/VXLAN part util.c adds, reading at fixed offsets (l2_len 14, a plain
    IPv4 header when the hw ptype says IPv4, else an IPv6 header)."""
    l3 = 20 if hw & 0x10 else 40
    proto = d[14 + 9] if hw & 0x10 else (d[14 + 6] if len(d) > 20 else 0)
    off = 14 + l3
    if proto == 17 and off + 4 <= len(d):
        dport = int.from_bytes(d[off + 2 : off + 4], "big")
        if hw & (TUNNEL_MASK | INNER_L2_MASK | INNER_L3_MASK | INNER_L4_MASK):
            vni = int.from_bytes(d[off + 12 : off + 16].ljust(4, b"\0"), "big")
            return (
                f" - VXLAN packet: packet type ={hw}, Destination UDP port ={dport}, "
                f"VNI = {vni >> 8}, last_rsvd = {vni & 0xFF}"
            )
        return f" - Destination UDP port={dport}"
    if proto == 6 and off + 4 <= len(d):
        return f" - Destination TCP port={int.from_bytes(d[off + 2 : off + 4], 'big')}"
    return ""


def _complain(err: RuleError) -> str:
    """An rte_flow error as testpmd's ``port_flow_complain()`` prints it (the cause
    pointer, a process address, is left out)."""
    msg = err.message.split("\n", 1)[0] or "(no stated reason)"
    return (
        f"port_flow_complain(): Caught PMD error type {err.type_code} ({err.category}): "
        f"{msg}: {os.strerror(err.errno)}\n"
    )


def read_packets(spec: str) -> list[bytes]:
    """Frames from ``hex:HEX``, ``pcap:FILE`` or a Scapy layer string (read, never run)."""
    if spec.startswith("hex:"):
        h = re.sub(r"\s+", "", spec[4:])
        try:
            return [bytes.fromhex(h)]
        except ValueError:
            raise UsageError(f"hex:{h[:40]}: not hex digits") from None
    if spec.startswith("pcap:"):
        from .pcapio import LINKTYPE_ETHERNET, iter_packets

        return [p.data for p in iter_packets(spec[5:]) if p.linktype == LINKTYPE_ETHERNET]
    from .layerspec import build

    if spec.startswith("[") and spec.endswith("]"):
        return [build(part) for part in _split_list(spec[1:-1])]
    return [build(spec)]


def _split_list(text: str) -> list[str]:
    """Split a Python-style list of layer strings on top-level commas."""
    parts, depth, cur, quote = [], 0, "", ""
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def interact(tp: Testpmd, stdin: TextIO, out: TextIO) -> int:
    """The ``testpmd>`` loop: a terminal gets line editing and history."""
    tty = stdin.isatty()
    if tty:
        try:
            import readline  # noqa: F401 - line editing and history for input()

            hist = os.path.expanduser("~/.e810pipe_testpmd_history")
            try:
                readline.read_history_file(hist)
            except OSError:
                pass
        except ImportError:  # pragma: no cover
            hist = ""
    n = 0
    while not tp.quit:
        try:
            if tty:
                line = input("testpmd> ")
            else:
                try:
                    line = stdin.readline(MAX_LINE + 1)
                except UnicodeDecodeError as err:  # a strict UTF-8 locale
                    raise UsageError(
                        f"<stdin>:{n + 1}: standard input is not UTF-8 text ({err.reason}; "
                        "the text is decoded in blocks, so the bad byte may be on a later line)"
                    ) from None
                if not line:
                    break
                if "\0" in line:  # /dev/zero, a capture piped in by mistake
                    raise UsageError(
                        f"<stdin>:{n + 1}: standard input is not text (a NUL byte); "
                        "testpmd commands are lines of text"
                    )
                if len(line) > MAX_LINE and not line.endswith("\n"):
                    # a line without end (/dev/zero, a binary file): skip to its end
                    # without holding it, and say so, as a bounded read
                    skipped, head = len(line), line[:80]
                    while line and not line.endswith("\n"):
                        line = stdin.readline(MAX_LINE)
                        skipped += len(line)
                    n += 1
                    out.write(
                        f"testpmd> {head}... \n"
                        f"<stdin>:{n}: a command line of {skipped} characters; at most "
                        f"{MAX_LINE} are read (not run)\n"
                    )
                    continue
                out.write(f"testpmd> {clip(line.rstrip(), ECHO_LINE)}\n")
        except EOFError:
            break
        n += 1
        tp.execute(line, f"<stdin>:{n}")
    if tty and hist:
        try:
            import readline

            readline.write_history_file(hist)
        except OSError:
            pass
    if not tp.quit:
        tp.execute("quit")
    return 0


def main(argv: Sequence[str], stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """``e810pipe testpmd [testpmd options]``."""
    stdin = stdin if stdin is not None else sys.stdin
    out = out if out is not None else sys.stdout
    tp = Testpmd(argv, out)
    tp.banner()
    if tp.opts.cmdline_file:
        from .inputs import read_text  # a regular file under the rules-file limit

        name = tp.opts.cmdline_file

        def error(message: str, line: int, column: int) -> UsageError:
            where = f"{name}:{line}:{column}" if line else name
            return UsageError(f"--cmdline-file {where}: cannot read: {message}")

        lines = read_text(name, "rules", error).splitlines()
        for i, line in enumerate(lines, 1):
            if tp.quit:
                break
            tp.execute(line, f"{tp.opts.cmdline_file}:{i}")
        if not tp.opts.interactive:
            if not tp.quit:
                tp.execute("quit")
            return 0
    if tp.quit:
        return 0
    return interact(tp, stdin, out)


__all__ = ["ENGINE_TYPES", "Testpmd", "interact", "main", "read_packets"]
