"""Generate `mv37/rollout/semconv.py` and `semconv/attributes.md` from the registry YAML.

The registry lives in `semconv/model/` in OpenTelemetry weaver `definition/2` form.
Weaver cannot be installed here, so this small PyYAML script validates the registry
and writes the two files; output depends only on the YAML, so it is deterministic.

Usage:
    python semconv/generate.py           # (re)write the generated files
    python semconv/generate.py --check   # exit 1 and print a diff if they are stale
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = Path("semconv/model")
PYTHON_OUT = Path("mv37/rollout/semconv.py")
MARKDOWN_OUT = Path("semconv/attributes.md")

FILE_FORMAT = "definition/2"
MANIFEST = "manifest.yaml"
# Files of the registry, in output order (rollout.* first, then mirrors, events, metrics).
MODEL_FILES = (
    "rollout/registry.yaml",
    "rollout/mirrors.yaml",
    "rollout/events.yaml",
    "rollout/metrics.yaml",
)

ROLLOUT_PREFIX = "rollout."
# `openinference-spec`: in the OpenInference spec documents (e.g. annotations.md) but not
# (yet) a constant of the openinference-semantic-conventions package.
UPSTREAMS = ("otel", "openinference", "openinference-spec", "anthropic")
WHERE = ("span", "event", "resource", "metric")
STABILITY = ("stable", "development", "alpha", "beta", "release_candidate")
REQUIREMENT_LEVELS = ("required", "conditionally_required", "recommended", "opt_in")
PRIMITIVE_TYPES = ("string", "int", "double", "boolean")
MAX_LINE = 100

_ATTRIBUTE_FIELDS = frozenset(
    {"key", "type", "brief", "note", "stability", "deprecated", "annotations", "examples"}
)
_EVENT_FIELDS = frozenset(
    {"name", "brief", "note", "stability", "deprecated", "annotations", "attributes"}
)
_REF_FIELDS = frozenset({"ref", "requirement_level", "brief", "note", "examples"})
_METRIC_FIELDS = frozenset(
    {"name", "instrument", "unit", "brief", "note", "stability", "annotations", "attributes"}
)
_METRIC_ANNOTATIONS = frozenset({"upstream", "buckets"})
INSTRUMENTS = ("histogram", "counter")
_ROLLOUT_ANNOTATIONS = frozenset({"where", "upstream", "mirrors", "payload"})
_PAYLOAD_FIELDS = frozenset({"direction", "spans", "form"})
DIRECTIONS = ("input", "output")
PAYLOAD_FORMS = (
    "text",
    "mime_type",
    "messages",
    "flattened_messages",
    "system_instructions",
    "tool_definitions",
)
# The convention (the `semconv` option's names) a payload key belongs to, by upstream;
# `rollout` is our own fallback, written only where no enabled convention has a key.
CONVENTIONS = {"otel": "genai", "openinference": "openinference"}
FALLBACK = "rollout"

MODULE_DOCSTRING = (
    '"""Attribute, event and metric names of mv37.rollout (generated from semconv/; do not edit).\n'
    "\n"
    "The registry is `semconv/model/`; regenerate with `python semconv/generate.py`.\n"
    '"""'
)

MODULE_FOOTER = '''

def is_registered_attribute(key: str) -> bool:
    """True when the registry lists `key` (or a template it belongs to)."""
    return key in ATTRIBUTE_KEYS or key.startswith(TEMPLATE_PREFIXES)


def is_registered_event(name: str) -> bool:
    """True when the registry lists the event `name`."""
    return name in EVENT_NAMES
'''


@dataclass(frozen=True)
class PayloadRole:
    """Where a payload key is used: which direction, on which span types, in what form."""

    direction: str
    spans: tuple[str, ...]
    form: str


class RegistryError(Exception):
    """The registry YAML is malformed or inconsistent."""


