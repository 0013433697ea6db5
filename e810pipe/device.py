"""The device: physical functions, their VSIs and the queues each VSI owns.

An E810 has up to 2048 LAN Rx queues, 768 VSIs and 256 VFs (all ports). Each PF
has its own PF VSI; SR-IOV VFs, VMDq VSIs and SIOV ADIs each own a contiguous
queue range. Queues are numbered absolutely on the device and relatively within
their VSI; decisions report both.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError

MAX_QUEUES = 2048
MAX_VSIS = 768
MAX_VFS = 256
MAX_VF_QUEUES = 16  # ICE_MAX_QP_NUM_PER_VF in DPDK
VSI_TYPES = ("pf", "vf", "vmdq", "siov")


@dataclass
class Vsi:
    number: int  # device-wide VSI number
    kind: str  # pf, vf, vmdq, siov
    pf: int
    index: int  # VF/VMDq/ADI index within its PF (0 for the PF VSI)
    base_queue: int  # absolute number of its first queue
    num_queues: int
    mac: str | None = None
    # multicast MACs the VSI's driver added (testpmd's mcast_addr add: a VF's
    # VIRTCHNL_OP_ADD_ETH_ADDR, for which the PF adds a MAC filter to the VSI)
    mcast: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        # interned: every cached decision names its VSI
        return sys.intern(
            f"pf{self.pf}" if self.kind == "pf" else f"pf{self.pf}.{self.kind}{self.index}"
        )

    def absolute(self, queue: int) -> int:
        return self.base_queue + queue

    def owns(self, absolute_queue: int) -> bool:
        return self.base_queue <= absolute_queue < self.base_queue + self.num_queues


@dataclass
class Pf:
    number: int
    vsi: Vsi
    vsis: list[Vsi] = field(default_factory=list)
    fd_guaranteed: int = 0


@dataclass
class Device:
    pfs: list[Pf]
    vsis: list[Vsi]
    default_mac_disable: bool = False

    @classmethod
    def build(
        cls,
        pfs: int = 1,
        rxq: int = 1,
        vfs: int = 0,
        vf_queues: int = 4,
        vmdq: int = 0,
        vmdq_queues: int = 4,
        siov: int = 0,
        siov_queues: int = 1,
    ) -> Device:
        spec = {
            "pfs": [
                {
                    "rxq": rxq,
                    "vfs": [{"queues": vf_queues}] * vfs,
                    "vmdq": [{"queues": vmdq_queues}] * vmdq,
                    "siov": [{"queues": siov_queues}] * siov,
                }
                for _ in range(pfs)
            ]
        }
        return cls.from_dict(spec)

    @classmethod
    def from_dict(cls, spec: dict[str, Any], where: str = "device") -> Device:
        """Build from the `device:` mapping of a YAML device file (see the README)."""
        if not isinstance(spec, dict):
            raise UsageError(f"{where}: expected a mapping with a 'pfs' list")
        pf_specs = spec.get("pfs", [{}])
        if not isinstance(pf_specs, list) or not 1 <= len(pf_specs) <= 8:
            raise UsageError(f"{where}.pfs: give a list of 1 to 8 physical functions")
        vsis: list[Vsi] = []
        pfs: list[Pf] = []
        queue = 0
        nvfs = 0
        for p, ps in enumerate(pf_specs):
            ps = ps or {}
            if not isinstance(ps, dict):
                raise UsageError(f"{where}.pfs[{p}]: expected a mapping")
            unknown = set(ps) - {"rxq", "mac", "vfs", "vmdq", "siov"}
            if unknown:
                raise UsageError(
                    f"{where}.pfs[{p}]: unknown key(s) {', '.join(sorted(unknown))}; "
                    "expected rxq, mac, vfs, vmdq, siov"
                )
            rxq = _int(ps.get("rxq", 1), f"{where}.pfs[{p}].rxq", 1, MAX_QUEUES)
            pf_vsi = Vsi(len(vsis), "pf", p, 0, queue, rxq, ps.get("mac"))
            queue += rxq
            vsis.append(pf_vsi)
            pf = Pf(p, pf_vsi, [pf_vsi])
            for kind in ("vfs", "vmdq", "siov"):
                entries = ps.get(kind, [])
                if isinstance(entries, int):
                    entries = [{}] * entries
                if not isinstance(entries, list):
                    raise UsageError(f"{where}.pfs[{p}].{kind}: expected a list or a count")
                for i, e in enumerate(entries):
                    e = e or {}
                    limit = MAX_VF_QUEUES if kind == "vfs" else MAX_QUEUES
                    nq = _int(
                        e.get("queues", 4 if kind != "siov" else 1),
                        f"{where}.pfs[{p}].{kind}[{i}].queues",
                        1,
                        limit,
                    )
                    v = Vsi(
                        len(vsis),
                        kind.rstrip("s") if kind == "vfs" else kind,
                        p,
                        i,
                        queue,
                        nq,
                        e.get("mac"),
                    )
                    queue += nq
                    vsis.append(v)
                    pf.vsis.append(v)
                    if kind == "vfs":
                        nvfs += 1
            pfs.append(pf)
        if queue > MAX_QUEUES:
            raise UsageError(f"{where}: {queue} queues requested; the E810 has {MAX_QUEUES}")
        if len(vsis) > MAX_VSIS:
            raise UsageError(f"{where}: {len(vsis)} VSIs requested; the E810 has {MAX_VSIS}")
        if nvfs > MAX_VFS:
            raise UsageError(f"{where}: {nvfs} VFs requested; the E810 supports {MAX_VFS}")
        dev = cls(pfs, vsis, bool(spec.get("default_mac_disable", False)))
        return dev

    def vsi(self, number: int) -> Vsi:
        return self.vsis[number]

    def find_vsi(self, name: str) -> Vsi | None:
        for v in self.vsis:
            if v.name == name or str(v.number) == name:
                return v
        return None

    def set_rxq(self, pf: int | None, count: int) -> None:
        """`port config all rxq N`: resize PF VSIs and renumber the queues after them."""
        _int(count, "rxq", 1, MAX_QUEUES)
        queue = 0
        for v in self.vsis:
            if v.kind == "pf" and (pf is None or v.pf == pf):
                v.num_queues = count
            v.base_queue = queue
            queue += v.num_queues
        if queue > MAX_QUEUES:
            raise UsageError(f"rxq {count}: {queue} queues in all; the E810 has {MAX_QUEUES}")

    @property
    def total_queues(self) -> int:
        return sum(v.num_queues for v in self.vsis)


def _int(value: Any, where: str, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise UsageError(f"{where}: expected an integer {lo}..{hi}, got {repr(value)[:80]}")
    return value
