"""Reading a session as a conversation: what a new request means for the previous one."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.chat.digests import prefix_digests
from proxy.chat.rephrase import acknowledges, adds_content, says_again
from proxy.chat.signals import ConversationSignals, implicit_feedback

SYSTEM = {"role": "system", "content": "You are a weather bot."}
ASK = {"role": "user", "content": "What's the weather in Paris?"}
CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
        }
    ],
}
RESULT = {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'}
ANSWER = {"role": "assistant", "content": "It is 21 degrees in Paris."}


def tool_round(n: int, parallel: int = 1) -> list[dict[str, Any]]:
    calls = [
        {"id": f"c{n}-{i}", "type": "function", "function": {"name": "lookup", "arguments": f'{{"i": {i}}}'}}
        for i in range(parallel)
    ]
    results = [
        {"role": "tool", "tool_call_id": c["id"], "content": f"result {n}-{i}"} for i, c in enumerate(calls)
    ]
    return [{"role": "assistant", "content": None, "tool_calls": calls}, *results]


def run(detector: ConversationSignals, *requests: list[dict[str, Any]], session: str = "s") -> list[Any]:
    return [detector.observe(session, messages, f"i{n}") for n, messages in enumerate(requests)]


def test_the_same_conversation_re_sent_to_its_last_user_turn_is_a_regenerate() -> None:
    first, second = run(ConversationSignals(300), [SYSTEM, ASK], [SYSTEM, ASK])
    assert first.regenerates is None and second.regenerates == "i0"


def test_a_tool_result_appended_after_the_user_turn_is_a_continuation() -> None:
    seen = run(ConversationSignals(300), [SYSTEM, ASK], [SYSTEM, ASK, CALL, RESULT])
    assert [s.regenerates for s in seen] == [None, None]
    assert seen[1].rephrase is None and not seen[1].embeds  # no new user turn to compare


def test_several_tool_rounds_with_parallel_calls_and_the_legacy_function_role_raise_nothing() -> None:
    function_call = {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}}
    function_result = {"role": "function", "name": "f", "content": "done"}
    base = [SYSTEM, ASK]
    requests = [
        base,
        base + tool_round(1, parallel=3),
        base + tool_round(1, parallel=3) + tool_round(2, parallel=2),
        base + tool_round(1, parallel=3) + tool_round(2, parallel=2) + [function_call, function_result],
    ]
    seen = run(ConversationSignals(300), *requests)
    assert all(s.regenerates is None and s.accepted is None and s.rephrase is None for s in seen)


def test_the_tool_loop_re_sent_from_its_user_turn_is_a_regenerate_of_that_request() -> None:
    seen = run(ConversationSignals(300), [ASK], [ASK, CALL, RESULT], [ASK, CALL, RESULT])
    assert [s.regenerates for s in seen] == [
        None,
        None,
        None,
    ]  # the previous one did not end at the user turn


def test_a_changed_system_prompt_or_earlier_turn_makes_another_conversation() -> None:
    other_system = {"role": "system", "content": "You are a travel agent."}
    seen = run(ConversationSignals(300), [SYSTEM, ASK], [other_system, ASK])
    assert seen[1].regenerates is None
    earlier = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]
    changed = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "Hello!"}]
    assert run(ConversationSignals(300), [*earlier, ASK], [*changed, ASK])[1].regenerates is None


def test_case_spacing_content_parts_and_developer_role_compare_as_the_same_turn() -> None:
    parts = {
        "role": "user",
        "content": [{"type": "text", "text": "what's the  WEATHER"}, {"type": "text", "text": "in paris?"}],
    }
    developer = {"role": "developer", "content": "You are a weather bot."}
    assert run(ConversationSignals(300), [SYSTEM, ASK], [developer, parts])[1].regenerates == "i0"


def test_an_image_part_that_differs_is_another_turn() -> None:
    def asked(url: str) -> dict[str, Any]:
        return {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }

    assert run(ConversationSignals(300), [asked("a.png")], [asked("b.png")])[1].regenerates is None
    assert run(ConversationSignals(300), [asked("a.png")], [asked("a.png")])[1].regenerates == "i0"


def test_sessions_scopes_window_and_a_missing_session_keep_turns_apart() -> None:
    detector = ConversationSignals(300)
    assert detector.observe("a", [ASK], "i1").regenerates is None
    assert detector.observe("b", [ASK], "i2").regenerates is None
    assert detector.observe("a", [ASK], "i3", ("tenant-2",)).regenerates is None
    assert detector.observe(None, [ASK], "i4").regenerates is None
    assert ConversationSignals(0).observe("a", [ASK], "i5").regenerates is None
    assert detector.observe("a", [ASK], "i6").regenerates == "i1"


def test_going_on_from_a_regenerated_answer_accepts_it() -> None:
    regenerated = [SYSTEM, ASK]
    follow_up = [SYSTEM, ASK, ANSWER, {"role": "user", "content": "And tomorrow?"}]
    seen = run(ConversationSignals(300), regenerated, regenerated, follow_up)
    assert seen[1].regenerates == "i0"
    assert seen[2].accepted == ("i1", "i0") and seen[2].regenerates is None
    again = run(ConversationSignals(300), regenerated, regenerated, regenerated, follow_up)
    assert [s.regenerates for s in again[:3]] == [None, "i0", "i1"]
    assert again[3].accepted == ("i2", "i1")  # the last regeneration, over the one before it


def test_a_conversation_that_does_not_continue_the_regenerated_answer_accepts_nothing() -> None:
    other = [{"role": "user", "content": "Something else entirely"}]
    seen = run(ConversationSignals(300), [ASK], [ASK], other)
    assert seen[2].accepted is None


def test_a_new_user_turn_after_a_text_answer_is_a_rephrase_candidate() -> None:
    again = {"role": "user", "content": "How warm is it in Paris right now?"}
    seen = run(ConversationSignals(300), [SYSTEM, ASK], [SYSTEM, ASK, ANSWER, again])
    assert seen[1].rephrase is not None and seen[1].rephrase.interaction_id == "i0"
    assert seen[1].rephrase.question == ASK["content"] and seen[1].embeds


def test_after_a_tool_loop_the_answer_that_ended_it_is_the_candidate() -> None:
    again = {"role": "user", "content": "How warm is it in Paris right now?"}
    loop = [ASK, CALL, RESULT]
    seen = run(ConversationSignals(300), [ASK], loop, [*loop, ANSWER, again])
    assert seen[1].rephrase is None
    assert seen[2].rephrase is not None and seen[2].rephrase.interaction_id == "i1"


def test_no_rephrase_candidate_without_a_text_answer_or_with_turns_unseen() -> None:
    again = {"role": "user", "content": "How warm is it in Paris?"}
    empty = {"role": "assistant", "content": ""}
    assert run(ConversationSignals(300), [ASK], [ASK, empty, again])[1].rephrase is None
    assert run(ConversationSignals(300), [ASK], [ASK, CALL, again])[1].rephrase is None
    skipped = [ASK, ANSWER, {"role": "user", "content": "x"}, ANSWER, again]  # a turn another replica saw
    assert run(ConversationSignals(300), [ASK], skipped)[1].rephrase is None
    assert run(ConversationSignals(300), [ASK], [ASK, ANSWER, again, CALL, RESULT])[1].rephrase is None


def test_the_remembered_vector_travels_with_the_candidate() -> None:
    detector = ConversationSignals(300)
    first = detector.observe("s", [ASK], "i0")
    assert first.key is not None
    detector.remember(first.key, "i0", [1.0, 0.0])
    detector.remember(first.key, "stale", [0.0, 1.0])  # not the session's last turn: ignored
    seen = detector.observe("s", [ASK, ANSWER, {"role": "user", "content": "warm in Paris?"}], "i1")
    assert seen.rephrase is not None and seen.rephrase.vector == [1.0, 0.0]


def test_prefix_digests_are_bounded_for_huge_messages() -> None:
    huge = {"role": "user", "content": "x" * 5_000_000}
    other = {"role": "user", "content": "x" * 4_999_999 + "y"}
    assert prefix_digests([huge])[-1] != prefix_digests([other])[-1]
    assert len(prefix_digests([huge, huge])) == 3


@pytest.mark.parametrize(
    ("before", "after", "similarity", "expected"),
    [
        ("What is the refund window?", "How long do I have to return something?", 0.8, True),
        ("What is the refund window?", "how long do i have to return something", 0.5, False),  # too far
        ("What is the refund window?", "what is the refund window?", 0.0, True),  # asked again verbatim
        ("What is the refund window?", "Thanks!", 0.9, False),
        ("What is the refund window?", "ok, perfect, thank you so much", 0.9, False),
        (
            "What is the refund window?",
            "What is the refund window for electronics bought abroad?",
            0.9,
            False,
        ),
    ],
)
def test_says_again(before: str, after: str, similarity: float, expected: bool) -> None:
    assert says_again(before, after, similarity) is expected


def test_acknowledgements_and_follow_ups_that_add_content() -> None:
    assert acknowledges("Great, thanks!") and acknowledges("👍") and not acknowledges("thanks, and in Rome?")
    assert adds_content("refund window", "refund window for shoes")
    assert not adds_content("refund window", "how long can I send things back")


def test_signals_become_implicit_feedback() -> None:
    regenerate = implicit_feedback("i0", "regenerate", related="i1")
    assert (regenerate.signal, regenerate.source, regenerate.metadata) == (
        "regenerate",
        "implicit",
        {"regenerated_by": "i1"},
    )
    preferred = implicit_feedback("i1", "preferred", related="i0")
    assert (preferred.signal, preferred.preferred_over) == (None, "i0")
    assert implicit_feedback("i2", "rephrase").signal == "rephrase"


def test_remembered_digests_are_the_digests() -> None:
    """The memo of a message's digest by its exact bytes changes nothing but the work."""
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is the  Refund window?"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                              "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "30 days"},
    ]  # fmt: skip
    memo: dict[bytes, bytes] = {}
    assert prefix_digests(messages, memo) == prefix_digests(messages)
    assert len(memo) == 4
    assert prefix_digests(messages, memo) == prefix_digests(messages)  # now every one from the memo


def test_a_regeneration_seen_in_the_wrong_order_is_still_a_regeneration() -> None:
    """With replicas, the second request's head may be kept before the first's: the first then
    learns it was regenerated; a different question is no regeneration."""
    signals = ConversationSignals(window_s=60)
    asked = [{"role": "user", "content": "What is the refund window?"}]
    first = signals.read("s", asked, "first", ("t", "shop", None))
    second = signals.read(
        "s", [{"role": "user", "content": "what is the  refund window?"}], "second", ("t", "shop", None)
    )
    other = signals.read("s", [{"role": "user", "content": "And shipping?"}], "third", ("t", "shop", None))
    assert first and second and other
    seen = signals.overtaken(first[0], first[1], second[1])
    assert seen.regenerated_by == "second" and second[1].regenerated == "first"
    assert signals.overtaken(first[0], first[1], other[1]).regenerated_by is None
