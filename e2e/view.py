"""`make view`: Phoenix on this machine, the demo traces in it, the URL printed.

Starts Phoenix (same harness as the e2e checks; port 6006 when it is free), runs
`examples/quickstart.py`, `examples/multi_agent.py` and `examples/error_example.py`
against it, prints the UI address and keeps Phoenix running until Ctrl-C (or SIGTERM),
then stops it cleanly: whole process group, ports checked free.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

from e2e.servers import phoenix_server, run_example

PROJECT = "default"  # the project Phoenix opens on
EXAMPLES = {"quickstart.py": 5, "multi_agent.py": 9, "error_example.py": 2}  # spans each


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C and SIGTERM both end the wait (or the start-up) the same way, even when
    # SIGINT was inherited as ignored (a background job).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with phoenix_server(port=6006) as phoenix:
            env = {"ROLLOUT_BASE_URL": phoenix.url, "ROLLOUT_CONSOLE": "false"}
            for example in EXAMPLES:
                run_example(example, env)
            phoenix.wait_for_spans(PROJECT, sum(EXAMPLES.values()))
            print(f"\nPhoenix is running: {phoenix.url}/  (demo traces in project {PROJECT!r})")
            print(f"Send your own app's traces there with ROLLOUT_BASE_URL={phoenix.url}")
            print("Press Ctrl-C to stop.", flush=True)
            try:
                while True:
                    signal.pause()
            finally:
                print("\nstopping Phoenix…", flush=True)
    except KeyboardInterrupt:
        pass
    print("Phoenix stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
