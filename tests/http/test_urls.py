"""Credentials in feed URLs are masked wherever a URL is shown or sent."""

from __future__ import annotations

import pytest

from monitor.http.urls import has_credentials, shown_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://tass.com/rss/v2.xml", "https://tass.com/rss/v2.xml"),
        ("https://example.org/feed?page=2&lang=es", "https://example.org/feed?page=2&lang=es"),
        ("http://user:pa55@example.org/feed", "http://user:***@example.org/feed"),
        ("http://user@example.org/feed", "http://user@example.org/feed"),
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
        ("http://u:p@127.0.0.1:8080/f#frag", "http://u:***@127.0.0.1:8080/f"),
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
