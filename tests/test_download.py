"""The downloader against a loopback server: checksums, resume, offline, Hub conventions."""

from __future__ import annotations

import logging
import os
import socket

import pytest

from intenttuner.errors import (
    ChecksumMismatchError,
    DownloadError,
    ModelsFolderError,
    OfflineError,
)
from intenttuner.weights import download
from intenttuner.weights.download import ensure_entry
from intenttuner.weights.locate import find_entry
from intenttuner.weights.manifest import WeightEntry, WeightFile
from tests.download_helpers import hub_entry, url_entry
from tests.loopback import Served, git_blob_sha1, sha256

pytestmark = pytest.mark.usefixtures("hf_home")  # downloads on, from a loopback server

PAYLOAD = os.urandom(3 * download.CHUNK + 12345)  # several chunks, odd tail




def test_fresh_download_is_verified_and_atomic(server, models_root):
    server.files["/files/sam_test.pth"] = Served(PAYLOAD)
    base = server.start()
    entry = url_entry(base, sha=sha256(PAYLOAD), size=len(PAYLOAD))

    path = ensure_entry(entry)

    assert path == models_root / "sams" / "sam_test.pth"
    assert path.read_bytes() == PAYLOAD
    assert not path.with_name("sam_test.pth.part").exists()
    assert find_entry(entry) == path
    gets = [r for r in server.requests if r[0] == "GET"]
    ensure_entry(entry)  # second call: found locally, nothing fetched again
    assert [r for r in server.requests if r[0] == "GET"] == gets


def test_checksum_mismatch_deletes_the_file(server, models_root):
    server.files["/files/sam_test.pth"] = Served(PAYLOAD)
    base = server.start()
    entry = url_entry(base, sha=sha256(b"something else"), size=len(PAYLOAD))

    with pytest.raises(ChecksumMismatchError, match="damaged.*sha256"):
        ensure_entry(entry)

    assert not (models_root / "sams").exists()  # the folder it created, and the file, are gone


def test_dropped_connection_is_resumed_with_a_range_request(server, models_root):
    cut = 2 * download.CHUNK + 7
    server.files["/files/sam_test.pth"] = Served(PAYLOAD, drop_after=cut, drops_left=1)
    base = server.start()
    entry = url_entry(base, sha=sha256(PAYLOAD), size=len(PAYLOAD))

    path = ensure_entry(entry)

    assert path.read_bytes() == PAYLOAD
    ranges = [r[2].get("Range") for r in server.requests if r[0] == "GET"]
    assert ranges == [None, f"bytes={cut}-"]


def test_partial_file_from_an_earlier_run_is_resumed(server, models_root):
    server.files["/files/sam_test.pth"] = Served(PAYLOAD)
    base = server.start()
    entry = url_entry(base, sha=sha256(PAYLOAD), size=len(PAYLOAD))
    part = models_root / "sams" / "sam_test.pth.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:1000])

    ensure_entry(entry)

    assert (models_root / "sams" / "sam_test.pth").read_bytes() == PAYLOAD
    assert [r[2].get("Range") for r in server.requests if r[0] == "GET"] == ["bytes=1000-"]


def test_connection_that_keeps_dropping_keeps_the_part_file(server, models_root):
    server.files["/files/sam_test.pth"] = Served(PAYLOAD, drop_after=100, drops_left=99)
    base = server.start()
    entry = url_entry(base, sha=sha256(PAYLOAD), size=len(PAYLOAD))

    with pytest.raises(DownloadError, match="run the workflow again to resume"):
        ensure_entry(entry)

    part = models_root / "sams" / "sam_test.pth.part"
    assert part.stat().st_size == 100 * (download.RETRIES + 1)


def test_server_down_gives_offline_error_naming_file_source_and_folder(models_root):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    entry = url_entry(f"http://127.0.0.1:{port}", sha="0" * 64, size=10)

    with pytest.raises(OfflineError) as info:
        ensure_entry(entry)

    message = str(info.value)
    assert "sam_test.pth" in message
    assert f"http://127.0.0.1:{port}/files/sam_test.pth" in message
    assert str(models_root / "sams") in message
    assert "could not be reached" in message


def test_offline_switch_blocks_downloads_before_any_request(server, models_root, monkeypatch):
    server.files["/files/sam_test.pth"] = Served(PAYLOAD)
    base = server.start()
    monkeypatch.setenv("INTENTTUNER_OFFLINE", "1")

    with pytest.raises(OfflineError, match="INTENTTUNER_OFFLINE"):
        ensure_entry(url_entry(base, sha=sha256(PAYLOAD)))
    assert server.requests == []


