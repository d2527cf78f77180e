"""Reading weight files and widget-given names: hostile input gets a named error."""

from __future__ import annotations

import json
import struct

import pytest
import torch

from intenttuner.errors import InputError, WeightsCorruptError
from intenttuner.weights.locate import check_relative_name
from intenttuner.weights.safe_load import load_state_dict, read_safetensors_header


def write_header(path, header: object, payload: bytes = b"") -> None:
    data = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(data)) + data + payload)


@pytest.mark.parametrize(("header", "message"), [
    ([1, 2, 3], "header is a JSON list"),
    ({"w": {"dtype": "F32", "shape": [1]}}, "tensor 'w' has no valid data_offsets"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}, "no valid data_offsets"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4000]}}, "tensors need"),
])
def test_malformed_safetensors_headers_are_corrupt_files(tmp_path, header, message):
    path = tmp_path / "bad.safetensors"
    write_header(path, header, b"\0" * 4)
    with pytest.raises(WeightsCorruptError, match=message):
        read_safetensors_header(path)
    with pytest.raises(WeightsCorruptError):
        load_state_dict(path)


class Payload:
    """Stands for an object whose unpickling would run code (its class is not allowlisted)."""


def test_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "obj": Payload()}, path)
    with pytest.raises(WeightsCorruptError, match="Python objects other than tensors"):
        load_state_dict(path)


@pytest.mark.parametrize("name", ["", " ", ".", "./", "../x.pth", "a/../../x", "/etc/passwd",
                                  "C:\\\\x.pth", "x\0.pth", "..\\\\x.pth"])
def test_unsafe_widget_names_are_refused(name):
    with pytest.raises(InputError, match="not allowed"):
        check_relative_name(name, "model name")


@pytest.mark.parametrize("name", ["sam_vit_b.pth", "sub/folder/model.safetensors", "a b.pth"])
def test_plain_names_are_accepted(name):
    check_relative_name(name, "model name")
