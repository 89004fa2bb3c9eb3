"""`import mv37.rollout` against importing the OTel SDK's trace module and OTLP/HTTP exporter.

Run with `make bench` (or `.venv-base/bin/python benchmarks/import_time.py`). Each sample
is a fresh interpreter timing one import statement with `time.perf_counter()` (the
interpreter's own start-up is left out); ours and the reference run as a pair, alternating
which goes first, and the ratio reported is the median of the per-pair ratios. One
warm-up run of each writes the bytecode caches first, as any second run of a program
finds them. The script reports; it always exits 0.

Target (issue 13): ours <= 1.25x the reference.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAIRS = int(os.environ.get("BENCH_IMPORT_PAIRS", "21"))
TARGET = 1.25
OURS = "import mv37.rollout"
REFERENCE = "import opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter"
TIMED = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"


def import_ms(stmt: str, env: dict[str, str]) -> float:
    """Milliseconds one fresh interpreter spends on `stmt`."""
    out = subprocess.run(
        [sys.executable, "-c", TIMED.format(stmt=stmt)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out) * 1000


def main() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    import_ms(OURS, env)
    import_ms(REFERENCE, env)
    ours: list[float] = []
    ref: list[float] = []
    ratios: list[float] = []
    for pair in range(PAIRS):
        order = [(OURS, ours), (REFERENCE, ref)]
        for stmt, samples in order if pair % 2 == 0 else order[::-1]:
            samples.append(import_ms(stmt, env))
        ratios.append(ours[-1] / ref[-1])
    ratio = statistics.median(ratios)
    verdict = "ok" if ratio <= TARGET else "MISS"
    print(f"import time, median of {PAIRS} fresh interpreters ({sys.executable})")
    print(f"  {OURS:<32} {statistics.median(ours):6.1f} ms")
    print(f"  {'OTel SDK trace + OTLP/HTTP':<32} {statistics.median(ref):6.1f} ms")
    print(f"  ratio (median per pair)          {ratio:6.2f}x  target <= {TARGET}x  {verdict}")


if __name__ == "__main__":
    main()
