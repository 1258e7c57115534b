"""Lessons of the other kinds users give, beside bench/learning_set.py's made-up facts: a house
format, a house style, answers that left something out, procedures, and feedback with a category
(and at most a comment) but no correction. Each has its own test of a right answer (`check`), and
two paraphrases asked by other users. Made-up names, so the model cannot know them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+\S", re.MULTILINE)


def bullets(count: int) -> Callable[[str], bool]:
    return lambda answer: len(BULLET.findall(answer)) >= count


def all_of(*parts: str) -> Callable[[str], bool]:
    return lambda answer: all(p.lower() in answer.lower() for p in parts)


def in_order(*steps: str) -> Callable[[str], bool]:
    def check(answer: str) -> bool:
        at = [answer.lower().find(s.lower()) for s in steps]
        return all(i >= 0 for i in at) and at == sorted(at)

    return check


def starts_with(prefix: str) -> Callable[[str], bool]:
    return lambda answer: answer.strip().lower().startswith(prefix.lower())


def at_most_words(count: int) -> Callable[[str], bool]:
    return lambda answer: len(answer.split()) <= count


def has_number(answer: str) -> bool:
    return bool(re.search(r"\d", answer))


@dataclass(frozen=True)
class Taught:
    kind: str
    category: str
    question: str
    correction: str | None  # None: a category (and the comment) only
    comment: str | None
    check: Callable[[str], bool]
    rule: str  # the check in words, for the report
    paraphrases: tuple[str, str]


KINDS: list[Taught] = [
    Taught(
        "format",
        "other",
        "What does the Zentrix Pro plan include?",
        "- Unlimited projects\n- Priority support\n- 2 TB of storage",
        "Answer in three bullet points.",
        bullets(3),
        "three or more bullet lines",
        ("What do I get with a Zentrix Pro plan?", "Which features come with the Zentrix Pro plan?"),
    ),
    Taught(
        "format",
        "other",
        "When is the Orvane bakery open at the weekend?",
        "- Saturday: 7:00 to 14:00\n- Sunday: 8:00 to 12:00\n- Public holidays: closed",
        "Use one bullet per day.",
        bullets(3),
        "three or more bullet lines",
        (
            "What are Orvane bakery's weekend opening hours?",
            "At what times does the Orvane bakery open on weekends?",
        ),
    ),
    Taught(
        "style",
        "wrong_tone",
        "When can I call Pixeldock support?",
        "Dear customer, Pixeldock support answers calls from 9:00 to 17:00 on weekdays.",
        "Our house style: every answer begins with 'Dear customer,'.",
        starts_with("Dear customer"),
        "begins with 'Dear customer'",
        (
            "What are the hours of Pixeldock's phone support?",
            "At what time can I phone Pixeldock's support team?",
        ),
    ),
    Taught(
        "style",
        "wrong_tone",
        "Can I change my Veltro Rentals booking?",
        "Dear customer, you can change a Veltro Rentals booking free of charge up to 48 hours before pick-up.",
        "Begin with 'Dear customer,' as we always do.",
        starts_with("Dear customer"),
        "begins with 'Dear customer'",
        (
            "Is it possible to modify a Veltro Rentals reservation?",
            "How can I alter my booking with Veltro Rentals?",
        ),
    ),
    Taught(
        "incomplete",
        "incomplete",
        "What do I need to open an account at Brightbank?",
        "To open a Brightbank account you need a passport, a utility bill from the last three months "
        "and a first deposit of 25 euros.",
        None,
        all_of("passport", "utility bill", "25"),
        "names the passport, the utility bill and the 25 euros",
        (
            "Which documents does Brightbank ask for to open an account?",
            "What is required to become a Brightbank customer?",
        ),
    ),
    Taught(
        "incomplete",
        "incomplete",
        "What do I need to rent a car from Veltro Rentals?",
        "Veltro Rentals needs a driving licence held for at least two years, a credit card in your name "
        "and your printed booking code.",
        None,
        all_of("two years", "credit card", "booking code"),
        "names the two years, the credit card and the booking code",
        (
            "What are the requirements to hire a car at Veltro Rentals?",
            "Which documents must I bring to pick up a Veltro Rentals car?",
        ),
    ),
    Taught(
        "procedure",
        "incomplete",
        "How do I reset my Pixeldock password?",
        "1. Open Settings. 2. Choose Security. 3. Press 'Send reset code' and type the 6-digit code from the email.",
        None,
        in_order("Settings", "Security", "reset code"),
        "Settings, then Security, then the reset code",
        (
            "What are the steps to change a forgotten Pixeldock password?",
            "How can I recover access to my Pixeldock account password?",
        ),
    ),
    Taught(
        "procedure",
        "incomplete",
        "How do I cancel a Zentrix subscription?",
        "1. Sign in to Zentrix. 2. Open Billing. 3. Click 'End plan' and confirm with your PIN.",
        None,
        in_order("Billing", "End plan", "PIN"),
        "Billing, then End plan, then the PIN",
        ("What are the steps to end my Zentrix plan?", "How can I stop my Zentrix subscription?"),
    ),
    Taught(
        "category only",
        "other",
        "Tell me about the Orvane loyalty card.",
        None,
        "Far too long. One or two sentences, please.",
        at_most_words(30),
        "30 words or fewer",
        ("What is the Orvane loyalty card?", "Explain the Orvane bakery loyalty card to me."),
    ),
    Taught(
        "category only",
        "other",
        "What is the Zentrix referral programme?",
        None,
        "Too long; keep it to two sentences.",
        at_most_words(30),
        "30 words or fewer",
        ("How does the Zentrix referral programme work?", "Explain Zentrix's referral programme."),
    ),
    Taught(
        "category only",
        "too_vague",
        "How long does a Brightbank transfer take?",
        None,
        None,
        has_number,
        "gives a number",
        (
            "How many days does Brightbank need to process a transfer?",
            "When does a Brightbank transfer arrive?",
        ),
    ),
    Taught(
        "category only",
        "too_vague",
        "How much does shipping cost at Orvane's online shop?",
        None,
        None,
        has_number,
        "gives a number",
        (
            "What is the delivery fee for Orvane online orders?",
            "How expensive is shipping from the Orvane web shop?",
        ),
    ),
]