@dataclass(frozen=True)
class Attribute:
    """One attribute definition (`attributes:` entry)."""

    key: str
    type: str
    brief: str
    examples: tuple[object, ...]
    stability: str
    where: tuple[str, ...]
    upstream: str | None = None
    mirrors: tuple[str, ...] = ()
    deprecated: str | None = None
    payload: PayloadRole | None = None

    @property
    def convention(self) -> str:
        """The `semconv` convention of this key (`rollout` for our own keys)."""
        return FALLBACK if self.upstream is None else CONVENTIONS.get(self.upstream, self.upstream)

    @property
    def is_template(self) -> bool:
        """True for `template[...]` attributes, which stand for `<key>.<suffix>`."""
        return self.type.startswith("template[")

    @property
    def constant(self) -> str:
        """Python constant name: `a.b_c` -> `A_B_C`."""
        return constant_name(self.key)


@dataclass(frozen=True)
class AttributeRef:
    """An attribute referenced by an event, with its requirement level."""

    key: str
    requirement_level: str


@dataclass(frozen=True)
class Event:
    """One event definition (`events:` entry)."""

    name: str
    brief: str
    stability: str
    attributes: tuple[AttributeRef, ...]
    upstream: str | None = None

    @property
    def constant(self) -> str:
        """Python constant name: `rollout.message` -> `EVENT_ROLLOUT_MESSAGE`."""
        return "EVENT_" + constant_name(self.name)


@dataclass(frozen=True)
class Metric:
    """One metric definition (`metrics:` entry)."""

    name: str
    instrument: str
    unit: str
    brief: str
    stability: str
    attributes: tuple[AttributeRef, ...]
    upstream: str | None = None
    buckets: tuple[float, ...] = ()

    @property
    def constant(self) -> str:
        """Python constant name: `gen_ai.workflow.duration` -> `METRIC_GEN_AI_WORKFLOW_DURATION`."""
        return "METRIC_" + constant_name(self.name)


@dataclass(frozen=True)
class Registry:
    """The whole registry, in file order."""

    attributes: tuple[Attribute, ...]
    events: tuple[Event, ...]
    manifest: Mapping[str, object]
    metrics: tuple[Metric, ...] = ()

    @property
    def rollout_attributes(self) -> tuple[Attribute, ...]:
        """The `rollout.*` attributes (ours)."""
        return tuple(a for a in self.attributes if a.upstream is None)

    @property
    def mirrored_attributes(self) -> tuple[Attribute, ...]:
        """The standard attributes mirrored from an upstream convention."""
        return tuple(a for a in self.attributes if a.upstream is not None)

    def mirrored_by(self, key: str) -> tuple[Attribute, ...]:
        """The mirrors that repeat the value of the rollout attribute `key`."""
        return tuple(a for a in self.mirrored_attributes if key in a.mirrors)

    def payload_mirrors(self) -> list[tuple[str, str, str, str, tuple[str, ...]]]:
        """`(convention, direction, form, key, span types)` of every payload key."""
        return [
            (a.convention, a.payload.direction, a.payload.form, a.key, a.payload.spans)
            for a in self.attributes
            if a.payload is not None
        ]

    def constants(self) -> list[tuple[str, str, str]]:
        """`(constant, value, brief)` for every attribute, then every event and metric."""
        return _constants(self.attributes, self.events, self.metrics)


def _constants(
    attributes: Sequence[Attribute], events: Sequence[Event], metrics: Sequence[Metric] = ()
) -> list[tuple[str, str, str]]:
    return (
        [(a.constant, a.key, a.brief) for a in attributes]
        + [(e.constant, e.name, e.brief) for e in events]
        + [(m.constant, m.name, m.brief) for m in metrics]
    )


def constant_name(key: str) -> str:
    """Python constant name for a key or event name: dots become underscores, upper case."""
    return key.replace(".", "_").upper()


# --- loading and validation -------------------------------------------------------------


