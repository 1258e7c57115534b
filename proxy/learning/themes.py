"""Failure themes: the lessons grouped by what they are about, so a product team sees what to fix
at the source (a prompt, a document, a tool) rather than lesson by lesson.

Grouping is greedy and single-pass over the newest lessons: each joins the theme whose first
lesson (its leader) it is nearest, if near enough, else starts one. A hand-written leader clustering, not a
library's: the lessons' vectors are already normalised model embeddings, a few thousand at most,
and one matrix product groups them in milliseconds with numpy alone."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NEAR = 0.6  # cosine between a lesson's question and a theme's leader (MiniLM: paraphrases ~0.6-0.9)


@dataclass
class Theme:
    leader: dict[str, Any]
    lessons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.lessons)

    def categories(self, top: int = 3) -> list[tuple[str, int]]:
        counted = Counter(c for lesson in self.lessons for c in lesson.get("categories") or ())
        return counted.most_common(top)

    def examples(self, top: int = 3) -> list[dict[str, Any]]:
        return self.lessons[:top]


def group(lessons: list[tuple[dict[str, Any], bytes]], near: float = NEAR, top: int = 10) -> list[Theme]:
    """The `top` largest themes among `lessons` (fields, float32 vector bytes), largest first."""
    lessons = [(fields, vector) for fields, vector in lessons if len(vector) == len(lessons[0][1])]
    if not lessons:
        return []
    vectors = np.frombuffer(b"".join(vector for _, vector in lessons), dtype=np.float32).reshape(
        len(lessons), -1
    )
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    similar = vectors @ vectors.T  # every pair at once: one product, then a walk in order
    leaders = np.empty(len(lessons), dtype=np.intp)  # the first len(themes) are in use
    themes: list[Theme] = []
    for i, (fields, _) in enumerate(lessons):
        if themes:
            scores = similar[i, leaders[: len(themes)]]
            best = int(np.argmax(scores))
            if scores[best] >= near:
                themes[best].lessons.append(fields)
                continue
        leaders[len(themes)] = i
        themes.append(Theme(fields, [fields]))
    return sorted(themes, key=lambda t: -t.count)[:top]
