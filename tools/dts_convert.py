#!/usr/bin/env python3
"""Turn DPDK DTS ice test suites into e810pipe conformance data (JSON lines).

    python tools/dts_convert.py /path/to/dts [--out tests/data/dts] [--suite NAME ...]

DTS (BSD-3-Clause, Intel) validates the ice PMD by driving testpmd on a real E810 and
sending Scapy packets from a tester.  This script runs a suite's own test methods
against a stand-in for the DTS framework: the stand-in answers testpmd commands like
testpmd would (rule ids, "Flow rule validated", ...), turns every packet the suite sends
into bytes with the tester's Scapy, and records each check DTS makes (the functions of
`tests/rte_flow_common.py` and the suites' own checks) as a step.  What a rule command
must give is what the suite's helper checks (`check_stats`, the message it looks for).

The output is one `<suite>.jsonl.gz` per suite; the format is described in
tests/data/dts/README.md.  Nothing here is needed at test time, and no DTS file is copied.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gzip
import importlib
import importlib.util
import inspect
import io
import json
import re
import sys
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------------------
# The tester's Scapy: DTS's tester runs `scapy` and imports these contrib layers
# (framework/packet.py, scapy_modules_required); its strings are evaluated there.
# --------------------------------------------------------------------------------------

SCAPY_PRELUDE = (
    "from scapy.all import *\n"
    # the suites also use GTPHeader (GTP-C): the whole GTP contrib, not only DTS's list
    "from scapy.contrib.gtp import *\n"
    "from scapy.contrib.lldp import LLDPDU, LLDPDUManagementAddress\n"
    "from scapy.contrib.pfcp import PFCP\n"
    "from scapy.contrib.nsh import NSH\n"
    "from scapy.contrib.igmp import IGMP\n"
    "from scapy.contrib.mpls import MPLS\n"
)

PF_PCI = ["0000:18:00.0", "0000:18:00.1"]
PF_INTF = ["ens801f0", "ens801f1"]
PF_MAC = ["68:05:ca:a3:28:94", "68:05:ca:a3:28:95"]
TESTER_IFACE = ["tport0", "tport1"]
TESTER_MAC = ["68:05:ca:a3:13:40", "68:05:ca:a3:13:41"]
TESTPMD = "./x86_64-native-linuxapp-gcc/app/dpdk-testpmd"
VF_DEFAULT_QUEUES = 16  # ice gives a VF 16 queue pairs by default (ICE_MAX_RSS_QS_PER_VF)


def vf_pci(pf: int, vf: int) -> str:
    """PCI address of VF `vf` of PF `pf`: device (vf // 8) + 1, function vf % 8.

    PF 0's VFs follow the data's convention (bus 18); PF 1's VFs are on bus 19, the
    data's extension for them (README: "VFs of PF 1")."""
    bus = 0x18 + pf
    return f"0000:{bus:02x}:{vf // 8 + 1:02x}.{vf % 8}"


def vf_default_mac(pf: int, vf: int) -> str:
    return f"02:00:00:00:{pf:02x}:{vf:02x}"


class Skip(Exception):
    """A case the data cannot express; the reason goes to the report."""


class VerifyFailure(Exception):
    def __init__(self, value: Any = "") -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return repr(self.value)


class VerifySkip(Exception):
    def __init__(self, value: Any = "") -> None:
        super().__init__(value)
        self.value = value


# --------------------------------------------------------------------------------------
# Outputs that know what the suite looked for
# --------------------------------------------------------------------------------------

FAIL_TEXT = (
    "port_flow_complain(): Caught PMD error type 13 (specific pattern item): cause: 0x0, "
    "Invalid argument\nFailed to create flow"
)
SUCCESS_WORDS = ("created", "validated", "Succeeded", "destroyed")
ENGINE = {"1": "fd", "2": "switch", "3": "hash", "4": "acl"}


def caller_negates() -> bool:
    """Whether the `in` test being evaluated is a `not in` (CONTAINS_OP 1)."""
    import dis

    f = sys._getframe(2)
    code = f.f_code.co_code
    i = f.f_lasti
    return code[i] == dis.opmap.get("CONTAINS_OP", -1) and code[i + 1] == 1


class FlowOut(str):
    """testpmd's answer to a flow command; `in` tests are recorded on the step.

    A failed command contains whatever error text the suite asks for (DTS checks the
    message its case expects); a successful one contains the engine line asked for.
    When nothing said which outcome DTS expects (no helper with `check_stats`), the
    answer is undecided until the suite looks into it: asking for an error text means
    DTS expects the command to fail, asking for a success text that it succeeds."""

    step: dict[str, Any]
    ok: bool
    decided: bool
    port: int
    rid: int | None

    def __new__(
        cls,
        text: str,
        step: dict[str, Any],
        ok: bool,
        decided: bool = True,
        port: int = 0,
        rid: int | None = None,
    ) -> FlowOut:
        obj = super().__new__(cls, text)
        obj.step = step
        obj.ok = ok
        obj.decided = decided
        obj.port = port
        obj.rid = rid
        return obj

    def decide(self, sub: str, negated: bool) -> None:
        self.decided = True
        if any(w in sub for w in SUCCESS_WORDS) != negated:
            return
        # DTS looks for an error: the command must fail
        self.ok = False
        self.step["expect"] = "error"
        self.step.pop("msg", None)
        if self.rid is not None:
            REC.rules.get(self.port, {}).pop(self.rid, None)

    def __contains__(self, sub: object) -> bool:  # type: ignore[override]
        if not isinstance(sub, str):
            return False
        if not self.decided and sub.strip():
            self.decide(sub, caller_negates())
        if self.ok:
            m = re.fullmatch(r"(?:ice_flow_create\(\): )?Succeeded to create \((\d)\) flow", sub)
            if m:
                self.step["msg"] = f"Succeeded to create ({m.group(1)}) flow"
                self.step["engine"] = ENGINE.get(m.group(1), m.group(1))
                return True
            return str.__contains__(self, sub)
        if any(w in sub for w in SUCCESS_WORDS):
            return False
        if sub.strip():
            self.step.setdefault("msg", sub)
        return True


# --------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------

QUIET_CMDS = re.compile(
    r"^(start|stop|clear port stats all|clear port stats \d+|show port stats all|"
    r"show port stats \d+|show port info.*|show port xstats.*|quit|show config.*|"
    r"show device info.*|show port \d+ rss-hash.*|show port summary.*)$"
)


class Case:
    def __init__(self, suite: str, cid: str) -> None:
        self.suite = suite
        self.id = cid
        self.profile = "os-default"
        self.launch = ""
        self.ports = 1
        self.rxq = 1
        self.devargs: dict[str, str] = {}
        self.setup: list[str] = []
        self.steps: list[dict[str, Any]] = []
        self.vfs: list[dict[str, Any]] = []
        self.kernel_pf = False
        self.notes: list[str] = []
        self.in_setup = True

    def as_json(self) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "suite": self.suite,
            "id": self.id,
            "profile": self.profile,
            "ports": self.ports,
            "rxq": self.rxq,
        }
        if self.launch:
            rec["launch"] = self.launch
        if self.devargs:
            rec["devargs"] = self.devargs
        if self.vfs:
            rec["vfs"] = self.vfs
        if self.kernel_pf:
            rec["kernel_pf"] = True
        rec["setup"] = self.setup
        rec["steps"] = self.steps
        notes = list(dict.fromkeys(self.notes))
        if notes:
            rec["note"] = "; ".join(notes)
        return rec


class Recorder:
    """Holds the testpmd state the stand-in simulates and the case being recorded."""

    def __init__(self, suite: str) -> None:
        self.suite = suite
        self.case: Case | None = None
        self.method = ""
        self.records: list[Case] = []
        self.subcases = 0
        self.phase = "idle"  # setup_all, set_up, test, tear_down
        self.expect_stack: list[bool | None] = []
        self.fail_rules: list[re.Pattern[str]] = []
        self.ok_rules: list[re.Pattern[str]] = []
        self.profile = "os-default"
        self.reset_testpmd()
        self.vfs: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
        self.sends: list[dict[str, Any]] = []
        self.pending_sends: list[int] = []
        self.dropped: list[str] = []
        self.relaunches = 0
        self.hash_records = 0
        self.pending_not_acl: list[tuple[dict[str, Any], int, int]] = []
        self.prefix_steps: list[dict[str, Any]] = []
        self.method_case: Case | None = None

    # testpmd state ------------------------------------------------------------------
    def reset_testpmd(self) -> None:
        self.running = False
        self.rules: dict[int, dict[int, str]] = {}
        self.launch_info: dict[str, Any] = {}
        self.session_setup: list[str] = []
        self.port_count = 0

    # case boundaries ------------------------------------------------------------------
    def new_case(self, cid: str) -> Case:
        case = Case(self.suite, cid)
        case.profile = self.profile
        self.apply_launch(case)
        case.setup = list(self.session_setup)
        self.case = case
        return case

    def apply_launch(self, case: Case) -> None:
        li = self.launch_info
        if not li:
            return
        case.launch = li["launch"]
        case.ports = li["ports"]
        case.rxq = li["rxq"]
        case.devargs = dict(li["devargs"])
        case.kernel_pf = li["kernel_pf"]
        case.vfs = copy.deepcopy(self.vfs[0]) if li["uses_vfs"] else []
        if li["uses_pf1_vfs"]:
            case.vfs += [dict(v, pf=1) for v in copy.deepcopy(self.vfs[1])]
        for n in li["notes"]:
            case.notes.append(n)

    def finish_case(self) -> None:
        case = self.case
        self.case = None
        if case is None or getattr(case, "dropped", False):
            return
        if not any("send" in s or "cmd" in s or "rules" in s for s in case.steps):
            self.dropped.append(f"{case.id}: no steps recorded")
            return
        self.records.append(case)

    def begin_subcase(self, name: str) -> None:
        """Close what was recorded so far and start `method/name` from the live state."""
        assert self.case is not None
        if self.subcases == 0:
            self.method_case = self.case
            self.prefix_steps = [s for s in self.case.steps if "cmd" in s]
        else:
            self.finish_case()
        self.subcases += 1
        base = self.method_case
        case = Case(self.suite, f"{self.method}/{name}")
        case.profile = self.profile
        self.apply_launch(case)
        case.setup = list(base.setup)
        case.notes = list(base.notes)
        # the live state here: configuration commands and the rules still installed
        live = {cmd for port in self.rules.values() for cmd in port.values()}
        for s in self.prefix_steps:
            if not s["cmd"].startswith("flow ") or s["cmd"] in live:
                case.steps.append(dict(s))
        case.in_setup = not case.steps
        self.case = case

    # steps ------------------------------------------------------------------------------
    def add_step(self, step: dict[str, Any]) -> None:
        if self.case is None or self.phase in ("tear_down", "idle"):
            return
        case = self.case
        if case.in_setup and "cmd" in step and not step["cmd"].startswith("flow"):
            if step.get("expect", "ok") == "ok":
                case.setup.append(step["cmd"])
                if self.phase in ("setup_all", "set_up"):
                    self.session_setup.append(step["cmd"])
                return
        if case.in_setup and step.get("cmd", "").startswith("flow flush"):
            return
        if self.phase in ("setup_all", "set_up") and "cmd" in step:
            self.session_setup.append(step["cmd"])
            case.setup.append(step["cmd"])
            return
        case.in_setup = False
        case.steps.append(step)

    def note(self, text: str) -> None:
        if self.case is not None:
            self.case.notes.append(text)

    # expected outcome of a rule command -------------------------------------------------
    def rule_expected(self, cmd: str) -> tuple[bool, bool]:
        """(must the command succeed, is that known yet)."""
        for p in self.fail_rules:
            if p.search(cmd):
                return False, True
        for p in self.ok_rules:
            if p.search(cmd):
                return True, True
        for e in reversed(self.expect_stack):
            if e is not None:
                return e, True
        return True, False


