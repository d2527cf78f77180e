"""Helpers shared by the download tests: fixtures (a loopback file server, downloads switched
on; a pytest plugin, see tests/conftest.py), and entries to download."""

from __future__ import annotations

from pathlib import Path

import pytest

from intenttuner.weights.manifest import WeightEntry, WeightFile


@pytest.fixture
def server():
    """A loopback file server (see tests/loopback.py), stopped after the test."""
    from tests.loopback import FileServer

    srv = FileServer()
    yield srv
    srv.stop()


@pytest.fixture
def hf_home(models_root, tmp_path, monkeypatch):
    """Downloads on (after models_root, which switches them off); the HF_HOME they use. Download
    test modules use it for every test: ``pytestmark = pytest.mark.usefixtures("hf_home")``."""
    return allow_downloads(monkeypatch, tmp_path)


def allow_downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Switch downloads on (the models_root fixture switches them off) and keep huggingface_hub
    inside this test's folders: it read HF_HUB_OFFLINE and its cache and token paths once, at
    import. Returns the HF_HOME used."""
    monkeypatch.delenv("INTENTTUNER_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    from huggingface_hub import constants

    hf_home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for name, value in {"HF_HOME": hf_home, "HF_HUB_CACHE": tmp_path / "hf-cache",
                        "HF_TOKEN_PATH": hf_home / "token",
                        "HF_STORED_TOKENS_PATH": hf_home / "stored_tokens"}.items():
        monkeypatch.setattr(constants, name, str(value), raising=False)
    return hf_home


def url_entry(base: str, path: str = "/files/sam_test.pth", *, sha=None, size=None,
              target=None, **kw) -> WeightEntry:
    file = WeightFile(name=path.rsplit("/", 1)[-1], size=size, sha256=sha, url=base + path)
    return WeightEntry(id="test-sam", family="segmenter", default=False, title="Test SAM",
                       folder="sams", target=target or file.name, files=(file,), licence="MIT",
                       **kw)


def hub_entry(files: dict[str, tuple[int | None, str | None]], target="tiny-repo") -> WeightEntry:
    weight_files = tuple(WeightFile(name=n, size=s, sha256=h) for n, (s, h) in files.items())
    return WeightEntry(id="test-hub", family="captioner", default=False, title="Test captioner",
                       folder="captioners", target=target, files=weight_files, licence="MIT",
                       hf_repo="org/tiny-repo", revision="abc123")