def _mapping(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise RegistryError(f"{where}: expected a mapping")
    return {str(k): v for k, v in value.items()}


def _list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise RegistryError(f"{where}: expected a list")
    return list(value)


def _text(entry: Mapping[str, object], field: str, where: str) -> str:
    value = entry.get(field)
    if not isinstance(value, str) or not value.strip():
        raise RegistryError(f"{where}: `{field}` must be a non-empty string")
    return value.strip()


def _strings(value: object, where: str) -> tuple[str, ...]:
    items = _list(value, where)
    if not all(isinstance(item, str) for item in items):
        raise RegistryError(f"{where}: expected a list of strings")
    return tuple(str(item) for item in items)


def _check_fields(entry: Mapping[str, object], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise RegistryError(f"{where}: unknown field(s) {', '.join(unknown)}")


def _check_stability(entry: Mapping[str, object], where: str) -> str:
    stability = _text(entry, "stability", where)
    if stability not in STABILITY:
        raise RegistryError(f"{where}: stability {stability!r} is not one of {STABILITY}")
    return stability


def _check_brief(brief: str, where: str) -> str:
    if "\n" in brief or '"""' in brief or "\\" in brief or brief.endswith('"'):
        raise RegistryError(f"{where}: brief must be one line without backslashes or quotes")
    return brief


def _value_type(type_: str, where: str) -> str:
    """The type of a recorded value: `template[T]` -> `T`; checks the type is valid."""
    inner = type_[len("template[") : -1] if type_.startswith("template[") else type_
    if type_.startswith("template[") and not type_.endswith("]"):
        raise RegistryError(f"{where}: malformed template type {type_!r}")
    base = inner.removesuffix("[]")
    if inner != "any" and base not in PRIMITIVE_TYPES:
        raise RegistryError(f"{where}: unknown type {type_!r}")
    return inner


def _example_matches(value: object, type_: str) -> bool:
    if type_ == "any":
        return value is not None
    if type_.endswith("[]"):
        return isinstance(value, list) and all(_example_matches(v, type_[:-2]) for v in value)
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool)  # double


def _rollout_annotations(entry: Mapping[str, object], where: str) -> dict[str, object]:
    annotations = _mapping(entry.get("annotations", {}), f"{where}: annotations")
    rollout = _mapping(annotations.get("rollout", {}), f"{where}: annotations.rollout")
    _check_fields(rollout, _ROLLOUT_ANNOTATIONS, f"{where}: annotations.rollout")
    return rollout


def _parse_attribute(raw: object, where: str) -> Attribute:
    entry = _mapping(raw, where)
    _check_fields(entry, _ATTRIBUTE_FIELDS, where)
    key = _text(entry, "key", where)
    where = f"{where} ({key})"
    type_ = _text(entry, "type", where)
    value_type = _value_type(type_, where)
    examples = tuple(_list(entry.get("examples"), f"{where}: examples"))
    if not examples:
        raise RegistryError(f"{where}: needs at least one example")
    for example in examples:
        if not _example_matches(example, value_type):
            raise RegistryError(f"{where}: example {example!r} is not of type {type_}")
    rollout = _rollout_annotations(entry, where)
    places = _strings(rollout.get("where", []), f"{where}: annotations.rollout.where")
    if not places or any(p not in WHERE for p in places) or len(set(places)) != len(places):
        raise RegistryError(f"{where}: annotations.rollout.where must list some of {WHERE}")
    upstream = rollout.get("upstream")
    if upstream is not None and upstream not in UPSTREAMS:
        raise RegistryError(f"{where}: upstream {upstream!r} is not one of {UPSTREAMS}")
    if key.startswith(ROLLOUT_PREFIX) == (upstream is not None):
        raise RegistryError(
            f"{where}: rollout.* keys have no upstream; every other key names its upstream"
        )
    if upstream is None and "mirrors" in rollout:
        raise RegistryError(f"{where}: only mirrored (non-rollout) keys list `mirrors`")
    payload = _payload_role(rollout.get("payload"), f"{where}: annotations.rollout.payload")
    if payload is not None and upstream is not None and upstream not in CONVENTIONS:
        raise RegistryError(f"{where}: payload keys come from one of {sorted(CONVENTIONS)}")
    deprecated = None
    if "deprecated" in entry:
        deprecated = _text(_mapping(entry["deprecated"], f"{where}: deprecated"), "note", where)
    return Attribute(
        key=key,
        type=type_,
        brief=_check_brief(_text(entry, "brief", where), where),
        examples=examples,
        stability=_check_stability(entry, where),
        where=tuple(p for p in WHERE if p in places),
        upstream=None if upstream is None else str(upstream),
        mirrors=_strings(rollout.get("mirrors", []), f"{where}: annotations.rollout.mirrors"),
        deprecated=" ".join(deprecated.split()) if deprecated else None,
        payload=payload,
    )


def _payload_role(raw: object, where: str) -> PayloadRole | None:
    if raw is None:
        return None
    entry = _mapping(raw, where)
    _check_fields(entry, _PAYLOAD_FIELDS, where)
    direction = _text(entry, "direction", where)
    form = _text(entry, "form", where)
    spans = _strings(entry.get("spans", []), f"{where}: spans")
    if direction not in DIRECTIONS:
        raise RegistryError(f"{where}: direction must be one of {DIRECTIONS}")
    if form not in PAYLOAD_FORMS:
        raise RegistryError(f"{where}: form must be one of {PAYLOAD_FORMS}")
    if not spans or len(set(spans)) != len(spans):
        raise RegistryError(f'{where}: spans must list span types (or "*") once each')
    return PayloadRole(direction, spans, form)


def _requirement_level(value: object, where: str) -> str:
    if isinstance(value, dict) and len(value) == 1:
        (value,) = value  # `{conditionally_required: "When ..."}`
    if value not in REQUIREMENT_LEVELS:
        raise RegistryError(f"{where}: requirement_level {value!r} is not valid")
    return str(value)


def _parse_event(raw: object, where: str) -> Event:
    entry = _mapping(raw, where)
    _check_fields(entry, _EVENT_FIELDS, where)
    name = _text(entry, "name", where)
    where = f"{where} ({name})"
    refs = _attribute_refs(entry.get("attributes", []), where)
    upstream = _rollout_annotations(entry, where).get("upstream")
    if upstream is not None and upstream not in UPSTREAMS:
        raise RegistryError(f"{where}: upstream {upstream!r} is not one of {UPSTREAMS}")
    return Event(
        name=name,
        brief=_check_brief(_text(entry, "brief", where), where),
        stability=_check_stability(entry, where),
        attributes=refs,
        upstream=None if upstream is None else str(upstream),
    )


def _attribute_refs(raw: object, where: str) -> tuple[AttributeRef, ...]:
    refs: list[AttributeRef] = []
    for i, raw_ref in enumerate(_list(raw, f"{where}: attributes")):
        ref_where = f"{where}: attributes[{i}]"
        ref = _mapping(raw_ref, ref_where)
        _check_fields(ref, _REF_FIELDS, ref_where)
        level = _requirement_level(ref.get("requirement_level", "recommended"), ref_where)
        refs.append(AttributeRef(_text(ref, "ref", ref_where), level))
    return tuple(refs)


def _parse_metric(raw: object, where: str) -> Metric:
    entry = _mapping(raw, where)
    _check_fields(entry, _METRIC_FIELDS, where)
    name = _text(entry, "name", where)
    where = f"{where} ({name})"
    instrument = _text(entry, "instrument", where)
    if instrument not in INSTRUMENTS:
        raise RegistryError(f"{where}: instrument must be one of {INSTRUMENTS}")
    annotations = _mapping(entry.get("annotations", {}), f"{where}: annotations")
    rollout = _mapping(annotations.get("rollout", {}), f"{where}: annotations.rollout")
    _check_fields(rollout, _METRIC_ANNOTATIONS, f"{where}: annotations.rollout")
    upstream = rollout.get("upstream")
    if upstream is not None and upstream != "otel":
        raise RegistryError(f"{where}: a metric's upstream is otel or absent (ours)")
    if name.startswith(ROLLOUT_PREFIX) == (upstream is not None):
        raise RegistryError(f"{where}: rollout.* metrics have no upstream; others name it")
    raw_buckets = _list(rollout.get("buckets", []), f"{where}: annotations.rollout.buckets")
    if not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in raw_buckets):
        raise RegistryError(f"{where}: buckets must be numbers")
    buckets = tuple(float(b) for b in raw_buckets)  # type: ignore[arg-type]
    if list(buckets) != sorted(set(buckets)):
        raise RegistryError(f"{where}: buckets must be strictly increasing")
    if bool(buckets) != (instrument == "histogram"):
        raise RegistryError(f"{where}: histograms (and only they) list their buckets")
    return Metric(
        name=name,
        instrument=instrument,
        unit=_text(entry, "unit", where),
        brief=_check_brief(_text(entry, "brief", where), where),
        stability=_check_stability(entry, where),
        attributes=_attribute_refs(entry.get("attributes", []), where),
        upstream=None if upstream is None else str(upstream),
        buckets=buckets,
    )