def test_hub_declared_sha256_is_checked_when_manifest_has_none(server, models_root, monkeypatch):
    weights, config = os.urandom(50_000), b'{"model_type": "blip"}'
    server.files["/org/tiny-repo/resolve/abc123/model.safetensors"] = Served(
        weights, declared_sha256=sha256(weights))
    server.files["/org/tiny-repo/resolve/abc123/config.json"] = Served(
        config, declared_git_sha1=git_blob_sha1(config))
    monkeypatch.setenv("HF_ENDPOINT", server.start())
    entry = hub_entry({"model.safetensors": (None, None), "config.json": (None, None)})

    path = ensure_entry(entry)

    assert path == models_root / "captioners" / "tiny-repo"
    assert (path / "model.safetensors").read_bytes() == weights
    assert (path / "config.json").read_bytes() == config
    cdn_gets = [r[1] for r in server.requests if r[0] == "GET" and r[1].startswith("/cdn/")]
    assert cdn_gets == ["/cdn/org/tiny-repo/resolve/abc123/model.safetensors"]


def test_hub_declared_checksum_mismatch_is_refused(server, models_root, monkeypatch):
    config = b'{"model_type": "blip"}'
    server.files["/org/tiny-repo/resolve/abc123/config.json"] = Served(
        config, declared_git_sha1=git_blob_sha1(b"other bytes"))
    monkeypatch.setenv("HF_ENDPOINT", server.start())

    with pytest.raises(ChecksumMismatchError, match="git blob hash"):
        ensure_entry(hub_entry({"config.json": (None, None)}, target=""))


def test_manifest_hash_disagreeing_with_hub_is_refused_before_download(
        server, models_root, monkeypatch):
    weights = os.urandom(1000)
    server.files["/org/tiny-repo/resolve/abc123/model.safetensors"] = Served(
        weights, declared_sha256=sha256(weights))
    monkeypatch.setenv("HF_ENDPOINT", server.start())
    entry = hub_entry({"model.safetensors": (1000, "1" * 64)}, target="weights.safetensors")

    with pytest.raises(ChecksumMismatchError, match="source changed"):
        ensure_entry(entry)
    assert not [r for r in server.requests if r[0] == "GET"]


def test_hf_token_goes_to_the_hub_only_and_never_into_logs(
        server, models_root, monkeypatch, caplog):
    weights = os.urandom(1000)
    server.files["/org/tiny-repo/resolve/abc123/model.safetensors"] = Served(
        weights, declared_sha256=sha256(weights))
    monkeypatch.setenv("HF_ENDPOINT", server.start())
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_123")
    caplog.set_level(logging.DEBUG)

    ensure_entry(hub_entry({"model.safetensors": (1000, None)}, target="w.safetensors"))

    auth = {r[1]: r[2].get("Authorization") for r in server.requests}
    assert auth["/org/tiny-repo/resolve/abc123/model.safetensors"] == "Bearer hf_secret_token_123"
    assert auth["/cdn/org/tiny-repo/resolve/abc123/model.safetensors"] is None
    assert "hf_secret_token_123" not in caplog.text


@pytest.mark.parametrize(("status", "message"), [
    (401, "HF_TOKEN"), (403, "HF_TOKEN"), (404, "HTTP 404"), (500, "HTTP 500"),
])
def test_http_errors_are_explained(server, models_root, status, message):
    server.files["/files/sam_test.pth"] = Served(PAYLOAD, status=status)
    base = server.start()
    with pytest.raises(DownloadError, match=message):
        ensure_entry(url_entry(base, sha=sha256(PAYLOAD)))


def test_unwritable_models_folder_is_reported(server, models_root):
    server.files["/files/sam_test.pth"] = Served(PAYLOAD)
    base = server.start()
    (models_root / "sams").write_text("a file where the folder should be")

    with pytest.raises(ModelsFolderError, match="Cannot write to .*sams"):
        ensure_entry(url_entry(base, sha=sha256(PAYLOAD)))


def test_too_little_disk_space_is_reported_before_downloading(server, models_root, monkeypatch):
    server.files["/files/sam_test.pth"] = Served(PAYLOAD)
    base = server.start()
    monkeypatch.setattr(download.shutil, "disk_usage",
                        lambda p: type("U", (), {"free": 1000})())

    with pytest.raises(DownloadError, match="Not enough disk space"):
        ensure_entry(url_entry(base, sha=sha256(PAYLOAD), size=len(PAYLOAD)))
    assert not server.requests


