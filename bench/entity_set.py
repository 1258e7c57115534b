"""A retrieval set of lessons that differ only in an entity: made-up company names, eight
questions about each, one lesson (with its own correction) per name and question. Test
questions are half repeats with a few words added and half paraphrases, so a matcher must see
the name (dense sentence vectors barely do) as well as the question (which lexical matching
alone misses in a paraphrase). Generated, so it holds no real names: `questions(seed)`."""

from __future__ import annotations

import random
from dataclasses import dataclass

SYLLABLES = (
    "zor",
    "quel",
    "brix",
    "tam",
    "vel",
    "nox",
    "dra",
    "kip",
    "lum",
    "sar",
    "fen",
    "oct",
    "mir",
    "gal",
    "pex",
    "ruv",
    "tor",
    "wyn",
    "hal",
    "cos",
)
SUFFIXES = ("Labs", "Goods", "Supply", "Works", "Trading", "Outfitters")
# (lesson question, paraphrase): the paraphrase shares the name and little else
QUESTIONS = (
    ("What is the refund window at {x}?", "How many days do I have to send something back to {x}?"),
    ("Who is the CEO of {x}?", "Who runs {x} these days?"),
    ("When was {x} founded?", "What year did {x} get started?"),
    ("Where is {x} headquartered?", "In which city is the head office of {x}?"),
    ("What are the opening hours of {x}?", "When is {x} open during the week?"),
    ("Does {x} ship internationally?", "Can {x} deliver my order abroad?"),
    ("What is the support phone number for {x}?", "How do I call customer service at {x}?"),
    ("How much does shipping cost at {x}?", "What is the delivery fee when I order from {x}?"),
)
PADDING = (
    ("Quick question: ", ""),
    ("", " Thanks!"),
    ("Hi, ", " I need to know today."),
    ("Sorry to bother you, ", ""),
    ("", " Please be brief."),
    ("Hello again. ", ""),
)


@dataclass(frozen=True)
class Case:
    question: str
    lesson: int  # the index of the lesson it should get
    kind: str  # repeat | paraphrase


def names(count: int, rng: random.Random) -> list[str]:
    seen: set[str] = set()
    while len(seen) < count:
        word = "".join(rng.sample(SYLLABLES, 2)).capitalize()
        seen.add(f"{word} {rng.choice(SUFFIXES)}")
    return sorted(seen)


def questions(seed: int = 11, count: int = 144) -> tuple[list[tuple[str, str]], list[Case]]:
    """The lessons (question, correction) and the test cases, one repeat and one paraphrase per
    lesson."""
    rng = random.Random(seed)
    lessons: list[tuple[str, str]] = []
    cases: list[Case] = []
    for name in names(count, rng):
        for n, (asked, paraphrase) in enumerate(QUESTIONS):
            number = len(lessons)
            lessons.append((asked.format(x=name), f"[lesson:{number}] the answer {n} for {name}"))
            before, after = rng.choice(PADDING)
            said = asked.format(x=name)
            cases.append(
                Case(f"{before}{said[0].lower() if before else said[0]}{said[1:]}{after}", number, "repeat")
            )
            cases.append(Case(paraphrase.format(x=name), number, "paraphrase"))
    return lessons, cases