REC: Recorder = Recorder("")


@contextlib.contextmanager
def expecting(ok: bool | None):
    REC.expect_stack.append(ok)
    try:
        yield
    finally:
        REC.expect_stack.pop()


# --------------------------------------------------------------------------------------
# Launch command parsing
# --------------------------------------------------------------------------------------


def parse_launch(cmd: str) -> dict[str, Any]:
    """Reduce a testpmd command line to what the model needs (devices, app options)."""
    eal, _, app = cmd.partition(" -- ")
    # the application path, sometimes glued to the first option ("dpdk-testpmd-c f")
    eal = re.sub(r"^\s*\S*testpmd(?=-|\s|$)", " ", eal)
    toks = eal.split()
    keep: list[str] = []
    devices: list[tuple[str, str]] = []
    notes: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.endswith("dpdk-testpmd") or t.endswith("testpmd"):
            i += 1
            continue
        if t in ("-l", "-c", "-n", "--socket-mem", "--file-prefix", "--main-lcore"):
            i += 2
            continue
        if t.startswith("--file-prefix=") or t.startswith("--socket-mem="):
            i += 1
            continue
        if t in ("-a", "-w") and i + 1 < len(toks):
            dev = toks[i + 1]
            pci, _, opts = dev.partition(",")
            devices.append((pci, opts))
            i += 2
            continue
        keep.append(t)
        i += 1
    ports = 0
    devargs: dict[str, str] = {}
    uses_vfs = False
    uses_pf1_vfs = False
    all_vfs = bool(devices)
    launch_devs: list[str] = []
    for pci, opts in devices:
        m = re.fullmatch(r"[0-9a-f]{4}:([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])", pci)
        if not m:
            raise Skip(f"testpmd device {pci!r} is not a PCI address")
        bus, dev = int(m.group(1), 16), int(m.group(2), 16)
        if dev == 0:
            all_vfs = False
        else:
            uses_vfs = True
            if bus != 0x18:
                uses_pf1_vfs = True
        ports += 1
        rep = re.search(r"representor=(?:vf)?\[?([0-9,\-]+)\]?", opts)
        if rep:
            ids: list[int] = []
            for part in rep.group(1).split(","):
                if "-" in part:
                    a, b = part.split("-")
                    ids.extend(range(int(a), int(b) + 1))
                elif part:
                    ids.append(int(part))
            ports += len(ids)
        if opts and dev == 0:
            for kv in opts.split(","):
                k, _, v = kv.partition("=")
                devargs[k] = v
        launch_devs.append(f"-a {pci}" + (f",{opts}" if opts else ""))
    app_opts = " ".join(app.split())
    rxq = 1
    m = re.search(r"--rxq[= ](\d+)", app_opts)
    if m:
        rxq = int(m.group(1))
    extra = " ".join(keep)
    launch = " ".join(launch_devs + ([extra] if extra else []) + ["--", app_opts or "-i"])
    return {
        "launch": launch,
        "ports": ports,
        "rxq": rxq,
        "devargs": devargs,
        "kernel_pf": all_vfs,
        "uses_vfs": uses_vfs,
        "uses_pf1_vfs": uses_pf1_vfs,
        "notes": notes,
    }


# --------------------------------------------------------------------------------------
# Stand-ins for the DTS framework
# --------------------------------------------------------------------------------------


class Logger:
    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *a, **k: None