def test_complete_copy_in_hf_cache_is_used_without_downloading(models_root, tmp_path,
                                                               monkeypatch):
    snapshot = tmp_path / "hf-cache" / "models--org--tiny-repo" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(b"x" * 10)
    (snapshot / "config.json").write_bytes(b"{}")
    monkeypatch.setenv("INTENTTUNER_OFFLINE", "1")

    dir_entry = hub_entry({"model.safetensors": (10, None), "config.json": (2, None)})
    assert ensure_entry(dir_entry) == snapshot

    file_entry = hub_entry({"model.safetensors": (10, None)}, target="renamed.safetensors")
    linked = ensure_entry(file_entry)
    assert linked == models_root / "captioners" / "renamed.safetensors"
    assert linked.read_bytes() == b"x" * 10


def test_requirements_are_fetched_first(server, models_root):
    tokenizer = b"[PAD]\n[UNK]\n"
    server.files["/files/vocab.txt"] = Served(tokenizer)
    server.files["/files/sam_test.pth"] = Served(PAYLOAD)
    base = server.start()
    from intenttuner.weights.manifest import Manifest

    vocab = WeightEntry(
        id="vocab", family="tokenizer", default=False, title="vocab", folder="bert-base-uncased",
        target="", licence="MIT",
        files=(WeightFile("vocab.txt", len(tokenizer), sha256(tokenizer), base + "/files/vocab.txt"),))
    main = url_entry(base, sha=sha256(PAYLOAD), requires=("vocab",))

    ensure_entry(main, Manifest((vocab, main)))

    assert (models_root / "bert-base-uncased" / "vocab.txt").read_bytes() == tokenizer


def test_download_announces_start_and_end_as_events(server, models_root):
    from intenttuner import runtime

    events = []

    class Recording(runtime.TorchRuntime):
        def send_event(self, event, data):
            events.append((event, data["state"], data["file"]))

    server.files["/files/sam_test.pth"] = Served(PAYLOAD)
    base = server.start()
    runtime.set_runtime(Recording(models_dir=models_root))
    ensure_entry(url_entry(base, sha=sha256(PAYLOAD)))
    with pytest.raises(ChecksumMismatchError):
        ensure_entry(url_entry(base, sha=sha256(b"x"), target="other.pth"))

    assert events == [("intenttuner.download", "start", "sam_test.pth"),
                      ("intenttuner.download", "done", "sam_test.pth"),
                      ("intenttuner.download", "start", "sam_test.pth"),
                      ("intenttuner.download", "failed", "sam_test.pth")]


def test_gated_small_file_gets_the_token_through_same_host_redirects(server, models_root,
                                                                     monkeypatch):
    config = b'{"model_type": "blip"}'
    server.files["/org/tiny-repo/resolve/abc123/config.json"] = Served(
        config, declared_git_sha1=git_blob_sha1(config), token="hf_gated")
    monkeypatch.setenv("HF_ENDPOINT", server.start())
    entry = hub_entry({"config.json": (None, None)}, target="")

    with pytest.raises(DownloadError, match="HTTP 401.*HF_TOKEN"):
        ensure_entry(entry)
    monkeypatch.setenv("HF_TOKEN", "hf_gated")
    path = ensure_entry(entry)

    assert (path / "config.json").read_bytes() == config
    fetched = [r for r in server.requests if r[0] == "GET"]
    assert [r[1] for r in fetched] == ["/api/resolve-cache/org/tiny-repo/resolve/abc123/"
                                       "config.json"]
    assert fetched[0][2]["Authorization"] == "Bearer hf_gated"


def test_disk_check_counts_what_a_partial_download_already_holds(server, models_root,
                                                                 monkeypatch):
    server.files["/files/sam_test.pth"] = Served(PAYLOAD)
    base = server.start()
    part = models_root / "sams" / "sam_test.pth.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:-1000])  # all but the last 1000 bytes are here already
    free = download.FREE_SPACE_MARGIN + 5000
    monkeypatch.setattr(download.shutil, "disk_usage", lambda p: type("U", (), {"free": free})())

    path = ensure_entry(url_entry(base, sha=sha256(PAYLOAD), size=len(PAYLOAD)))

    assert path.read_bytes() == PAYLOAD
