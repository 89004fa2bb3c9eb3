"""`make view`: Phoenix on this machine, the demo traces in it, the URL printed.

Starts Phoenix (same harness as the e2e checks), runs `examples/quickstart.py` and
`examples/multi_agent.py` against it, prints the UI address and keeps Phoenix running
until Ctrl-C, then stops it cleanly.
"""

from __future__ import annotations

import signal
import sys
import threading

from e2e.servers import phoenix_server, run_example

PROJECT = "default"  # the project Phoenix opens on


def main() -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with phoenix_server(port=6006) as phoenix:  # Phoenix's usual port when it is free
        env = {"ROLLOUT_BASE_URL": phoenix.url, "ROLLOUT_CONSOLE": "false"}
        for example in ("quickstart.py", "multi_agent.py", "error_example.py"):
            run_example(example, env)
        phoenix.wait_for_spans(PROJECT, 16)
        print(f"\nPhoenix is running: {phoenix.url}/  (the demo traces are in project {PROJECT!r})")
        print("Point your own app at it with ROLLOUT_BASE_URL=" + phoenix.url)
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while not stop.wait(1):
                pass
        except KeyboardInterrupt:
            pass
        print("\nstopping Phoenix…", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
