"""The control plane: build a pipeline from device/rules files and apply commands.

Rules come as testpmd command text (files or ``--cmd``) or as a YAML
device-and-rules file (schema in the README). Every command is applied in order,
as testpmd would, and answers with testpmd's wording ("Flow rule #0 created").
"""

from __future__ import annotations

import gc
import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .device import Device
from .errors import RuleError, UsageError
from .ethtool import EthtoolCommand, apply_ethtool, is_ethtool, parse_ethtool, parse_text
from .inputs import clip, read_text
from .package import Package
from .pipeline import Pipeline, PipelineConfig
from .rss import FUNCTIONS, RssStage, parse_types
from .rules import Action, FieldSpec, FlowRule, Item
from .testpmd import (
    Command,
    CommandReader,
    FlowCommand,
    NoopCommand,
    RetaCommand,
    RssKeyCommand,
    RssTypesCommand,
    RxqCommand,
    SessionCommand,
    TunnelPortCommand,
    format_rule,
    parse_command,
    rss_default_queues,
)

if TYPE_CHECKING:  # PyYAML is imported only when a YAML file is read
    from .yamlfile import Located

YAML_SUFFIXES = (".yaml", ".yml")
TOP_KEYS = ("device", "tunnel_ports", "dvm", "rss", "pipeline", "rules")


@dataclass
class Setup:
    """Everything the files say before any packet: device, ports, RSS, rules."""

    device: Device = field(default_factory=Device.build)
    ports: dict[str, set[int]] = field(default_factory=dict)
    dvm: bool = False
    rss: dict[str, Any] = field(default_factory=dict)
    config: PipelineConfig = field(default_factory=PipelineConfig)
    commands: list[tuple[Command, dict[str, Any]]] = field(default_factory=list)
    device_from: str | None = None
    tables: tuple[Located | None, Located | None] = (None, None)  # rss lut_queues, reta
    protocols: frozenset[str] = frozenset()  # the package's protocols: testpmd items too


def _ports(node: Located) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for kind, val in node.items():
        ports = val.value if isinstance(val.value, list) else [val]
        for p in ports:
            port = p.require(int, "a UDP port number")
            if not 0 < port < 65536:
                raise p.error(f"UDP port {port} is outside 1..65535")
            out.setdefault(kind.replace("-", "_"), set()).add(port)
    return out


def _structured_rule(node: Located) -> tuple[str, dict[str, Any]]:
    """A YAML rule mapping to testpmd text plus switch-only extras."""
    known = {"pattern", "actions", "port", "priority", "group", "to_vsi", "to_vsi_list", "validate"}
    for k, _ in node.items():
        if k not in known:
            raise node.key_error(k, f"unknown rule key '{k}'; expected {', '.join(sorted(known))}")
    port = node.get("port")
    port_no = port.require(int, "a port number") if port else 0
    attrs = f"flow {'validate' if node.get('validate') else 'create'} {port_no}"
    for attr in ("group", "priority"):
        a = node.get(attr)
        if a is not None:
            attrs += f" {attr} {a.require(int, 'an integer')}"
    pat = node.get("pattern")
    if pat is None:
        raise node.error("a rule needs a 'pattern' list")
    items = []
    for it in pat.list():
        if isinstance(it.value, str):
            items.append(it.value)
            continue
        if not isinstance(it.value, dict) or len(it.value) != 1:
            raise it.error(
                "a pattern item is a name or a one-key mapping, e.g. {ipv4: {dst: 10.0.0.1}}"
            )
        ((name, fields),) = it.items()
        text = name
        if fields.value not in (None, {}):
            for fname, fval in fields.items():
                value = fval.value
                if isinstance(value, dict):  # {spec: X, mask: Y} or {value: X, last: Y}
                    for op, v in value.items():
                        text += f" {fname} {'is' if op == 'value' else op} {v.value}"
                else:
                    text += f" {fname} is {value}"
        items.append(text)
    acts = node.get("actions")
    if acts is None and node.get("to_vsi") is None and node.get("to_vsi_list") is None:
        raise node.error("a rule needs an 'actions' list (or to_vsi / to_vsi_list)")
    actions = []
    extra: dict[str, Any] = {}
    for a in acts.list() if acts is not None else []:
        if isinstance(a.value, str):
            actions.append(a.value)
            continue
        ((name, val),) = a.items()
        if name == "queue":
            actions.append(f"queue index {val.require(int, 'a queue index')}")
        elif name == "rss":
            qs = " ".join(str(q.require(int, "a queue")) for q in val.list())
            actions.append(f"rss queues {qs} end")
        elif name == "mark":
            actions.append(f"mark id {val.require(int, 'a mark id')}")
        elif name == "count":
            actions.append("count")
        else:
            raise a.error(f"unknown action '{name}'; use queue, rss, drop, passthru, mark, count")
    for key in ("to_vsi", "to_vsi_list"):
        target = node.get(key)
        if target is not None:
            extra[key] = target.plain()
    text = f"{attrs} pattern {' / '.join([*items, 'end'])} actions {' / '.join([*actions, 'end'])}"
    return text, extra


