"""The Hub's metadata protocol, read through huggingface_hub against a loopback "Hub" and "CDN"
(see tests/loopback.py for the headers imitated), and plain (non-Hub) sources beside it."""

from __future__ import annotations

import os
import re
import socket

import pytest

from intenttuner.errors import ChecksumMismatchError, OfflineError
from intenttuner.weights.download import ensure_entry
from tests.download_helpers import hub_entry, url_entry
from tests.loopback import REPO_COMMIT, Served, sha256

pytestmark = pytest.mark.usefixtures("hf_home")  # downloads on, from a loopback server

LFS = "/org/tiny-repo/resolve/abc123/model.safetensors"




def test_lfs_metadata_comes_through_huggingface_hub_and_is_verified(server, models_root,
                                                                    monkeypatch):
    weights = os.urandom(70_000)
    server.files[LFS] = Served(weights, declared_sha256=sha256(weights))
    monkeypatch.setenv("HF_ENDPOINT", server.start())  # after huggingface_hub's import

    path = ensure_entry(hub_entry({"model.safetensors": (None, None)}, target="w.safetensors"))

    assert path.read_bytes() == weights
    (head,) = [r for r in server.requests if r[0] == "HEAD"]
    assert head[1] == LFS
    assert re.search(r"\b(hf_hub|huggingface_hub)/\d", head[2]["User-Agent"])  # huggingface_hub
    assert "ComfyUI-IntentTuner" in head[2]["User-Agent"]  # asked on our behalf
    # huggingface_hub stops at the cross-host redirect; the bytes come from the "CDN".
    assert [(r[0], r[1]) for r in server.requests[1:]] == [("GET", "/cdn" + LFS)]


def test_lfs_file_whose_bytes_differ_from_the_declared_sha256_is_refused(server, models_root,
                                                                         monkeypatch):
    weights = os.urandom(70_000)
    server.files[LFS] = Served(weights, declared_sha256=sha256(b"what the Hub says it is"))
    monkeypatch.setenv("HF_ENDPOINT", server.start())

    with pytest.raises(ChecksumMismatchError, match="damaged: its sha256 is"):
        ensure_entry(hub_entry({"model.safetensors": (None, None)}, target="w.safetensors"))
    assert not (models_root / "captioners").exists()


def test_hub_never_uses_a_saved_token_nor_writes_its_cache(server, models_root, monkeypatch,
                                                           hf_home, tmp_path):
    weights = os.urandom(1000)
    server.files[LFS] = Served(weights, declared_sha256=sha256(weights))
    monkeypatch.setenv("HF_ENDPOINT", server.start())
    hf_home.mkdir()
    (hf_home / "token").write_text("hf_saved_by_hf_auth_login")  # no HF_TOKEN in the env

    ensure_entry(hub_entry({"model.safetensors": (1000, None)}, target="w.safetensors"))

    assert [r[2].get("Authorization") for r in server.requests] == [None, None]
    assert sorted(p.name for p in hf_home.rglob("*")) == ["token"]
    assert not (tmp_path / "hf-cache").exists()


def test_huggingface_hub_offline_mode_is_reported_with_instructions(server, models_root,
                                                                    monkeypatch):
    from huggingface_hub import constants

    server.files[LFS] = Served(b"x", declared_sha256=sha256(b"x"))
    monkeypatch.setenv("HF_ENDPOINT", server.start())
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as if set when it was imported

    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE") as info:
        ensure_entry(hub_entry({"model.safetensors": (1, None)}, target="w.safetensors"))
    assert str(models_root / "captioners" / "w.safetensors") in str(info.value)
    assert server.requests == []


def test_unreachable_hub_gives_offline_error_naming_url_and_folder(models_root, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)

    with pytest.raises(OfflineError, match="could not be reached") as info:
        ensure_entry(hub_entry({"model.safetensors": (10, None)}, target="w.safetensors"))
    assert f"{endpoint}{LFS}" in str(info.value)
    assert str(models_root / "captioners") in str(info.value)


def test_commit_header_is_what_the_loopback_hub_sends(server, models_root, monkeypatch):
    """Guards the imitation: huggingface_hub only accepts answers that name a commit."""
    weights = os.urandom(100)
    server.files[LFS] = Served(weights, declared_sha256=sha256(weights))
    monkeypatch.setenv("HF_ENDPOINT", server.start())
    from huggingface_hub import get_hf_file_metadata

    meta = get_hf_file_metadata(os.environ["HF_ENDPOINT"] + LFS, token=False)

    assert (meta.commit_hash, meta.etag, meta.size) == (REPO_COMMIT, sha256(weights), 100)


def test_plain_source_is_fetched_without_head_token_or_hub(server, models_root, monkeypatch):
    """A non-Hub URL (the SAM checkpoints' kind): followed through its redirect, checked against
    the manifest's sha256, and never sent the Hugging Face token."""
    data = os.urandom(5000)
    server.files["/files/moved.pth"] = Served(b"", redirect_to="/files/sam_test.pth")
    server.files["/files/sam_test.pth"] = Served(data)
    monkeypatch.setenv("HF_TOKEN", "hf_secret")

    path = ensure_entry(url_entry(server.start(), "/files/moved.pth", sha=sha256(data),
                                  target="sam_test.pth"))

    assert path.read_bytes() == data
    assert [(r[0], r[1]) for r in server.requests] == [("GET", "/files/moved.pth"),
                                                      ("GET", "/files/sam_test.pth")]
    assert all(r[2].get("Authorization") is None for r in server.requests)