class Nothing:
    """Anything not modelled: every attribute is a callable returning an empty string."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *a, **k: ""


class NetDev(Nothing):
    def __init__(self, pf: int, vf: int | None = None) -> None:
        self.pf = pf
        self.vf = vf
        self.pci = PF_PCI[pf] if vf is None else vf_pci(pf, vf)
        self.intf = PF_INTF[pf] if vf is None else f"{PF_INTF[pf]}v{vf}"
        self.intf_name = self.intf
        self.default_driver = "ice" if vf is None else "iavf"
        self.domain_id, self.bus_id, self.devfun_id = self.pci.split(":")
        self.driver = self.default_driver

    def get_nic_driver(self) -> str:
        return self.driver

    def bind_driver(self, driver: str = "") -> None:
        self.driver = driver or self.default_driver

    def get_mac_addr(self) -> str:
        if self.vf is None:
            return PF_MAC[self.pf]
        return REC.vfs[self.pf][self.vf]["mac"]

    def get_interface_name(self) -> str:
        return self.intf

    def get_pci(self) -> str:
        return self.pci


class FakeSession:
    """A DUT session: a shell that may be running testpmd."""

    def __init__(self, dut: FakeDut) -> None:
        self.dut = dut
        self.name = "dut"

    def __str__(self) -> str:
        return "dut session"

    def send_expect(self, cmd: str, expected: Any = "# ", timeout: int = 15, *a: Any, **k: Any):
        return self.dut.run(str(cmd), self)

    def send_command(self, cmd: str, timeout: int = 5, *a: Any, **k: Any):
        return self.dut.run(str(cmd), self)

    def get_session_output(self, timeout: int = 1) -> str:
        return self.dut.take_output()

    def get_session_before(self, timeout: int = 1) -> str:
        return self.dut.take_output()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *a, **k: ""


class FakeDut(FakeSession):
    NAME = "dut"

    def __init__(self) -> None:
        self.dut = self
        self.name = "dut"
        self.logger = Logger()
        self.base_dir = "/root/dpdk"
        self.target = "x86_64-native-linuxapp-gcc"
        self.apps_name = {"test-pmd": TESTPMD, "testpmd": TESTPMD}
        self.nic = types.SimpleNamespace(
            name="ICE_100G-E810C_QSFP",
            default_driver="ice",
            pkg={"type": "os default", "version": "1.3.30.0"},
        )
        self.ports_info = [
            {
                "pci": PF_PCI[p],
                "intf": PF_INTF[p],
                "mac": PF_MAC[p],
                "port": NetDev(p),
                "type": "8086:1592",
                "numa": 0,
                "vfs_port": [],
                "sriov_vfs_pci": [],
            }
            for p in (0, 1)
        ]
        self.ports_map = [0, 1]
        self.session = self
        self.alt_session = self
        self.output: list[str] = []
        self.testpmd_session: FakeSession | None = None

    def __str__(self) -> str:
        return "dut"

    # what the suites ask of the DUT ------------------------------------------------------
    def get_ports(self, *a: Any, **k: Any) -> list[int]:
        return [0, 1]

    def get_core_list(self, *a: Any, **k: Any) -> list[str]:
        return [str(i) for i in range(1, 9)]

    def get_numa_id(self, *a: Any) -> int:
        return 0

    def get_mac_address(self, port: int) -> str:
        return PF_MAC[port]

    def get_priv_flags_state(self, *a: Any, **k: Any) -> bool:
        return False

    def new_session(self, *a: Any, **k: Any) -> FakeSession:
        return FakeSession(self)

    def create_session(self, *a: Any, **k: Any) -> FakeSession:
        return FakeSession(self)

    def generate_sriov_vfs_by_port(self, port: int, num: int, driver: str = "default") -> None:
        REC.vfs[port] = [
            {"mac": vf_default_mac(port, i), "trust": False, "queues": VF_DEFAULT_QUEUES}
            for i in range(num)
        ]
        vfs = [NetDev(port, i) for i in range(num)]
        self.ports_info[port]["vfs_port"] = vfs
        self.ports_info[port]["sriov_vfs_pci"] = [v.pci for v in vfs]

    def destroy_sriov_vfs_by_port(self, port: int) -> None:
        REC.vfs[port] = []
        self.ports_info[port]["vfs_port"] = []
        self.ports_info[port]["sriov_vfs_pci"] = []

    def destroy_all_sriov_vfs(self) -> None:
        for p in (0, 1):
            self.destroy_sriov_vfs_by_port(p)

    def create_eal_parameters(
        self,
        cores: Any = "default",
        ports: Any = None,
        port_options: Any = None,
        prefix: str = "",
        no_pci: bool = False,
        b_ports: Any = None,
        vdevs: Any = None,
        other_eal_param: str = "",
        **k: Any,
    ) -> str:
        parts = ["-l 1,2,3,4 -n 4"]
        port_options = port_options or {}
        for p in ports or []:
            pci = self.ports_info[p]["pci"] if isinstance(p, int) else p
            opt = port_options.get(p) or port_options.get(pci)
            parts.append(f"-a {pci}" + (f",{opt}" if opt else ""))
        for v in vdevs or []:
            parts.append(f"--vdev {v}")
        parts.append(f"--file-prefix={prefix or 'dpdk_1'}")
        if other_eal_param:
            parts.append(other_eal_param.strip())
        return " " + " ".join(parts) + " "

    def kill_all(self, *a: Any, **k: Any) -> None:
        REC.running = False

    def take_output(self) -> str:
        out = "".join(self.output)
        self.output = []
        return out

    # commands -------------------------------------------------------------------------
    def run(self, cmd: str, session: FakeSession) -> str:
        cmd = cmd.strip()
        if not REC.running or (
            self.testpmd_session is not None and session is not self.testpmd_session
        ):
            if "testpmd" in cmd and " -i" in cmd:
                if REC.running:
                    raise Skip("a second testpmd runs beside the first")
                return self.launch(cmd, session)
            return shell(cmd)
        return testpmd(cmd)

    def launch(self, cmd: str, session: FakeSession) -> str:
        script: list[str] = []
        m = re.search(r"\s--cmdline-file[= ](\S+)", cmd)
        if m:
            key = Path(m.group(1)).name
            if key not in MEMFS:
                raise Skip(f"testpmd --cmdline-file {m.group(1)} was not written by the suite")
            script = [ln.strip() for ln in MEMFS[key].splitlines() if ln.strip()]
            cmd = cmd.replace(m.group(0), "")
        out = self._launch(cmd, session)
        if script:
            REC.note("testpmd's --cmdline-file commands are the first steps")
            for line in script:
                testpmd(line)
        return out

    def _launch(self, cmd: str, session: FakeSession) -> str:
        info = parse_launch(cmd)
        REC.reset_testpmd()
        REC.running = True
        REC.launch_info = info
        REC.port_count = info["ports"]
        self.testpmd_session = session
        case = REC.case
        if case is not None and REC.phase == "test":
            if case.steps:
                # DTS relaunches testpmd mid-method: what follows is a case of its own
                REC.relaunches += 1
                REC.finish_case()
                case = Case(REC.suite, f"{REC.method}/relaunch_{REC.relaunches}")
                case.profile = REC.profile
                case.notes.append(
                    f"DTS quits and relaunches testpmd in {REC.method}; the steps after "
                    "the relaunch are this case"
                )
                REC.case = case
            REC.apply_launch(case)
            case.setup = []
            case.in_setup = True
        elif case is not None:
            REC.apply_launch(case)
            case.setup = []
        pkg = REC.profile
        name = "ICE COMMS Package" if pkg == "comms" else "ICE OS Default Package"
        return (
            f"EAL: Detected 4 lcore(s)\nice_load_pkg_type(): Active package is: 1.3.30.0, {name} "
            "(double VLAN mode)\ntestpmd> "
        )


def shell(cmd: str) -> str:
    """Host shell commands: only what sets up VFs matters to the data."""
    if cmd.strip() == "quit":
        return ""
    m = re.match(r"ip link set (\S+) vf (\d+) (.*)", cmd)
    if m:
        pf = PF_INTF.index(m.group(1)) if m.group(1) in PF_INTF else 0
        vf = int(m.group(2))
        rest = m.group(3).replace('"', "").replace("'", "").split()
        vfs = REC.vfs.get(pf, [])
        if vf < len(vfs):
            entry = vfs[vf]
            j = 0
            while j + 1 < len(rest):
                key, val = rest[j], rest[j + 1]
                if key == "mac":
                    entry["mac"] = val.lower()
                elif key == "trust":
                    entry["trust"] = val == "on"
                elif key == "spoofchk":
                    entry["spoofchk"] = val == "on"
                elif key == "vlan":
                    entry["vlan"] = int(val)
                j += 2
        return ""
    if re.search(r"(^|\n)ethtool -[NU] ", cmd):
        raise Skip(
            "creates Flow Director rules on a PF with `ethtool -N` (kernel driver); "
            "the data has no host command steps"
        )
    if cmd.startswith("kill -9") or cmd.startswith("pkill"):
        REC.running = False
        return ""
    if cmd.startswith("lspci"):
        return "\t\tProduct Name: Intel(R) Ethernet Network Adapter E810-CQDA2\n"
    if cmd.startswith("ethtool -i"):
        return "driver: ice\nversion: 1.9.11\nfirmware-version: 4.0 0x80012345\n"
    return ""


MARK = "@@S{}@@"

# Files the suites write (testpmd --cmdline-file scripts) stay in memory, by base name.
MEMFS: dict[str, str] = {}


class MemFile(io.StringIO):
    def __init__(self, path: str, text: str = "", keep: bool = True) -> None:
        super().__init__(text)
        self.key = Path(str(path)).name
        self.keep = keep

    def close(self) -> None:
        if self.keep and not self.closed:
            MEMFS[self.key] = self.getvalue()
        super().close()

    def __exit__(self, *a: Any) -> None:
        self.close()


def mem_open(path: Any, mode: str = "r", *a: Any, **k: Any) -> MemFile:
    key = Path(str(path)).name
    if "w" in mode:
        return MemFile(path)
    if "a" in mode:
        f = MemFile(path, MEMFS.get(key, ""))
        f.seek(0, io.SEEK_END)
        return f
    if key not in MEMFS:
        raise Skip(f"the suite reads {path}, which it did not write")
    return MemFile(path, MEMFS[key], keep="+" in mode)


def testpmd(cmd: str) -> str:
    """Answer a testpmd command as testpmd would, recording it as a step."""
    c = " ".join(cmd.split())
    if c == "quit":
        REC.running = False
        return "Bye...\n"
    if c in ("stop",) or c.startswith("show port stats") or c.startswith("stop"):
        out = stats_text()
        return out
    m = re.match(r"show port info (\d+)$", c)
    if m:
        return port_info(int(m.group(1)))
    if QUIET_CMDS.match(c):
        if c == "start" and REC.case is not None and REC.case.in_setup:
            REC.add_step({"cmd": c, "expect": "ok"})
        return "testpmd> "
    m = re.match(r"flow (create|validate|destroy|flush|list|query) (\d+)\b", c)
    if m and int(m.group(2)) >= REC.port_count:
        # testpmd checks the port first (port_id_is_invalid)
        step = {"cmd": c, "expect": "error"}
        REC.add_step(step)
        # the text DTS looks for ("Invalid port", "No such device") becomes the msg
        return FlowOut(f"Invalid port {m.group(2)}\ntestpmd> ", step, False)
    m = re.match(r"flow (create|validate) (\d+) ", c)
    if m:
        return flow_rule(c, m.group(1), int(m.group(2)))
    m = re.match(r"flow destroy (\d+) rule (.+)$", c)
    if m:
        port = int(m.group(1))
        out = []
        step: dict[str, Any] = {"cmd": c, "expect": "ok"}
        for rid_s in m.group(2).split(" rule "):
            rid = int(rid_s)
            for pend in list(REC.pending_not_acl):
                if pend[1] == port and pend[2] == rid:  # DTS destroys it: it was created
                    pend[0]["expect"] = "ok"
                    REC.pending_not_acl.remove(pend)
            if rid in REC.rules.get(port, {}):
                del REC.rules[port][rid]
                out.append(f"Flow rule #{rid} destroyed")
        if out:
            step["msg"] = out[0]
        REC.add_step(step)
        return "\n".join(out) + "\ntestpmd> "
    m = re.match(r"flow flush (\d+)$", c)
    if m:
        REC.rules[int(m.group(1))] = {}
        REC.pending_not_acl = [p for p in REC.pending_not_acl if p[1] != int(m.group(1))]
        REC.add_step({"cmd": c, "expect": "ok"})
        return "testpmd> "
    m = re.match(r"flow list (\d+)$", c)
    if m:
        port = int(m.group(1))
        rules = REC.rules.get(port, {})
        REC.add_step({"rules": len(rules), "port": port})
        if not rules:
            return "testpmd> "
        lines = ["ID\tGroup\tPrio\tAttr\tRule"]
        for rid, rc in sorted(rules.items()):
            pat = (
                rc.split(" pattern ", 1)[1].split(" / end actions")[0] if " pattern " in rc else ""
            )
            pat = " ".join(w.upper() for w in pat.split(" / ") if w.split())
            lines.append(f"{rid}\t0\t0\ti--\t{pat} => QUEUE")
        return "\n".join(lines) + "\n"
    m = re.match(r"port (stop|reset) (\d+|all)$", c)
    if (
        m
        and m.group(1) == "stop"
        and "--disable-flow-flush" not in REC.launch_info.get("launch", "")
    ):
        # testpmd's stop_port() flushes the port's rules (unless --disable-flow-flush)
        ports = range(REC.port_count) if m.group(2) == "all" else [int(m.group(2))]
        for p in ports:
            REC.rules[p] = {}
    if c.startswith("flow query"):
        raise Skip("flow query counters are read inline by the suite")
    REC.add_step({"cmd": c, "expect": "ok"})
    return "testpmd> "


def flow_rule(c: str, verb: str, port: int) -> str:
    ok, decided = REC.rule_expected(c)
    step: dict[str, Any] = {"cmd": c, "expect": "ok" if ok else "error"}
    if verb == "validate":
        if ok:
            step["msg"] = "Flow rule validated"
            REC.add_step(step)
            return FlowOut("Flow rule validated\ntestpmd> ", step, True, decided)
        REC.add_step(step)
        return FlowOut(FAIL_TEXT + "\ntestpmd> ", step, False)
    if ok:
        rules = REC.rules.setdefault(port, {})
        rid = max(rules) + 1 if rules else 0
        rules[rid] = c
        REC.add_step(step)
        return FlowOut(f"Flow rule #{rid} created\ntestpmd> ", step, True, decided, port, rid)
    REC.add_step(step)
    return FlowOut(FAIL_TEXT + "\ntestpmd> ", step, False)


def stats_text() -> str:
    """`stop`: the markers of the sends since the last look, and empty statistics."""
    lines = [MARK.format(i) for i in REC.pending_sends]
    REC.pending_sends = []
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# The tester: Scapy strings become frames
# --------------------------------------------------------------------------------------


class ScapyShell:
    def __init__(self, tester: FakeTester) -> None:
        self.tester = tester
        self.ns: dict[str, Any] = {}
        import logging

        logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
        exec(SCAPY_PRELUDE, self.ns)
        self.ns["L2TP"] = self.l2tp(self.ns["L2TP"], self.ns["Raw"])
        self.ns["sendp"] = self.sendp
        self.ns["send"] = self.sendp
        self.name = "tester_scapy"

    @staticmethod
    def l2tp(real: Any, raw: Any) -> Callable[..., Any]:
        """DTS writes an L2TPv3-over-IP session id as `L2TP(b'\\x00\\x00\\x00\\x11')`, which
        the Scapy of its time took as those bytes; Scapy 2.8.0's L2TP cannot dissect 4
        bytes, so the bytes themselves are used (the session id the rules match)."""

        def make(*a: Any, **k: Any) -> Any:
            if len(a) == 1 and isinstance(a[0], bytes) and not k:
                try:
                    return real(*a)
                except Exception:
                    REC.note("L2TP(b'...') built as those bytes: the L2TPv3 session id")
                    return raw(load=a[0])
            return real(*a, **k)

        return make

    def sendp(self, x: Any, iface: str = "", count: int = 1, inter: Any = 0, **k: Any) -> None:
        from scapy.packet import Packet

        frames: list[bytes] = []
        items = list(x) if isinstance(x, (list, tuple)) or not isinstance(x, Packet) else [x]
        for it in items:
            if isinstance(it, (bytes, bytearray)):
                frames.append(bytes(it))
            else:
                for p in it:  # a packet with ranges stands for several frames
                    frames.append(bytes(p))
        port = TESTER_IFACE.index(iface) if iface in TESTER_IFACE else 0
        record_send(frames * int(count), port)

    def send_expect(self, cmd: str, expected: Any = ">>> ", timeout: int = 10, **k: Any) -> str:
        try:
            code = compile(cmd, "<scapy>", "eval")
        except SyntaxError:
            exec(cmd, self.ns)
            return ">>> "
        val = eval(code, self.ns)
        return (repr(val) if val is not None else "") + "\n>>> "

    def send_command(self, cmd: str, timeout: int = 10, **k: Any) -> str:
        return self.send_expect(cmd)

    def get_session_before(self, timeout: int = 1) -> str:
        return ""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *a, **k: ""


def record_send(frames: list[bytes], port: int) -> None:
    step = {"send": [f.hex() for f in frames], "port": port}
    idx = len(REC.sends)
    REC.sends.append(step)
    REC.pending_sends.append(idx)
    step["_idx"] = idx
    REC.add_step(step)
    REC.dut_output(MARK.format(idx) + "\n")


class FakeTester(Nothing):
    def __init__(self) -> None:
        self.name = "tester"
        self.logger = Logger()
        self.scapy_session = ScapyShell(self)
        self.scapyCmds: list[str] = []
        self.ports_info = [{"intf": TESTER_IFACE[p], "mac": TESTER_MAC[p]} for p in (0, 1)]

    def get_local_port(self, port: int) -> int:
        return port

    def get_interface(self, port: int) -> str:
        return TESTER_IFACE[port]

    def get_mac(self, port: int) -> str:
        return TESTER_MAC[port]

    def scapy_append(self, cmd: str) -> None:
        self.scapyCmds.append(cmd)

    def scapy_execute(self, timeout: int = 60) -> None:
        for cmd in self.scapyCmds:
            self.scapy_session.send_expect(cmd)
        self.scapyCmds = []

    def send_expect(self, cmd: str, expected: Any = "# ", timeout: int = 15, **k: Any) -> str:
        return ""

    def prepare_scapy_env(self) -> ScapyShell:
        return self.scapy_session


def _dut_output(self: Recorder, text: str) -> None:
    if DUT is not None:
        DUT.output.append(text)


Recorder.dut_output = _dut_output  # type: ignore[attr-defined]
DUT: FakeDut | None = None


# --------------------------------------------------------------------------------------
# framework.* modules
# --------------------------------------------------------------------------------------


class Packet:
    """framework.packet.Packet as the suites use it: strings evaluated on the tester."""

    def __init__(self, pkt_str: Any = None, **options: Any) -> None:
        self.pkts: list[str] = []
        if isinstance(pkt_str, str):
            self.pkts.append(pkt_str)

    def update_pkt(self, pkts: Any) -> None:
        self.pkts = []
        if isinstance(pkts, str):
            self.pkts = [pkts]
        elif isinstance(pkts, list):
            self.pkts = [p for p in pkts if isinstance(p, str)]
        else:
            raise Skip(f"packet of type {type(pkts).__name__}")

    def append_pkt(self, args: Any = None, **kwargs: Any) -> None:
        if isinstance(args, str):
            self.pkts.append(args)

    def _strings(self) -> list[str]:
        out = []
        for p in self.pkts:
            if "NVGRE" in p:
                tni = re.search(r"TNI\s*=\s*(0x)*(\d*)", p)
                key = "0x00000100" if tni is None else str(int(tni.group(2)) << 8)
                p = re.sub(
                    r"NVGRE\(\)|NVGRE\(TNI=\s*(0x)*\d*\)",
                    f"GRE(key_present=1,proto=0x6558,key={key})",
                    p,
                )
            out.append(p)
        return out

    def send_pkt(
        self, crb: Any = None, tx_port: str = "", count: int = 1, interval: Any = 0, **k: Any
    ) -> None:
        pkts = ",".join(self._strings())
        cmd = f'sendp([{pkts}],iface="{tx_port}",count={count},inter={interval},verbose=False)'
        TESTER.scapy_session.send_expect(cmd)

    def send_pkt_bg(self, crb: Any = None, tx_port: str = "", count: int = 1, **k: Any) -> None:
        self.send_pkt(crb, tx_port, count)

    def __len__(self) -> int:
        return len(self.pkts)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *a, **k: None


TESTER: FakeTester


class PmdOutput:
    def __init__(self, dut: Any, session: Any = None) -> None:
        self.dut = dut
        self.session = session if session is not None else dut
        self.command = ""

    def start_testpmd(
        self,
        cores: Any = "default",
        param: str = "",
        eal_param: str = "",
        socket: int = 0,
        fixed_prefix: bool = False,
        expected: str = "testpmd> ",
        timeout: int = 120,
        **config: Any,
    ) -> str:
        eal_param = " " + eal_param + " "
        eal_param = eal_param.replace(" -w ", " -a ")
        config["other_eal_param"] = eal_param
        if (
            " -a " not in eal_param
            and " -b " not in eal_param
            and "ports" not in config
            and "b_ports" not in config
            and " --no-pci " not in eal_param
            and not config.get("no_pci")
        ):
            config["ports"] = [PF_PCI[0], PF_PCI[1]]
        config.pop("socket", None)
        eal = self.dut.create_eal_parameters(cores=cores, **config)
        command = f"{TESTPMD} {eal} -- -i {param}"
        self.command = command
        return self.session.send_expect(command, expected, timeout)

    def execute_cmd(
        self, pmd_cmd: str, expected: str = "testpmd> ", timeout: int = 15, **k: Any
    ) -> str:
        return self.session.send_expect(pmd_cmd, expected, timeout)

    def get_output(self, timeout: int = 1) -> str:
        return self.dut.take_output()

    def quit(self) -> None:
        self.session.send_expect("quit", "# ")

    def wait_link_status_up(self, port_id: Any, timeout: int = 10) -> bool:
        return True

    def get_pmd_value(self, prefix: str, out: str) -> Any:
        return 0

    def get_port_mac(self, port_id: int) -> str:
        return port_mac(port_id)

    def get_max_rule_number(self, obj: Any, out: str) -> int:
        return 14336

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *a, **k: ""


def port_info(port_id: int) -> str:
    """`show port info N`: the driver and MAC of testpmd's port N, in launch order."""
    kinds: list[tuple[str, str]] = []
    for dev in re.findall(r"-a (\S+)", REC.launch_info.get("launch", "")):
        pci, _, opts = dev.partition(",")
        if pci in PF_PCI:
            kinds.append(("net_ice", PF_MAC[PF_PCI.index(pci)]))
            continue
        pf = int(pci.split(":")[1], 16) - 0x18
        d, f = pci.split(":")[2].split(".")
        vf = (int(d, 16) - 1) * 8 + int(f)
        vfs = REC.vfs.get(pf, [])
        mac = str(vfs[vf]["mac"]) if vf < len(vfs) else vf_default_mac(pf, vf)
        kinds.append(("net_ice_dcf" if "cap=dcf" in opts else "net_iavf", mac))
        rep = re.search(r"representor=(?:vf)?\[?([0-9,\-]+)\]?", opts)
        if rep:
            for part in rep.group(1).split(","):
                a, _, b = part.partition("-")
                for r in range(int(a), int(b or a) + 1):
                    rmac = str(vfs[r]["mac"]) if r < len(vfs) else vf_default_mac(pf, r)
                    kinds.append(("net_ice_dcf_vf_representor", rmac))
    if port_id >= len(kinds):
        return f"Invalid port {port_id}\ntestpmd> "
    drv, mac = kinds[port_id]
    return (
        f"\n********************* Infos for port {port_id}  *********************\n"
        f"MAC address: {mac.upper()}\nDevice name: {port_id}\nDriver name: {drv}\n"
        "Link status: up\ntestpmd> "
    )


