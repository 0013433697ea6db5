"""The DDP profile language: syntax, semantic checks and extension."""

from __future__ import annotations

from pathlib import Path

import pytest

from e810pipe.ddp import parse_profile
from e810pipe.errors import E810PipeError, ProfileError
from e810pipe.package import load_package, resolve
from e810pipe.parser import Parser
from e810pipe.resources import grammar_path, profiles_dir

BASE = """
package "test" version 1.0.0.0;
proto_ids { A = 1; B = 2; }
start eth;
protocol eth {
    fields { dst: 48; src: 48; ethertype: 16; }
    report A;
    mark mac;
    select ethertype { 0x0800 => ip; }
}
protocol ip {
    fields { vihl: 8; rest: 88; src: 32; dst: 32; }
    report B;
    mark ip;
}
ptype 1 MAC_PAY: mac;
ptype 23 MAC_IP: mac ip;
"""


def load_text(tmp_path: Path, text: str, name: str = "p.ddp") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> ProfileError:
    path = load_text(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_package([str(path)])
    return info.value


def test_stock_packages_load_and_ship_as_data() -> None:
    assert grammar_path().is_file()
    for name in ("os-default", "comms"):
        pkg = load_package([name])
        assert pkg.start == "eth"
        assert pkg.ptypes[1].name == "MAC_PAY"
    assert load_package(["os-default"]).title == "ICE OS Default Package 1.3.30.0"
    comms = load_package(["comms"])
    assert comms.title == "ICE COMMS Package 1.3.37.0"
    assert 329 in comms.ptypes and 329 not in load_package(["os-default"]).ptypes
    assert (profiles_dir() / "examples" / "custom-gre.ddp").is_file()


def test_syntax_error_names_line_column_and_expected(tmp_path: Path) -> None:
    err = error_of(tmp_path, BASE + "protocol x {\n    fields { a: 8 }\n}\n")
    assert err.line == BASE.count("\n") + 2
    assert err.column == 19
    assert str(err).startswith(f"{err.path}:{err.line}:19: syntax error: unexpected '}}'")
    assert "';'" in str(err) and "'if'" in str(err)
    # the offending line with a caret under the column
    lines = str(err).splitlines()
    assert lines[1].strip() == "fields { a: 8 }"
    assert lines[2].index("^") == lines[1].index("}")
    assert isinstance(err, SyntaxError) and isinstance(err, E810PipeError)


def test_syntax_error_at_end_of_file(tmp_path: Path) -> None:
    err = error_of(tmp_path, BASE + "protocol x {")
    assert "end of file" in str(err)
    assert err.line == BASE.count("\n") + 1


def test_bad_character(tmp_path: Path) -> None:
    err = error_of(tmp_path, BASE + "protocol x $ {}")
    assert "unexpected character '$'" in str(err)


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            "protocol x { fields { a: 8; } select a { 1 => nowhere; } }\n"
            "extend select eth.ethertype { 0x1234 => x; }",
            "unknown protocol 'nowhere'",
        ),
        (
            "protocol x { fields { a: 7; } }\nextend select eth.ethertype { 0x1234 => x; }",
            "add up to 7 bits",
        ),
        (
            "protocol x { fields { a: 8; } length 4; }\nextend select eth.ethertype { 1 => x; }",
            "fill 1 bytes but its length is 4 bytes",
        ),
        ("ptype 23 OTHER: mac;", "duplicate PTYPE number 23"),
        ("protocol x { fields { a: 8; } }", "protocol 'x' is unreachable"),
        (
            "protocol x { fields { a: 8; } select b { 1 => end; } }\n"
            "extend select eth.ethertype { 1 => x; }",
            "select on unknown field 'b'",
        ),
        (
            "protocol x { length 0; select peek(0, 8) { 1 => y; } }\n"
            "protocol y { length 0; select peek(0, 8) { 1 => x; } }\n"
            "extend select eth.ethertype { 1 => x; }",
            "loop that consumes no bytes",
        ),
        (
            "protocol x { fields { a: 8; } report NOPE; }\nextend select eth.ethertype { 1 => x; }",
            "unknown protocol ID 'NOPE'",
        ),
        ("ptype 700 X: mac tunnel;", "marker 'tunnel', which no protocol or edge sets"),
        ("extend select eth.ethertype { 0x0800 => eth; }", "already leads to 'ip'"),
        ("extend select eth.nofield { 1 => eth; }", "no select on field 'nofield'"),
        (
            "protocol x { fields { a: 8; } select a { 1 => end if nosuch; } }\n"
            "extend select eth.ethertype { 1 => x; }",
            "unknown option 'nosuch'",
        ),
        (
            "protocol x { fields { a: 8; } select a { @nosuch => end; } }\n"
            "extend select eth.ethertype { 1 => x; }",
            "unknown UDP tunnel table '@nosuch'",
        ),
        (
            "protocol x { fields { a: 8; } select a { 0x100 => end; } }\n"
            "extend select eth.ethertype { 1 => x; }",
            "does not fit in 8 bits",
        ),
    ],
)
def test_semantic_errors_are_located(tmp_path: Path, extra: str, message: str) -> None:
    err = error_of(tmp_path, BASE + extra + "\n")
    assert message in str(err)
    assert err.line > 0 and err.column > 0
    # the message points into the file and shows the offending line
    head, _, _ = str(err).partition("\n")
    assert head.startswith(f"{err.path}:{err.line}:{err.column}: ")
    assert "^" in str(err)


def test_user_profile_extends_stock_package(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import GRE, Ether
    from scapy.packet import Raw

    parser = Parser.load(["os-default", "examples/custom-gre.ddp"])
    pkt = Ether() / IP() / GRE(proto=0x88B5) / Raw(bytes([1, 4, 0, 7, 0, 0, 0, 9]))
    pkt = pkt / IP() / UDP(sport=1000, dport=53)
    res = parser.parse(bytes(pkt))
    assert (res.ptype, res.ptype_name) == (602, "MAC_IPV4_TUN_VENDOR_IPV4_UDP_PAY")
    assert [h.name for h in res.headers] == ["eth", "ipv4", "gre", "vendor", "ipv4", "udp"]
    assert (130, 38) in res.po and (33, 46) in res.po and (53, 66) in res.po
    # without the profile the same packet stops at GRE: "tunnel, payload"
    plain = Parser.load(["os-default"]).parse(bytes(pkt))
    assert plain.ptype == 43
    assert parser.package.match_fields["vendor_flow"].field == "flow_id"


def test_profile_text_parses_to_frozen_values() -> None:
    prof = parse_profile(BASE, "base.ddp")
    assert prof.package is not None and prof.package.version == "1.0.0.0"
    eth = prof.protocols[0]
    assert [f.name for f in eth.fields or ()] == ["dst", "src", "ethertype"]
    with pytest.raises(AttributeError):
        eth.name = "x"  # type: ignore[misc]
    pkg = resolve([prof])
    assert pkg.protocols["ip"].min_length == 20


def test_unreadable_profile(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as info:
        load_package([str(tmp_path / "missing.ddp")])
    assert "cannot read profile" in str(info.value)


@pytest.mark.parametrize("name", ["os-default.ddp", "comms.ddp"])
def test_every_stock_ptype_is_reachable_marker_sequence(name: str) -> None:
    pkg = load_package([name[:-4]])
    assert len({p.markers for p in pkg.ptypes.values()}) == len(pkg.ptypes)