def _field_value(node: Located, text: Any) -> int:
    if isinstance(text, bool):
        raise node.error("a field value is a number, an address or hex text")
    if isinstance(text, int):
        return text
    t = str(text).strip()
    if len(t) > 64:
        raise node.error(f"cannot read {clip(t)!r}: give a number, an IPv4/IPv6 address or a MAC")
    try:
        return int(t, 0)
    except ValueError:
        pass
    try:
        if "%" not in t:  # no scoped IPv6 addresses, as testpmd's inet_pton
            return int(ipaddress.ip_address(t))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", t):
        return int(t.replace(":", ""), 16)
    raise node.error(f"cannot read {t!r}: give a number, an IPv4/IPv6 address or a MAC")


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.:/-]*")


def yaml_flow(value: Any) -> str:
    """A YAML value in flow style, as a rule is written in a rules file
    (``{pattern: [eth, ipv4, {orbit: {ring: 5}}], actions: [{queue: 5}]}``), cut to
    the echo limit: how traces and reports show a YAML rule."""

    def flow(v: Any) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f"{flow(k)}: {flow(x)}" for k, x in v.items()) + "}"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(flow(x) for x in v) + "]"
        if isinstance(v, bool):
            return "true" if v else "false"
        if v is None:
            return "null"
        if isinstance(v, str):
            plain = _PLAIN.fullmatch(v) and v.lower() not in ("true", "false", "null", "yes", "no")
            return v if plain else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return str(v)

    return clip(flow(value), 400)


