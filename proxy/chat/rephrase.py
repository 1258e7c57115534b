"""When a new user turn says the previous one again: the embedding's similarity, less the
replies that only acknowledge and the follow-ups that keep the question and add to it."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from proxy.chat.digests import MAX_COMPARED, normal

# Cosine similarity (all-MiniLM-L6-v2) from which a new user turn says the previous one again.
# Calibrated on CLINC150 by bench/rephrase_threshold.py (same intent = paraphrase): the lowest
# threshold whose precision, with one rephrase per ten related next turns, is >= 0.9 on the
# validation split; on the test split it finds 31% of paraphrases, precision 0.99 (1:1) and 0.89
# (1:9), 0.4% false positives among same-domain questions, 0.2% among follow-ups adding content.
REPHRASE_SIMILARITY = 0.60
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
FUNCTION_WORDS = frozenset(
    {
        "a", "an", "the", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did",
        "doing", "have", "has", "had", "i", "me", "my", "we", "our", "you", "your", "it", "its", "this",
        "that", "these", "those", "to", "of", "in", "on", "at", "for", "from", "by", "with", "about", "as",
        "into", "and", "or", "but", "if", "so", "not", "no", "can", "could", "would", "should", "will",
        "shall", "may", "might", "must", "please", "just", "what", "which", "who", "whom", "how", "when",
        "where", "why", "there", "here", "any", "some", "again", "then", "than", "too", "very", "also",
        "still", "more", "much", "one",
    }
)  # fmt: skip
ACKNOWLEDGEMENTS = frozenset(
    {
        "ok", "okay", "k", "kk", "thanks", "thank", "thx", "ty", "great", "cool", "nice", "perfect",
        "good", "fine", "yes", "yeah", "yep", "no", "nope", "sure", "got", "it", "awesome", "alright",
        "right", "understood", "wow", "lol", "hmm", "hm", "thats", "that's", "that", "is", "all", "done",
        "bye", "cheers", "appreciated", "helpful", "very", "much", "you", "so", "lot",
    }
)  # fmt: skip


def words(text: str) -> list[str]:
    """The words of a text's first MAX_COMPARED characters (bounded work for any message)."""
    return WORD.findall(text[:MAX_COMPARED].casefold())


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in FUNCTION_WORDS}


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def acknowledges(text: str) -> bool:
    """'thanks', 'ok great', 'perfect, thank you!': a reply to an answer, not a question again."""
    said = words(text)
    return not said or all(w in ACKNOWLEDGEMENTS or w in FUNCTION_WORDS for w in said)


def adds_content(before: str, after: str) -> bool:
    """A follow-up that keeps (nearly) every content word of the earlier turn and adds its own
    ('what is the refund window' -> 'what is the refund window for electronics')."""
    earlier, later = content_words(before), content_words(after)
    if not earlier:
        return bool(later)
    kept = len(earlier & later) / len(earlier)
    return kept >= 0.8 and bool(later - earlier)


def says_again(before: str, after: str, similarity: float, threshold: float = REPHRASE_SIMILARITY) -> bool:
    """Whether the user turn `after` says `before` again: the same words, or other words meaning
    the same (similar enough), and neither an acknowledgement nor a follow-up adding content."""
    if normal(before) == normal(after):
        return bool(words(after)) and not acknowledges(after)
    if acknowledges(after) or adds_content(before, after):
        return False
    return similarity >= threshold
