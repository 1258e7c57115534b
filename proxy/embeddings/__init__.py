"""Embedding text for recall: the bundled offline model (run by onnxruntime directly) or any
fastembed model, off the event loop, with a cache of recent query vectors."""

from proxy.embeddings.model import (
    Embedder,
    FastEmbedder,
    ModelNotFound,
    bundled_model_dir,
    check_model_dir,
    sha256_file,
)

__all__ = ["Embedder", "FastEmbedder", "ModelNotFound", "bundled_model_dir", "check_model_dir", "sha256_file"]
