"""Lexical evidence for recall: which of the lessons found shares the turn's distinctive words.

Sentence vectors barely see a name or a number: "What is the refund window at Brixcos Labs?"
and the same question about another shop score alike, so the margin rule calls the match
ambiguous. The words that tell such lessons apart are the ones few of the lessons found share,
so each word is weighted by its inverse frequency among the found lessons' questions (a local
IDF: no corpus statistics to keep, and a word every candidate shares counts for nothing).
Written by hand: the candidate set is a dozen short questions, and a BM25 library needs a
corpus-wide index this does not."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

WORD = re.compile(r"\w+")


def words(text: str) -> frozenset[str]:
    return frozenset(WORD.findall(text.lower()))


def overlap(turn: str, questions: Sequence[str]) -> list[float]:
    """For each question, in [-1, 1]: the weight of its words the turn has, less the weight of
    those it lacks, over the weight of all its words (1: every word in the turn)."""
    said = words(turn)
    asked = [words(q) for q in questions]
    seen = Counter(w for q in asked for w in q)
    count = len(asked)

    def weight(word: str) -> float:
        return math.log((count + 1) / (seen[word] + 0.5))

    out = []
    for question in asked:
        total = sum(weight(w) for w in question)
        shared = sum(weight(w) for w in question & said)
        out.append((2 * shared - total) / total if total > 0 else 0.0)
    return out