def port_mac(port_id: int) -> str:
    """The MAC testpmd shows for a port: the VF's or the PF's, in launch order."""
    devs = re.findall(r"-a (\S+)", REC.launch_info.get("launch", ""))
    if port_id < len(devs):
        pci = devs[port_id].split(",")[0]
        if pci in PF_PCI:
            return PF_MAC[PF_PCI.index(pci)]
        for i, v in enumerate(REC.vfs[0]):
            if vf_pci(0, i) == pci:
                return str(v["mac"])
    return PF_MAC[0]


def skip_unsupported_pkg(pkgs: Any) -> Callable[[Any], Any]:
    if isinstance(pkgs, str):
        pkgs = [pkgs]

    def deco(func: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            pkg_type = args[0].pkg.get("type")
            for pkg in pkgs:
                if pkg in pkg_type:
                    raise VerifySkip(f"{pkg_type} does not support this case")
            return func(*args, **kwargs)

        wrapper.__name__ = func.__name__
        wrapper.__wrapped__ = func  # type: ignore[attr-defined]
        return wrapper

    return deco


def skip_unsupported_nic(nics: Any) -> Callable[[Any], Any]:
    return lambda func: func


def check_supported_nic(nics: Any) -> Callable[[Any], Any]:
    return lambda func: func


def skip_unsupported_host_driver(drivers: Any) -> Callable[[Any], Any]:
    return lambda func: func


class TestCase:
    def __init__(self, duts: Any, tester: Any, target: Any, suitename: str) -> None:
        self.suite_name = suitename
        self.dut = duts[0]
        self.duts = duts
        self.tester = tester
        self.target = target
        self.nic = self.dut.nic.name
        self.nic_obj = self.dut.nic
        self.kdriver = "ice"
        self.pkg = self.dut.nic.pkg
        self.logger = Logger()
        self.running_case = ""
        self.drivername = "vfio-pci"

    def verify(self, passed: Any, description: str) -> None:
        if not passed:
            raise VerifyFailure(description)

    def skip_case(self, passed: Any, description: str) -> None:
        if not passed:
            raise VerifySkip(description)

    def get_suite_cfg(self) -> dict[str, Any]:
        return {"vf_driver": "vfio-pci"}

    def get_case_cfg(self) -> dict[str, Any]:
        return {}

    def is_eth_series_nic(self, series_num: int) -> bool:
        return series_num == 800

    def set_up_all(self) -> None:
        pass

    def set_up(self) -> None:
        pass

    def tear_down(self) -> None:
        pass

    def tear_down_all(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name.startswith("test_"):
            raise AttributeError(name)
        return lambda *a, **k: ""


def install_framework() -> None:
    fw = types.ModuleType("framework")
    fw.__path__ = []  # type: ignore[attr-defined]
    mods: dict[str, dict[str, Any]] = {
        "framework.test_case": {
            "TestCase": TestCase,
            "skip_unsupported_pkg": skip_unsupported_pkg,
            "skip_unsupported_nic": skip_unsupported_nic,
            "check_supported_nic": check_supported_nic,
            "skip_unsupported_host_driver": skip_unsupported_host_driver,
        },
        "framework.packet": {"Packet": Packet},
        "framework.pmd_output": {"PmdOutput": PmdOutput},
        "framework.exception": {"VerifyFailure": VerifyFailure, "VerifySkip": VerifySkip},
        "framework.utils": {
            "GREEN": str,
            "RED": str,
            "BLUE": str,
            "convert_int2ip": lambda *a, **k: "",
            "convert_ip2int": lambda *a, **k: 0,
            "create_mask": lambda ports: hex(sum(1 << int(p) for p in ports)),
        },
        "framework.config": {"UserConf": Nothing},
        "framework.settings": {"HEADER_SIZE": {}, "DRIVERS": {}},
        "framework.virt_common": {"VM": Nothing},
        "framework.dut": {"Dut": FakeDut},
    }
    sys.modules["framework"] = fw
    for name, attrs in mods.items():
        m = types.ModuleType(name)
        for k, v in attrs.items():
            setattr(m, k, v)
        sys.modules[name] = m
        setattr(fw, name.split(".")[1], m)


# --------------------------------------------------------------------------------------
# Checks: each DTS check function becomes a check on the send whose output it reads
# --------------------------------------------------------------------------------------

MARK_RE = re.compile(r"@@S(\d+)@@")


class Diverged(Exception):
    """The suite did something the recording cannot follow."""


def sends_in(out: Any) -> list[dict[str, Any]]:
    idx = sorted({int(i) for i in MARK_RE.findall(str(out))})
    if not idx:
        raise Diverged("a check reads an output with no packets sent before it")
    steps = [REC.sends[i] for i in idx]
    if len(steps) > 1:
        # several sends read as one output: one send of all their frames (same port)
        case = REC.case
        assert case is not None
        first = steps[0]
        for s in steps[1:]:
            if s["port"] != first["port"] or "check" in s or "check" in first:
                raise Diverged("one check reads sends to different ports")
            first["send"].extend(s["send"])
            s["send"] = []
            if s in case.steps:
                case.steps.remove(s)
        return [first]
    return steps


def attach(
    out: Any, kind: str, param: dict[str, Any], stats: bool | None = None, dts: str | None = None
) -> dict[str, Any]:
    step = sends_in(out)[0]
    check: dict[str, Any] = {"check": kind, "param": param}
    if stats is not None:
        check["stats"] = bool(stats)
    if dts:
        check["dts"] = dts
    if REC.case is None or not any(s is step for s in REC.case.steps):
        REC.note("DTS checks an output of before the relaunch again; not repeated here")
        return {"check": kind, "param": param}
    same = {k: step[k] for k in ("check", "param", "stats", "dts") if k in step}
    if same == check or (step.get("check") == "rss_multi" and check in step["param"]["checks"]):
        return step  # DTS checks the same output the same way twice
    if "check" not in step:
        step.update(check)
        return step
    # a second check on the same output: all of them together (`rss_multi`)
    if step["check"] != "rss_multi":
        first = {k: step.pop(k) for k in ("check", "param", "stats", "dts") if k in step}
        step["check"] = "rss_multi"
        step["param"] = {"send_port": step["port"], "checks": [first]}
    step["param"]["checks"].append(check)
    return step


MARK_KEYS = ("port_id", "queue", "mark_id", "rss", "drop", "rxq", "passthru")


def mark_param(check_param: dict[str, Any], keys: tuple[str, ...] = MARK_KEYS) -> dict[str, Any]:
    return {k: check_param[k] for k in keys if k in check_param}


def frames_of(out: Any) -> int:
    return sum(len(s["send"]) for s in sends_in(out))


class SeenQueues:
    """What check_mark returns for rss packets: compared later by the suite."""

    def __init__(self, step: dict[str, Any], holder: dict[str, Any] | None = None) -> None:
        self.step = step
        self.holder = holder if holder is not None else step

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SeenQueues):
            a, b = self.holder, other.holder
            key = a["param"].get("save") or "matched_queue"
            if a.get("check") in ("mark", "mark_same_rss") and b.get("check") in (
                "mark",
                "mark_same_rss",
            ):
                a["check"] = "mark_same_rss"
                a["param"]["save"] = key
                b["check"] = "mark_same_rss"
                b["param"]["same_as"] = key
                return True
            raise Diverged("queues compared between checks that are not check_mark")
        return False

    def __hash__(self) -> int:
        return id(self)

    def __contains__(self, item: object) -> bool:
        return False

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 1

    def __bool__(self) -> bool:
        return True


def pkt_num_note(param: dict[str, Any], pkt_num: Any, out: Any) -> None:
    if isinstance(pkt_num, int) and pkt_num != frames_of(out):
        param["pkt_num"] = pkt_num


def rec_check_mark(out: Any, pkt_num: Any, check_param: dict[str, Any], stats: bool = True):
    param = mark_param(check_param)
    pkt_num_note(param, pkt_num, out)
    step = attach(out, "mark", param, stats)
    if check_param.get("rss"):
        return SeenQueues(
            step, step if step["check"] != "rss_multi" else step["param"]["checks"][-1]
        )
    return None


def rec_check_queue(out: Any, pkt_num: Any, check_param: dict[str, Any], stats: bool = True):
    param = mark_param(check_param, ("port_id", "queue", "rxq"))
    pkt_num_note(param, pkt_num, out)
    attach(out, "queue", param, stats)
    return SeenQueues({"param": {}})


def rec_check_drop(out: Any, pkt_num: Any, check_param: dict[str, Any], stats: bool = True):
    param = mark_param(check_param, ("port_id",))
    pkt_num_note(param, pkt_num, out)
    attach(out, "drop", param, stats)


def rec_check_iavf_fdir_mark(
    out: Any, pkt_num: Any, check_param: dict[str, Any], stats: bool = True
):
    param = mark_param(check_param)
    pkt_num_note(param, pkt_num, out)
    attach(out, "iavf_mark", param, stats)


def rec_check_iavf_fdir_queue(
    out: Any, pkt_num: Any, check_param: dict[str, Any], stats: bool = True
):
    param = mark_param(check_param, ("port_id", "queue"))
    pkt_num_note(param, pkt_num, out)
    attach(out, "iavf_mark", param, stats)


def rec_log_check(kind: str, dts: str, with_rxq: bool = False):
    def f(out: Any, func_param: dict[str, Any], expect_results: dict[str, Any], *a: Any):
        param = {"expect_port": func_param.get("expect_port")}
        if "expect_queues" in func_param and func_param["expect_queues"] != "null":
            param["expect_queues"] = func_param["expect_queues"]
        if "expect_pkts" in expect_results:
            param["expect_pkts"] = expect_results["expect_pkts"]
        if with_rxq:
            param["rxq"] = func_param.get("rxq")
        attach(out, kind, copy.deepcopy(param), dts=dts)  # DTS may mutate its dicts later
        return True, ""

    return f


def rec_check_vf_rx_packets_number(
    out: Any, func_param: dict[str, Any], expect_results: dict[str, Any], need_verify: bool = True
):
    if not need_verify:
        raise Diverged("check_vf_rx_packets_number without verify (counts compared inline)")
    # a snapshot: suites mutate the dicts they check with afterwards (deepcopy once,
    # then `expect_pkts[i] = 0` before each later check)
    param = copy.deepcopy(
        {"expect_port": func_param["expect_port"], "expect_pkts": expect_results["expect_pkts"]}
    )
    attach(out, "port_rx", param, dts="check_vf_rx_packets_number")


def rec_check_vf_rx_tx_packets_number(
    out: Any, rx_func_param: Any, rx_expect: Any, tx_func_param: Any, tx_expect: Any
):
    param = {
        "expect_port": rx_func_param["expect_port"],
        "expect_pkts": rx_expect["expect_pkts"],
        "tx_port": tx_func_param["expect_port"],
        "tx_pkts": tx_expect["expect_pkts"],
    }
    attach(out, "port_rx_tx", param, dts="check_vf_rx_tx_packets_number")


def rec_verify_directed_by_rss(out: Any, rxq: int = 64, stats: bool = True):
    attach(out, "rss", {"rxq": rxq}, stats, dts="verify_directed_by_rss")
    return SeenQueues({"param": {}})


def rec_verify_iavf_directed_by_rss(out: Any, rxq: int = 16, stats: bool = True):
    attach(out, "rss", {"rxq": rxq}, stats, dts="verify_iavf_fdir_directed_by_rss")


def unsupported(name: str):
    def f(*a: Any, **k: Any):
        raise Diverged(f"{name} is not expressed in the data")

    return f


RSS_METHODS = (
    "save_hash",
    "save_or_no_hash",
    "check_hash_different",
    "check_no_hash_or_different",
    "check_hash_same",
    "check_hash_same_or_no_hash",
)


def rss_method(name: str):
    def f(self: Any, out: Any, key: str = "", port_id: int = 0):
        step = sends_in(out)[0]
        attach(
            out, name, {"send_port": step["port"], "port_id": port_id, "rxq": self.rxq, "key": key}
        )

    f.__name__ = name
    return f


def rss_check_no_hash(self: Any, out: Any, port_id: Any = 0):
    step = sends_in(out)[0]
    if not isinstance(port_id, int):
        # check_no_hash(out, key): DTS passes a key where the port goes; its hash pattern
        # then matches no line and only "every packet on queue 0" is really checked
        REC.note("check_no_hash called with a key as its port: recorded for port 0")
        port_id = 0
    attach(
        out,
        "check_no_hash",
        {"send_port": step["port"], "port_id": port_id, "rxq": self.rxq, "key": ""},
    )


def rss_send(self: Any, pkts: Any, port_id: int = 0, count: int = 1, interval: Any = 0, **k: Any):
    tx_port = self.tester_ifaces[0] if port_id == 0 else self.tester_ifaces[1]
    if getattr(self, "ipfrag_flag", False) and not k.get("mismatch"):
        RFC.send_ipfragment_pkt(self.test_case, pkts, tx_port)
    else:
        self.pkt.update_pkt(pkts)
        self.pkt.send_pkt(
            crb=self.test_case.tester, tx_port=tx_port, count=count, interval=interval
        )
    return DUT.take_output() if DUT is not None else ""


class SymHash:
    """Packet i's hash as the suite reads it inline; comparing two records the relation."""

    def __init__(self, check: dict[str, Any], i: int) -> None:
        self.check = check
        self.i = i

    def _rel(self, other: object, same: bool) -> bool:
        if not isinstance(other, SymHash):  # a hash string against an int: never equal
            return not same
        p = self.check["param"]
        if other.check is self.check:
            key = "same" if same else "differ"
            pair = sorted([self.i, other.i])
            if pair not in p[key]:
                p[key].append(pair)
        else:
            key = "same_cross" if same else "differ_cross"
            p.setdefault(key, []).append([self.i, other.check["param"]["record"], other.i])
        return True

    def __eq__(self, other: object) -> bool:  # type: ignore[override]
        return self._rel(other, True)

    def __ne__(self, other: object) -> bool:  # type: ignore[override]
        return self._rel(other, False)

    def __hash__(self) -> int:
        # one bucket per send: a set of a send's hashes compares them (`len({a, b}) == 1`)
        return id(self.check)

    def __len__(self) -> int:  # `len(hash) != 0`: packet i shows a hash
        hashed = self.check["param"].setdefault("hashed", [])
        if self.i not in hashed:
            hashed.append(self.i)
        return 10


class HashList(list):  # type: ignore[type-arg]
    def __init__(self, check: dict[str, Any], n: int) -> None:
        super().__init__(SymHash(check, i) for i in range(n))
        self.check = check

    def _rel(self, other: object, same: bool) -> bool:
        if not isinstance(other, HashList):
            if other == "" or other == []:  # DTS's "no hash saved yet"
                return not same
            raise Diverged("a hash list compared with something else")
        key = "same_as" if same else "differ_from"
        self.check["param"].setdefault(key, []).append(other.check["param"]["record"])
        return True

    def __eq__(self, other: object) -> bool:  # type: ignore[override]
        return self._rel(other, True)

    def __ne__(self, other: object) -> bool:  # type: ignore[override]
        return self._rel(other, False)

    __hash__ = None  # type: ignore[assignment]


class RssFlag:
    def __init__(self, check: dict[str, Any]) -> None:
        self.check = check

    def __bool__(self) -> bool:  # the suite tests it: every hash directed by RSS
        self.check["param"]["rss"] = True
        return True


def hash_check(self: Any, out: Any, port_id: int = 0) -> dict[str, Any]:
    step = sends_in(out)[0]
    REC.hash_records += 1
    param = {
        "send_port": step["port"],
        "port_id": port_id,
        "rxq": self.rxq,
        "record": REC.hash_records,
        "same": [],
        "differ": [],
    }
    attach(out, "hashes", param, dts="get_hash_and_queues")
    return {"param": param, "n": len(step["send"])}


def rss_get_hash_and_queues(self: Any, out: Any, port_id: int = 0) -> tuple[Any, Any]:
    c = hash_check(self, out, port_id)
    return HashList(c, c["n"]), [f"queue{i}" for i in range(c["n"])]


def rss_get_hash_verify(self: Any, out: Any, port_id: int = 0) -> tuple[Any, Any]:
    c = hash_check(self, out, port_id)
    return HashList(c, c["n"]), RssFlag(c)


def rss_send_get_hash_queues(
    self: Any, pkts: Any, port_id: int = 0, count: int = 1, interval: Any = 0
) -> tuple[Any, Any]:
    out = rss_send(self, pkts, port_id, count, interval)
    return rss_get_hash_and_queues(self, out, port_id)


RFC: Any = None


def patch_rfc(rfc: Any) -> None:
    rfc.check_mark = rec_check_mark
    rfc.check_queue = rec_check_queue
    rfc.check_drop = rec_check_drop
    rfc.check_iavf_fdir_mark = rec_check_iavf_fdir_mark
    rfc.check_iavf_fdir_queue = rec_check_iavf_fdir_queue
    rfc.check_iavf_fdir_passthru = unsupported("check_iavf_fdir_passthru")
    rfc.verify_directed_by_rss = rec_verify_directed_by_rss
    rfc.verify_iavf_fdir_directed_by_rss = rec_verify_iavf_directed_by_rss
    rfc.check_rss = unsupported("check_rss")
    rfc.check_output_log_in_queue = rec_log_check("in_queue", "check_output_log_in_queue")
    rfc.check_output_log_queue_region = rec_log_check("in_queue", "check_output_log_queue_region")
    rfc.check_output_log_in_queue_mismatched = rec_log_check(
        "in_queue_mismatched", "check_output_log_in_queue_mismatched", True
    )
    rfc.check_output_log_queue_region_mismatched = rec_log_check(
        "in_queue_mismatched", "check_output_log_queue_region_mismatched", True
    )
    rfc.check_output_log_drop = rec_log_check("port_drop", "check_output_log_drop")
    rfc.check_output_log_drop_mismatched = rec_log_check(
        "port_rx", "check_output_log_drop_mismatched"
    )
    rfc.check_vf_rx_packets_number = rec_check_vf_rx_packets_number
    rfc.check_vf_rx_tx_packets_number = rec_check_vf_rx_tx_packets_number
    rfc.check_kernel_vf_rx_packets_number = unsupported("check_kernel_vf_rx_packets_number")
    for cls in (rfc.RssProcessing,):
        for name in RSS_METHODS:
            setattr(cls, name, rss_method(name))
        cls.check_no_hash = rss_check_no_hash
        cls.send_pkt_get_output = rss_send
        cls.get_hash_and_queues = rss_get_hash_and_queues
        cls.get_hash_verify_rss_distribute = rss_get_hash_verify
        cls.send_pkt_get_hash_queues = rss_send_get_hash_queues
    rfc.FdirProcessing.send_pkt_get_output = rss_send
    rfc.FdirProcessing.send_pkt_get_out = rss_send
    rfc.FdirProcessing.check_rx_packets = fdir_check_rx_packets


def fdir_check_rx_packets(
    self: Any, out: Any, check_param: dict[str, Any], expect_pkt: int, stats: bool = True
) -> None:
    """FdirProcessing.check_rx_packets: queue "null" reads port 0's RX count (0 when the
    rule drops, all otherwise); a queue is check_queue with the instance's rxq."""
    if check_param["queue"] == "null":
        if stats:
            attach(out, "port_drop", {"expect_port": 0}, dts="check_rx_packets")
        else:
            param = {"expect_port": 0, "expect_pkts": expect_pkt}
            attach(out, "port_rx", param, dts="check_rx_packets")
        return
    param = {
        "port_id": check_param.get("port_id", 0),
        "queue": check_param["queue"],
        "rxq": self.rxq,
    }
    pkt_num_note(param, expect_pkt, out)
    attach(out, "queue", param, stats, dts="check_rx_packets")


# --------------------------------------------------------------------------------------
# Helpers the suites use to create rules: their `check_stats` is the expected outcome
# --------------------------------------------------------------------------------------

RULE_HELPER = re.compile(r"(create|validate).*rule|rule.*(create|validate)")
STATS_PARAMS = ("check_stats", "stats", "expect_status", "check_stat")


def wrap_rule_helpers(cls: type) -> None:
    for name, fn in list(vars(cls).items()):
        if not callable(fn) or not RULE_HELPER.search(name) or name.startswith("test_"):
            continue
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            continue
        param = next((p for p in STATS_PARAMS if p in sig.parameters), None)
        if param is None:
            continue

        def make(fn: Any = fn, sig: inspect.Signature = sig, param: str = param):
            def wrapper(*a: Any, **k: Any) -> Any:
                bound = sig.bind(*a, **k)
                bound.apply_defaults()
                val = bound.arguments.get(param)
                with expecting(None if val is None else bool(val)):
                    return fn(*a, **k)

            wrapper.__name__ = fn.__name__
            return wrapper

        setattr(cls, name, make())


STDOUT = io.StringIO()


class Captured(Logger):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        def f(*a: Any, **k: Any) -> None:
            self.lines.append(" ".join(str(x) for x in a))

        return f


def split_loop(
    cls: type,
    method: str,
    name_key: str | Callable[[Any], str],
    flush_first: bool = False,
    after_first: dict[str, Any] | None = None,
) -> None:
    """A DTS loop over sub-cases becomes one record per sub-case (`after_first`: keyword
    arguments for the calls after the first, e.g. not to launch testpmd again)."""
    orig = getattr(cls, method)
    first = list(inspect.signature(orig).parameters)[1]

    def wrapper(self: Any, *a: Any, **k: Any) -> Any:
        if a:
            vectors, a = a[0], a[1:]
        else:
            vectors = k.pop(first)
        items = vectors if isinstance(vectors, list) else [vectors]
        for i, v in enumerate(items):
            if i and after_first:
                k = {**k, **after_first}
            name = name_key(v) if callable(name_key) else v[name_key]
            if flush_first:
                for port in REC.rules:
                    REC.rules[port] = {}
            REC.begin_subcase(name)
            STDOUT.seek(0)
            STDOUT.truncate()
            try:
                orig(self, [v] if isinstance(vectors, list) else v, *a, **k)
            except Skip as e:
                REC.drop_case(f"{REC.case.id if REC.case else name}: {e}")
            except Exception as e:  # the sub-case diverged: leave it out, say why
                log = getattr(getattr(self, "logger", None), "lines", None) or getattr(
                    getattr(getattr(self, "test_case", None), "logger", None), "lines", []
                )
                lines = [x for x in log if "failed: " in x] or [
                    x for x in log if "failed" in x.lower() or "error" in x.lower()
                ]
                printed = [x for x in STDOUT.getvalue().splitlines() if x.strip()]
                extra = f" [{lines[-1][:400]}]" if lines else ""
                if printed:
                    extra += f" [printed: {printed[-1][:400]}]"
                REC.drop_case(f"{REC.case.id if REC.case else name}: {describe(e)}{extra}")

    wrapper.__name__ = method
    setattr(cls, method, wrapper)


def describe(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = ""
    for fr in reversed(tb):
        if "TestSuite_" in fr.filename or "rte_flow_common" in fr.filename:
            where = f" ({Path(fr.filename).name}:{fr.lineno} {fr.name})"
            break
    text = str(e)
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(e).__name__}: {text}{where}"


def _drop_case(self: Recorder, why: str) -> None:
    self.dropped.append(why)
    if self.case is not None:
        self.case.dropped = True  # type: ignore[attr-defined]


Recorder.drop_case = _drop_case  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------
# Running a suite
# --------------------------------------------------------------------------------------


class SuiteSpec:
    def __init__(
        self,
        name: str,
        loops: list[tuple[Any, ...]] | None = None,
        fail_rules: list[str] | None = None,
        skip: dict[str, str] | None = None,
        hook: Callable[[Any, Any], None] | None = None,
        methods: list[str] | None = None,
        notes: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.loops = loops or []
        self.fail_rules = [re.compile(p) for p in fail_rules or []]
        self.skip = skip or {}
        self.hook = hook
        self.methods = methods
        self.notes = notes or {}


def load_dts(dts: Path) -> Any:
    global RFC
    import time

    time.sleep = lambda *a, **k: None  # the suites wait for hardware; nothing to wait for
    install_framework()
    pkg = types.ModuleType("tests")
    pkg.__path__ = [str(dts / "tests")]  # type: ignore[attr-defined]
    sys.modules["tests"] = pkg
    rfc = importlib.import_module("tests.rte_flow_common")
    patch_rfc(rfc)
    wrap_rule_helpers(rfc.RssProcessing)
    wrap_rule_helpers(rfc.FdirProcessing)
    split_loop(rfc.RssProcessing, "handle_rss_distribute_cases", "sub_casename")
    split_loop(rfc.FdirProcessing, "flow_director_validate", "name", True)
    RFC = rfc
    return rfc


def suite_class(mod: Any) -> type:
    for v in vars(mod).values():
        if isinstance(v, type) and issubclass(v, TestCase) and v is not TestCase:
            if v.__module__ == mod.__name__:
                return v
    raise SystemExit(f"no TestCase in {mod.__name__}")


def test_methods(cls: type) -> list[str]:
    names = [n for n, v in vars(cls).items() if n.startswith("test_") and callable(v)]
    return names


def run_method(spec: SuiteSpec, cls: type, mname: str) -> tuple[list[Case], list[str]]:
    global REC, DUT, TESTER
    reasons: list[str] = []
    for pkg in ("os default", "ice comms"):
        rec = Recorder(spec.name)
        rec.profile = "comms" if pkg == "ice comms" else "os-default"
        rec.fail_rules = spec.fail_rules
        rec.method = mname
        REC = rec
        DUT = FakeDut()
        DUT.nic.pkg = {"type": pkg, "version": "1.3.30.0"}
        TESTER = FakeTester()
        inst = cls([DUT], TESTER, "x86_64-native-linuxapp-gcc", spec.name)
        inst.logger = Captured()
        inst.running_case = mname
        inst._suite_result = types.SimpleNamespace(test_case=mname)
        rec.new_case(mname)
        if mname in spec.notes:
            rec.note(spec.notes[mname])
        try:
            with contextlib.redirect_stdout(STDOUT):
                rec.phase = "setup_all"
                inst.set_up_all()
                rec.phase = "set_up"
                inst.set_up()
                if rec.case is None:
                    rec.new_case(mname)
                rec.phase = "test"
                getattr(inst, mname)()
        except VerifySkip as e:
            reasons = [f"{mname}: skipped with {pkg} ({e.value})"]
            continue
        except Skip as e:
            rec.drop_case(f"{rec.case.id if rec.case else mname}: {e}")
        except Exception as e:
            lines = [x for x in inst.logger.lines if "failed" in x.lower() or "error" in x.lower()]
            extra = f" [{lines[-1][:300]}]" if lines else ""
            rec.drop_case(f"{rec.case.id if rec.case else mname}: {describe(e)}{extra}")
            # the parts before a relaunch belong to the same DTS verdict: leave them out too
            for c in [c for c in rec.records if c.id == mname or "/relaunch_" in c.id]:
                rec.records.remove(c)
                rec.dropped.append(
                    f"{c.id}: part of {mname}, which the conversion could not follow"
                )
        rec.phase = "tear_down"
        with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()):
            inst.tear_down()
        rec.finish_case()
        if rec.profile == "comms":
            for c in rec.records:
                c.notes.insert(0, "comms: the case is skipped with the OS default package")
        return rec.records, rec.dropped
    return [], reasons


# Pattern items the OS default package has no PTYPEs for: DTS's own
# test_unsupported_pattern_in_OS_default_package (TestSuite_ice_switch_filter.py, plan
# "Subcase 12: unsupported pattern in os default package") expects ice to refuse PPPoE,
# GTP-U, PFCP, L2TPv3, ESP and AH rules with it. A case that expects such a rule to be
# taken ran with the COMMS package, whether or not the suite says so with
# @skip_unsupported_pkg.
COMMS_ONLY_ITEMS = ("pppoes", "pppoe_proto_id", "gtpu", "gtp_psc", "pfcp", "l2tpv3oip", "esp", "ah")


def comms_items(case: Case) -> list[str]:
    """The COMMS-only items of the rules `case` expects ice to take."""
    found: list[str] = []
    for s in case.steps:
        cmd = s.get("cmd", "")
        if s.get("expect") != "ok" or not re.match(r"flow (create|validate) ", cmd):
            continue
        m = re.search(r" pattern (.*?) end actions ", cmd)
        for item in m.group(1).split("/") if m else []:
            name = item.split()[0] if item.split() else ""
            if name in COMMS_ONLY_ITEMS and name not in found:
                found.append(name)
    return found


def finalize(case: Case) -> dict[str, Any]:
    if case.profile == "os-default":
        items = comms_items(case)
        if items:
            case.profile = "comms"
            case.notes.insert(
                0,
                f"comms: its rules use {', '.join(items)}, which ice refuses with the OS "
                "default package (DTS's test_unsupported_pattern_in_OS_default_package)",
            )
    steps = []
    for s in case.steps:
        if "send" in s:
            if not s["send"]:
                continue
            s = {k: v for k, v in s.items() if k != "_idx"}
            if "check" not in s:
                s["check"] = "sent"
        steps.append(s)
    while steps and steps[-1].get("cmd", "").startswith("flow flush"):
        steps.pop()
    case.steps = steps
    rec: dict[str, Any] = json.loads(json.dumps(case.as_json()))  # frozen, and all JSON
    return rec


def convert_suite(
    dts: Path, spec: SuiteSpec, out_dir: Path, only: list[str] | None = None
) -> dict[str, Any]:
    mod = importlib.import_module(f"tests.TestSuite_{spec.name}")
    mod.open = mem_open  # files the suite writes stay in memory
    cls = suite_class(mod)
    for loop in spec.loops:
        split_loop(cls, *loop)
    wrap_rule_helpers(cls)
    if spec.hook:
        spec.hook(cls, mod)
    records: list[dict[str, Any]] = []
    left_out: list[str] = []
    methods = spec.methods or test_methods(cls)
    for m in methods:
        if only and m not in only:
            continue
        if m in spec.skip:
            left_out.append(f"{m}: {spec.skip[m]}")
            continue
        cases, dropped = run_method(spec, cls, m)
        for c in cases:
            n = sum(1 for r in records if r["id"].split("#")[0] == c.id)
            if n:  # DTS reuses a sub-case name within a method
                c.id = f"{c.id}#{n + 1}"
            try:
                records.append(finalize(c))
            except (TypeError, ValueError) as e:
                left_out.append(f"{c.id}: record not serialisable ({e})")
        left_out.extend(dropped)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{spec.name}.jsonl.gz"
    if not only:
        with gzip.GzipFile(path, "wb", mtime=0) as fh:
            for r in records:
                fh.write((json.dumps(r, separators=(", ", ": ")) + "\n").encode())
    return {"suite": spec.name, "cases": len(records), "left_out": left_out, "records": records}


SPECS: dict[str, SuiteSpec] = {}


def spec(s: SuiteSpec) -> SuiteSpec:
    SPECS[s.name] = s
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dts", type=Path, help="a DTS checkout (with tests/ and rte_flow_common.py)")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent.parent / "tests/data/dts"
    )
    ap.add_argument("--suite", action="append", help="convert only this suite (repeatable)")
    ap.add_argument("--case", action="append", help="run only this test method (no file written)")
    ap.add_argument("--show", action="store_true", help="print the records")
    args = ap.parse_args(argv)
    if not (args.dts / "tests" / "rte_flow_common.py").exists():
        print(f"{args.dts}: not a DTS checkout (no tests/rte_flow_common.py)", file=sys.stderr)
        return 2
    load_dts(args.dts.resolve())
    names = args.suite or list(SPECS)
    for n in names:
        if n not in SPECS:
            print(f"unknown suite {n}; known: {', '.join(SPECS)}", file=sys.stderr)
            return 2
    for n in names:
        res = convert_suite(args.dts, SPECS[n], args.out, args.case)
        print(f"{n}: {res['cases']} cases")
        for why in res["left_out"]:
            print(f"  left out: {why}")
        if args.show:
            for r in res["records"]:
                print(json.dumps(short(r)))
    return 0


