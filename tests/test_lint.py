"""Profile tools: `profile check` warnings and exit codes, `profile diff`, and the
graph model they (and rule analysis) rest on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from golden import parser_for, records

from e810pipe.cli import main
from e810pipe.lint import GraphModel, diff_packages, intel_ptype_use, lint_file
from e810pipe.package import load_package
from e810pipe.parser import Parser
from e810pipe.pcapio import iter_packets

ROOT = Path(__file__).resolve().parent.parent

BAD = """\
proto_ids { FOO_F = 49; BAR_F = 131; }

protocol foo {
    fields { kind: 8; flags: 8; opt1: 16 if flags & 1; opt2: 16 if flags & 2; }
    report FOO_F;
    mark foo;
}

protocol bar {
    fields { x: 16; y: 16; }
    mark bar;
}

extend select udp.dport {
    @ecpri => foo;
    7777 => bar;
}

ptype 25 MAC_IPV4_FOO: mac ipv4 foo;
ptype 330 MAC_IPV4_BAR: mac ipv4 bar;
ptype 700 MY_UDP: mac ipv4 udp;
ptype 701 NEVER: mac ipv6 bar foo;
ptype 702 FINE: mac ipv6 bar;

match foo_opt2 = foo.opt2;
match foo_opt1 = foo.opt1;
match bar_x = bar.x;
match foo_kind = foo.kind;
"""

DEAD = """\
protocol qq { fields { a: 16; } mark qq; }
protocol zz { fields { a: 16; } mark zz; }
protocol ww { fields { a: 16; } mark ww; }
extend edges inner_types { 0x88b5 => qq tunnel gre; }
extend protocol udp { select length { 9 => zz; } }
extend select gre.protocol {
    0x1234 => ww if dvm;
    0x1235 => ww if !dvm;
    0x1236 => end mark ww if tunnel;
}
"""


def write(tmp_path: Path, text: str, name: str = "p.ddp") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def by_line(path: Path) -> dict[int, list[tuple[str, str]]]:
    out: dict[int, list[tuple[str, str]]] = {}
    for w in lint_file(str(path)).warnings:
        out.setdefault(w.line, []).append((w.kind, w.message))
    return out


# ------------------------------------------------------------------ profile check


def test_the_shipped_example_warns_only_of_its_ptype_holes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "profile", "check", "--strict", "examples/custom-gre.ddp")
    assert code == 1
    assert out.startswith("examples/custom-gre.ddp: OK (27 protocols")
    assert out.count("warning:") == 1 and "[ptype-hole]" in out
    # the vendor header carries IPv6 too, and the example declares no PTYPE for it
    assert "packets through vendor can end with 21 marker sequence(s)" in out
    assert "mac ipv4 tun vendor ipv6;" in out


def test_stock_packages_load_with_warnings_only(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "profile", "check", "os-default", "comms")
    assert code == 0
    # VXLAN and GENEVE need a registered port; match fields on headers without an ID
    assert "protocol 'vxlan' is reached only through @vxlan, which is empty until" in out
    assert "--vxlan-port" in out
    assert "match field 'mpls_label' = mpls.label cannot be matched" in out
    assert "'mpls.label' needs MPLS_OL_OR_OS, which no loaded protocol reports" in out
    assert "match field 'vni' = vxlan.vni" in out and "(UDP_OF+12)" in out
    assert "'gre_key' = gre.key has no fixed offset" in out
    # the stock packages' own numbering is not a collision
    assert "[ptype-range]" not in out and "[ptype-markers]" not in out
    assert run(capsys, "profile", "check", "--strict", "os-default")[0] == 1


def test_warnings_point_at_the_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BAD)
    lines = by_line(path)
    kinds = {line: [k for k, _ in ws] for line, ws in lines.items()}
    assert kinds == {
        1: ["proto-id"],
        3: ["conditional", "ptype-hole"],
        9: ["ptype-hole"],
        19: ["ptype-range"],
        20: ["ptype-range"],
        21: ["ptype-markers"],
        22: ["ptype-markers"],
        25: ["field"],
        26: ["field"],
        27: ["field"],
    }
    msg = dict((line, ws[0][1]) for line, ws in lines.items())
    assert "FOO_F = 49 is also TCP_IL" in msg[1]
    assert "reached only through @ecpri, which is empty until a port is registered" in msg[3]
    assert "udp_tunnel_port add ecpri PORT)" in msg[3] and "--ecpri-port" not in msg[3]
    assert f"(edge at {path}:15:5)" in msg[3]
    assert "25 as MAC / IPv4, unused slot" in msg[19]
    assert "330 is MAC_IPV6_GTPU in Intel's COMMS package" in msg[20]
    assert "same markers (mac ipv4 udp) as PTYPE 24 MAC_IPV4_UDP_PAY" in msg[21]
    assert "packets get 700 and 24 is never reported" in msg[21]
    assert "PTYPE 701 is never reported" in msg[22]
    assert "no fixed offset" in msg[25] and "optional field(s) opt1" in msg[25]
    assert "is optional" in msg[26]
    assert "protocol 'bar' reports no protocol ID" in msg[27]

    code, out, _ = run(capsys, "profile", "check", str(path))
    assert code == 0
    assert out.splitlines()[0].endswith("11 warning(s)")
    assert f"{path}:19:7: warning: PTYPE 25 collides" in out
    assert "    ptype 25 MAC_IPV4_FOO: mac ipv4 foo;\n          ^" in out  # context and caret
    assert run(capsys, "profile", "check", "--strict", str(path))[0] == 1
    code, out, _ = run(capsys, "profile", "check", "--json", str(path))
    rep = json.loads(out)
    assert rep["ok"] and len(rep["warnings"]) == 11
    assert rep["warnings"][0] == {
        "kind": "proto-id",
        "message": rep["warnings"][0]["message"],
        "path": str(path),
        "line": 1,
        "column": 13,
    }


def test_unreachable_and_conditional_edges(tmp_path: Path) -> None:
    path = write(tmp_path, DEAD)
    lines = by_line(path)
    assert [k for k, _ in lines[1]] == ["unreachable"]
    assert "never reached: every path to it enters a tunnel past tunnel_depth 1" in lines[1][0][1]
    assert (
        "never reached: the selects leading to it come after a select that always"
        in (lines[2][0][1])
    )
    assert lines[7] == [
        (
            "conditional",
            "edge gre.protocol 0x1234 => ww is taken only through option dvm, which is off "
            "by default",
        )
    ]
    assert 3 not in lines and 9 not in lines  # ww is reached; 'if tunnel' holds after GRE


def test_errors_are_located_and_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "ptype 700 X: mac ipv4 tcp;\n", "good.ddp")
    bad = write(tmp_path, "protocol p { fields { a: 16; } }\n", "bad.ddp")
    code, out, err = run(capsys, "profile", "check", str(good), str(bad))
    assert code == 3 and not err
    assert f"{good}: OK" in out  # every file is checked
    assert f"{bad}:1:10: error: protocol 'p' is unreachable" in out
    assert "    protocol p { fields { a: 16; } }\n             ^" in out
    rep = lint_file(str(bad))
    assert not rep.ok and rep.error is not None and rep.error.line == 1


def test_checked_on_comms(tmp_path: Path) -> None:
    path = write(tmp_path, "ptype 330 X: mac ipv4 udp;\n")
    rep = lint_file(str(path), ["comms"])
    assert rep.error is not None and "duplicate PTYPE number 330" in rep.error.message
    assert rep.package is None and not rep.warnings
    path = write(tmp_path, "ptype 331 X: mac ipv6 udp tcp;\n")
    rep = lint_file(str(path), ["os-default"])
    assert [w.kind for w in rep.warnings] == ["ptype-range", "ptype-markers"]


def test_intel_ptype_use() -> None:
    assert intel_ptype_use(600) is None and intel_ptype_use(154) is None
    assert "11 as ARP" in (intel_ptype_use(11) or "")
    assert "63 as MAC / IPv4 / GRE-NAT tunnel / MAC / IPv4, TCP" in (intel_ptype_use(63) or "")
    assert "79 as MAC / IPv4 / GRE-NAT tunnel / MAC + VLAN / IPv4, SCTP" in (
        intel_ptype_use(79) or ""
    )
    assert "109 as MAC / IPv6 / GRE-NAT tunnel, payload" in (intel_ptype_use(109) or "")
    assert "L2TPv2" in (intel_ptype_use(400) or "")


# ------------------------------------------------------------------- profile diff


def test_diff_shows_what_a_profile_adds(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "profile", "diff", "os-default", "examples/custom-gre.ddp")
    assert code == 0
    assert "+++ os-default + examples/custom-gre.ddp" in out
    assert "nodes (+1):\n  + vendor  [examples/custom-gre.ddp:13]" in out
    assert "  + gre -> vendor  [protocol = 0x88b5]  (examples/custom-gre.ddp:29)" in out
    assert "  +  602 MAC_IPV4_TUN_VENDOR_IPV4_UDP_PAY: mac ipv4 tun vendor ipv4 udp" in out
    assert "  + VENDOR_F = 130" in out and "  + vendor_flow = vendor.flow_id" in out
    assert "settings" not in out

    code, out, _ = run(
        capsys, "profile", "diff", "comms,examples/custom-gre.ddp", "comms", "--json"
    )
    d = json.loads(out)
    assert d["a"]["stack"] == ["comms", "examples/custom-gre.ddp"]
    assert [n["name"] for n in d["nodes"]["removed"]] == ["vendor"]
    assert not d["nodes"]["added"]
    assert {"source": "gre", "target": "vendor", "values": "0x88b5"}.items() <= (
        d["edges"]["removed"][0].items()
    )
    assert [p["number"] for p in d["ptypes"]["removed"]] == [600, 601, 602, 603, 604]


def test_diff_of_the_stock_packages() -> None:
    os_, comms = load_package(["os-default"]), load_package(["comms"])
    d = diff_packages(os_, comms)
    s = d.sections
    assert len(s["nodes"]["added"]) == 12 and not s["nodes"]["removed"]
    assert {e["source"] for e in s["edges"]["added"] if e["target"] == "pppoe"} == {
        "eth",
        "vlan",
        "stag",
    }
    gtpu = [e for e in s["edges"]["added"] if e["target"] == "gtpu"]
    assert gtpu[0]["values"] == "2152" and gtpu[0]["attrs"] == ["if !tunnel"]
    assert len(s["ptypes"]["added"]) == len(comms.ptypes) - len(os_.ptypes)
    assert s["settings"]["changed"] == [
        "package ICE OS Default Package 1.3.30.0 -> ICE COMMS Package 1.3.37.0"
    ]
    assert diff_packages(comms, comms).empty
    text = d.text()
    # COMMS has ICE_PROT_IPV6_NEXT_PROTO (ice_check_ddp_support_proto_id), OS-default not
    assert "protocol IDs (+1):\n  + IPV6_NEXT_PROTO = 43" in text
    assert "match fields (+4):" in text


def test_diff_reports_changed_nodes_and_ptypes(tmp_path: Path) -> None:
    path = write(tmp_path, "extend protocol mpls { report MPLS_OL_OR_OS; }\n")
    d = diff_packages(load_package(["os-default"]), load_package(["os-default", str(path)]))
    assert d.sections["nodes"]["changed"] == [
        {"name": "mpls", "changes": {"reports": ([], ["MPLS_OL_OR_OS"])}}
    ]
    assert "      reports: (none) -> MPLS_OL_OR_OS" in d.text()


# ----------------------------------------------------------- the graph model


def test_model_produces_every_parse_result() -> None:
    """No false 'never reported' / 'unproducible': whatever the parser reports for a
    packet (markers, tunnel flag, protocol IDs), the model says it can produce."""
    seen: set[tuple] = set()

    def check(parser: Parser, model: GraphModel, data: bytes) -> None:
        res = parser.parse(data)
        names = {parser.graph.nodes[i].name for i in res.nodes}
        flag = next((f for f in res.flags if f.startswith("tunnel_")), None)
        ids = tuple(pid for pid, _ in res.po)
        key = (id(model), res.markers, flag, ids)
        if key in seen:
            return
        seen.add(key)
        assert names <= model.reach()[0]
        assert model.produces([res.markers], flag, ids), (res.markers, res.flags, res.po)

    models: dict[str, tuple[Parser, GraphModel]] = {}
    for rec in records("e810-parser-golden.jsonl") + records("e810-parser-golden-mutated.jsonl"):
        cfg = rec["config"]
        if cfg not in models:
            p = parser_for(cfg)
            models[cfg] = (p, GraphModel(p.package, p.graph.config.ports, p.graph.config.options))
        check(*models[cfg], bytes.fromhex(rec["hex"]))
    p = Parser.load(["comms"], vxlan_ports=[4789], geneve_ports=[6081])
    model = GraphModel(p.package, p.graph.config.ports, p.graph.config.options)
    for path in sorted((ROOT / "pcaps").glob("*.pcap")):
        for pkt in iter_packets(path):
            check(p, model, pkt.data)
    assert len(seen) > 100


def test_model_follows_runtime_settings() -> None:
    pkg = load_package(["os-default"])
    assert "vxlan" not in GraphModel(pkg).reach()[0]
    assert "vxlan" in GraphModel(pkg, {"vxlan": {4789}}).reach()[0]
    vxlan_in = [("mac", "ipv4", "tun", "mac", "ipv4", "udp")]
    assert GraphModel(pkg).produces(vxlan_in)  # GRE/TEB gives the same markers
    assert not GraphModel(pkg).produces(vxlan_in, "tunnel_vxlan")
    assert GraphModel(pkg, {"vxlan": {4789}}).produces(vxlan_in, "tunnel_vxlan")
    # a port registered for VXLAN overrides VXLAN-GPE's literal 4790
    gpe = GraphModel(pkg, {"vxlan": {4790}})
    assert not gpe.produces([("mac", "ipv4", "tun", "ipv4")], "tunnel_vxlan_gpe")
    assert not GraphModel(pkg).produces([("mac", "ipv4", "udp")], ids=[29])  # no MPLS_IL
