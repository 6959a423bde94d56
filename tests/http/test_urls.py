"""Credentials in feed URLs are masked wherever a URL is shown or sent."""

from __future__ import annotations

import io
import logging

import pytest

from monitor.http.urls import has_credentials, mask_urls, shown_url
from monitor.runtime.logs import setup_logging


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://tass.com/rss/v2.xml", "https://tass.com/rss/v2.xml"),
        ("https://example.org/feed?page=2&lang=es", "https://example.org/feed?page=2&lang=es"),
        ("http://user:pa55@example.org/feed", "http://user:***@example.org/feed"),
        ("http://user@example.org/feed", "http://***@example.org/feed"),  # a token, often
        (
            "https://ghp_abc123@github.com/o/r/commits.atom",
            "https://***@github.com/o/r/commits.atom",
        ),
        ("https://h.example/f?apikey=abc123&page=2", "https://h.example/f?apikey=***&page=2"),
        ("https://h.example/f?api_key=abc", "https://h.example/f?api_key=***"),
        ("https://h.example/f?access_token=t&x=1", "https://h.example/f?access_token=***&x=1"),
        ("https://h.example/f?Token=t", "https://h.example/f?Token=***"),
        (
            "https://s3.example/f.xml?X-Amz-Signature=deadbeef&X-Amz-Date=1",
            "https://s3.example/f.xml?X-Amz-Signature=***&X-Amz-Date=1",
        ),
        ("https://h.example/f?sessionid=s", "https://h.example/f?sessionid=***"),
        ("https://h.example/f?password=p&user=u", "https://h.example/f?password=***&user=u"),
        ("http://u:p@[::1]:8080/f?key=k", "http://u:***@[::1]:8080/f?key=***"),
        ("http://u:p@127.0.0.1:8080/f#frag", "http://u:***@127.0.0.1:8080/f#frag"),
        # names that only contain a secret word's letters are not secret
        (
            "https://blog.example/feed?author=2&keyword=cuba",
            "https://blog.example/feed?author=2&keyword=cuba",
        ),
        (
            "https://h.example/f?design=1&inside=2&passage=3",
            "https://h.example/f?design=1&inside=2&passage=3",
        ),
        (
            "https://h.example/f?apiKey=k&q=a+b,c",
            "https://h.example/f?apiKey=***&q=a+b,c",
        ),  # as written
        ("https://h.example/f#access_token=t&x=1", "https://h.example/f#access_token=***&x=1"),
        ("https://h.example/f?client.secret=s", "https://h.example/f?client.secret=***"),
    ],
)
def test_shown_urls(url: str, shown: str) -> None:
    assert shown_url(url) == shown
    assert has_credentials(url) == (url != shown)


def test_an_invalid_url_shows_nothing_of_itself() -> None:
    assert shown_url("http://[::1/feed?key=secret") == "<invalid URL>"


def test_no_secret_survives_in_any_form() -> None:
    url = "https://reader:hunter2@feeds.example/private.xml?auth=s3cr3t&format=rss"
    shown = shown_url(url)
    for secret in ("hunter2", "s3cr3t"):
        assert secret not in shown
    assert shown.startswith("https://reader:***@feeds.example/private.xml?")


def test_every_url_in_a_text_is_masked() -> None:
    text = (
        "https://u:pw@a.example/f?key=K1: HTTP 404 (redirected from "
        "http://b.example/x?token=K2&page=1), see https://c.example/ok"
    )
    masked = mask_urls(text)
    assert "pw" not in masked
    assert "K1" not in masked
    assert "K2" not in masked
    assert "https://c.example/ok" in masked
    assert "page=1" in masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("(http http://127.0.0.1:4123, config x)", "(http http://127.0.0.1:4123, config x)"),
        ("see http://a.example/f.", "see http://a.example/f."),
        ("at http://u:p@a.example/f; retry", "at http://u:***@a.example/f; retry"),
        ("[http://a.example/f?key=k]", "[http://a.example/f?key=***]"),
        ("http://a.example:99999/f", "http://a.example:99999/f"),
        ("http://u:p@a.example:99999/f", "<invalid URL>"),
    ],
)
def test_urls_in_running_text_keep_their_punctuation(text: str, masked: str) -> None:
    assert mask_urls(text) == masked


def _fail(url: str) -> None:
    raise ValueError(f"cannot fetch {url}")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_log_lines_never_carry_credentials(fmt: str) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    setup_logging("info", fmt, stream)
    try:
        url = "https://reader:hunter2@feeds.example/private.xml?apikey=s3cr3t"
        log = logging.getLogger("monitor.test")
        log.warning("%s: HTTP 404", url, extra={"feed_url": url})
        try:
            _fail(url)
        except ValueError:
            log.exception("failed")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    written = stream.getvalue()
    assert "feeds.example/private.xml" in written
    assert "hunter2" not in written
    assert "s3cr3t" not in written
