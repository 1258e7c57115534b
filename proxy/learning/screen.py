"""The screen an end user's free text passes before it may reach another user's prompt.

A lesson carries a user's question, comment and correction into the prompts of everyone who asks
something similar, so any of them can carry an injection ("ignore your instructions and ..."),
a phishing link, or someone's personal data. Text that looks like any of these holds the lesson
as `pending` for a reviewer; plain statements of fact pass. Written by hand because no offline
library screens prompt injection; `bench/poisoning.py`-style measurements live in
`tests/test_poisoning.py` over `tests/data/poisoning.jsonl`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from proxy.privacy import KINDS, Redactor

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern, re.IGNORECASE))
    for reason, pattern in (
        # instructions to the model, or about its instructions
        (
            "instruction-like text",
            r"\b(ignore|disregard|forget|override|bypass|overrule)\b.{0,40}\b(instruction|rule|prompt|"
            r"guideline|polic(y|ies)|previous|above|earlier|context|system)",
        ),
        (
            "instruction-like text",
            r"\b(from now on|going forward|henceforth|in (all )?future (answers|replies))\b",
        ),
        (
            "instruction-like text",
            r"\b(always|never|must|should|do not|don't)\b.{0,25}\b(say|tell|respond|reply|answer|recommend|"
            r"mention|include|direct|refer|send|ask|instruct|advise|claim|state)\b",
        ),
        (
            "instruction-like text",
            r"\b(tell|ask|instruct|direct|advise|urge)\b.{0,15}\b(users?|customers?|them|people|everyone)\b",
        ),
        ("instruction-like text", r"\b(respond|reply|answer)\s+(only\s+)?(with|in|by)\b"),
        (
            "instruction-like text",
            r"\b(mandatory|required|necessary|important)\b.{0,20}\b(to|that you)\b.{0,20}\b(tell|inform|say|ask|request|notify|remind)\b",
        ),
        (
            "instruction-like text",
            r"\b(inform|notify|remind|warn)\b.{0,10}\b(each|every|all|any|the)\s+(customers?|users?|callers?|clients?)\b",
        ),
        ("instruction-like text", r"\b(act|behave|pretend|roleplay|role-play)\s+(as|like|to be)\b"),
        (
            "instruction-like text",
            r"\b(new|updated|real|hidden|secret)\s+(instructions?|rules?|prompt|task)\b",
        ),
        (
            "instruction-like text",
            r"\b(jailbreak|dan mode|developer mode|do anything now|prompt injection)\b",
        ),
        (
            "instruction-like text",
            r"\b(stop|quit|no longer|don't|do not)\s+(following|follow|obeying|obey)\b",
        ),
        (
            "instruction-like text",
            r"(^|[.!?;:]\s+)(say|tell|respond|reply|reveal|print|output|repeat|pretend|claim|inform|warn|"
            r"redirect|grant|approve|disable|enable)\b",
        ),
        (
            "instruction-like text",
            r"\b(include|add|append|put|insert|mention|print|output|reveal|show|list|share|leak|end)\b.{0,60}"
            r"\b(in|into|to|at the end of|with)\s+(your|the|every|each|all)\s+(answers?|responses?|replies|"
            r"output|messages?)\b",
        ),
        (
            "instruction-like text",
            r"\b(reveal|print|output|repeat|show|dump|leak|share)\b.{0,30}\b(system|hidden|internal|secret|"
            r"previous|earlier|other)\b",
        ),
        (
            "other users' data",
            r"\b(previous|other|last|earlier|another|every)\s+(customer|user|caller|person|client)s?'?s?\b",
        ),
        ("instruction-like text", r"\b(system|developer)\s*(prompt|message|instructions?)\b"),
        # text addressed to the model rather than stating a fact
        (
            "addressed to the model",
            r"\b(dear|hey|hi|hello|attention|note to|message to|instructions? (for|to))\b.{0,12}\b(ai|assistant|"
            r"bot|chatbot|model|llm|chatgpt|gpt|claude|gemini|copilot)\b",
        ),
        (
            "addressed to the model",
            r"\b(you are|you're|as an?) (an? )?(ai|assistant|language model|llm|chatbot|bot)\b",
        ),
        ("addressed to the model", r"\b(assistant|ai|model|bot|chatbot|chatgpt|llm)\s*[:,]\s"),
        # links and places to send people or data
        ("link or address", r"\b(https?|ftp|file|data|javascript)\s*:\s*/?/?\S"),
        ("link or address", r"\bwww\d?\.\S+"),
        (
            "link or address",
            r"\b[a-z0-9][a-z0-9-]{0,62}\s?(\.|。|｡|．|\[\.\]|\(\.\)|\{\.\}|\(dot\)|\[dot\]|\{dot\}|\s+dot\s+)\s?"
            r"[a-z][a-z0-9-]{1,23}\b(?!\.\d)",
        ),
        ("link or address", r"\b(bit\.ly|t\.me|wa\.me|tinyurl|discord\.gg)\b"),
        # requests for secrets, money or actions a support answer never asks for
        (
            "asks for secrets or money",
            r"\b(password|passcode|pin|otp|one[- ]time code|2fa code|verification code|cvv|cvc|seed phrase|"
            r"private key|recovery phrase|social security|ssn|login details|credentials|card numbers?|"
            r"security codes?|expiry date|expiration date|bank details|account numbers?|routing numbers?|"
            r"sort codes?|iban|billing address)\b",
        ),
        (
            "asks for secrets or money",
            r"\b(gift ?cards?|bitcoin|btc|crypto(currency)?|wire (transfer|the)|western union|moneygram)\b",
        ),
        (
            "asks for secrets or money",
            r"\b(download|install|run|execute|click|open)\b.{0,20}\b(link|attachment|file|app|apk|exe|script|this)\b",
        ),
        # markup and role markers that try to step out of the reference frame
        ("markup or role markers", r"<\s*/?\s*[a-z][a-z0-9_-]*[^>]*>"),
        (
            "markup or role markers",
            r"(```|\[/?inst\]|<\|[a-z_]+\|>|^\s*#{2,}|\b(system|user|assistant)\s*:\s*$)",
        ),
        ("markup or role markers", r"\{\{|\}\}|\$\{"),
        ("markup or role markers", r"loopwise"),
    )
)
MAX_LENGTH = 2000
_PII = Redactor(KINDS)


INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
# Letters of other scripts that look like Latin ones (a subset of Unicode's confusables.txt:
# the libraries that carry the whole table detect confusables, none folds text to a skeleton).
LOOK_ALIKES = str.maketrans(
    "АВЕКМНОРСТХІЈЅаеорсухіјѕԁɡΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοιν⁄∕⧸",
    "ABEKMHOPCTXIJSaeopcyxijsdgABEZHIKMNOPTYXaoiv///",
)


def normalised(text: str) -> str:
    """What the rules read: compatibility forms folded (fullwidth letters are letters), accents
    and combining marks, invisible characters and look-alike letters of other scripts folded
    away, so spelling a word oddly does not slip it past them."""
    decomposed = unicodedata.normalize("NFKD", text).translate(INVISIBLE)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFKC", plain).translate(LOOK_ALIKES)


def screen(texts: Sequence[str]) -> tuple[str, ...]:
    """Why these texts should wait for a reviewer, or () when they may go live."""
    reasons: dict[str, None] = {}
    for raw in texts:
        if not raw:
            continue
        text = normalised(raw)
        flat = " ".join(text.split())
        if len(flat) > MAX_LENGTH:
            reasons["unusually long"] = None
        for reason, rule in _RULES:
            if reason not in reasons and rule.search(flat if "markup" not in reason else text):
                reasons[reason] = None
        if "personal data or secrets" not in reasons and _PII.find(text):
            reasons["personal data or secrets"] = None
    return tuple(reasons)
