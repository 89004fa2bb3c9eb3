"""`python -m mv37.rollout check`: is the configured destination receiving traces?

Reads the same `ROLLOUT_*` / `OTEL_EXPORTER_OTLP_*` variables as `init()`; options
override them. Prints one line (on a failure: the HTTP status or connection error and
what to check, as the export warning says); exits 0 when every diagnostic span was
accepted, else 1. `--version` prints the version.

Example:
    $ ROLLOUT_BASE_URL=http://localhost:4318 python -m mv37.rollout check
    mv37.rollout check: OK, 2 spans accepted by http://localhost:4318/v1/traces (trace …)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mv37.rollout.base._config import check_url, resolve_config
from mv37.rollout.base._version import __version__
from mv37.rollout.pipeline._check import check_destination
from mv37.rollout.pipeline._destination import resolve_destination


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m mv37.rollout")
    parser.add_argument("--version", action="version", version=f"mv37.rollout {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="send a diagnostic trace to the destination")
    check.add_argument("--base-url", help="OTLP/HTTP base URL (default: ROLLOUT_BASE_URL)")
    check.add_argument("--timeout", type=float, help="seconds to wait, retries included (5)")
    check.add_argument("--quiet", action="store_true", help="print nothing; use the exit code")
    args = parser.parse_args(argv)
    try:
        if args.base_url is not None and args.base_url.strip():
            check_url(args.base_url.strip(), "--base-url")
        if args.timeout is not None and not args.timeout > 0:
            raise ValueError(f"--timeout must be greater than 0, got {args.timeout!r}")
        config = resolve_config(base_url=args.base_url)
        destination = resolve_destination(config)
    except ValueError as exc:
        if not args.quiet:
            print(f"mv37.rollout check: FAILED, invalid configuration: {exc}")
        return 1
    if destination is None and not config.disabled:
        if not args.quiet:
            print(
                "mv37.rollout check: FAILED, no destination configured (pass --base-url, or "
                "set ROLLOUT_BASE_URL or OTEL_EXPORTER_OTLP_ENDPOINT)"
            )
        return 1
    result = check_destination(config, destination, verbose=not args.quiet, timeout=args.timeout)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