def _direct_rule(node: Located, where: str) -> FlowCommand | None:
    """A structured YAML rule whose items include a DDP profile's own protocols.

    testpmd has no syntax for those, so the rule is built here; fields are named
    as the profile declares them (``{vendor: {flow_id: 7}}``).
    """
    from .engine import ITEM_MARKERS, TUNNEL_ITEMS

    pat = node.get("pattern")
    if pat is None:
        return None
    names = [
        (it.value if isinstance(it.value, str) else next(iter(it.value), "")) for it in pat.list()
    ]
    if all(n in ITEM_MARKERS for n in names):
        return None
    items: list[Item] = []
    level = 0
    for idx, it in enumerate(pat.list()):
        name = names[idx]
        specs: list[FieldSpec] = []
        if isinstance(it.value, dict):
            fields = it.value[name]
            for fname, fval in fields.items() if isinstance(fields.value, dict) else []:
                if isinstance(fval.value, dict):
                    ops = {k: v.value for k, v in fval.items()}
                    value = _field_value(fval, ops.get("spec", ops.get("value", 0)))
                    mask = _field_value(fval, ops["mask"]) if "mask" in ops else -1
                    last = _field_value(fval, ops["last"]) if "last" in ops else None
                else:
                    value, mask, last = _field_value(fval, fval.value), -1, None
                specs.append(FieldSpec(f"{name}.{fname}", value, mask, last))
        items.append(Item(name, idx, tuple(specs), level))
        if name in TUNNEL_ITEMS and idx + 1 < len(names) and names[idx + 1] not in TUNNEL_ITEMS:
            level = 1
    items.append(Item("end", len(items), (), level))
    actions: list[Action] = []
    for i, a in enumerate(node.list_of("actions")):
        kind, val = (a.value, None) if isinstance(a.value, str) else a.items()[0]
        if kind == "queue" and val is not None:
            actions.append(Action("queue", i, queue=val.require(int, "a queue index")))
        elif kind == "rss" and val is not None:
            qs = tuple(q.require(int, "a queue") for q in val.list())
            actions.append(Action("rss", i, queues=qs))
        elif kind == "mark" and val is not None:
            actions.append(Action("mark", i, mark=val.require(int, "a mark id")))
        elif kind in ("drop", "passthru", "count"):
            actions.append(Action(str(kind), i))
        else:
            raise a.error(f"unknown action '{kind}'; use queue, rss, drop, passthru, mark, count")
    port = node.get("port")
    prio = node.get("priority")
    rule = FlowRule(
        port=port.require(int, "a port number") if port else 0,
        pattern=tuple(items),
        actions=tuple(actions),
        priority=prio.require(int, "an integer") if prio else 0,
        text=f"{where}: {yaml_flow(node.plain())}",
        where=where,
    )
    verb = "validate" if node.get("validate") else "create"
    return FlowCommand(verb, rule.port, rule, where=where)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while thousands of rules are read or applied.

    Loading makes objects that all stay alive, so every collection the allocations
    trigger walks a growing heap and frees nothing: with 16K rules that was more
    than half of the loading time.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            # What loading made lives on (rules, tables): move it out of the
            # collector's generations, or the next collection walks all of it.
            gc.freeze()
            gc.enable()


def read_setup(
    paths: Sequence[str], cmds: Sequence[str] = (), protocols: Iterable[str] = ()
) -> Setup:
    """Read device/rules files (YAML or testpmd text) and --cmd strings, in order.

    `protocols`: the loaded package's protocols, which testpmd rules may name as
    pattern items (an e810pipe extension)."""
    setup = Setup(protocols=frozenset(protocols))
    pn = setup.protocols
    with gc_paused():
        for path in paths:
            if Path(path).suffix in YAML_SUFFIXES:
                _read_yaml(setup, path)
            else:
                for cmd in read_rules_text(path, pn):
                    setup.commands.append((cmd, {}))
        for i, text in enumerate(cmds):
            for cmd in parse_text(text, f"--cmd[{i}]", pn):
                setup.commands.append((cmd, {}))
    return setup


def read_rules_text(path: str | Path, protocols: Iterable[str]) -> list[Any]:
    """A rules file of testpmd commands, in which ethtool lines may stand too."""
    from .yamlfile import ConfigError

    def error(message: str, line: int, column: int) -> ConfigError:
        return ConfigError(f"cannot read rules file: {message}", str(path), line, column)

    return parse_text(read_text(path, "rules", error), str(path), frozenset(protocols))


def _read_yaml(setup: Setup, path: str) -> None:
    from .errors import E810PipeError
    from .yamlfile import NeedLocations, load, load_shallow

    # First without a position for every value inside the rules (most of the
    # reading time of a large rules file); anything the shallow reading does not
    # take as it is, an error above all, and the file is read again with every
    # position, from the same setup, so errors say file:line:column as before.
    saved = replace(
        setup,
        ports={k: set(v) for k, v in setup.ports.items()},
        rss=dict(setup.rss),
        commands=list(setup.commands),
    )
    try:
        _read_yaml_located(setup, load_shallow(path, "rules"), path, shallow=True)
        return
    except (NeedLocations, E810PipeError):
        setup.__dict__.update(saved.__dict__)
    _read_yaml_located(setup, load(path), path)