def _read_yaml(path: Path) -> dict[str, object]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"{path}: {exc}") from exc
    return _mapping(data, str(path))


def _check_consistency(
    attributes: Sequence[Attribute], events: Sequence[Event], metrics: Sequence[Metric] = ()
) -> None:
    """Cross-file rules: unique names, resolvable references, `where` matches events
    and metrics."""
    by_key: dict[str, Attribute] = {}
    for attr in attributes:
        if attr.key in by_key:
            raise RegistryError(f"attribute {attr.key} is defined twice")
        by_key[attr.key] = attr
    constants: dict[str, str] = {}
    for constant, name, brief in _constants(attributes, events, metrics):
        if constant in constants:
            raise RegistryError(f"{name} and {constants[constant]} share the constant {constant}")
        if not constant.isidentifier():
            raise RegistryError(f"{name}: {constant} is not a Python identifier")
        constants[constant] = name
        lines = (f"{constant}: Final = {_py_string(name, name)}", f'"""{brief}"""')
        if max(len(line) for line in lines) > MAX_LINE:
            raise RegistryError(f"{name}: constant or brief is longer than {MAX_LINE} characters")
    if len({e.name for e in events}) != len(events):
        raise RegistryError("an event name is defined twice")
    for attr in attributes:
        for target in attr.mirrors:
            if target not in by_key or by_key[target].upstream is not None:
                raise RegistryError(f"{attr.key} mirrors {target}, not a rollout.* attribute")
    referenced: set[str] = set()
    for event in events:
        keys = [ref.key for ref in event.attributes]
        if len(set(keys)) != len(keys):
            raise RegistryError(f"event {event.name} references an attribute twice")
        for key in keys:
            if key not in by_key:
                raise RegistryError(f"event {event.name} references unknown attribute {key}")
        referenced.update(keys)
    for attr in attributes:
        if ("event" in attr.where) != (attr.key in referenced):
            raise RegistryError(
                f"{attr.key}: annotations.rollout.where lists `event` exactly when an event "
                "in events.yaml references it"
            )
    if len({m.name for m in metrics}) != len(metrics):
        raise RegistryError("a metric name is defined twice")
    on_metrics: set[str] = set()
    for metric in metrics:
        keys = [ref.key for ref in metric.attributes]
        if len(set(keys)) != len(keys):
            raise RegistryError(f"metric {metric.name} references an attribute twice")
        for key in keys:
            if key not in by_key:
                raise RegistryError(f"metric {metric.name} references unknown attribute {key}")
        on_metrics.update(keys)
    for attr in attributes:
        if ("metric" in attr.where) != (attr.key in on_metrics):
            raise RegistryError(
                f"{attr.key}: annotations.rollout.where lists `metric` exactly when a metric "
                "in metrics.yaml references it"
            )


