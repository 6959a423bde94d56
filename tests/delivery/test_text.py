"""Cutting text to a target's limits: whole characters, whole escapes, marked, never failing."""

from __future__ import annotations

import pytest

from monitor.delivery.text import MARK, clip, markdown_escape, slack_escape, utf8, utf16


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly10!", 10, "exactly10!"),
        ("abcdefghijk", 5, "abcd…"),
        ("word word word", 12, "word word…"),  # backs up to a space
        ("", 3, ""),
        ("abc", 0, ""),
        ("abcdef", 1, "…"),
    ],
)
def test_clip_by_characters(text: str, limit: int, expected: str) -> None:
    assert clip(text, limit) == expected


def test_clip_by_utf8_bytes_never_splits_a_character() -> None:
    text = "Гавана " * 1000 + "🚢" * 500
    for limit in range(1, 64):
        out = clip(text, limit, measure=utf8)
        assert utf8(out) <= limit
        out.encode("utf-8").decode("utf-8")  # whole characters only
    assert clip(text, 100, measure=utf8).endswith(MARK)


def test_clip_by_utf16_counts_astral_characters_twice() -> None:
    text = "🚢" * 10
    out = clip(text, 7, measure=utf16)
    assert utf16(out) <= 7
    assert out == "🚢" * 3 + MARK


@pytest.mark.parametrize("limit", range(1, 40))
def test_slack_entities_are_never_cut_in_half(limit: int) -> None:
    text = "A & B <c> & D & E & F & G & H"
    out = clip(text, limit, escape=slack_escape)
    assert len(out) <= limit
    body = out.removesuffix(MARK)
    # every & starts a whole entity
    for index, ch in enumerate(body):
        if ch == "&":
            assert body[index:].startswith(("&amp;", "&lt;", "&gt;")), out
    assert "<" not in out
    assert ">" not in out


def test_markdown_escapes_are_never_cut_in_half() -> None:
    text = "*" * 100
    out = clip(text, 11, escape=markdown_escape)
    assert out == "\\*" * 5 + MARK


def test_a_huge_text_is_cut_quickly_and_marked() -> None:
    out = clip("x" * 5_000_000, 3000)
    assert len(out) == 3000
    assert out.endswith(MARK)
