"""The real embedding model: offline resolution, off-loop embedding, cache, bad model paths."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from proxy.embeddings import FastEmbedder, ModelNotFound, bundled_model_dir, check_model_dir
from proxy.settings import EmbeddingSettings

pytestmark = pytest.mark.model


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


async def test_bundled_model_embeds_offline_and_caches_queries(tmp_path: Path) -> None:
    embedder = FastEmbedder(EmbeddingSettings(cache_size=2), tmp_path)
    await embedder.start()
    assert embedder.dims == 384
    refund = await embedder.embed("What is the refund window at Acme Corp?")
    paraphrase = await embedder.embed("Can I still get a refund from Acme Corp after a month?")
    unrelated = await embedder.embed("Write a haiku about autumn leaves.")
    assert cosine(refund, paraphrase) > 0.65 > 0.2 > cosine(refund, unrelated)
    assert await embedder.embed("What is the refund window at Acme Corp?") is not refund  # evicted (size 2)
    again = await embedder.embed("Write a haiku about autumn leaves.")
    assert again is unrelated
    embedder.close()


async def test_explicit_model_path_is_used(tmp_path: Path) -> None:
    directory = bundled_model_dir(tmp_path / "models")
    assert directory is not None and check_model_dir(directory) == directory
    embedder = FastEmbedder(EmbeddingSettings(model_path=directory), tmp_path / "other")
    await embedder.start()
    assert embedder.dims == 384
    assert not (tmp_path / "other").exists()
    embedder.close()


def test_incomplete_model_path_names_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(ModelNotFound, match=r"lacks tokenizer\.json, tokenizer_config\.json"):
        check_model_dir(tmp_path)
