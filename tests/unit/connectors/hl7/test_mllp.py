"""The MLLP framer: any chunking, bytes outside blocks, oversize blocks, split end blocks."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacsync.connectors.hl7.mllp import END, HEAD, START, Dropped, Framer, Problem, frame

ADT = b"MSH|^~\\&|PMS|CLINIC|PACSYNC|HOSP|20260101120000||ADT^A01^ADT_A01|MSG1|P|2.5.1\rPID|1\r"


def message(number: int, size: int = 0) -> bytes:
    """An HL7-looking payload with control id ``C<number>``, padded to about ``size`` bytes."""
    head = f"MSH|^~\\&|PMS|CLINIC|PACSYNC|HOSP|20260101||ADT^A08|C{number}|P|2.5.1\r".encode()
    return head + b"PID|1||" + b"X" * max(0, size - len(head) - 8) + b"\r"


def feed_in(framer: Framer, stream: bytes, cuts: list[int]) -> tuple[list[bytes], list[Dropped]]:
    """Feed ``stream`` cut at ``cuts``; every payload and drop, in order."""
    payloads: list[bytes] = []
    dropped: list[Dropped] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        if cut <= start:
            continue
        got, lost = framer.feed(stream[start:cut])
        payloads += got
        dropped += lost
        start = cut
    return payloads, dropped


def test_frame_wraps_a_payload_in_start_and_end_blocks() -> None:
    assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\r"
    assert (START, END) == (b"\x0b", b"\x1c\r")


def test_blocks_in_one_read_come_out_in_order() -> None:
    framer = Framer(1024)
    payloads, dropped = framer.feed(frame(message(1)) + frame(message(2)) + frame(message(3)))
    assert payloads == [message(1), message(2), message(3)]
    assert dropped == []
    assert (framer.pending, framer.inside) == (0, False)


def test_a_block_fed_byte_by_byte_comes_out_once_when_its_end_arrives() -> None:
    framer = Framer(1024)
    stream = frame(ADT)
    out: list[bytes] = []
    for index in range(len(stream)):
        payloads, dropped = framer.feed(stream[index : index + 1])
        assert dropped == []
        if index < len(stream) - 1:
            assert payloads == []
            assert framer.inside
        out += payloads
    assert out == [ADT]
    assert not framer.inside


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(min_value=60, max_value=600), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=40),
    between=st.sampled_from([b"", b"\r\n", b"\n", b" "]),
)
def test_any_chunking_gives_the_same_payloads(
    sizes: list[int], cuts: list[int], between: bytes
) -> None:
    payloads = [message(n, size) for n, size in enumerate(sizes)]
    stream = b"".join(frame(p) + between for p in payloads)
    got, dropped = feed_in(Framer(1024), stream, [c % (len(stream) + 1) for c in cuts])
    assert got == payloads
    assert dropped == []  # whitespace between blocks is not a problem


@pytest.mark.parametrize("at", range(1, len(frame(ADT))))
def test_every_single_cut_of_two_blocks_gives_both(at: int) -> None:
    stream = frame(ADT) + frame(message(2))
    got, dropped = feed_in(Framer(1024), stream, [at])
    assert got == [ADT, message(2)]
    assert dropped == []


def test_an_end_block_split_between_its_two_bytes_closes_the_block() -> None:
    framer = Framer(1024)
    assert framer.feed(START + ADT + b"\x1c") == ([], [])
    assert framer.inside
    assert framer.feed(b"\r" + frame(message(2))) == ([ADT, message(2)], [])


def test_a_block_exactly_at_the_limit_passes_even_with_its_end_split() -> None:
    payload = message(1, 300)
    framer = Framer(len(payload))
    assert framer.feed(frame(payload)) == ([payload], [])
    # FS ends one read and CR starts the next: still exactly at the limit, not over it
    assert framer.feed(START + payload + b"\x1c") == ([], [])
    assert framer.feed(b"\r" + frame(message(2))) == ([payload, message(2)], [])


def test_bytes_before_a_block_are_reported_and_the_block_still_comes_out() -> None:
    framer = Framer(1024)
    payloads, dropped = framer.feed(b"GET / HTTP/1.0\r\n\r\n" + frame(ADT))
    assert payloads == [ADT]
    assert dropped == [Dropped(Problem.OUTSIDE_BLOCK, 18)]


def test_bytes_with_no_block_at_all_are_reported_whole() -> None:
    framer = Framer(1024)
    assert framer.feed(b"hello") == ([], [Dropped(Problem.OUTSIDE_BLOCK, 5)])
    assert framer.feed(b"MSH|^~\\&|no framing\r") == ([], [Dropped(Problem.OUTSIDE_BLOCK, 20)])
    assert not framer.inside


def test_whitespace_after_an_end_block_is_not_a_problem() -> None:
    # some senders end each block with CR LF after FS
    framer = Framer(1024)
    assert framer.feed(frame(ADT) + b"\n") == ([ADT], [])
    assert framer.feed(b"\r\n" + frame(message(2)) + b"\r\n") == ([message(2)], [])


def test_a_block_without_end_is_dropped_when_the_next_one_starts() -> None:
    framer = Framer(1024)
    broken = START + b"MSH|^~\\&|half a message"
    payloads, dropped = framer.feed(broken + frame(ADT))
    assert payloads == [ADT]
    assert dropped == [Dropped(Problem.OUTSIDE_BLOCK, len(broken) - 1)]


def test_a_block_without_end_in_an_earlier_read_is_dropped_when_the_next_one_starts() -> None:
    framer = Framer(1024)
    assert framer.feed(START + b"MSH|^~\\&|half") == ([], [])
    assert framer.pending == len(b"MSH|^~\\&|half")
    payloads, dropped = framer.feed(b" more" + frame(ADT))
    assert payloads == [ADT]
    assert dropped == [Dropped(Problem.OUTSIDE_BLOCK, len(b"MSH|^~\\&|half more"))]


def test_an_oversize_block_in_one_read_is_reported_with_its_head_and_the_next_one_passes() -> None:
    big = message(7, 5000)
    framer = Framer(1000)
    payloads, dropped = framer.feed(frame(big) + frame(message(8)))
    assert payloads == [message(8)]
    assert len(dropped) == 1
    assert dropped[0].problem is Problem.TOO_LARGE
    assert dropped[0].size == len(big)
    assert dropped[0].head == big[:HEAD]
    assert dropped[0].head.startswith(b"MSH|^~\\&|PMS|CLINIC|PACSYNC|HOSP|20260101||ADT^A08|C7|")


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=12000), max_size=30))
def test_an_oversize_block_in_any_chunking_never_holds_more_than_the_limit(
    cuts: list[int],
) -> None:
    big = message(7, 9000)
    stream = frame(message(6)) + frame(big) + frame(message(8))
    framer = Framer(2000)
    payloads: list[bytes] = []
    dropped: list[Dropped] = []
    start = 0
    for cut in [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]:
        if cut <= start:
            continue
        got, lost = framer.feed(stream[start:cut])
        payloads += got
        dropped += lost
        start = cut
        assert framer.pending <= 2000
    assert payloads == [message(6), message(8)]
    assert [(d.problem, d.size) for d in dropped] == [(Problem.TOO_LARGE, len(big))]
    assert big.startswith(dropped[0].head)
    assert dropped[0].head.startswith(b"MSH|^~\\&|PMS|CLINIC|PACSYNC|HOSP|20260101||ADT^A08|C7|")


def test_an_oversize_block_whose_end_is_split_does_not_swallow_the_next_one() -> None:
    big = message(7, 3000)
    framer = Framer(1000)
    assert framer.feed(START + big + b"\x1c") == ([], [])
    payloads, dropped = framer.feed(b"\r" + frame(message(8)))
    assert payloads == [message(8)]
    assert [(d.problem, d.size) for d in dropped] == [(Problem.TOO_LARGE, len(big))]


def test_a_stream_closed_inside_a_block_leaves_it_pending() -> None:
    framer = Framer(1024)
    framer.feed(frame(ADT) + START + ADT[:30])
    assert framer.inside
    assert framer.pending == 30


def test_an_fs_ending_a_read_without_cr_next_is_part_of_the_block() -> None:
    framer = Framer(1024)
    assert framer.feed(START + b"MSH|AB\x1c") == ([], [])
    assert framer.feed(b"CD" + END) == ([b"MSH|AB\x1cCD"], [])


def test_an_oversize_block_that_never_ends_does_not_swallow_the_next_block() -> None:
    framer = Framer(100)
    abandoned = START + message(1, 500)  # no end block: the sender gave up on it
    payloads, dropped = feed_in(framer, abandoned + frame(message(2)), [50, 300])
    assert payloads == [message(2)]
    assert [d.problem for d in dropped] == [Problem.OUTSIDE_BLOCK]
    assert dropped[0].size == len(abandoned) - 1


def test_a_drop_says_how_many_payloads_of_the_same_read_came_before_it() -> None:
    framer = Framer(1000)
    stream = b"noise" + frame(message(1)) + frame(message(2, 5000)) + frame(message(3))
    payloads, dropped = framer.feed(stream)
    assert payloads == [message(1), message(3)]
    assert [(d.problem, d.position) for d in dropped] == [
        (Problem.OUTSIDE_BLOCK, 0),
        (Problem.TOO_LARGE, 1),
    ]
