"""`e810pipe graph`: the DOT text, user-profile highlights, a packet's path, rendering."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from scapy.layers.inet import GRE, IP, UDP
from scapy.layers.l2 import Ether

from e810pipe import drawing
from e810pipe.cli import main
from e810pipe.drawing import graph_dot, user_additions
from e810pipe.parser import Parser
from e810pipe.pcapio import write_pcap

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(
    not HAVE_DOT and not os.environ.get("CI"), reason="Graphviz 'dot' is not installed"
)

VENDOR = bytes(Ether() / IP() / GRE(proto=0x88B5) / bytes([1, 4, 0, 7, 0, 0, 0, 9]) / IP() / UDP())


@pytest.fixture(scope="module")
def custom() -> Parser:
    return Parser.load(["os-default", "examples/custom-gre.ddp"])


def _node_line(dot: str, name: str, parser: Parser) -> str:
    idx = parser.graph.by_name[name]
    line = next(x for x in dot.splitlines() if x.startswith(f"  n{idx} ["))
    return line


def test_stock_package_has_no_highlights() -> None:
    parser = Parser.load(["os-default"], vxlan_ports=[4789])
    hl = user_additions(parser.graph)
    assert hl.stock_title is None and not hl.nodes and not hl.edges and not hl.ptypes
    dot = graph_dot(parser.graph, highlights=hl)
    assert dot.startswith("digraph parse_graph {")
    # every protocol is a node; every edge between protocols is drawn with its label
    for node in parser.graph.nodes:
        assert f"  n{node.index} [" in dot
    assert 'label="0x0800"' in dot and 'label="@vxlan\\ntunnel vxlan"' in dot
    assert "IPV4_OF_OR_S(32) | IPV4_IL(33)" in dot  # proto IDs on the ipv4 node
    assert "MAC_IPV4_UDP_PAY" in dot  # the PTYPE table
    assert 'class="proto user"' not in dot


def test_user_profile_additions_are_highlighted(custom: Parser) -> None:
    hl = user_additions(custom.graph)
    g = custom.graph
    assert hl.stock_title == "ICE OS Default Package 1.3.30.0"
    assert hl.nodes == {g.by_name["vendor"]}
    added = {(g.nodes[g.edges[e].source].name, g.edges[e].label) for e in hl.edges}
    assert ("gre", "0x88b5") in added and ("vendor", "4") in added
    assert all(g.nodes[g.edges[e].source].name in ("gre", "vendor") for e in hl.edges)
    assert hl.ptypes == {600, 601, 602, 603, 604}
    dot = graph_dot(g, highlights=hl)
    line = _node_line(dot, "vendor", custom)
    assert drawing.USER_FILL in line and 'class="proto user"' in line
    assert "VENDOR_F(130)" in line
    assert drawing.USER_FILL not in _node_line(dot, "gre", custom)
    gre_edge = next(x for x in dot.splitlines() if 'label="0x88b5"' in x)
    assert drawing.USER in gre_edge and "user" in gre_edge
    assert re.search(rf'BGCOLOR="{drawing.USER_FILL}">602<', dot)
    assert "added on top of ICE OS Default Package 1.3.30.0" in dot


def test_packet_path_is_marked(custom: Parser) -> None:
    res = custom.parse(VENDOR)
    assert [h.name for h in res.headers] == ["eth", "ipv4", "gre", "vendor", "ipv4", "udp"]
    dot = graph_dot(custom.graph, highlights=user_additions(custom.graph), packet=res)
    on_path = {m.group(1) for m in re.finditer(r"  n(\d+) \[.*class=\"[^\"]*path", dot)}
    assert on_path == {str(n) for n in res.nodes}
    path_edges = {int(m.group(1)) for m in re.finditer(r'id="edge(\d+)", [^\n]*path', dot)}
    assert path_edges == {e for e in res.edges if e >= 0}
    assert f'BGCOLOR="{drawing.PATH_FILL}">602<' in dot
    assert "PTYPE 602 MAC_IPV4_TUN_VENDOR_IPV4_UDP_PAY" in dot


def test_cli_dot_needs_no_graphviz(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(drawing.shutil, "which", lambda name: None)
    out = tmp_path / "g.dot"
    code = main(["graph", "--profile", "examples/custom-gre.ddp", "-o", str(out)])
    assert code == 0
    assert out.read_text().startswith("digraph")
    assert "1 protocols, 5 edges, 5 PTYPEs" in capsys.readouterr().out
    # SVG without dot: a clear message, no traceback, usage exit code
    code = main(["graph", "-o", str(tmp_path / "g.svg")])
    err = capsys.readouterr().err
    assert code == 2 and "'dot' is not installed" in err and "graphviz" in err
    assert "Traceback" not in err


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "-o", str(tmp_path / "g.jpg")]) == 2
    assert ".svg, .png or .dot" in capsys.readouterr().err
    assert main(["graph", "-o", str(tmp_path / "g.dot"), "--packet", "zz"]) == 2
    assert "neither hex bytes nor a layer spec" in capsys.readouterr().err
    assert main(["graph", "-o", str(tmp_path / "g.dot"), "--index", "3"]) == 2
    assert "--index needs --pcap" in capsys.readouterr().err
    pcap = tmp_path / "one.pcap"
    write_pcap(pcap, [VENDOR])
    assert main(["graph", "-o", str(tmp_path / "g.dot"), "--pcap", str(pcap), "--index", "5"]) == 2
    assert "no Ethernet packet with index 5" in capsys.readouterr().err


@needs_dot
def test_cli_svg_and_png_with_packet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pcap = tmp_path / "one.pcap"
    write_pcap(pcap, [bytes(Ether() / IP() / UDP()), VENDOR])
    svg = tmp_path / "g.svg"
    argv = ["graph", "--profile", "examples/custom-gre.ddp", "-o", str(svg)]
    assert main([*argv, "--pcap", str(pcap), "--index", "1"]) == 0
    assert "packet path eth -> ipv4 -> gre -> vendor -> ipv4 -> udp" in capsys.readouterr().out
    text = svg.read_text()
    assert "<svg" in text and ">vendor<" in text and "0x88b5" in text
    # ipv4 is visited twice: one node
    assert len(re.findall(r'class="node proto[a-z ]* path"', text)) == 5
    assert 'id="proto_vendor" class="node proto user path"' in text
    png = tmp_path / "g.png"
    assert main(["graph", "-o", str(png), "--packet", VENDOR.hex()]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_edges_a_run_took_are_counted() -> None:
    from collections import Counter

    from e810pipe.drawing import draw_parser
    from e810pipe.parser import Parser
    from e810pipe.pcapio import iter_packets

    parser = Parser.load(["os-default"], vxlan_ports=[4789])
    use: Counter[int] = Counter()
    packets = 0
    for pkt in iter_packets(Path(__file__).resolve().parent.parent / "pcaps" / "vxlan.pcap"):
        packets += 1
        use.update(e for e in parser.parse(pkt.data).edges if e >= 0)
    dot = draw_parser(parser, ptypes=False, edge_use=use)
    start = parser.graph.start
    out_of_eth = sum(n for eid, n in use.items() if parser.graph.edges[eid].source == start)
    assert out_of_eth == packets == 200
    for eid, n in use.items():
        assert f"[{n:,} pkts]" in dot
        assert f'id="edge{eid}"' in dot
    assert "edges this run" in dot and 'color="#bbbbbb"' in dot  # untaken edges are grey