def short(o: Any) -> Any:
    if isinstance(o, str) and re.fullmatch("[0-9a-f]{40,}", o):
        return o[:16] + f"..({len(o) // 2})"
    if isinstance(o, list):
        return [short(x) for x in o]
    if isinstance(o, dict):
        return {k: short(v) for k, v in o.items()}
    return o


# --------------------------------------------------------------------------------------
# The suites
# --------------------------------------------------------------------------------------


def hook_check_with_param(cls: Any, mod: Any) -> None:
    """The suite's own check_with_param(out, pkt_num, check_param, stats): packet count,
    mark id, queue, rss and drop checks as rte_flow_common.check_mark makes them."""

    def check_with_param(
        self: Any, out: Any, pkt_num: Any, check_param: dict[str, Any], stats: bool = True
    ) -> None:
        param = mark_param(check_param)
        param.setdefault("rxq", self.rxq)
        pkt_num_note(param, pkt_num, out)
        attach(out, "mark", param, stats, dts="check_with_param")
        REC.note("the suite's check_with_param is recorded as `mark` (check_mark's checks)")
        if check_param.get("rss") and stats:
            self.matched_queue.append(SeenQueues({"param": {}}))

    cls.check_with_param = check_with_param


spec(
    SuiteSpec(
        "ice_fdir_protocol_agnostic_flow",
        loops=[("rte_flow", "sub_casename")],
        hook=hook_check_with_param,
    )
)