def _read_yaml_located(setup: Setup, doc: Located, path: str, shallow: bool = False) -> None:
    if not isinstance(doc.value, dict):
        raise doc.error("expected a mapping with keys " + ", ".join(TOP_KEYS))
    for key, _ in doc.items():
        if key not in TOP_KEYS:
            raise doc.key_error(key, f"unknown key '{key}'; expected {', '.join(TOP_KEYS)}")
    _read_yaml_doc(setup, doc, path, shallow)


def _plain_rule(rule: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """_structured_rule of a rule read without positions (load_shallow), for a rule
    that _structured_rule takes without error and _direct_rule leaves to testpmd's
    reader; any other rule raises NeedLocations."""
    from .engine import ITEM_MARKERS
    from .yamlfile import NeedLocations

    def num(v: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool):
            raise NeedLocations
        return v

    for k in rule:
        if k not in _RULE_KEYS:
            raise NeedLocations
    attrs = f"flow {'validate' if 'validate' in rule else 'create'} "
    attrs += str(num(rule["port"])) if "port" in rule else "0"
    for attr in ("group", "priority"):
        if attr in rule:
            attrs += f" {attr} {num(rule[attr])}"
    pat = rule.get("pattern")
    if not isinstance(pat, list):
        raise NeedLocations
    items = []
    for it in pat:
        if isinstance(it, str):
            if it not in ITEM_MARKERS:
                raise NeedLocations  # a profile's protocol: _direct_rule
            items.append(it)
            continue
        if not isinstance(it, dict) or len(it) != 1:
            raise NeedLocations
        ((name, fields),) = it.items()
        if name not in ITEM_MARKERS:
            raise NeedLocations
        text = name
        if fields not in (None, {}):
            if not isinstance(fields, dict):
                raise NeedLocations
            for fname, value in fields.items():
                if isinstance(value, dict):
                    for op, v in value.items():
                        if isinstance(v, (dict, list)):
                            raise NeedLocations
                        text += f" {fname} {'is' if op == 'value' else op} {v}"
                elif isinstance(value, list):
                    raise NeedLocations
                else:
                    text += f" {fname} is {value}"
        items.append(text)
    acts = rule.get("actions")
    if not isinstance(acts, list) or "to_vsi" in rule or "to_vsi_list" in rule:
        raise NeedLocations
    actions = []
    for a in acts:
        if isinstance(a, str):
            actions.append(a)
            continue
        if not isinstance(a, dict) or len(a) != 1:
            raise NeedLocations
        ((name, val),) = a.items()
        if name == "queue":
            actions.append(f"queue index {num(val)}")
        elif name == "mark":
            actions.append(f"mark id {num(val)}")
        elif name == "rss" and isinstance(val, list):
            actions.append(f"rss queues {' '.join(str(num(q)) for q in val)} end")
        elif name == "count":
            actions.append("count")
        else:
            raise NeedLocations
    text = f"{attrs} pattern {' / '.join([*items, 'end'])} actions {' / '.join([*actions, 'end'])}"
    return text, {}


_RULE_KEYS = frozenset(("pattern", "actions", "port", "priority", "group", "validate"))


def _read_yaml_doc(setup: Setup, doc: Located, path: str, shallow: bool = False) -> None:
    """Take the device, tunnel_ports, dvm, rss, pipeline and rules keys of `doc`."""
    dev = doc.get("device")
    if dev is not None:
        if setup.device_from is not None:
            raise dev.error(f"the device is already described in {setup.device_from}")
        try:
            setup.device = Device.from_dict(dev.plain(), where=f"{path}: device")
        except UsageError as err:
            raise dev.error(str(err)) from None
        setup.device_from = dev.where
    tp = doc.get("tunnel_ports")
    if tp is not None:
        for kind, ports in _ports(tp).items():
            setup.ports.setdefault(kind, set()).update(ports)
    dvm = doc.get("dvm")
    if dvm is not None:
        setup.dvm = bool(dvm.require(bool, "true or false"))
    rss = doc.get("rss")
    if rss is not None:
        for k, v in rss.items():
            if k not in (
                "function",
                "key",
                "types",
                "pf_lut_size",
                "vsi_lut_size",
                "reta",
                "lut_queues",
            ):
                raise rss.key_error(k, f"unknown rss key '{k}'")
            setup.rss[k] = v
    pipe = doc.get("pipeline")
    if pipe is not None:
        kw: dict[str, Any] = {}
        for k, v in pipe.items():
            if k == "mode":
                mode = v.require(str, "pipeline or non-pipeline")
                if mode not in ("pipeline", "non-pipeline"):
                    raise v.error("mode is 'pipeline' or 'non-pipeline'")
                kw["pipeline_mode"] = mode == "pipeline"
            elif k == "placement":
                kw[k] = v.require(str, "ice or fallback")
            elif k in ("drop_wins",):
                kw[k] = v.require(bool, "true or false")
            elif k == "acl_queue_rank":
                kw[k] = v.require(str, "above_switch, above_fd or below_fd")
            else:
                raise pipe.key_error(k, f"unknown pipeline key '{k}'")
        try:
            setup.config = PipelineConfig(**kw)
        except UsageError as err:
            raise pipe.error(str(err)) from None
    rules = doc.get("rules")
    reader = CommandReader(setup.protocols)  # rules of one shape: built from their values

    def command(text: str, line: int) -> Any:
        if is_ethtool(text):  # a kernel ntuple rule
            return parse_ethtool(text, f"{path}:{line}")
        if reader.plain(text):
            cmd = reader.read(text, line, path)
            if cmd is not None:
                return cmd
        return parse_command(text, f"{path}:{line}", setup.protocols)

    if shallow:  # each rule a plain value (load_shallow), located at its start
        from .yamlfile import NeedLocations

        for r in rules.list() if rules is not None else []:
            if isinstance(r.value, str):
                setup.commands.append((command(r.value, r.line), {}))
            elif isinstance(r.value, dict) and "testpmd" not in r.value:
                text, extra = _plain_rule(r.value)
                setup.commands.append((command(text, r.line), extra))
            else:
                raise NeedLocations
        return
    for r in rules.list() if rules is not None else []:
        if isinstance(r.value, str):
            setup.commands.append((command(r.value, r.line), {}))
            continue
        if isinstance(r.value, dict) and "testpmd" in r.value:
            t = r.value["testpmd"]
            setup.commands.append(
                (
                    parse_command(
                        t.require(str, "a testpmd command"), f"{path}:{t.line}", setup.protocols
                    ),
                    {},
                )
            )
            continue
        if not isinstance(r.value, dict):
            raise r.error("a rule is a testpmd command string or a mapping")
        text, extra = _structured_rule(r)
        direct = _direct_rule(r, f"{path}:{r.line}")
        if direct is not None:
            setup.commands.append((direct, extra))
        else:
            setup.commands.append((command(text, r.line), extra))


def build_pipeline(package: Package, setup: Setup, window: int | None = None) -> Pipeline:
    rss_kw: dict[str, Any] = {}
    reta: Located | None = None
    lut_queues: Located | None = None
    for k, v in setup.rss.items():
        if k == "function":
            fn = v.require(str, " or ".join(FUNCTIONS))
            if fn not in FUNCTIONS:
                raise v.error(f"unknown RSS function '{fn}'; use {', '.join(FUNCTIONS)}")
            rss_kw["function"] = fn
        elif k == "key":
            try:
                rss_kw["key"] = bytes.fromhex(str(v.value).replace(":", ""))
            except ValueError:
                raise v.error("the RSS key is hex bytes (40 or 52 bytes)") from None
        elif k == "types":
            try:
                rss_kw["types"] = parse_types([str(t.value) for t in v.list()])
            except UsageError as err:
                raise v.error(str(err)) from None
        elif k in ("pf_lut_size", "vsi_lut_size"):
            rss_kw[k] = v.require(int, "64, 128, 512 or 2048")
        elif k == "reta":
            reta = v
        elif k == "lut_queues":
            lut_queues = v
    try:
        rss = RssStage(**rss_kw)
    except UsageError as err:
        first = next(iter(setup.rss.values()))
        raise first.error(str(err)) from None
    pipe = Pipeline(
        package,
        setup.device,
        ports=setup.ports,
        dvm=setup.dvm,
        window=window,
        config=setup.config,
        rss=rss,
    )
    setup.tables = (lut_queues, reta)
    return pipe


def apply_tables(pipe: Pipeline, setup: Setup) -> None:
    """The YAML `rss.lut_queues` and `rss.reta` settings, once the queues are known."""
    lut_queues, reta = setup.tables
    rss = pipe.rss
    vsi0 = pipe.device.pfs[0].vsi
    if lut_queues is not None:  # fill PF 0's LUT round-robin with these queues
        qs = [q.require(int, "a queue") for q in lut_queues.list()]
        if not qs:
            raise lut_queues.error("lut_queues: give at least one queue")
        lut = rss.lut(vsi0.number, vsi0.kind, vsi0.num_queues)
        try:
            rss.reta(
                vsi0.number,
                vsi0.kind,
                vsi0.num_queues,
                [(i, qs[i % len(qs)]) for i in range(lut.size)],
            )
        except UsageError as err:
            raise lut_queues.error(str(err)) from None
    if reta is not None:
        pairs = []
        for pair in reta.list():
            vals = pair.plain()
            if not (isinstance(vals, list) and len(vals) == 2):
                raise pair.error("a reta entry is [index, queue]")
            pairs.append((int(vals[0]), int(vals[1])))
        vsi = pipe.device.pfs[0].vsi
        try:
            rss.reta(vsi.number, vsi.kind, vsi.num_queues, pairs)
        except UsageError as err:
            raise reta.error(str(err)) from None


def configure(
    package: Package, setup: Setup, window: int | None = None
) -> tuple[Pipeline, list[str]]:
    """Build the pipeline, apply every command in order, then the RSS tables."""
    pipe = build_pipeline(package, setup, window)
    lines = Controller(pipe).apply_all(setup.commands)
    apply_tables(pipe, setup)
    return pipe, lines


class Controller:
    """Applies commands to a pipeline and answers as testpmd does."""

    def __init__(self, pipe: Pipeline) -> None:
        self.pipe = pipe

    def apply_all(self, commands: Iterable[tuple[Command, dict[str, Any]]]) -> list[str]:
        out: list[str] = []
        with gc_paused():
            for cmd, extra in commands:
                out.extend(self.apply(cmd, extra))
        return out

    def apply(self, cmd: Command, extra: dict[str, Any] | None = None) -> list[str]:
        pipe = self.pipe
        try:
            if isinstance(cmd, FlowCommand):
                return self._flow(cmd, extra or {})
            if isinstance(cmd, EthtoolCommand):
                return apply_ethtool(pipe, cmd)
            if isinstance(cmd, TunnelPortCommand):
                pipe.set_tunnel_port(cmd.tunnel, cmd.udp_port, add=cmd.op == "add")
                return []
            if isinstance(cmd, RxqCommand):
                pipe.device.set_rxq(cmd.port, cmd.queues)
                pipe.invalidate()  # queue numbers changed under cached decisions
                return []
            if isinstance(cmd, RssKeyCommand):
                from .hash import key_update

                if not 0 <= cmd.port < len(pipe.device.pfs):
                    raise UsageError(f"Invalid port {cmd.port}")
                stage = pipe._own_rss(pipe.device.pfs[cmd.port].vsi.number)
                msg = key_update(stage, cmd.rss_type, cmd.key)
                if msg:
                    raise UsageError(msg.strip())
                return []
            if isinstance(cmd, RetaCommand):
                vsi = pipe.device.pfs[cmd.port or 0].vsi
                pipe.rss.reta(vsi.number, vsi.kind, vsi.num_queues, cmd.entries)
                return []
            if isinstance(cmd, RssTypesCommand):
                # testpmd's rss_type_table, masked with what the PF offers, applied as
                # ice_rss_hash_set does (cmd_config_rss_parsed -> ice_rss_hash_update)
                from .hash import ICE_RSS_OFFLOAD_ALL, rss_hf

                words = [w for w in cmd.types if not w.startswith("level-")]
                hf = ICE_RSS_OFFLOAD_ALL if words == ["default"] else rss_hf(words)
                ports = range(len(pipe.device.pfs)) if cmd.port is None else [cmd.port]
                for p in ports:
                    pipe._own_rss(pipe.device.pfs[p].vsi.number).set_hf(hf & ICE_RSS_OFFLOAD_ALL)
                return []
            if isinstance(cmd, (NoopCommand, SessionCommand)):
                return []  # session commands (start, show...) change no rule or setting
        except UsageError as err:
            raise RuleError(f"{cmd.where}: {err}", "cause unspecified", 1) from None
        raise UsageError(f"unsupported command {cmd!r}")  # pragma: no cover

    def _with_where(self, err: RuleError, where: str) -> RuleError:
        if where and where not in err.message:
            new = RuleError(
                f"{err.message} ({where})", err.category, err.type_code, err.index, err.errno
            )
            new.notes = err.notes
            return new
        return err

    def _flow(self, cmd: FlowCommand, extra: dict[str, Any]) -> list[str]:
        pipe = self.pipe
        if cmd.verb in ("validate", "create"):
            assert cmd.rule is not None
            rule: FlowRule = cmd.rule
            if extra:
                rule = replace(rule, extra={**rule.extra, **self._vsi_extra(extra, cmd.where)})
            try:
                vsi = pipe.pf_vsi(rule.port)
                rule = rss_default_queues(rule, vsi.num_queues, pipe.rss_for(vsi.number).rss_hf)
                if cmd.verb == "validate":
                    engine = pipe.validate(rule)
                    return [f"Flow rule validated ({engine})"]
                rid = pipe.create(rule)
            except RuleError as err:
                raise self._with_where(err, cmd.where) from None
            entry = pipe.rule(rule.port, rid)
            assert entry is not None
            return [f"Flow rule #{rid} created ({entry.engine})"]
        if cmd.verb == "destroy":
            out = []
            for rid in cmd.rule_ids:
                if pipe.destroy(cmd.port, rid):
                    out.append(f"Flow rule #{rid} destroyed")
            return out
        if cmd.verb == "flush":
            pipe.flush(cmd.port)
            return []
        if cmd.verb == "list":
            return self.list_rules(cmd.port)
        if cmd.verb == "query":
            out = []
            for rid in cmd.rule_ids:
                entry = pipe.rule(cmd.port, rid)
                if entry is None:
                    raise RuleError(
                        f"Flow rule #{rid} not found ({cmd.where})", "flow rule (handle)", 2
                    )
                out.append(
                    f"{cmd.action or 'count'}:\n hits_set: 1\n bytes_set: 1\n"
                    f" hits: {entry.hits}\n bytes: {entry.bytes}"
                )
            return out
        raise UsageError(f"unsupported flow command '{cmd.verb}'")  # pragma: no cover

    def _vsi_extra(self, extra: dict[str, Any], where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        dev = self.pipe.device
        for key, val in extra.items():
            names = val if isinstance(val, list) else [val]
            nums = []
            for n in names:
                v = dev.find_vsi(str(n))
                if v is None:
                    raise RuleError(
                        f"{where}: unknown VSI '{n}' (VSIs: {', '.join(x.name for x in dev.vsis)})",
                        "specific action",
                        16,
                    )
                nums.append(v.number)
            out[key] = nums if key == "to_vsi_list" else nums[0]
        return out

    def list_rules(self, port: int) -> list[str]:
        rows = ["ID\tGroup\tPrio\tAttr\tEngine\tRule"]
        for e in self.pipe.port_rules(port):
            r = e.rule
            text = format_rule(r)
            body = text.split(" pattern ", 1)[-1]
            rows.append(f"{e.rule_id}\t{r.group}\t{r.priority}\ti--\t{e.engine}\t{body}")
        return rows
