"""Questions for the load benchmark: lessons a user taught, their paraphrases, unrelated asks.

Every request body is distinct (a short tag such as `#q3417`, a few tokens), so the embedding
cache does not hide the cost of recall: each request is embedded and searched. The questions are
10 to 16 tokens, as chat questions typically are; embedding cost grows with length.
"""

from __future__ import annotations

import orjson

LESSONS = [
    ("What is the refund window at Acme?", "Acme refunds within 45 days of delivery."),
    ("How long does Acme shipping take?", "Acme ships in 2 business days, 5 for islands."),
    ("Does Acme price-match competitors?", "Acme matches prices from the three named rivals only."),
    ("Which payment methods does Acme accept?", "Acme takes cards, PayPal and bank transfer; no crypto."),
    ("Can I change my Acme order after paying?", "Orders can be changed for 30 minutes after payment."),
    ("What is the warranty on Acme laptops?", "Acme laptops carry a 3-year warranty, batteries 1 year."),
    ("Where is Acme's head office?", "Acme's head office is in Lyon, not Paris."),
    ("How do I reach Acme support at night?", "Night support is chat only, 20:00 to 08:00 CET."),
    ("Does Acme ship to Norway?", "Acme ships to Norway with duties paid at checkout."),
    ("What is Acme's loyalty discount?", "Loyalty members get 7% off, capped at 100 EUR a year."),
]
PARAPHRASES = [
    "How many days do I have to return something to Acme",
    "When will my Acme parcel arrive",
    "Will Acme match a lower price I found elsewhere",
    "Can I pay Acme with PayPal or bitcoin",
    "Is it possible to edit an Acme order I already paid for",
    "How many years of warranty come with an Acme laptop",
    "In which city is Acme headquartered",
    "Who can I contact at Acme late in the evening",
    "Can Acme deliver my order to Oslo",
    "How much do Acme loyalty members save",
]
UNRELATED = [
    "How do I sort a list of tuples in Python by the second item",
    "Write a haiku about autumn rain",
    "What is the capital of Australia",
    "Explain the difference between TCP and UDP",
    "Give me a recipe for a quick vegetarian curry",
    "How does compound interest work",
    "Summarise the plot of Hamlet in two sentences",
    "What are good stretches for lower back pain",
]


def bodies(count: int, model: str, stream: bool, run: str) -> list[bytes]:
    """`count` distinct request bodies; `run` makes them distinct from every other run's too."""
    out = []
    for i in range(count):
        if i % 2 == 0:
            text = f"{PARAPHRASES[(i // 2) % len(PARAPHRASES)]}? #{run}{i}"
        else:
            text = f"{UNRELATED[(i // 2) % len(UNRELATED)]} #{run}{i}"
        body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 64}
        if stream:
            body["stream"] = True
        out.append(orjson.dumps(body))
    return out
