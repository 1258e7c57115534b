"""Personal data and secrets in text: found, and replaced by a placeholder (`[EMAIL]`, `[PHONE]`,
`[CARD]`, `[IBAN]`, `[IP]`, `[SECRET]`) before anything is stored, embedded or injected.

The one owner of phonenumbers (Google's libphonenumber), python-stdnum (Luhn and IBAN checks) and
detect-secrets (the known credential formats: its plugins' patterns). Hand-written here: the cheap
candidate patterns that decide whether a library is asked at all, and one generic rule for long
`sk-`/`pk-` style keys, which detect-secrets recognises only in OpenAI's older format.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import cache
from typing import Any, Literal

import phonenumbers
from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from phonenumbers import Leniency
from stdnum import iban, luhn

from proxy.records import Interaction

Kind = Literal["email", "phone", "card", "iban", "ip", "secret"]
KINDS: tuple[Kind, ...] = ("secret", "email", "card", "iban", "ip", "phone")  # earlier kinds win overlaps
PLACEHOLDERS: dict[Kind, str] = {kind: f"[{kind.upper()}]" for kind in KINDS}

# Every pattern here runs in linear time: each starts only at a token boundary (a lookbehind)
# and has no nested repetition, so no input makes the regex engine backtrack quadratically
# while it holds the GIL.
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", re.IGNORECASE)
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
IPV6 = re.compile(
    r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4})(?![\w:])"
)
GENERIC_KEY = re.compile(r"(?<![\w-])(?:sk|pk|rk)[-_][A-Za-z0-9_-]{20,}")
GOOGLE_KEY = re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}")
ASSIGNED_SECRET = re.compile(
    r"(?i)(?<![\w-])(?:password|passwd|pwd|passphrase|secret|api[_-]?key|access[_-]?token|auth[_-]?token)"
    r"\s{0,3}[:=]\s{0,3}[\"']?[^\s\"',;]{4,200}"
)
# Cheap first look: text with no `@`, `:`/`=`, 16-character token or four digits close together
# holds none of the kinds, and that is most text (one search is far cheaper than looking for each).
MAYBE = re.compile(r"[@:=]|\S{16}|PRIVATE KEY|\d\D{0,3}\d\D{0,3}\d\D{0,3}\d")
STRUCTURAL = frozenset({"role", "model", "object", "id", "finish_reason", "type", "index", "created"})
MAX_PHONE_RUN = 64  # longer runs of digits and spaces are tables, not phone numbers
MAX_TOKEN = 4096  # secrets are scanned for in whitespace-separated tokens up to this long
PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
)
NOT_PATTERN_BASED = ("High Entropy", "Keyword", "Public IP")
TOKEN_CHARS = frozenset("-_.+/=")
NUMBERS = re.compile(r"\+?\(?\d[\d\s().+/-]{5,}\d")  # runs where a phone, card, IBAN or IP could be


@cache
def _secret_patterns() -> tuple[re.Pattern[str], ...]:
    """Every credential format detect-secrets knows by pattern (entropy and keyword guesses left
    out: they flag ordinary words)."""
    found: list[re.Pattern[str]] = [GENERIC_KEY, GOOGLE_KEY]
    plugins: dict[str, Any] = get_mapping_from_secret_type_to_class()
    for name, plugin in plugins.items():
        if not any(word in name for word in NOT_PATTERN_BASED):
            found += list(getattr(plugin, "denylist", ()))
    return tuple(found)


LONG_TOKENS = re.compile(rf"\S{{16,{MAX_TOKEN}}}")


def _secrets(text: str) -> Iterator[tuple[int, int]]:
    """Known credential formats, looked for token by token (bounded work per token), then
    `password=...`-style assignments and private key blocks over the whole text."""
    for token in LONG_TOKENS.finditer(text):
        at, word = token.start(), token.group()
        for pattern in _secret_patterns():
            for match in pattern.finditer(word):
                end = match.end()
                while end < len(word) and (word[end].isalnum() or word[end] in TOKEN_CHARS):
                    end += 1  # a secret is a whole token: some patterns stop short of its end
                yield at + match.start(), at + len(word[:end].rstrip("."))
    yield from (m.span() for m in ASSIGNED_SECRET.finditer(text))
    if "PRIVATE KEY" in text:
        yield from (m.span() for m in PRIVATE_KEY_BLOCK.finditer(text))


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _longest_iban(candidate: str) -> int:
    """The length of the longest valid IBAN `candidate` starts with (words may follow it)."""
    positions = [i for i, ch in enumerate(candidate) if ch != " "]
    for cut in range(len(positions), 14, -1):
        if iban.is_valid("".join(candidate[i] for i in positions[:cut]).upper()):
            return positions[cut - 1] + 1
    return 0


def _from_numbers(
    kind: Kind, text: str, numbers: list[re.Match[str]], region: str
) -> Iterator[tuple[int, int]]:
    """Cards, phones, IBANs and IPv4 addresses, looked for only in the runs of digits one pass
    over the text found (a regex per kind over every text cost five times as much)."""
    for number in numbers:
        found, at = number.group(), number.start()
        digits = re.sub(r"\D", "", found)
        if kind == "card" and 13 <= len(digits) <= 19 and luhn.is_valid(digits):
            yield at, at + len(found.rstrip(" -./()"))
        elif kind == "phone" and len(digits) >= 7 and len(found) <= MAX_PHONE_RUN:  # not whole tables
            # valid numbers of the region, and any plausible number in international (+) form
            leniency = Leniency.POSSIBLE if found.startswith("+") else Leniency.VALID
            matches = phonenumbers.PhoneNumberMatcher(found, region, leniency=leniency)
            yield from ((at + m.start, at + m.end) for m in matches)
        elif kind == "ip":
            yield from ((at + m.start(), at + m.end()) for m in IPV4.finditer(found) if _ip(m.group()))
        elif kind == "iban" and len(digits) >= 8:  # letters may sit between its digits: look around
            for match in IBAN.finditer(text, max(0, at - 12), min(len(text), number.end() + 24)):
                found_iban = _longest_iban(match.group())
                if found_iban:
                    yield match.start(), match.start() + found_iban


class Redactor:
    def __init__(self, kinds: Sequence[Kind], phone_region: str = "US") -> None:
        self.kinds = tuple(kind for kind in KINDS if kind in kinds)
        self.phone_region = phone_region

    def _applicable(self, text: str, digits: int) -> list[Kind]:
        """The kinds that could be in `text` at all, by cheap C-level checks."""
        marks = "PRIVATE KEY" in text or "=" in text or ":" in text
        could = {
            "secret": marks or max(map(len, text.split()), default=0) >= 16,
            "email": "@" in text,
            "card": digits >= 13,
            "iban": digits >= 8,
            "ip": (digits >= 4 and text.count(".") >= 3) or text.count(":") >= 2,
            "phone": digits >= 7,
        }
        return [kind for kind in self.kinds if could[kind]]

    def _spans(self, kind: Kind, text: str, numbers: list[re.Match[str]]) -> Iterator[tuple[int, int]]:
        if kind == "secret":
            yield from _secrets(text)
        elif kind == "email":
            yield from (m.span() for m in EMAIL.finditer(text))
        elif kind == "ip" and text.count(":") >= 2:
            yield from (m.span() for m in IPV6.finditer(text) if m.group().count(":") >= 2 and _ip(m.group()))
        if kind in ("card", "phone", "ip", "iban"):
            yield from _from_numbers(kind, text, numbers, self.phone_region)

    def find(self, text: str) -> list[tuple[int, int, Kind]]:
        """Non-overlapping (start, end, kind), in order; an earlier kind in KINDS wins an overlap."""
        taken: list[tuple[int, int, Kind]] = []
        digits = sum(text.count(d) for d in "0123456789")
        numbers = list(NUMBERS.finditer(text)) if digits >= 4 else []
        for kind in self._applicable(text, digits):
            for start, end in self._spans(kind, text, numbers):
                if start < end and all(end <= s or start >= e for s, e, _ in taken):
                    taken.append((start, end, kind))
        return sorted(taken)

    def redact(self, text: str) -> str:
        """`text` with each finding replaced. Text that is not ASCII is NFKC-folded first, so a
        fullwidth `＠` or digits in another script are found too."""
        if not self.kinds or len(text) < 6:
            return text
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text)
        if not MAYBE.search(text):
            return text
        found = self.find(text)
        for start, end, kind in reversed(found):
            text = text[:start] + PLACEHOLDERS[kind] + text[end:]
        return text

    def redact_json(self, value: Any, seen: dict[Any, Any] | None = None) -> Any:
        """Every string inside `value` (dicts, lists), keys kept. `seen` shares the work between
        values that hold the same objects or the same strings (a request and the messages
        actually sent, an answer and its text)."""
        seen = {} if seen is None else seen
        if isinstance(value, str):
            if value not in seen:
                seen[value] = self.redact(value)
            return seen[value]
        if id(value) in seen:
            return seen[id(value)]
        if isinstance(value, dict):
            out: Any = {
                self.redact(str(k)): (v if k in STRUCTURAL else self.redact_json(v, seen))
                for k, v in value.items()
            }
        elif isinstance(value, list):
            out = [self.redact_json(v, seen) for v in value]
        else:
            return value
        seen[id(value)] = out
        return out

    def interaction(self, interaction: Interaction) -> Interaction:
        """The trail row without the personal data and secrets in what was asked and answered."""
        if not self.kinds:
            return interaction
        seen: dict[Any, Any] = {}
        return replace(
            interaction,
            request=self.redact_json(interaction.request, seen),
            sent_messages=self.redact_json(interaction.sent_messages, seen),
            chat_messages=self.redact_json(interaction.chat_messages, seen),
            response=self.redact_json(interaction.response, seen),
            question=self.redact_json(interaction.question, seen),
            response_text=self.redact_json(interaction.response_text, seen),
            error=self.redact_json(interaction.error, seen),  # a provider's error may quote the input
        )


NO_REDACTION = Redactor(())
