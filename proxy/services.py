"""Everything the proxy holds while it runs, built once from settings (no module globals)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from injectors import load_registry
from policies import PolicyStore, shipped_policies_dir
from proxy.access.console import ConsoleSessions
from proxy.access.keys import KeyRing
from proxy.access.tokens import FeedbackTokens, token_secret
from proxy.chat.asking import AskBudget, Evidence
from proxy.chat.rephrase import cosine, says_again
from proxy.chat.request import Identity
from proxy.chat.signals import ConversationSignals, DetectedSignal, Observation, Seen, implicit_feedback
from proxy.embeddings import Embedder, FastEmbedder
from proxy.jobs import default_jobs, follow_keys, run_jobs
from proxy.learning.feedback import Authority, Recorded, record_feedback
from proxy.learning.index import LessonIndex
from proxy.learning.profiles import Profiles
from proxy.metrics import Gauges, Metrics
from proxy.privacy import Redactor
from proxy.records import Feedback
from proxy.settings import Settings, secret_value
from proxy.storage import TrailDB, heads
from proxy.storage.db import describe
from proxy.upstream import Adapters, Router
from proxy.vectors import VectorIndex

log = logging.getLogger("loopwise.signals")


def open_vector_index(settings: Settings, dims: int, tidy: bool = False) -> VectorIndex:
    """The configured index; `tidy` (a serving proxy, which holds the data directory's lock)
    also removes generations of the embedded index that are no longer served."""
    store = settings.vector_store
    if store.url:
        from proxy.vectors.server import QdrantServerIndex

        key = store.api_key.get_secret_value() if store.api_key else None
        return QdrantServerIndex(store.url, store.collection, dims, key)
    from proxy.vectors import generations
    from proxy.vectors.edge import EdgeIndex

    for stale in generations.remove_stale(settings.vector_path) if tidy else ():
        logging.getLogger("loopwise.index").info("removed %s, an index generation no longer served", stale)
    return EdgeIndex(settings.vector_path, dims)


_FIELD = {"seen_at": "at"}  # a session head's column -> its `Seen` field, where the names differ


def index_identity(settings: Settings) -> str:
    """The configured index's name in the DB's cursors (`storage/changes`): a Qdrant server's
    collection, shared by every replica that names it; an embedded index's own id, kept in its
    directory (a new directory is a new, empty index, which follows the DB from the start)."""
    store = settings.vector_store
    if store.url:
        return "qdrant-" + hashlib.sha256(f"{store.url}\x00{store.collection}".encode()).hexdigest()[:24]
    marker = settings.vector_path / "index-id"
    try:
        return marker.read_text().strip()
    except FileNotFoundError:
        settings.vector_path.mkdir(parents=True, exist_ok=True)
        identity = f"edge-{uuid.uuid4().hex}"
        marker.write_text(identity)
        return identity


@dataclass
class Services:
    settings: Settings
    db: TrailDB
    embedder: Embedder
    index: LessonIndex
    policies: PolicyStore
    router: Router
    signals: ConversationSignals  # the implicit signals read from each session
    keys: KeyRing
    tokens: FeedbackTokens
    redactor: Redactor
    profiles: Profiles
    asks: AskBudget = field(default_factory=AskBudget)  # requests for feedback given, per session and user
    evidence: Evidence = field(default_factory=Evidence)  # how often each lesson was judged
    console: ConsoleSessions = field(default_factory=lambda: ConsoleSessions(None))
    metrics: Metrics = field(default_factory=Metrics)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.metrics.read(
            Gauges(
                trail_queued=lambda: self.db.queued,
                trail_errors=lambda: self.db.write_errors,
                graph_building=lambda: self.index.graph.running,
            )
        )

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run background work, keeping a reference so it is not collected mid-flight."""
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def observe(
        self,
        turn_id: str,
        identity: Identity,
        messages: list[dict[str, Any]],
        question: str,
        embedded: bool = True,
    ) -> None:
        """Every arriving turn, for the implicit signals it may raise about earlier turns of its
        session (`ConversationSignals` says which): a regeneration, a regeneration accepted, and,
        off the request path, a rephrase. The rephrase check rides on recall's embedding of the
        question (`embedded`: recall ran, so the vector is a cache hit); a turn recall did not
        embed is not checked, so the check adds no embedding of its own to a request. Never
        raises: a request does not fail for its signals."""
        try:
            scope = (identity.tenant, identity.app, identity.user_id)
            if self.settings.shared_database:  # a session's turns may reach any replica
                read = self.signals.read(identity.session_id, messages, turn_id, scope)
                if read is not None:
                    self.spawn(self._observe_shared(*read, messages, question, embedded))
                return
            seen = self.signals.observe(identity.session_id, messages, turn_id, scope)
        except Exception:  # contained: the request goes on without signals
            log.exception("implicit signals skipped for %s", turn_id)
            return
        self._act(seen, turn_id, question, embedded)

    async def _observe_shared(
        self, key: str, current: Seen, messages: list[dict[str, Any]], question: str, embedded: bool
    ) -> None:
        """`observe` with the session's latest request in the shared DB (`storage/heads`), off the
        request path: read it, compare, keep this one."""
        try:
            found: list[Observation] = []

            def follow(head: dict[str, Any] | None) -> dict[str, Any]:  # on the DB thread
                known = Seen(**{_FIELD.get(k, k): v for k, v in head.items()}) if head else None
                if known is not None and known.at > current.at:  # a later request got here first
                    found.append(self.signals.overtaken(key, current, known))
                    kept = known
                else:
                    found.append(self.signals.compare(key, known, current, messages))
                    kept = current
                return {c: getattr(kept, _FIELD.get(c, c)) for c in heads.COLUMNS}

            await self.db.run(partial(heads.swap, key=key, follow=follow))
            seen = found[0]
        except Exception as exc:  # noqa: BLE001 - a signal is never worth a failure
            log.warning(
                "implicit signals skipped for %s: %s: %s", current.interaction_id, type(exc).__name__, exc
            )
            return
        self._act(seen, current.interaction_id, question, embedded)

    def _act(self, seen: Observation, turn_id: str, question: str, embedded: bool) -> None:
        """Record what an observation found; check a rephrase off the request path."""
        if seen.regenerates:
            self.signal(seen.regenerates, "regenerate", related=turn_id)
        if seen.regenerated_by:
            self.signal(turn_id, "regenerate", related=seen.regenerated_by)
        accepted, candidate = seen.accepted, seen.rephrase
        checked = bool(seen.embeds and seen.key and embedded)  # the rephrase check runs
        if accepted and not (checked and candidate is not None):  # nothing can veto it: accepted
            self.signal(accepted[0], "preferred", related=accepted[1])
        if not (checked and seen.key):
            return
        key = seen.key

        async def rephrased() -> None:  # the question's vector is a cache hit when recall ran
            again = False
            try:
                vector = await self.embedder.embed(question)
                self.signals.remember(key, turn_id, vector)
                if candidate is not None:
                    before = candidate.vector or await self.embedder.embed(candidate.question)
                    again = says_again(candidate.question, question, cosine(before, vector))
            except Exception as exc:  # noqa: BLE001 - a signal is never worth a failure
                log.warning("rephrase check skipped for %s: %s: %s", turn_id, type(exc).__name__, exc)
                return
            if again and candidate is not None:
                self.signal(candidate.interaction_id, "rephrase", related=turn_id)
            elif accepted and candidate is not None:  # going on accepts it, unless to ask again
                self.signal(accepted[0], "preferred", related=accepted[1])

        self.spawn(rephrased())

    async def record_feedback(self, feedback: Feedback, authority: Authority) -> Recorded:
        """Feedback through the feedback path, counted in the metrics once it is stored."""
        recorded = await record_feedback(feedback, self.db, self.policies.current, self.index, authority)
        if recorded.kept:
            self.metrics.observe_feedback(recorded.feedback)
        for owner in dict.fromkeys((p.tenant, p.user_id) for p in recorded.preferences):
            self.profiles.forget(*owner)
        return recorded

    def signal(self, interaction: str, signal: DetectedSignal, related: str | None = None) -> None:
        """Implicit feedback the proxy saw itself, recorded in the background; a failure (the
        interaction erased meanwhile, the DB closing) is logged, never raised."""
        feedback = implicit_feedback(interaction, signal, related)
        authority = Authority(redactor=self.redactor)

        async def record() -> None:
            try:
                await self.record_feedback(feedback, authority)
            except Exception as exc:  # noqa: BLE001 - nobody waits on implicit feedback
                log.warning("implicit %s on %s not recorded: %s", signal, interaction, exc)

        self.spawn(record())


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    vector_index: VectorIndex | None = None,
    background: bool = True,
) -> AsyncIterator[Services]:
    """Open every component; on exit flush the trail and close in reverse order."""
    access = settings.access
    master = secret_value(access.master_key)
    signing_key = token_secret(secret_value(access.token_secret), master)
    registry = load_registry()
    policies = PolicyStore(settings.policies_dir or shipped_policies_dir(), registry)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if embedder is None:
        fast = FastEmbedder(settings.embedding, settings.data_dir / "models")
        await fast.start()
        embedder = fast
    vectors = vector_index or open_vector_index(settings, embedder.dims, tidy=background)
    identity = None if vector_index is not None else index_identity(settings)
    index = LessonIndex(vectors, embedder, settings.vector_store.graph_after, identity)
    privacy = settings.privacy
    redactor = Redactor(privacy.redact, privacy.phone_region)
    db = TrailDB(settings.database, redactor.interaction if privacy.redact_trail and privacy.redact else None)
    await db.open()
    adapters = Adapters(settings.upstream)
    if background:
        adapters.start(settings.model_list)
    services = Services(
        settings=settings,
        db=db,
        embedder=embedder,
        index=index,
        policies=policies,
        router=Router(settings.model_list, adapters, settings.upstream),
        signals=ConversationSignals(settings.feedback.regenerate_window_s),
        keys=KeyRing(master),
        tokens=FeedbackTokens(signing_key, access.feedback_token_ttl_s),
        redactor=redactor,
        profiles=Profiles(db),
        console=ConsoleSessions(signing_key),
    )
    await follow_keys(db, services.keys)
    try:
        await index.reconcile(db)
    except Exception as exc:  # noqa: BLE001 - serve anyway; the periodic sync retries
        index.sync_error = describe(exc)
    window = settings.feedback.regenerate_window_s
    retention = privacy.retention_days
    jobs = default_jobs(
        policies, db, index, services.keys, retention, window, services.console, services.evidence
    )
    running = run_jobs(jobs, db) if background else []
    if isinstance(embedder, FastEmbedder):
        static = embedder.load_static()
        running.append(asyncio.create_task(index.start_gate(db, static, settings.embedding.window_tokens)))
    try:
        yield services
    finally:
        for task in running:
            task.cancel()
        if services.tasks:  # implicit feedback in flight: let it commit
            await asyncio.wait(list(services.tasks), timeout=10)
        await asyncio.gather(*running, return_exceptions=True)
        await adapters.aclose()
        await db.close()
        index.close()
        if isinstance(embedder, FastEmbedder):
            embedder.close()
