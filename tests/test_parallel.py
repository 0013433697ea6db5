"""--workers and --dask: the output of a single process, byte for byte."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from e810pipe import parallel
from e810pipe.cli import main
from e810pipe.pcapio import iter_packets

ROOT = Path(__file__).resolve().parents[1]
MIXED = ROOT / "pcaps" / "mixed-tunnels.pcap"

# FD (exact 5-tuples), switch (prefix mask), ACL (ranges), RSS types and key
RULES = """\
port config all rxq 16
port config 0 udp_tunnel_port add vxlan 4789
port config 0 udp_tunnel_port add geneve 6081
port config all rss ip tcp udp
port config 0 rss-hash-key ipv4 6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c\
6a42b73bbeac01fa6d5a56da255b0ec24167253d
flow create 0 pattern eth / ipv4 / udp dst is 53 / end actions rss queues 8 9 10 11 end / end
flow create 0 pattern eth / ipv6 / tcp dst is 80 / end actions drop / end
flow create 0 pattern eth / ipv4 / tcp dst is 443 / end actions queue index 5 / mark id 7 / end
flow create 0 pattern eth / ipv4 / tcp src spec 0 src mask 0xfc00 / end actions drop / end
flow create 0 pattern eth / ipv4 / udp dst spec 1024 dst mask 0xfc00 / end \
actions queue index 2 / end
flow create 0 pattern eth / ipv4 src spec 10.0.0.0 src mask 255.0.0.0 / udp / end \
actions queue index 3 / end
flow create 0 pattern eth / ipv6 src spec 2001:db8:: src mask ffff:ffff:: / tcp / end \
actions queue index 4 / end
flow create 0 pattern eth / ipv4 / udp / vxlan vni is 5 / end actions queue index 6 / end
"""


@pytest.fixture()
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.txt"
    path.write_text(RULES)
    return path


@pytest.fixture(autouse=True)
def small_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    # many small tasks, so that every worker gets several and tasks end mid-file
    monkeypatch.setattr(parallel, "GRAIN", 64)
    monkeypatch.setattr(parallel, "SHIP", 100)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def tree(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def pcapng(path: Path, packets: list[tuple[int, bytes]]) -> None:
    """A pcapng file with an Ethernet and a raw-IP interface; packets: (interface, data)."""

    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 0)) + block(1, struct.pack("<HHI", 101, 0, 0))
    for i, (iface, data) in enumerate(packets):
        out += block(6, struct.pack("<IIIII", iface, 0, i, len(data), len(data)) + data)
    path.write_bytes(out)


def test_run_with_workers_is_byte_identical(
    tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = {}
    for workers in ("1", "2"):
        split = tmp_path / f"split{workers}"
        # the fallback placement gives the PF's rules all three engines (ice's ACL is
        # DCF-only)
        fallback = tmp_path / "fallback.yaml"
        fallback.write_text("pipeline: {placement: fallback}\n")
        acl = (
            "flow create 0 pattern eth / ipv4 / tcp src spec 0 src last 1023 / end "
            "actions drop / end"
        )
        base = (MIXED, "--rules", fallback, "--rules", rules, "--cmd", acl, "--workers", workers)
        code, out_json, err = cli(capsys, "run", *base, "--json", "--split", split, "--trace", 700)
        assert code == 0
        code2, summary, _ = cli(capsys, "run", *base)
        assert code2 == 0
        results[workers] = (out_json, err, tree(split), summary)
    one, two = results["1"], results["2"]
    assert len(one[0].splitlines()) == 1960
    assert one[0] == two[0]  # per-packet JSON, in order
    assert one[1] == two[1] and "Packet 700:" in one[1]  # the trace
    assert one[2] == two[2] and len(one[2]) > 5  # split pcaps
    assert one[3] == two[3]  # counters, hits per rule, drops, PTYPEs
    for engine in ("fd", "switch", "acl"):
        assert f"  {engine} " in one[3]
    hits = [line for line in one[3].splitlines() if line.strip()[:1].isdigit()]
    assert any(int(line.split()[2]) > 0 for line in hits)


def test_parse_with_workers_over_several_files_and_pcapng(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    packets = [p.data for p in iter_packets(MIXED)][:450]
    ng = tmp_path / "two-links.pcapng"
    pcapng(
        ng, [(1 if i % 7 == 3 else 0, d[14:] if i % 7 == 3 else d) for i, d in enumerate(packets)]
    )
    files = (ng, MIXED, ROOT / "pcaps" / "vxlan.pcap")
    for mode in (("--json",), ("-v",)):
        common = ("parse", *files, "--vxlan-port", "4789", *mode)
        one = cli(capsys, *common)
        two = cli(capsys, *common, "--workers", "2")
        assert one == two
        assert one[0] == 0 and "skipped 64 packet(s) that are not Ethernet" in one[2]
        assert f"first: {ng}: packet 3: link type 101" in one[2]


def test_a_damaged_capture_stops_where_a_single_process_stops(
    tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut.pcap"
    data = MIXED.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    for command in (("run", cut, "--rules", rules, "--json"), ("parse", cut, "--json")):
        one = cli(capsys, *command)
        two = cli(capsys, *command, "--workers", "2")
        assert one == two
        assert one[0] == 4 and "truncated" in one[2] and len(one[1].splitlines()) > 1000


def test_bad_worker_count(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "parse", MIXED, "--workers", "0")
    assert code == 2 and "--workers 0" in err


@pytest.fixture(scope="module")
def dask_cluster():  # type: ignore[no-untyped-def]
    distributed = pytest.importorskip("dask.distributed")
    import logging

    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    yield cluster
    cluster.close()


def test_dask_cluster_merges_like_workers(
    tmp_path: Path, rules: Path, dask_cluster, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    shards = [ROOT / "pcaps" / n for n in ("vxlan.pcap", "geneve-gtpu.pcap", "gre-kinds.pcap")]
    shards.append(MIXED)
    outputs = []
    for backend in (
        ("--workers", "1"),
        ("--workers", "2"),
        ("--dask", dask_cluster.scheduler_address),
    ):
        split = tmp_path / f"split-{len(outputs)}"
        code, out, _ = cli(
            capsys, "run", *shards, "--rules", rules, "--json", "--split", split, *backend
        )
        assert code == 0
        _, summary, _ = cli(capsys, "run", *shards, "--rules", rules, *backend)
        outputs.append((out, summary, tree(split)))
    assert outputs[0] == outputs[1] == outputs[2]
    assert '"file":' in outputs[0][0]


def test_dask_local_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("dask.distributed")
    one = cli(capsys, "parse", MIXED, "--json")
    local = cli(capsys, "parse", MIXED, "--json", "--dask", "local", "--workers", "2")
    assert one == local and one[0] == 0
