"""A URL as it may be shown or sent: credentials in it masked.

Feed URLs reach logs, `monitor feeds`, alert payloads and chat messages, and some carry
credentials: `https://user:password@host/feed`, `https://TOKEN@host/feed` or `…/feed?apikey=…`.
(Webhook URLs, whose path itself is often the token, are shown by `redact_url`: host only.)
`shown_url` keeps everything a reader needs to tell feeds apart (scheme, host, port, path, the
other parameters, as written) and replaces the user info's secret and the value of every
secret-looking parameter of the query or the fragment with `***`.

A parameter looks secret when a word of its name (split at `_`, `-`, `.` and camelCase) is one
of `SECRET_WORDS`, or the whole name is one of `SECRET_NAMES`: `apikey`, `api_key`,
`access_token`, `X-Amz-Signature`, `sessionid`… but not `author`, `keyword` or `design`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "***"
SECRET_WORDS = frozenset(
    ("key", "token", "secret", "password", "passwd", "pass", "pwd", "auth", "authorization",
     "sig", "signature", "session", "sid", "credential", "credentials", "jwt", "otp")
)  # fmt: skip
SECRET_NAMES = frozenset(
    ("apikey", "accesstoken", "authtoken", "sessionid", "clientsecret", "privatekey", "apitoken")
)
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# a URL in running text: punctuation that ends a sentence or a clause is not part of it
_URL = re.compile(r"https?://[^\s\"'<>]*[^\s\"'<>.,;:!?)\]}]", re.IGNORECASE)
INVALID = "<invalid URL>"


@lru_cache(maxsize=4096)  # the same few hundred feed URLs are shown over and over
def shown_url(url: str) -> str:
    """`url` with its user info's secret and secret-looking parameters masked; unchanged if none."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return INVALID
    query, fragment = _masked_pairs(parts.query), _masked_pairs(parts.fragment)
    if parts.username is None and query == parts.query and fragment == parts.fragment:
        return url
    netloc = _netloc(parts.username, parts.password, host or "", port)
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def mask_urls(text: str) -> str:
    """`text` with every http(s) URL in it shown as `shown_url` shows it (log lines, errors)."""
    if "://" not in text:
        return text
    return _URL.sub(lambda found: _in_text(found.group(0)), text)


def _in_text(url: str) -> str:
    shown = shown_url(url)
    if shown == INVALID and "@" not in url and "?" not in url and "#" not in url:
        return url  # nothing it could hide, and the reader may need it as it is
    return shown


def redact_url(url: str) -> str:
    """Scheme and host only, for URLs whose whole path may be a secret (webhooks: a Slack or
    Discord webhook's token is its path)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return INVALID
    rest = "/…" if (parts.path not in ("", "/") or parts.query) else "/"
    return f"{parts.scheme}://{host}{port}{rest}"


def has_credentials(url: str) -> bool:
    """Whether `shown_url` would hide anything in `url`."""
    return shown_url(url) != url


def secret_name(name: str) -> bool:
    """Whether a parameter called `name` looks like it carries a credential."""
    name = unquote(name)
    if name.lower().replace("-", "").replace("_", "").replace(".", "") in SECRET_NAMES:
        return True
    return any(word.lower() in SECRET_WORDS for word in _WORD.findall(name))


def _netloc(user: str | None, password: str | None, host: str, port: int | None) -> str:
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    address = f"{host}:{port}" if port is not None else host
    if user is None and password is None:
        return address
    if password is None:  # https://TOKEN@host/: a lone user name is often the token itself
        return f"{MASK}@{address}"
    return f"{quote(user or '', safe='')}:{MASK}@{address}"


def _masked_pairs(raw: str) -> str:
    """`a=1&apikey=s` → `a=1&apikey=***`, everything else as written."""
    if not raw or "=" not in raw:
        return raw
    pairs = []
    for pair in raw.split("&"):
        name, equals, _value = pair.partition("=")
        pairs.append(f"{name}={MASK}" if equals and secret_name(name) else pair)
    return "&".join(pairs)