spec(
    SuiteSpec(
        "ice_ip_fragment_rte_flow",
        skip={
            "test_exclusive_validation": "relaunches testpmd between its sub-cases and reads"
            " the queues inline"
        },
    )
)

spec(
    SuiteSpec(
        "ice_iavf_fdir",
        loops=[("rte_flow_process", "name", True)],
        skip={
            "test_stress_pf_reset_vf_add_new_rule": "changes a VF's MAC on the host while "
            "testpmd runs and waits for the VF reset event",
            "test_stress_pf_reset_vf_delete_rule": "changes a VF's MAC on the host while "
            "testpmd runs and waits for the VF reset event",
            "test_pfcp_vlan_strip_on_hw_checksum": "checks VLAN stripping and TX checksums "
            "on frames the tester captures",
            "test_pfcp_vlan_strip_off_sw_checksum": "checks VLAN stripping and TX checksums "
            "on frames the tester captures",
            "test_pfcp_vlan_insert_on": "checks VLAN insertion on frames the tester captures",
        },
    )
)

spec(
    SuiteSpec(
        "ice_limit_value_test",
        skip={
            "test_max_rule_number": "creates switch rules until the table is full and counts "
            "them; how many fit is the hardware's number, which DTS does not state",
        },
    )
)


def func_strings(fn: Any) -> list[str]:
    """The string constants of a function, in order (lists are stored as tuples)."""
    out: list[str] = []
    for c in fn.__code__.co_consts:
        if isinstance(c, str):
            out.append(c)
        elif isinstance(c, tuple):
            out.extend(x for x in c if isinstance(x, str))
    return out


