"""The pane tail: streamed text wraps, grows in place, and stays bounded."""

from cockpit.ui.tail import Tail, wrap


def test_wrap_breaks_on_spaces_and_cuts_long_words():
    assert wrap("hello world again", 11) == ["hello world", "again"]
    assert wrap("abcdefghij", 4) == ["abcd", "efgh", "ij"]
    assert wrap("", 5) == [""]


def test_streamed_text_grows_the_last_row_without_scrolling():
    tail = Tail(width=20)
    tail.write("hello")
    scrolls = tail.scrolls
    tail.write(" there")
    assert list(tail.rows) == [("text", "hello there")]
    assert tail.scrolls == scrolls  # same row: a one-row repaint is enough
    tail.write(" and a long continuation")
    assert tail.scrolls > scrolls
    assert [r for _, r in tail.rows] == ["hello there and a", "long continuation"]


def test_lines_of_other_styles_start_new_rows_and_newlines_close():
    tail = Tail(width=30)
    tail.write("thinking\nmore")
    tail.line("⚙ run_shell pytest", "tool")
    tail.write("after")
    assert list(tail.rows) == [
        ("text", "thinking"), ("text", "more"), ("tool", "⚙ run_shell pytest"), ("text", "after"),
    ]


def test_resize_rewraps_and_the_tail_is_bounded():
    tail = Tail(max_lines=5, width=40)
    for i in range(20):
        tail.line(f"line {i} with some words", "text")
    assert [r for _, r in tail.rows][-1] == "line 19 with some words"
    assert len(tail.rows) <= 5
    tail.resize(10)
    assert all(len(r) <= 10 for _, r in tail.rows)


def test_escape_sequences_and_tabs_cannot_break_the_pane():
    tail = Tail(width=40)
    tail.write("     1\tcode \x1b[31mred\x1b[0m\r\x07 \x1b]0;title\x07done\nnext")
    assert [r for _, r in tail.rows] == ["     1  code red done", "next"]


def test_streaming_in_pieces_wraps_exactly_like_wrapping_the_whole_text():
    import random

    rng = random.Random(3)
    for _ in range(300):
        width, whole = rng.randint(3, 30), ""
        tail = Tail(width=width, max_lines=10_000)
        for _ in range(rng.randint(1, 60)):
            piece = "".join(rng.choice("ab  cdefgh") for _ in range(rng.randint(1, 12)))
            tail.write(piece)
            whole += piece
        assert [r for _, r in tail.rows] == wrap(whole, width)
