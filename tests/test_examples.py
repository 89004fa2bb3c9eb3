"""The documentation examples: the OTel-coexistence script runs, the compose files hold.

`examples/existing_otel.py` runs in a subprocess (offline, no collector) and must show the
agent span nested under the app's HTTP span in one trace. The Jaeger and Tempo compose and
collector files are parsed with `yaml.safe_load` and checked for what the READMEs promise:
an OTLP receiver on 0.0.0.0:4318, a traces pipeline that reaches the backend, pinned images
and published ports that the README documents.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
HEX32 = re.compile(r"\b[0-9a-f]{32}\b")

# backend name -> (the exporter endpoint host in the collector config, the UI port)
BACKENDS = {"jaeger": ("jaeger", 16686), "tempo": ("tempo", 3000)}


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


# == examples/existing_otel.py ================================================================


@pytest.fixture(scope="module")
def existing_otel_output() -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "OTEL_"))}
    env["PYTHONIOENCODING"] = "utf-8"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "existing_otel.py")],
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def summary_rows(output: str) -> dict[str, tuple[str, str]]:
    """The `span  parent  trace id` table the script prints: name -> (parent, trace id)."""
    lines = output.splitlines()
    header = next(i for i, line in enumerate(lines) if re.match(r"span\s+parent\s+trace id$", line))
    rows: dict[str, tuple[str, str]] = {}
    for line in lines[header + 1 :]:
        if not line.strip():
            break
        name, parent, trace_id = re.split(r"\s{2,}", line.strip())
        rows[name] = (parent, trace_id)
    return rows


def test_existing_otel_nests_the_agent_under_the_http_span(existing_otel_output: str) -> None:
    rows = summary_rows(existing_otel_output)
    assert set(rows) == {"POST /chat", "invoke_agent support_agent", "execute_tool get_weather"}
    assert rows["POST /chat"][0] == "-"
    assert rows["invoke_agent support_agent"][0] == "POST /chat"
    assert rows["execute_tool get_weather"][0] == "invoke_agent support_agent"
    trace_ids = {trace_id for _, trace_id in rows.values()}
    assert len(trace_ids) == 1
    (trace_id,) = trace_ids
    assert HEX32.fullmatch(trace_id)
    assert f"one trace {trace_id}: the agent span is a child of POST /chat" in existing_otel_output


def test_existing_otel_prints_the_tree(existing_otel_output: str) -> None:
    tree = [line for line in existing_otel_output.splitlines() if "(" in line and ", " in line]
    assert tree[:3] == [
        "POST /chat  (SERVER, support_api.http)",
        "└─ invoke_agent support_agent  (agent, mv37.rollout)",
        "   └─ execute_tool get_weather  (tool, mv37.rollout)",
    ]
    assert "POST /chat -> 200: It's 21°C and sunny in Paris." in existing_otel_output


# == examples/jaeger, examples/tempo ============================================================


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_collector_receives_otlp_and_exports_to_the_backend(backend: str) -> None:
    config = load(EXAMPLES / backend / "otel-collector.yaml")
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert "batch" in config["processors"]
    assert "debug" in config["exporters"]

    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert "batch" in pipeline["processors"]
    assert "debug" in pipeline["exporters"]
    host, _ = BACKENDS[backend]
    reaching = [
        name
        for name in pipeline["exporters"]
        if name.split("/")[0] in {"otlp", "otlphttp"}
        and str(config["exporters"][name]["endpoint"]).split("//")[-1].startswith(f"{host}:")
    ]
    assert reaching, f"no exporter in the traces pipeline sends to {host}"
    # every exporter, processor and receiver the pipeline names is defined
    for kind in ("receivers", "processors", "exporters"):
        assert set(pipeline[kind]) <= set(config[kind]), kind


def published_ports(compose: dict[str, Any]) -> dict[str, set[int]]:
    ports: dict[str, set[int]] = {}
    for name, service in compose["services"].items():
        for entry in service.get("ports", []):
            parts = str(entry).split("/")[0].split(":")
            assert len(parts) >= 2, f"{name}: port {entry!r} has no fixed host port"
            ports.setdefault(name, set()).add(int(parts[-2]))
    return ports


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_compose_pins_images_and_documents_its_ports(backend: str) -> None:
    directory = EXAMPLES / backend
    compose = load(directory / "docker-compose.yml")
    services = compose["services"]
    images = {name: service["image"] for name, service in services.items()}
    for name, image in images.items():
        repo, _, tag = image.rpartition(":")
        assert repo, f"{name}: image {image!r} has no tag"
        assert "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest", f"{name}: image {image!r} is not pinned"
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image!r} needs an exact version"
    assert images["otel-collector"].startswith("otel/opentelemetry-collector-contrib:")

    # the collector mounts the config we checked, and waits for the backend
    collector = services["otel-collector"]
    assert any(str(v).startswith("./otel-collector.yaml:") for v in collector["volumes"])
    ports = published_ports(compose)
    assert ports["otel-collector"] == {4317, 4318}
    _, ui_port = BACKENDS[backend]
    assert ui_port in set().union(*ports.values())

    readme = (directory / "README.md").read_text(encoding="utf-8")
    for service, numbers in ports.items():
        for port in numbers:
            assert re.search(rf"^\| {port} \| {re.escape(service)} \|", readme, re.M), (
                f"{backend}/README.md does not list port {port} ({service})"
            )
    documented = {int(p) for p in re.findall(r"^\| (\d+) \|", readme, re.M)}
    assert documented == set().union(*ports.values())
    assert "ROLLOUT_BASE_URL=http://localhost:4318" in readme
    assert f"http://localhost:{ui_port}" in readme
    for image in images.values():
        assert image in readme, f"{backend}/README.md does not name {image}"


def test_jaeger_is_v2_or_all_in_one() -> None:
    compose = load(EXAMPLES / "jaeger" / "docker-compose.yml")
    image = compose["services"]["jaeger"]["image"]
    assert image.split(":")[0] in {"jaegertracing/jaeger", "jaegertracing/all-in-one"}


def test_tempo_stores_locally_and_grafana_reads_it() -> None:
    directory = EXAMPLES / "tempo"
    compose = load(directory / "docker-compose.yml")
    tempo = load(directory / "tempo.yaml")
    assert tempo["storage"]["trace"]["backend"] == "local"
    otlp = tempo["distributor"]["receivers"]["otlp"]["protocols"]
    assert otlp["grpc"]["endpoint"] == "0.0.0.0:4317"  # where the collector exports
    http_port = tempo["server"]["http_listen_port"]

    datasources = load(directory / "grafana-datasources.yaml")
    (source,) = datasources["datasources"]
    assert source["type"] == "tempo"
    assert source["url"] == f"http://tempo:{http_port}"

    grafana = compose["services"]["grafana"]
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    mounts = [str(v) for v in grafana["volumes"]]
    assert any(
        m.startswith("./grafana-datasources.yaml:/etc/grafana/provisioning/datasources/")
        for m in mounts
    )
    assert any(
        str(v).startswith("./tempo.yaml:/etc/tempo.yaml")
        for v in compose["services"]["tempo"]["volumes"]
    )


def test_tempo_readme_traceql_uses_registered_attributes() -> None:
    readme = (EXAMPLES / "tempo" / "README.md").read_text(encoding="utf-8")
    registry = (ROOT / "semconv" / "attributes.md").read_text(encoding="utf-8")
    used = set(re.findall(r"\bspan\.([a-z_.]+[a-z_])\s*[=<>!]", readme))
    assert "rollout.span.type" in used
    for name in used:
        assert f"| `{name}` |" in registry, f"TraceQL uses unknown attribute {name}"
