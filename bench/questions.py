"""Questions for the load benchmark: lessons a user taught, their paraphrases, unrelated asks.

Every request body is distinct (a short tag such as `#q3417`, a few tokens), so the embedding
cache does not hide the cost of recall: each request is embedded and searched. The questions are
10 to 16 tokens, as chat questions typically are; embedding cost grows with length.
"""

from __future__ import annotations

import random

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


# Sentences a user writes around a question: context, background, asides (for the mix below).
CONTEXT = [
    "I have been a customer for a few years and mostly everything has gone fine.",
    "Last week I spent an hour on the phone and nobody could tell me anything useful.",
    "My sister recommended your shop, so I gave it a try for a birthday present.",
    "The package itself looked fine, although the box was a little crushed at one corner.",
    "I am writing from my phone on a train, so sorry for any typos.",
    "We are planning a move to another city in the spring and I want to get this sorted first.",
    "The instructions in the manual were confusing and the pictures did not match the model I have.",
    "Our team uses a shared spreadsheet to track every order and invoice we place.",
    "I tried searching the help pages but the answers there seemed out of date.",
    "It is not urgent, but I would like to understand how this works before I order again.",
    "My previous laptop lasted almost six years, which is why I expected more from this one.",
    "The weather has been terrible here, and deliveries in our area are often delayed.",
    "I work night shifts at a hospital, so I can only deal with this late in the evening.",
    "Honestly the price was the main reason I chose you over the other stores.",
    "We run a small bakery and order supplies from several different vendors every month.",
    "I keep all of my receipts in a folder, so I can send a copy if that helps.",
    "The colour on the website looked slightly different from the one that arrived.",
    "I am not very good with technology, so please explain it simply.",
    "My manager asked me to collect this information for our quarterly budget review.",
    "I already checked with my bank and they said the payment went through on their side.",
    "Our old supplier went out of business, so we are looking for a reliable replacement.",
    "The courier left a note saying they would try again, but nobody came back.",
    "I read a few reviews online and people seemed to have mixed experiences.",
    "This is the third time I am asking, and I would appreciate a clear answer this time.",
    "My neighbour had the same problem a while ago and it took weeks to resolve.",
    "I ordered two items together but only one of them showed up at my door.",
    "The app keeps logging me out whenever I switch between my phone and my tablet.",
    "We are a nonprofit, so every cost matters a lot for our small budget this year.",
    "I printed the confirmation page, but the numbers on it do not match my statement.",
    "My grandmother asked me to help her with this because she does not use computers.",
    "The last time I contacted you, the agent was friendly but could not solve it.",
    "I travel a lot for work, so I am rarely at home when deliveries are attempted.",
    "Our office moved to a new building last month and the address has changed.",
    "To be fair, the product itself works well and I have no complaints about quality.",
]
# Turns that are about something else entirely, as the other traffic of an app is.
OTHER = [
    "I am learning Python and my script reads a CSV file, filters rows by date and writes a report.",
    "Can you suggest a weekend itinerary for Lisbon with museums, food markets and a day trip?",
    "Please rewrite this paragraph so it sounds more professional for a cover letter.",
    "What is the difference between a Roth IRA and a traditional retirement account?",
    "My tomato plants have yellow leaves at the bottom and I water them every morning.",
    "Explain how vaccines train the immune system, in terms a teenager would understand.",
    "Draft a short email to my landlord about the broken heating in the bedroom.",
    "Which exercises help with posture when you sit at a desk all day?",
    "Translate the following sentence into Spanish and explain the grammar.",
    "How should I prepare for a job interview for a data analyst position?",
    "Give me three ideas for a science fair project about renewable energy.",
    "Summarise the main causes of the First World War in a few bullet points.",
    "What are some healthy breakfast options that take less than ten minutes to prepare?",
    "Help me write a birthday poem for my best friend who loves hiking and coffee.",
    "How do solar panels convert sunlight into electricity, step by step?",
    "Recommend a few classic novels for someone who enjoyed The Great Gatsby.",
    "What is a good way to learn the basics of music theory on my own?",
    "Explain the rules of cricket to someone who only knows baseball.",
]


def _pools(part: str) -> tuple[list[str], list[str]]:
    """Context and unrelated asks for `part`: every sentence (`all`), or disjoint halves (`train`:
    even positions, `test`: odd), so what a proxy learns from one is measured on the other."""
    if part == "all":
        return CONTEXT, OTHER
    start = 0 if part == "train" else 1
    return CONTEXT[start::2], OTHER[start::2]


def _turn(rng: random.Random, words: int, core: str | None, part: str = "all") -> str:
    """A user turn of about `words` words: context sentences, with `core` (a question) at a
    random place among them, or an unrelated ask when `core` is None."""
    context, other = _pools(part)
    core = core if core is not None else rng.choice(other)
    parts = [core]
    total = len(core.split())
    while total < words:
        extra = rng.choice(context)
        if total + len(extra.split()) > words and total >= 8:
            break
        parts.insert(rng.randrange(len(parts) + 1), extra)
        total += len(extra.split())
    return " ".join(parts)


def mix_bodies(
    count: int, model: str, stream: bool, run: str, seed: int = 11, part: str = "all"
) -> list[bytes]:
    """Production-like traffic: user turns of 8 to 300 words (half over 40), one in five a
    paraphrase of a taught question (alone, or inside a paragraph of context as users write),
    every body distinct. The tag says which: `n<k>` near lesson k, `u` unrelated. `part` picks
    the sentences (see `_pools`)."""
    rng = random.Random(f"{seed}-{run}")
    out = []
    for i in range(count):
        words = rng.randint(8, 40) if rng.random() < 0.5 else rng.randint(41, 300)
        near = rng.random() < 0.2
        k = rng.randrange(len(PARAPHRASES))
        text = _turn(rng, words, PARAPHRASES[k] + "?" if near else None, part)
        tag = f"n{k}" if near else "u"
        body = {
            "model": model,
            "messages": [{"role": "user", "content": f"{text} #{run}{i}{tag}"}],
            "max_tokens": 64,
        }
        if stream:
            body["stream"] = True
        out.append(orjson.dumps(body))
    return out