def load_registry(model_dir: Path = ROOT / MODEL_DIR) -> Registry:
    """Read and validate the registry YAML under `model_dir`."""
    on_disk = {p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*.yaml")}
    unexpected = sorted(on_disk - {MANIFEST, *MODEL_FILES})
    if unexpected:
        raise RegistryError(f"{model_dir}: add {', '.join(unexpected)} to MODEL_FILES")
    manifest = _read_yaml(model_dir / MANIFEST)
    attributes: list[Attribute] = []
    events: list[Event] = []
    metrics: list[Metric] = []
    for name in MODEL_FILES:
        doc = _read_yaml(model_dir / name)
        if doc.get("file_format") != FILE_FORMAT:
            raise RegistryError(f"{name}: file_format must be {FILE_FORMAT}")
        _check_fields(doc, frozenset({"file_format", "attributes", "events", "metrics"}), name)
        for i, raw in enumerate(_list(doc.get("attributes", []), f"{name}: attributes")):
            attributes.append(_parse_attribute(raw, f"{name}: attributes[{i}]"))
        for i, raw in enumerate(_list(doc.get("events", []), f"{name}: events")):
            events.append(_parse_event(raw, f"{name}: events[{i}]"))
        for i, raw in enumerate(_list(doc.get("metrics", []), f"{name}: metrics")):
            metrics.append(_parse_metric(raw, f"{name}: metrics[{i}]"))
    _check_consistency(attributes, events, metrics)
    return Registry(tuple(attributes), tuple(events), manifest, tuple(metrics))


# --- rendering ------------------------------------------------------------------------


def _py_string(text: str, where: str) -> str:
    if '"' in text or "\\" in text or not text.isprintable():
        raise RegistryError(f"{where}: {text!r} cannot be written as a plain string literal")
    return f'"{text}"'


def _py_set(name: str, values: Sequence[str], doc: str) -> list[str]:
    body = [f"        {_py_string(v, name)}," for v in values]
    return [f"{name}: Final = frozenset(", "    {", *body, "    }", ")", f'"""{doc}"""']


def render_python(registry: Registry) -> str:
    """The text of `mv37/rollout/semconv.py`."""
    lines = [MODULE_DOCSTRING, "", "from typing import Final, NamedTuple", ""]
    for constant, value, brief in registry.constants():
        lines += [f"{constant}: Final = {_py_string(value, value)}", f'"""{brief}"""', ""]
    keys = sorted(a.key for a in registry.attributes if not a.is_template)
    lines += _py_set("ATTRIBUTE_KEYS", keys, "Every registered attribute key except templates.")
    lines.append("")
    prefixes = [_py_string(a.key + ".", a.key) for a in registry.attributes if a.is_template]
    prefix_tuple = f"({prefixes[0]},)" if len(prefixes) == 1 else f"({', '.join(prefixes)})"
    if len(f"TEMPLATE_PREFIXES: Final = {prefix_tuple}") > 100:
        prefix_tuple = "(\n" + "".join(f"    {p},\n" for p in prefixes) + ")"
    lines += [
        f"TEMPLATE_PREFIXES: Final = {prefix_tuple}",
        '"""Prefixes of template attributes: a key under one of them is registered."""',
        "",
    ]
    names = sorted(e.name for e in registry.events)
    lines += _py_set("EVENT_NAMES", names, "Every registered event name.")
    lines += ["", *_py_payload_mirrors(registry)]
    lines += ["", *_py_metrics(registry)]
    text = "\n".join(lines) + "\n" + MODULE_FOOTER
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE:
            raise RegistryError(f"{PYTHON_OUT}:{number} would exceed {MAX_LINE} characters")
    return text


def _py_payload_mirrors(registry: Registry) -> list[str]:
    rows = []
    for convention, direction, form, key, spans in registry.payload_mirrors():
        items = ", ".join(_py_string(s, key) for s in spans)
        span_tuple = f"({items},)" if len(spans) == 1 else f"({items})"
        cells = [_py_string(v, key) for v in (convention, direction, form, key)]
        rows.append(f"    ({', '.join(cells)}, {span_tuple}),")
    conventions = sorted({c for c, *_ in registry.payload_mirrors()} - {FALLBACK})
    names = ", ".join(_py_string(c, c) for c in conventions)
    return [
        f"SEMCONV_CONVENTIONS: Final = ({names})",
        '"""The conventions a payload can be written under (the `semconv` option)."""',
        "",
        "PAYLOAD_MIRRORS: Final[tuple[tuple[str, str, str, str, tuple[str, ...]], ...]] = (",
        *rows,
        ")",
        '"""Payload keys: (convention, direction, form, key, span types; "*" is any type).',
        "",
        "A payload is written once under each enabled convention with a key for the span",
        f"type; under `{FALLBACK}` only where no enabled convention has one.",
        '"""',
    ]


def _py_number(value: float) -> str:
    return repr(int(value)) if value.is_integer() else repr(value)


def _py_metrics(registry: Registry) -> list[str]:
    rows: list[str] = []
    for metric in registry.metrics:
        cells = [_py_string(v, metric.name) for v in (metric.instrument, metric.unit)]
        keys = ", ".join(constant_name(r.key) for r in metric.attributes)
        keys = f"({keys},)" if len(metric.attributes) == 1 else f"({keys})"
        buckets = ", ".join(_py_number(b) for b in metric.buckets)
        buckets = f"({buckets},)" if len(metric.buckets) == 1 else f"({buckets})"
        rows += [
            "    MetricSpec(",
            f"        {metric.constant},",
            f"        {cells[0]},",
            f"        {cells[1]},",
            f"        {_py_string(metric.brief, metric.name)},",
            *_wrapped_tuple(keys, 8),
            *_wrapped_tuple(buckets, 8),
            "    ),",
        ]
    return [
        "",
        "class MetricSpec(NamedTuple):",
        '    """One metric: name, instrument (histogram or counter), unit, description, the',
        '    attribute keys it may carry, and its explicit bucket boundaries (histograms)."""',
        "",
        "    name: str",
        "    instrument: str",
        "    unit: str",
        "    description: str",
        "    attributes: tuple[str, ...]",
        "    buckets: tuple[float, ...]",
        "",
        "",
        "METRICS: Final[tuple[MetricSpec, ...]] = (",
        *rows,
        ")",
        '"""Every metric mv37.rollout records, in registry order."""',
    ]


def _wrapped_tuple(text: str, indent: int) -> list[str]:
    """`text` (a tuple literal) as one line, or one item a line when that is too long."""
    pad = " " * indent
    if len(pad + text + ",") <= MAX_LINE:
        return [pad + text + ","]
    items = [item.rstrip(",") for item in text[1:-1].split(", ")]
    return [pad + "(", *(f"{pad}    {item}," for item in items), pad + "),"]


def _payload_table(registry: Registry) -> list[str]:
    """Markdown: which key carries a payload, per span type, direction and convention."""
    mirrors = registry.payload_mirrors()
    conventions = [c for c in dict.fromkeys(c for c, *_ in mirrors) if c != FALLBACK]
    named = sorted({s for *_, spans in mirrors for s in spans if s != "*"})
    templates = {a.key for a in registry.attributes if a.is_template}
    header = ["span type", "direction", *conventions, f"none of them ({FALLBACK}.*)"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for span_type in [*named, "*"]:
        for direction in DIRECTIONS:
            cells = ["other types" if span_type == "*" else span_type, direction]
            for convention in [*conventions, FALLBACK]:
                keys = [
                    _code(key + ".<N>.*" if key in templates else key)
                    for c, d, _form, key, spans in mirrors
                    if c == convention and d == direction and (span_type in spans or "*" in spans)
                ]
                cells.append(", ".join(keys) or "—")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{_cell(text)}`"


def _example(value: object) -> str:
    if isinstance(value, str) and value.strip() == value and "\n" not in value:
        return _code(value) if "`" not in value else _code(json.dumps(value))
    return _code(json.dumps(value, ensure_ascii=False))


def _attribute_row(registry: Registry, attr: Attribute) -> str:
    key = f"{attr.key}.<key>" if attr.is_template else attr.key
    if attr.upstream is None:
        links = [f"{_code(m.key)} ({m.upstream})" for m in registry.mirrored_by(attr.key)]
        related = ", ".join(links) or "—"
    else:
        related = attr.upstream
        if attr.mirrors:
            related += "; mirrors " + ", ".join(_code(m) for m in attr.mirrors)
        if attr.stability == "stable":
            related += "; stable"
        if attr.deprecated:
            related += "; deprecated upstream"
    cells = [
        _code(key),
        _cell(attr.type),
        ", ".join(attr.where),
        _cell(attr.brief),
        ", ".join(_example(e) for e in attr.examples),
        related,
    ]
    return "| " + " | ".join(cells) + " |"


def render_markdown(registry: Registry) -> str:
    """The text of `semconv/attributes.md`."""
    header = "| key | type | where | brief | example | mirrors / upstream |\n" + "|---" * 6 + "|"
    lines = [
        "<!-- Generated by semconv/generate.py from semconv/model/; do not edit. -->",
        "",
        "# mv37.rollout semantic conventions",
        "",
        "Every attribute and event that mv37.rollout records, generated from the registry in",
        "[`model/`](model/). Code uses the constants of `mv37.rollout.semconv`: attribute",
        "`a.b_c` is `A_B_C`, event `x.y` is `EVENT_X_Y`.",
        "",
        "*where*: `span` is a span attribute, `event` an attribute of an event below,",
        "`resource` an attribute of the OTel Resource. All `rollout.*` attributes are at",
        "stability *development*.",
        "",
        "## Rollout attributes",
        "",
        header,
        *(_attribute_row(registry, a) for a in registry.rollout_attributes),
        "",
        "## Mirrored standard attributes",
        "",
        "Set beside the `rollout.*` keys so that tools reading the OpenTelemetry GenAI",
        "conventions (`otel`) or OpenInference (`openinference`) render Rollout traces.",
        "",
        header,
        *(_attribute_row(registry, a) for a in registry.mirrored_attributes),
        "",
        "## Payload keys per convention",
        "",
        "A captured input or output is written once under each convention enabled by",
        "`semconv` / `ROLLOUT_SEMCONV` (`genai`, `openinference`; default both), with the",
        "keys below for the span's type; the `rollout.*` key only when no enabled",
        "convention has one. Truncation stays marked by `rollout.input.truncated` /",
        "`rollout.input.original_length` (outputs likewise). Generated as",
        "`semconv.PAYLOAD_MIRRORS`.",
        "",
        *_payload_table(registry),
        "",
        "## Events",
        "",
        "| event | brief | attributes | upstream |",
        "|---|---|---|---|",
    ]
    templates = {a.key for a in registry.attributes if a.is_template}
    for event in registry.events:
        refs = ", ".join(
            f"{_code(r.key + '.<key>' if r.key in templates else r.key)} ({r.requirement_level})"
            for r in event.attributes
        )
        row = [_code(event.name), _cell(event.brief), refs, event.upstream or "—"]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", *_metrics_table(registry)]
    return "\n".join(lines) + "\n"


def _metrics_table(registry: Registry) -> list[str]:
    """Markdown: every metric with its instrument, unit, attributes and buckets."""
    lines = [
        "## Metrics",
        "",
        "Recorded where each operation ends, before and regardless of trace sampling.",
        "Generated as `semconv.METRICS`.",
        "",
        "| metric | instrument | unit | brief | attributes | buckets | upstream |",
        "|---|---|---|---|---|---|---|",
    ]
    for metric in registry.metrics:
        refs = ", ".join(f"{_code(r.key)} ({r.requirement_level})" for r in metric.attributes)
        buckets = ", ".join(_py_number(b) for b in metric.buckets) or "—"
        row = [
            _code(metric.name),
            metric.instrument,
            _code(metric.unit),
            _cell(metric.brief),
            refs,
            buckets,
            metric.upstream or "—",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


# --- files ----------------------------------------------------------------------------


def generated_files(root: Path = ROOT) -> dict[Path, str]:
    """What each generated file (path relative to `root`) should contain."""
    registry = load_registry(root / MODEL_DIR)
    return {PYTHON_OUT: render_python(registry), MARKDOWN_OUT: render_markdown(registry)}


def stale_diff(root: Path = ROOT) -> str:
    """A unified diff from the committed files to the generated ones; empty when in sync."""
    chunks: list[str] = []
    for rel, expected in generated_files(root).items():
        path = root / rel
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != expected:
            chunks += difflib.unified_diff(
                current.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                fromfile=f"{rel.as_posix()} (committed)",
                tofile=f"{rel.as_posix()} (generated)",
            )
    return "".join(chunks)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 and print a diff if files are stale"
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    root: Path = args.root
    try:
        if args.check:
            diff = stale_diff(root)
            if diff:
                sys.stdout.write(diff)
                print(
                    "semconv: generated files are stale; run `python semconv/generate.py`",
                    file=sys.stderr,
                )
                return 1
            print("semconv: generated files are up to date")
            return 0
        for rel, text in generated_files(root).items():
            path = root / rel
            if path.exists() and path.read_text(encoding="utf-8") == text:
                print(f"unchanged {rel.as_posix()}")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
            print(f"wrote {rel.as_posix()}")
    except RegistryError as exc:
        print(f"semconv: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
