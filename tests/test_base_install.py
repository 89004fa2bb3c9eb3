"""The base install: no provider SDK is needed, and asking for one names its extra."""

from __future__ import annotations

import subprocess
import sys

import pytest

import mv37.rollout as rollout


class Gateway:
    """A duck-typed OpenAI-compatible client of someone else's making."""

    class chat:  # noqa: N801
        class completions:  # noqa: N801
            @staticmethod
            def create(**kwargs: object) -> dict[str, object]:
                return {}


def test_importing_the_sdk_imports_no_provider_package() -> None:
    code = (
        "import sys, mv37.rollout, mv37.rollout.integrations; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('openai', 'anthropic', 'agents', 'httpx')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(("provider", "extra"), [("openai", "openai"), ("anthropic", "anthropic")])
def test_a_missing_provider_package_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, provider: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, provider, None)
    with pytest.raises(rollout.MissingExtraError, match=rf"mv37-rollout\[{extra}\]"):
        rollout.wrap(Gateway(), provider=provider)


def test_unsupported_objects_are_refused_by_name() -> None:
    with pytest.raises(rollout.UnsupportedIntegrationError, match="Gateway"):
        rollout.wrap(Gateway())
