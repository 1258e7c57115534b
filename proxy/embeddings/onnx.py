"""The one owner of onnxruntime: a sentence-transformers ONNX model run directly.

For a local model directory (the bundled int8 all-MiniLM-L6-v2, or `embedding.model_path`) this
is what fastembed does (tokenize, run, mean-pool over the attention mask, L2-normalise) without
importing fastembed's model zoo: measured ~60 MB less resident memory for the same vectors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

MAX_TOKENS = 512


class OnnxSentenceModel:
    def __init__(self, directory: Path, threads: int) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-wait
        self._session = ort.InferenceSession(
            str(directory / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.no_padding()  # one query at a time: no padding to a fixed length
        if self._tokenizer.truncation is None:  # keep the model's own limit (128 for MiniLM)
            self._tokenizer.enable_truncation(MAX_TOKENS)

    def embed(self, text: str) -> list[float]:
        encoded = self._tokenizer.encode(text)
        ids = np.array([encoded.ids], dtype=np.int64)
        mask = np.array([encoded.attention_mask], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        vector = pooled[0] / max(float(np.linalg.norm(pooled[0])), 1e-12)
        return [float(x) for x in vector]

    def token_vectors(self, batch: int = 1024) -> np.ndarray:
        """Every vocabulary token run through the model alone (`[CLS] token [SEP]`, mean-pooled):
        the raw table a static embedding is distilled from. ~30 s for MiniLM on one thread."""
        size = self._tokenizer.get_vocab_size()
        cls, sep = self._tokenizer.token_to_id("[CLS]"), self._tokenizer.token_to_id("[SEP]")
        if cls is None or sep is None:
            raise ValueError("the tokenizer has no [CLS]/[SEP] tokens to frame single tokens with")
        table: np.ndarray | None = None
        for start in range(0, size, batch):
            ids = np.arange(start, min(size, start + batch), dtype=np.int64)
            framed = np.stack([np.full_like(ids, cls), ids, np.full_like(ids, sep)], axis=1)
            feeds = {"input_ids": framed, "attention_mask": np.ones_like(framed)}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(framed)
            pooled = self._session.run(None, feeds)[0].mean(axis=1)
            if table is None:
                table = np.zeros((size, pooled.shape[1]), dtype=np.float32)
            table[start : start + len(ids)] = pooled
        assert table is not None
        return table
