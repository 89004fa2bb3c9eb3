"""Overhead of `rollout.wrap()` on a real OpenAI client, against the unwrapped client.

Run with `.venv/bin/python benchmarks/providers.py`. The script reports; it always
exits 0.

Both clients are real `openai.OpenAI` objects on the same in-memory transport
(`httpx.MockTransport`), so the numbers are the SDK's own work (request building,
response parsing, SSE decoding) plus ours, with no network. Cases:

1. `chat.completions.create` answered with a chat completion (JSON);
2. `chat.completions.create(stream=True)` answered with a 500-chunk SSE stream, read to
   the end. Target: wrapped <= 1.1x unwrapped.

The wrapped calls run inside an open `rollout.trace(...)` (one `llm` span per call) on
`rollout.init(span_exporters=[DiscardExporter()], console=False,
install_global_provider=False)`: a `BatchSpanProcessor` with an exporter that discards.
Each sample times a loop of calls after `gc.collect()`. Every repeat times each case
unwrapped and wrapped back to back (alternating which goes first); the ratio reported is
the median of those paired ratios, next to the median time per call of each side.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import mv37.rollout as rollout
from mv37.rollout.integrations import wrap

REPEATS = int(os.environ.get("BENCH_REPEATS", "7"))
SAMPLE_SECONDS = float(os.environ.get("BENCH_SAMPLE_SECONDS", "0.25"))
STREAM_CHUNKS = 500
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "providers"
MESSAGES: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]


class DiscardExporter(SpanExporter):
    """Accepts every batch and drops it: measures the SDK, not a network."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


def _stream_body(chunks: int) -> bytes:
    """An SSE chat stream: a role chunk, `chunks` text chunks, finish, usage, [DONE]."""
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1741570290,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_fc9f1d7035",
    }

    def chunk(delta: Any, finish: str | None = None, usage: Any = None) -> str:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        data = {**base, "choices": choices, "usage": usage}
        return "data: " + json.dumps(data, separators=(",", ":")) + "\n\n"

    parts = [chunk({"role": "assistant", "content": ""})]
    parts += [chunk({"content": f" word{i}"}) for i in range(chunks)]
    parts.append(chunk({}, finish="stop"))
    usage = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}
    parts.append(chunk(None, usage=usage))
    parts.append("data: [DONE]\n\n")
    return "".join(parts).encode()


def _client(body: bytes, content_type: str) -> openai.OpenAI:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": content_type})

    http_client: Any = httpx.Client(transport=httpx.MockTransport(handler))
    return openai.OpenAI(
        api_key="sk-bench", base_url="https://bench.test/v1", http_client=http_client
    )


@dataclass
class Case:
    """One measured call shape, wrapped and not."""

    name: str
    plain: Callable[[], None]
    wrapped: Callable[[], None]
    target: float | None
    samples: dict[str, list[float]] = field(default_factory=lambda: {"plain": [], "wrapped": []})


def _per_call_us(fn: Callable[[], None], iterations: int) -> float:
    gc.collect()
    start = time.perf_counter_ns()
    for _ in range(iterations):
        fn()
    return (time.perf_counter_ns() - start) / iterations / 1000


def _iterations(fn: Callable[[], None]) -> int:
    per_call = _per_call_us(fn, 3) / 1e6
    return max(5, int(SAMPLE_SECONDS / max(per_call, 1e-7)))


def _cases() -> list[Case]:
    completion = (FIXTURES / "openai_chat_completion.json").read_bytes()
    stream = _stream_body(STREAM_CHUNKS)
    plain_json = _client(completion, "application/json")
    wrapped_json = wrap(_client(completion, "application/json"))
    plain_sse = _client(stream, "text/event-stream")
    wrapped_sse = wrap(_client(stream, "text/event-stream"))

    def create(client: openai.OpenAI) -> Callable[[], None]:
        def run() -> None:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

        return run

    def read_stream(client: openai.OpenAI) -> Callable[[], None]:
        def run() -> None:
            for _ in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
                pass

        return run

    return [
        Case("chat.completions.create", create(plain_json), create(wrapped_json), None),
        Case(
            f"stream, {STREAM_CHUNKS} chunks",
            read_stream(plain_sse),
            read_stream(wrapped_sse),
            1.1,
        ),
    ]


def main() -> int:
    """Measure, print the table, exit 0 whatever happens."""
    try:
        rollout.init(
            span_exporters=[DiscardExporter()], console=False, install_global_provider=False
        )
        cases = _cases()
        with rollout.trace("bench"):
            plan = [(case, _iterations(case.plain), _iterations(case.wrapped)) for case in cases]
            for repeat in range(REPEATS):
                for case, plain_n, wrapped_n in plan:
                    # A pair per case and repeat, alternating which goes first, so drift
                    # in machine speed hits both sides alike.
                    runs = [("plain", case.plain, plain_n), ("wrapped", case.wrapped, wrapped_n)]
                    for kind, fn, iterations in runs if repeat % 2 == 0 else runs[::-1]:
                        case.samples[kind].append(_per_call_us(fn, iterations))
        rollout.shutdown()
        _report(cases)
    except Exception:
        traceback.print_exc()
    return 0


def _report(cases: list[Case]) -> None:
    print(
        f"mv37.rollout wrap() overhead: openai {openai.__version__}, Python "
        f"{platform.python_version()} on {platform.machine()}, {REPEATS} paired repeats"
    )
    header = (
        f"{'case':<26}{'unwrapped us':>13}{'wrapped us':>12}{'+us/call':>10}"
        f"{'ratio':>8}  {'target':<9}result"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        plain = statistics.median(case.samples["plain"])
        wrapped = statistics.median(case.samples["wrapped"])
        pairs = zip(case.samples["wrapped"], case.samples["plain"], strict=True)
        ratio = statistics.median(w / p for w, p in pairs)
        target = f"<= {case.target}x" if case.target else "-"
        verdict = "-" if case.target is None else ("PASS" if ratio <= case.target else "MISS")
        print(
            f"{case.name:<26}{plain:>13.1f}{wrapped:>12.1f}{wrapped - plain:>10.1f}"
            f"{ratio:>7.2f}x  {target:<9}{verdict}"
        )
    print("ratio: median of the paired wrapped/unwrapped samples; us: medians per call")


if __name__ == "__main__":
    sys.exit(main())
