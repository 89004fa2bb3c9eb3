"""The sdist and the wheel: the license inside, the classifiers, no test tools as extras.

Builds both with `python -m build --no-isolation` (the `dev` group brings `build` and a
recent setuptools), the wheel from the sdist, as an installer would. Skips where those
are missing (the base-install venv).
"""

from __future__ import annotations

import email
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("build", reason="needs the dev group (build): pip install --group dev")
setuptools = pytest.importorskip("setuptools", reason="needs setuptools >= 77")
if int(setuptools.__version__.split(".")[0]) < 77:
    pytest.skip("needs setuptools >= 77 (the dev group)", allow_module_level=True)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return out


def _one(dist: Path, pattern: str) -> Path:
    (found,) = dist.glob(pattern)
    return found


def _wheel_metadata(dist: Path) -> Message:
    with zipfile.ZipFile(_one(dist, "*.whl")) as wheel:
        return email.message_from_bytes(wheel.read("mv37_rollout-0.1.0.dist-info/METADATA"))


def test_the_license_is_in_the_sdist_and_the_wheel(dist: Path) -> None:
    license_text = (ROOT / "LICENSE").read_bytes()
    assert b"Apache License\n                           Version 2.0, January 2004" in license_text
    assert b"Copyright 2026 the mv37.rollout authors" in license_text
    with tarfile.open(_one(dist, "*.tar.gz")) as sdist:
        member = sdist.extractfile("mv37_rollout-0.1.0/LICENSE")
        assert member is not None
        assert member.read() == license_text
    with zipfile.ZipFile(_one(dist, "*.whl")) as wheel:
        assert wheel.read("mv37_rollout-0.1.0.dist-info/licenses/LICENSE") == license_text
        assert "mv37/rollout/py.typed" in wheel.namelist()
    metadata = _wheel_metadata(dist)
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License-File"] == "LICENSE"


def test_the_classifiers_say_python_versions_typed_and_opentelemetry(dist: Path) -> None:
    classifiers = _wheel_metadata(dist).get_all("Classifier")
    assert classifiers is not None
    for version in ("3.10", "3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert "Typing :: Typed" in classifiers
    assert "Framework :: OpenTelemetry" in classifiers
    assert _wheel_metadata(dist)["Requires-Python"] == ">=3.10"


def test_only_the_provider_sdks_are_published_extras(dist: Path) -> None:
    metadata = _wheel_metadata(dist)
    assert metadata.get_all("Provides-Extra") == ["openai", "anthropic", "openai-agents"]
    requires = metadata.get_all("Requires-Dist") or []
    assert not [r for r in requires if r.startswith(("pytest", "ruff", "mypy", "hypothesis"))]