def hook_flow_priority(cls: Any, mod: Any) -> None:
    """test_exclusive reads the queue of its one packet inline (`re.search` on testpmd's
    output); the adapter makes the same calls and records those reads as checks."""
    orig_cr = cls.create_rule_and_check

    def create_rule_and_check(self: Any, rule_list: Any, check_param: Any) -> None:
        if isinstance(check_param, list):  # either error text passes: expect only an error
            with expecting(False):
                orig_cr(self, rule_list, check_param)
            for st in REC.case.steps if REC.case else []:
                if st.get("cmd") in rule_list:
                    st.pop("msg", None)
            return
        orig_cr(self, rule_list, check_param)

    cls.create_rule_and_check = create_rule_and_check
    consts = func_strings(cls.test_exclusive)
    rules = [c for c in consts if c.startswith("flow create 0 priority")]
    pkts = [c for c in consts if c.startswith("Ether(")]
    # constants are stored once: rule_list2[0] is rule_list1[0]
    if len(rules) != 9 or len(pkts) != 4:
        raise SystemExit(
            f"ice_flow_priority.test_exclusive changed: {len(rules)} rules, {len(pkts)} packets"
        )

    def q(out: Any, queue: Any) -> None:
        attach(
            out, "queue", {"port_id": 0, "queue": queue, "rxq": 16}, True, dts="inline re.search"
        )

    def test_exclusive(self: Any) -> None:
        pro = self.process
        REC.note("test_exclusive reads its packets' queue inline; recorded as `queue` checks")
        rid = pro.create_rule(rules[0:2])
        pro.check_rule(rule_list=rid)
        out = pro.send_pkt_get_out(pkts[0])
        self.pmdout.execute_cmd("flow flush 0")
        q(out, 3)
        with expecting(True):
            self.pmdout.execute_cmd(rules[0])
        with expecting(False):
            self.pmdout.execute_cmd(rules[2])
        self.pmdout.execute_cmd("flow flush 0")
        rid = pro.create_rule(rules[3:9])
        pro.check_rule(rule_list=rid)
        q(pro.send_pkt_get_out(pkts[1]), 3)
        q(pro.send_pkt_get_out(pkts[2]), [7, 8])
        out = pro.send_pkt_get_out(pkts[3])
        attach(out, "port_drop", {"expect_port": 0}, dts="inline re.search")
        for r in (0, 3, 4):
            pro.destroy_rule(rule_id=r)
        q(pro.send_pkt_get_out(pkts[1]), 2)
        q(pro.send_pkt_get_out(pkts[2]), 4)
        q(pro.send_pkt_get_out(pkts[3]), 5)

    cls.test_exclusive = test_exclusive


