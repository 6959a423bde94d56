"""A URL as it may be shown or sent: credentials in it masked.

Feed URLs reach logs, `monitor feeds`, alert payloads and chat messages, and some carry
credentials: `https://user:password@host/feed` or `…/feed?apikey=…`. `shown_url` keeps
everything a reader needs to tell feeds apart (scheme, host, port, path, the other query
parameters) and replaces the password and every secret-looking query value with `***`.
A query parameter looks secret when its name contains one of `SECRET_WORDS`
(case-insensitive): `apikey`, `access_token`, `X-Amz-Signature`, `sessionid`, `pass`…
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

MASK = "***"
SECRET_WORDS = ("key", "token", "secret", "pass", "pwd", "auth", "sig", "session", "sid", "cred")
_SECRET_NAME = re.compile("|".join(SECRET_WORDS), re.IGNORECASE)
# a URL in running text: punctuation that ends a sentence or a clause is not part of it
_URL = re.compile(r"https?://[^\s\"'<>]*[^\s\"'<>.,;:!?)\]}]", re.IGNORECASE)
INVALID = "<invalid URL>"


@lru_cache(maxsize=4096)  # the same few hundred feed URLs are shown over and over
def shown_url(url: str) -> str:
    """`url` with its password and secret-looking query values masked; unchanged if none."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return INVALID
    if parts.password is None and parts.username is None and not _secret_query(parts.query):
        return url
    netloc = _netloc(parts.username, parts.password, host or "", port)
    return urlunsplit((parts.scheme, netloc, parts.path, _masked_query(parts.query), ""))


def mask_urls(text: str) -> str:
    """`text` with every http(s) URL in it shown as `shown_url` shows it (log lines, errors)."""
    if "://" not in text:
        return text
    return _URL.sub(lambda found: _in_text(found.group(0)), text)


def _in_text(url: str) -> str:
    shown = shown_url(url)
    if shown == INVALID and "@" not in url and "?" not in url:
        return url  # nothing it could hide, and the reader may need it as it is
    return shown


def has_credentials(url: str) -> bool:
    """Whether `shown_url` would hide anything in `url`."""
    return shown_url(url) != url


def _netloc(user: str | None, password: str | None, host: str, port: int | None) -> str:
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    address = f"{host}:{port}" if port is not None else host
    if user is None and password is None:
        return address
    who = quote(user or "", safe="")
    return f"{who}:{MASK}@{address}" if password is not None else f"{who}@{address}"


def _secret_query(query: str) -> bool:
    return any(_SECRET_NAME.search(name) for name, _ in parse_qsl(query, keep_blank_values=True))


def _masked_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    masked = [(name, MASK if _SECRET_NAME.search(name) else value) for name, value in pairs]
    return urlencode(masked, safe="*")
