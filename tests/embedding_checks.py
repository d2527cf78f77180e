"""What every image-embedding family promises its callers (RefFilter, the evaluation scores):
(N, D) float32 CPU vectors of unit length, the same whatever the batch size, cosine 1 for the
same image. One place, so the open_clip and DINO tests check the same contract."""

from __future__ import annotations

import pytest
import torch


def assert_embedding_contract(encoder, images: list, dim: int, unrelated_below: float) -> None:
    """``images[0]`` and ``images[3]`` must differ; their cosine must stay under
    ``unrelated_below`` (random tiny models separate images only so far)."""
    batched = encoder.embed_images(images, batch_size=3)
    assert batched.shape == (len(images), dim) and batched.dtype == torch.float32
    assert batched.device.type == "cpu"
    torch.testing.assert_close(batched.norm(dim=1), torch.ones(len(images)))
    one_by_one = torch.cat([encoder.embed_images([image]) for image in images])
    torch.testing.assert_close(batched, one_by_one, atol=1e-5, rtol=0)

    vectors = encoder.embed_images([images[0], images[0].copy(), images[3]])
    assert float(vectors[0] @ vectors[1]) == pytest.approx(1.0, abs=1e-6)
    assert float(vectors[0] @ vectors[2]) < unrelated_below