spec(SuiteSpec("ice_flow_priority", hook=hook_flow_priority))
spec(
    SuiteSpec(
        "ice_dcf_switch_filter",
        skip={
            "test_max_vfs": "counts what kernel VFs receive (ifconfig on the host)",
        },
    )
)


def hook_dcf_acl(cls: Any, mod: Any) -> None:
    """create_acl_filter_rule(check_stats=False) only requires that ACL does not take the
    rule (DTS counts a rule only when "Succeeded to create (4) flow" is printed): the
    command is `expect: any` with `engine_not: acl`, until DTS's next rule list says
    whether the rule exists (then `ok` or `error`), or DTS destroys it (then `ok`)."""
    orig_create = cls.create_acl_filter_rule
    orig_list = cls.check_filter_rule_list

    def create_acl_filter_rule(
        self: Any, rules: Any, session_name: Any = "", check_stats: bool = True
    ):
        if check_stats:
            # DTS lists the rules whose output says "Succeeded to create (4) flow" and
            # requires each listed one to have an id: a rule another engine takes is just
            # not listed (all([]) holds), so the data requires creation, not the engine
            first = len(REC.case.steps) if REC.case is not None else 0
            with expecting(True):
                got = orig_create(self, rules, session_name, check_stats)
            for step in REC.case.steps[first:] if REC.case is not None else []:
                if step.get("engine") == "acl" and step.get("expect") == "ok":
                    step.pop("msg", None)
                    step.pop("engine", None)
                    step["listed_if"] = "acl"
            return got
        session = session_name or self.dut
        for rule in rules if isinstance(rules, list) else [rules]:
            with expecting(True):
                out = session.send_expect(rule, "testpmd> ")
            if isinstance(out, FlowOut) and out.ok and out.rid is not None:
                out.step["expect"] = "any"
                out.step["engine_not"] = "acl"
                REC.pending_not_acl.append((out.step, out.port, out.rid))
        return []

    def check_filter_rule_list(self: Any, port_id: int, rule_list: Any, *a: Any, **k: Any):
        for step, port, rid in list(REC.pending_not_acl):
            if port != port_id:
                continue
            if str(rid) in (rule_list or []):
                step["expect"] = "ok"
            else:
                step["expect"] = "error"
                step.pop("engine_not", None)
                REC.rules.get(port, {}).pop(rid, None)
            REC.pending_not_acl.remove((step, port, rid))
        return orig_list(self, port_id, rule_list, *a, **k)

    orig_destroy = cls.destroy_acl_filter_rule

    def destroy_acl_filter_rule(self: Any, port_id: Any, rule_list: Any, *a: Any, **k: Any):
        # DTS destroys the rules it listed: one another engine took stays (if_listed)
        first = len(REC.case.steps) if REC.case is not None else 0
        got = orig_destroy(self, port_id, rule_list, *a, **k)
        for step in REC.case.steps[first:] if REC.case is not None else []:
            if step.get("cmd", "").startswith("flow destroy"):
                step["if_listed"] = True
        return got

    cls.create_acl_filter_rule = create_acl_filter_rule
    cls.check_filter_rule_list = check_filter_rule_list
    cls.destroy_acl_filter_rule = destroy_acl_filter_rule


spec(
    SuiteSpec(
        "ice_dcf_acl_filter",
        loops=[("common_process", "name", True, {"launch_testpmd": False})],
        hook=hook_dcf_acl,
    )
)

spec(SuiteSpec("ice_rss_configure"))
spec(SuiteSpec("ice_advanced_rss_vlan_esp_ah_l2tp_pfcp"))
RANDOM_SPREAD = (
    "sends 1280 random frames (RandIP/RandShort) and requires all 64 queues used: a "
    "statistical check on random traffic, not one the data can repeat"
)
spec(SuiteSpec("ice_advanced_rss_gtpu", skip={"test_rss_function_when_disable_rss": RANDOM_SPREAD}))
spec(SuiteSpec("ice_advanced_rss_pppoe"))
spec(SuiteSpec("ice_rss_protocol_agnostic_flow"))
spec(
    SuiteSpec(
        "ice_advanced_iavf_rss",
        skip={
            "test_flow_rule_not_impact_rx_tx_chksum": "checks the checksums of frames testpmd "
            "forwards, captured on the tester",
        },
    )
)
spec(SuiteSpec("ice_iavf_rss_configure"))
spec(SuiteSpec("ice_advanced_iavf_rss_vlan_esp_ah_l2tp_pfcp"))
spec(
    SuiteSpec(
        "ice_advanced_iavf_rss_gtpu",
        skip={
            "test_rss_function_when_disable_rss": RANDOM_SPREAD,
            "test_multirules": "the DTS method only logs sub-case titles",
        },
    )
)


def hook_own_send(cls: Any, mod: Any) -> None:
    """The suite's own send_pkt_get_output(pkts, port_id, tport_id, count, interval) sends
    on tester port tport_id and requires every packet received on port_id, as
    RssProcessing's does; its checks then read the output."""

    def send_pkt_get_output(
        self: Any, pkts: Any, port_id: int = 0, tport_id: int = 0, count: int = 1, interval: Any = 0
    ) -> str:
        tx_port = self.tester_ifaces[tport_id] if tport_id else self.tester_ifaces[0]
        self.pkt.update_pkt(pkts)
        self.pkt.send_pkt(crb=self.tester, tx_port=tx_port, count=count, interval=interval)
        return DUT.take_output() if DUT is not None else ""

    cls.send_pkt_get_output = send_pkt_get_output


spec(SuiteSpec("iavf_rss_protocol_agnostic_flow", hook=hook_own_send))
spec(
    SuiteSpec(
        "iavf_fdir_protocol_agnostic_flow",
        loops=[("rte_flow", "sub_casename")],
        hook=hook_check_with_param,
    )
)
spec(
    SuiteSpec(
        "ice_iavf_ip_fragment_rte_flow",
        skip={
            "test_exclusive_validation": "relaunches testpmd between its sub-cases and reads"
            " the queues inline"
        },
    )
)


if __name__ == "__main__":
    sys.exit(main())
