"""Typed, validated config (`monitor.yaml`) and rule files, with problems as `PATH:LINE:COL`.

Reading a config is: YAML with positions (`yamlpos`) -> pydantic models -> cross-checks (unique
feed URLs and webhook names, webhook rule filters that name real rules) -> rules compiled by
`monitor.matching`. Every problem found on the way is collected; `load_config` raises one
`ConfigError` that lists them all, so a user fixes a file in one pass.
"""

from __future__ import annotations

import base64
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.config import yamlpos
from monitor.config.yamlpos import Loc, PositionedDocument, load_positioned, variables_in
from monitor.delivery.settings import FORMAT_ERROR, UNSET, UNSET_URL
from monitor.delivery.targets import SETTINGS, Webhook
from monitor.errors import ConfigError, ConfigProblem
from monitor.feeds.fetcher import FetchLimits
from monitor.fields import Backfill, Duration, StrictModel, http_url
from monitor.http.guard import AddressPolicy, networks
from monitor.matching import Matcher, saved
from monitor.matching.morph import DEFAULT_ANALYZER
from monitor.processes import in_a_fork

if TYPE_CHECKING:
    from monitor.matching.rules import RuleSource

M = TypeVar("M", bound=BaseModel)
CONFIG_FILE = "monitor.yaml"
DEFAULT_STORAGE = "sqlite:///data/monitor.db"
STORAGE_ENV = "MONITOR_STORAGE"
# Stand-ins for credentials whose `${NAME}` is not set, for commands that deliver and poll
# nothing (`check`, `match`, `alerts`…): well-formed, so the rest of the config validates, and
# never sent anywhere, since only `run` delivers and polls and it loads with every secret.
_STAND_INS = {
    "url": UNSET_URL,
    "secret": "whsec_" + base64.b64encode(b"unset-secret-stand-in").decode(),
}
_UNSET = UNSET
_TOKEN_STAND_IN = "unset-token-stand-in"  # noqa: S105 - a stand-in, never served
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class Defaults(StrictModel):
    """Values for feeds that do not set their own."""

    interval: Duration = Field(
        default=timedelta(minutes=10),
        description="Poll interval.",
        json_schema_extra={"default": "10m"},
    )
    backfill: Backfill = Field(default=timedelta(hours=24), json_schema_extra={"default": "24h"})


class Retention(StrictModel):
    """How long the store keeps what deduplication does not need."""

    item_text: Duration = Field(
        default=timedelta(days=30),
        description="How long items' summary, content and tags are kept for `monitor backtest`; "
        "older items keep their dedupe key, title and link.",
        json_schema_extra={"default": "30d"},
    )


class HealthSettings(StrictModel):
    """When a feed counts as unhealthy: a `feed.unhealthy` event goes to the webhooks that list
    it in their `events:`, and `feed.recovered` when it is healthy again
    (monitor.pipeline.health)."""

    failing_after: Duration | None = Field(
        default=timedelta(hours=6),
        description="A feed whose polls have all failed for this long is unhealthy (reason "
        "`failing`); null: never.",
        json_schema_extra={"default": "6h"},
    )
    silent_after: float | None = Field(
        default=10.0,
        ge=2,
        description="A feed with no new item for this many times its usual gap between new "
        "items (and at least `silent_min`) is unhealthy (reason `silent`); null: never.",
    )
    silent_min: Duration = Field(
        default=timedelta(days=2),
        description="The shortest silence that counts, whatever the feed's usual cadence.",
        json_schema_extra={"default": "2d"},
    )


class FeedConfig(StrictModel):
    """One feed to poll."""

    url: str = Field(description="The feed's URL (RSS, Atom, RDF or JSON Feed).")
    name: str | None = Field(default=None, description="Shown in alerts; default: feed title.")
    interval: Duration | None = Field(default=None, description="Overrides defaults.interval.")
    backfill: Backfill | None = Field(default=None, description="Overrides defaults.backfill.")
    websub: bool = Field(
        default=True,
        description="false: never subscribe to this feed's WebSub hub, only poll it.",
    )
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict,
        description="Request headers sent to the feed's own origin only (never to a redirect "
        "elsewhere), e.g. `Authorization: Bearer ${FEED_TOKEN}`: credentials that need not be "
        "in the URL. Values are secret: never logged or shown.",
        json_schema_extra={"default": {}},
    )
    fulltext: bool = Field(
        default=False,
        description="Every rule may read the article page of this feed's items: for an item "
        "that passes a rule's prefilter but not its match, the page at the item's link is "
        'fetched and its main text matched as field `content` (docs/rules.md, "Full text").',
    )

    auth: FeedAuth | None = Field(
        default=None,
        description="Credentials for the feed's own origin: `{basic: {username, password}}` or "
        "`{bearer: TOKEN}`; values may be `${ENV}`. Secret: never logged or shown.",
    )
    user_agent: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        pattern=r"^[^\r\n\x00]+$",
        description="User-Agent for this feed's requests instead of monitor's own.",
    )
    proxy: SecretStr | None = Field(
        default=None,
        description="An http:// or https:// proxy for this feed only (credentials in it are "
        "secret). The operator's choice: monitor connects to it unchecked.",
        json_schema_extra={"format": "uri"},
    )
    enabled: bool = Field(
        default=True,
        description="false: kept in the config (and exported) but never polled.",
    )
    tags: list[FeedTag] = Field(
        default_factory=list,
        description="Categories rules can select with `feeds: [tag:NAME]`; OPML export writes "
        "them as the outline's category.",
        json_schema_extra={"default": [], "examples": [["state-media", "ru"]]},
    )
    lang: LanguageCode | None = Field(
        default=None,
        description="The language of this feed's items (`es`), over what the document says; "
        "items of a feed without one are identified by py3langid where a rule has `lang:`.",
    )

    _check_url = field_validator("url")(http_url)

    @field_validator("proxy")
    @classmethod
    def _check_proxy(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _PROXY_URL.match(value.get_secret_value()):
            raise ValueError("a proxy is an http:// or https:// URL (host and optional port)")
        return value

    @model_validator(mode="after")
    def _one_authorization(self) -> FeedConfig:
        names = {name.lower() for name in self.headers}
        if self.auth is not None and "authorization" in names:
            raise ValueError("auth and headers.Authorization both set: keep one")
        if self.user_agent is not None and "user-agent" in names:
            raise ValueError("user_agent and headers.User-Agent both set: keep one")
        return self

    def request_headers(self) -> dict[str, str]:
        """The headers sent to the feed's own origin only: `headers` and `auth`."""
        sent = {name: value.get_secret_value() for name, value in self.headers.items()}
        if self.auth is not None:
            sent["Authorization"] = self.auth.header()
        return sent

    def proxy_url(self) -> str | None:
        return self.proxy.get_secret_value() if self.proxy is not None else None


class BasicAuth(StrictModel):
    """HTTP Basic credentials."""

    username: str = Field(min_length=1, pattern=r"^[^:\r\n\x00]+$")
    password: HeaderValue


class FeedAuth(StrictModel):
    """One of `basic` or `bearer`."""

    basic: BasicAuth | None = None
    bearer: HeaderValue | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> FeedAuth:
        if (self.basic is None) == (self.bearer is None):
            raise ValueError("auth takes one of `basic` or `bearer`")
        return self

    def header(self) -> str:
        if self.bearer is not None:
            return f"Bearer {self.bearer.get_secret_value()}"
        assert self.basic is not None  # _exactly_one
        pair = f"{self.basic.username}:{self.basic.password.get_secret_value()}"
        return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def _header_name(value: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"{value!r} is not an HTTP header name")
    if value.lower() in _OURS:
        raise ValueError(f"monitor sets {value} itself")
    return value


def _header_value(value: SecretStr) -> SecretStr:
    if any(char in value.get_secret_value() for char in "\r\n\x00"):
        raise ValueError("a header value may not contain line breaks")
    return value


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# set by the fetcher for every request: conditional GET and decoding depend on them
_OURS = frozenset(("accept-encoding", "if-none-match", "if-modified-since", "host"))
HeaderName = Annotated[str, AfterValidator(_header_name)]
HeaderValue = Annotated[SecretStr, AfterValidator(_header_value)]
_PROXY_URL = re.compile(r"^https?://([^\s/?#@]+@)?[^\s/?#@]+/?$", re.IGNORECASE)
FeedTag = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]
LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]


def _network(value: str) -> str:
    try:
        networks([value])
    except ValueError:
        raise ValueError(f"{value!r} is not a network: write a CIDR like 10.0.0.0/8") from None
    return value


NetworkText = Annotated[str, AfterValidator(_network)]


class FullTextSettings(StrictModel):
    """Article pages read for full text (`feeds[].fulltext`, a rule's `fulltext`)."""

    max_pages_per_poll: int = Field(
        default=20,
        ge=0,
        le=1000,
        description="At most this many pages fetched for the items of one poll of a feed; "
        "the other candidates are matched on the feed's text alone (and logged).",
    )
    max_size_kib: int = Field(
        default=2048,
        ge=16,
        le=65536,
        description="Largest page read, in KiB (after decompression too): it also bounds the "
        "CPU the text extraction takes.",
    )
    deadline: Duration = Field(
        default=timedelta(seconds=15),
        description="Whole-fetch deadline of one page, redirects included (its robots.txt, "
        "when fetched, has one of its own).",
        json_schema_extra={"default": "15s"},
    )
    keep: Duration = Field(
        default=timedelta(days=7),
        description="How long a page's text (or why it could not be read) is kept, so that an "
        "item's page is fetched at most once, across restarts and replicas.",
        json_schema_extra={"default": "7d"},
    )


class FetchSettings(StrictModel):
    """How politely feeds are fetched."""

    per_host: int = Field(
        default=4, ge=1, le=100, description="At most this many requests to one host at once."
    )
    host_spacing: Duration = Field(
        default=timedelta(0),
        description="At least this long between the starts of two requests to one host.",
        json_schema_extra={"default": "0s"},
    )
    deadline: Duration = Field(
        default=timedelta(seconds=30),
        description="Whole-fetch deadline (redirects and body included): a server that drips "
        "bytes is cut off here.",
        json_schema_extra={"default": "30s"},
    )
    max_size_mib: float = Field(
        default=16,
        gt=0,
        le=1024,
        description="Largest body read, in MiB (after decompression too).",
    )
    allow_private: bool = Field(
        default=False,
        description="Let redirects to another host, WebSub hubs and article pages on another "
        "host than the feed's (full text), which a feed chooses, reach loopback, private, "
        "link-local and other non-public addresses. Feed and webhook URLs you write are never "
        "restricted.",
    )
    allow_networks: list[NetworkText] = Field(
        default_factory=list,
        description="Networks (CIDR, e.g. 10.20.0.0/16) that redirects and hubs may reach even "
        "though they are not public.",
        json_schema_extra={"default": []},
    )
    fulltext: FullTextSettings = Field(default_factory=FullTextSettings)

    def limits(self) -> FetchLimits:
        return FetchLimits(
            max_bytes=int(self.max_size_mib * 1024 * 1024),
            deadline=self.deadline.total_seconds(),
            address_policy=AddressPolicy(self.allow_private, networks(self.allow_networks)),
        )


class WebSubSettings(StrictModel):
    """WebSub (push): subscribe to the hubs feeds advertise (monitor.pipeline.websub)."""

    callback: str = Field(
        description="Public base URL that reaches this daemon's `http:` server at /websub/, "
        "e.g. https://monitor.example.org/websub/; each subscription gets an unguessable path "
        "below it.",
    )
    lease: Duration = Field(
        default=timedelta(days=10),
        description="Lease asked of hubs; renewed at 80 % of what the hub grants.",
        json_schema_extra={"default": "10d"},
    )

    _check_callback = field_validator("callback")(http_url)

    @field_validator("callback")
    @classmethod
    def _plain_callback(cls, value: str) -> str:
        if "?" in value or "#" in value:
            raise ValueError(f"{value!r}: a callback base URL takes no query or fragment")
        return value if value.endswith("/") else value + "/"

    @field_validator("lease")
    @classmethod
    def _positive_lease(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("lease must be at least 1s")
        return value


LISTEN_PATTERN = r"^[^\s:]*:\d{1,5}$"
MIN_TOKEN = 16


class HttpSettings(StrictModel):
    """`http:` as a mapping: where to listen, and the tokens of the console and the API."""

    listen: str = Field(
        description="HOST:PORT (HOST defaults to 127.0.0.1); MONITOR_HTTP overrides it.",
        json_schema_extra={"pattern": LISTEN_PATTERN},
    )
    token: SecretStr | None = Field(
        default=None,
        description="Token for the console and the API (e.g. ${MONITOR_TOKEN}); without it, "
        "MONITOR_TOKEN, else one made at start. At least 16 characters.",
    )
    read_token: SecretStr | None = Field(
        default=None, description="A second token that may read but change nothing (optional)."
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if not re.match(LISTEN_PATTERN, value):
            raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:9108), got {value!r}")
        return value

    @field_validator("token", "read_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        if len(text) < MIN_TOKEN or any(c.isspace() for c in text):
            raise ValueError(f"a token is at least {MIN_TOKEN} characters, without spaces")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> HttpSettings:
        if self.token is not None and self.token == self.read_token:
            raise ValueError("read_token must differ from token")
        return self


Listen = Annotated[str, StringConstraints(pattern=LISTEN_PATTERN)]


def _http_mapping(value: object) -> object:
    """The string form `HOST:PORT` is `{listen: HOST:PORT}`."""
    return {"listen": value} if isinstance(value, str) else value


class MonitorConfig(StrictModel):
    """`monitor.yaml`: storage, feeds, webhooks, and where the rules are."""

    version: Literal[1] = Field(default=1, description="Config format version.")
    storage: str = Field(
        default=DEFAULT_STORAGE,
        description="SQLAlchemy URL; MONITOR_STORAGE overrides it. postgresql://… for replicas.",
    )
    http: Annotated[
        HttpSettings | None,
        BeforeValidator(_http_mapping, json_schema_input_type=Listen | HttpSettings | None),
    ] = Field(
        default=None,
        description="HOST:PORT of the daemon's HTTP server (/healthz, /metrics, WebSub "
        "callbacks, the console and API), or a mapping {listen, token, read_token}; optional.",
    )
    rules: str = Field(
        default="rules/", description="Rule file or folder, relative to monitor.yaml."
    )
    defaults: Defaults = Field(default_factory=Defaults)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    retention: Retention = Field(default_factory=Retention)
    health: HealthSettings = Field(default_factory=HealthSettings)
    websub: WebSubSettings | None = Field(
        default=None, description="WebSub push subscriptions; off without this key."
    )
    feeds: list[FeedConfig] = Field(default_factory=list)
    webhooks: list[Webhook] = Field(default_factory=list)


@dataclass(frozen=True)
class LoadedConfig:
    """A config that validated, with its rules compiled."""

    directory: Path
    settings: MonitorConfig
    matcher: Matcher
    rule_files: tuple[Path, ...]
    storage_url: str
    # credentials whose environment variable is not set, loaded with `secrets=False`: a
    # stand-in took their place, and this config must not deliver or poll
    unset: tuple[ConfigProblem, ...] = ()

    def feed_interval(self, feed: FeedConfig) -> timedelta:
        return feed.interval or self.settings.defaults.interval

    def feed_backfill(self, feed: FeedConfig) -> timedelta | str:
        return feed.backfill if feed.backfill is not None else self.settings.defaults.backfill


def load_config(
    directory: Path,
    environ: Mapping[str, str] | None = None,
    *,
    secrets: bool = True,
    rules: Path | None = None,
    examples: bool = True,
) -> LoadedConfig:
    """Read, validate and compile DIR/monitor.yaml and its rules; ConfigError lists all problems,
    each with its path relative to DIR.

    `secrets=False`, for commands that neither deliver nor poll: a webhook's or a feed header's
    `${NAME}` that is not set is no problem; a stand-in takes its place and `unset` says where.
    `rules`: draft rules (a file or a folder) whose files take the place of the rule files of
    the same name, the others staying as they are (`monitor check --rules`, `backtest --rules`).
    `examples`: run the rules' examples, a failing one being a problem (the daemon's loads: an
    edit that breaks an example is rejected like any other; they cost milliseconds).
    """
    env = os.environ if environ is None else environ
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError([ConfigProblem(config_path, 0, 0, "no such file")])
    document = load_positioned(config_path, env, None if secrets else _credential_stand_in)
    problems = _document_problems(document)
    settings = _validate(MonitorConfig, document, problems) if not problems else None
    if settings is not None:
        problems.extend(_cross_check(settings, document))
        problems.extend(_check_websub(settings, document, env))
    # the rules are checked even when monitor.yaml is not valid: every problem in one run
    rule_paths, rule_problems = _rule_paths(directory, _rules_key(settings, document), document)
    problems.extend(rule_problems)
    rule_paths, draft_problems = _with_drafts(rule_paths, rules)
    problems.extend(draft_problems)
    matcher, rule_ids = _load_rules(
        rule_paths, env, problems, directory, examples=examples, feed_tags=feed_tags(settings)
    )
    if rule_ids is not None:
        problems.extend(_check_webhook_rules(document, rule_ids))
    if problems or matcher is None or settings is None:
        raise ConfigError([_relative(problem, directory) for problem in problems])
    storage = env.get(STORAGE_ENV) or settings.storage
    unset = tuple(
        _relative(
            ConfigProblem(document.path, pos.line, pos.column, f"{message} (needed to deliver)"),
            directory,
        )
        for pos, message in document.unset
    )
    return LoadedConfig(directory, settings, matcher, tuple(rule_paths), storage, unset)


def shown_path(path: Path, directory: Path) -> Path:
    """A config file's path as problems show it: relative to the config folder."""
    try:
        return Path(os.path.relpath(path.resolve(), directory.resolve()))
    except ValueError:  # another drive (Windows): no relative path exists
        return path


def _relative(problem: ConfigProblem, directory: Path) -> ConfigProblem:
    path = shown_path(problem.path, directory)
    return ConfigProblem(path, problem.line, problem.column, problem.message)


def _rules_key(settings: MonitorConfig | None, document: PositionedDocument) -> str:
    """Where the rules are: `rules:` as validated, or as written when monitor.yaml is not valid."""
    if settings is not None:
        return settings.rules
    data = document.data
    written = data.get("rules") if isinstance(data, dict) else None
    return written if isinstance(written, str) else str(MonitorConfig.model_fields["rules"].default)


def _with_drafts(paths: list[Path], drafts: Path | None) -> tuple[list[Path], list[ConfigProblem]]:
    """The rule files with the drafts in place of the files of the same name (or added)."""
    if drafts is None:
        return paths, []
    if drafts.is_dir():
        found = sorted(p for p in drafts.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    elif drafts.is_file():
        found = [drafts]
    else:
        return paths, [ConfigProblem(drafts, 0, 0, "--rules: no such file or folder")]
    if not found:
        return paths, [ConfigProblem(drafts, 0, 0, "--rules: no .yaml files in this folder")]
    by_name = {path.name: path for path in paths}
    for draft in found:
        by_name[draft.name] = draft.resolve()
    return sorted(by_name.values(), key=lambda p: p.name), []


def _credential_stand_in(loc: Loc, whole: bool) -> str | None:
    """The stand-in for an unset variable at `loc`: in a webhook (its URL, secret, token,
    headers), a feed's headers or the `http:` tokens; None elsewhere, where the value is needed
    to load."""
    in_webhook = len(loc) >= 3 and loc[0] == "webhooks"
    in_feed_headers = len(loc) >= 4 and loc[0] == "feeds" and loc[2] == "headers"
    if loc in (("http", "token"), ("http", "read_token")):
        return _TOKEN_STAND_IN  # long enough to validate, never used: only `run` serves
    in_feed_access = len(loc) >= 3 and loc[0] == "feeds" and loc[2] in ("auth", "proxy")
    if in_feed_access and loc[2] == "proxy":
        return "http://unset.invalid:3128" if whole else _UNSET
    if not (in_webhook or in_feed_headers or in_feed_access):
        return None
    if not whole:
        return _UNSET
    # a list of secrets while rotating: ("webhooks", 0, "secret", 1)
    key = next((part for part in reversed(loc) if isinstance(part, str)), "")
    return _STAND_INS.get(key, _UNSET) if in_webhook and len(loc) <= 4 else _UNSET


def _document_problems(document: PositionedDocument) -> list[ConfigProblem]:
    problems = [
        ConfigProblem(document.path, pos.line, pos.column, message)
        for pos, message in document.problems
    ]
    if not problems and not isinstance(document.data, dict):
        problems.append(ConfigProblem(document.path, 1, 1, "expected a mapping of keys"))
    return problems


def _validate(
    model: type[M], document: PositionedDocument, problems: list[ConfigProblem]
) -> M | None:
    try:
        return model.model_validate(document.data)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, document, model))
        return None


def _pydantic_problems(
    exc: ValidationError, document: PositionedDocument, model: type[BaseModel]
) -> list[ConfigProblem]:
    found = []
    for error in exc.errors(include_url=False):
        loc, webhook = _untagged(tuple(error["loc"]))
        kind = error["type"]
        if kind == FORMAT_ERROR:  # the value of `format` is wrong, not the whole webhook
            loc = (*loc, "format")
        dotted = ".".join(str(part) for part in loc) or "(top)"
        if kind == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}{_suggestion(model, loc, webhook)}"
            position = document.position_of(loc, prefer_key=True)
        elif kind == "missing":
            message = f"missing required key {dotted!r}"
            position = document.position_of(loc)
        else:
            text = str(error["msg"]).removeprefix("Value error, ")
            message = f"{dotted}: {text}"
            position = document.position_of(loc)
        found.append(ConfigProblem(document.path, position.line, position.column, message))
    return found


def _untagged(loc: Loc) -> tuple[Loc, type[BaseModel] | None]:
    """A webhook's place without the format pydantic puts in it (`webhooks.0.slack.url` is
    `webhooks.0.url`), and the settings of that format."""
    if len(loc) > 2 and loc[0] == "webhooks" and isinstance(loc[2], str) and loc[2] in SETTINGS:
        return (*loc[:2], *loc[3:]), SETTINGS[loc[2]]
    return loc, None


def _suggestion(model: type[BaseModel], loc: Loc, webhook: type[BaseModel] | None = None) -> str:
    """`; did you mean 'interval'?` from the fields valid at that place, when one is close."""
    current: Any = model
    parts = loc[:-1]
    if webhook is not None:  # loc: webhooks, index, key…
        current, parts = webhook, loc[2:-1]
    for part in parts:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return ""
        current = _model_in(field.annotation)
        if current is None:
            return ""
    names = list(getattr(current, "model_fields", {}))
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(names)}"


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _duplicates(
    values: Sequence[str], document: PositionedDocument, loc_of: Any, what: str
) -> list[ConfigProblem]:
    seen: dict[str, int] = {}
    found = []
    for index, value in enumerate(values):
        if value in seen:
            pos = document.position_of(loc_of(index))
            message = f"duplicate {what} {value!r} (first at item {seen[value] + 1})"
            found.append(ConfigProblem(document.path, pos.line, pos.column, message))
        else:
            seen[value] = index
    return found


def _cross_check(settings: MonitorConfig, document: PositionedDocument) -> list[ConfigProblem]:
    return [
        *_duplicates(
            [f.url for f in settings.feeds], document, lambda i: ("feeds", i, "url"), "feed url"
        ),
        *_duplicates(
            [w.name for w in settings.webhooks],
            document,
            lambda i: ("webhooks", i, "name"),
            "webhook name",
        ),
    ]


def _check_websub(
    settings: MonitorConfig, document: PositionedDocument, environ: Mapping[str, str]
) -> list[ConfigProblem]:
    """Hubs call the daemon back on its HTTP server: `websub:` needs `http:` (or MONITOR_HTTP)."""
    if settings.websub is None or settings.http or environ.get("MONITOR_HTTP"):
        return []
    pos = document.position_of(("websub",), prefer_key=True)
    message = "websub: needs `http:` (or MONITOR_HTTP): hubs call back the daemon's HTTP server"
    return [ConfigProblem(document.path, pos.line, pos.column, message)]


def _rule_paths(
    directory: Path, rules: str, document: PositionedDocument
) -> tuple[list[Path], list[ConfigProblem]]:
    target = (directory / rules).resolve()
    pos = document.position_of(("rules",))
    if target.is_file():
        return [target], []
    if target.is_dir():
        paths = sorted(p for p in target.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if paths:
            return paths, []
        message = f"rules: no .yaml files in {rules}"
    else:
        message = f"rules: {rules} does not exist"
    return [], [ConfigProblem(document.path, pos.line, pos.column, message)]


def feed_tags(settings: MonitorConfig | None) -> dict[str, list[str]] | None:
    """The feeds' URLs by tag, for rules that select feeds with `feeds: [tag:NAME]`; None when
    monitor.yaml did not validate (its tags are unknown: rules naming one are not refused)."""
    if settings is None:
        return None
    tagged: dict[str, list[str]] = {}
    for feed in settings.feeds:
        for tag in feed.tags:
            tagged.setdefault(tag, []).append(feed.url)
    return tagged


def _load_rules(
    paths: Sequence[Path],
    environ: Mapping[str, str],
    problems: list[ConfigProblem],
    directory: Path,
    *,
    examples: bool = True,
    feed_tags: Mapping[str, Sequence[str]] | None = None,
) -> tuple[Matcher | None, frozenset[str] | None]:
    """The compiled rules, and every rule id declared (None when some rule file could not be
    read, so any id may be in it). A file that does not validate is still compiled from the
    sets and rules of it that do, so that their problems are found in the same run."""
    key = _saved_key(paths, environ, feed_tags)
    if key is not None and (matcher := saved.load(key)) is not None:
        # saved only when the same files read cleanly, compiled and passed their examples
        return matcher, frozenset(rule.id for rule in matcher.rules)
    compile_them = partial(
        _compile_rules, paths, environ, directory, key, examples=examples, feed_tags=feed_tags
    )
    # Compiling opens pymorphy3's and simplemma's dictionaries and fills their word caches, and
    # the heap it leaves behind stays with the process: in a child, the rules come back as
    # compact as saved ones, and a daemon that compiled them holds what one that loaded them does
    compiled = in_a_fork(compile_them) or compile_them()
    problems.extend(compiled.problems)
    return compiled.matcher, compiled.rule_ids


@dataclass(frozen=True, slots=True)
class _CompiledRules:
    matcher: Matcher | None
    rule_ids: frozenset[str] | None
    problems: list[ConfigProblem]


def _compile_rules(
    paths: Sequence[Path],
    environ: Mapping[str, str],
    directory: Path,
    key: str | None,
    *,
    examples: bool,
    feed_tags: Mapping[str, Sequence[str]] | None,
) -> _CompiledRules:
    """The rule files read and compiled, their examples run; saved under `key` when clean."""
    problems: list[ConfigProblem] = []
    documents = {path: load_positioned(path, environ) for path in paths}
    file_problems = [problem for doc in documents.values() for problem in _document_problems(doc)]
    problems.extend(file_problems)
    # compiling's modules are imported only when the rules are not saved: a start that loads
    # saved rules never needs them
    from monitor.matching.examples import run_examples  # noqa: PLC0415
    from monitor.matching.rules import compile_sources  # noqa: PLC0415

    sources, unreadable = _rule_sources(documents, problems)
    compiled = compile_sources(sources, lenient=unreadable, feed_tags=feed_tags)
    for problem in compiled.problems:
        pos = documents[problem.path].position_of(problem.loc)
        message = problem.message
        if problem.see is not None:
            see_path, see_loc = problem.see
            where = documents[see_path].position_of(see_loc, prefer_key=True)
            message += f" {shown_path(see_path, directory)}:{where.line}:{where.column}"
        problems.append(ConfigProblem(problem.path, pos.line, pos.column, message))
    if compiled.matcher is not None:
        # run even when they are not asked for (`monitor check` runs its own): rules are saved
        # only with passing examples, so that any later load may take them as they are
        failures = run_examples(compiled.matcher)
        for failure in failures if examples else ():
            example = failure.example
            pos = documents[example.path].position_of(example.loc)
            message = f"{failure.summary} (`monitor check` says why)"
            problems.append(ConfigProblem(example.path, pos.line, pos.column, message))
        if key is not None and not failures and not file_problems:
            saved.save(key, compiled.matcher)
    return _CompiledRules(compiled.matcher, None if unreadable else compiled.rule_ids, problems)


# a hex escape in a double-quoted YAML string may spell `$`, `{` or `}`: only parsing tells
# which variables such a file names
_HEX_ESCAPE = re.compile(rb"\\[xuU]")


def _saved_key(
    paths: Sequence[Path], environ: Mapping[str, str], feed_tags: Mapping[str, Sequence[str]] | None
) -> str | None:
    """The key of these rule files compiled (monitor.matching.saved): their bytes and the
    values of the variables they name, so that a start with saved rules parses none of them.
    None when a file cannot be read or writes a hex escape."""
    if not paths:
        return None
    files: list[tuple[Path, bytes]] = []
    for path in paths:
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        if _HEX_ESCAPE.search(raw):
            return None
        names = sorted(variables_in(raw.decode("utf-8", "replace")))
        values = repr([(name, environ.get(name)) for name in names]).encode()
        files.append((path, raw + b"\0" + values))
    return saved.rules_key(
        files, analyzer=DEFAULT_ANALYZER, feed_tags=feed_tags, readers=(Path(yamlpos.__file__),)
    )


def _rule_sources(
    documents: Mapping[Path, PositionedDocument], problems: list[ConfigProblem]
) -> tuple[list[RuleSource], bool]:
    """The parts of each rule file that validate, and whether some file could not be read at
    all (so any set or rule may be in it)."""
    from monitor.matching.partial import valid_parts  # noqa: PLC0415 - as in _load_rules
    from monitor.matching.rules import RuleSource  # noqa: PLC0415
    from monitor.matching.schema import RuleFile  # noqa: PLC0415

    sources: list[RuleSource] = []
    unreadable = not documents
    for path, document in documents.items():
        if not isinstance(document.data, dict):
            unreadable = True
            continue
        try:
            sources.append(RuleSource(path, RuleFile.model_validate(document.data)))
        except ValidationError as exc:
            problems.extend(_pydantic_problems(exc, document, RuleFile))
            source = valid_parts(path, document.data)
            unreadable = unreadable or source is None
            if source is not None:
                sources.append(source)
    return sources, unreadable


def _check_webhook_rules(
    document: PositionedDocument, known: frozenset[str]
) -> list[ConfigProblem]:
    """Webhook `rules:` that name no rule; read from the YAML as written, so that this is
    checked even when monitor.yaml has other problems."""
    data = document.data
    hooks = data.get("webhooks") if isinstance(data, dict) else None
    found = []
    for hook_index, hook in enumerate(hooks if isinstance(hooks, list) else []):
        names = hook.get("rules") if isinstance(hook, dict) else None
        for rule_index, rule_id in enumerate(names if isinstance(names, list) else []):
            if isinstance(rule_id, str) and rule_id not in known:
                pos = document.position_of(("webhooks", hook_index, "rules", rule_index))
                hint = difflib.get_close_matches(rule_id, sorted(known), n=1)
                more = f"; did you mean {hint[0]!r}?" if hint else ""
                message = f"webhooks.{hook_index}.rules: unknown rule id {rule_id!r}{more}"
                found.append(ConfigProblem(document.path, pos.line, pos.column, message))
    return found


def config_schema() -> dict[str, Any]:
    """JSON Schema of `monitor.yaml`."""
    schema = MonitorConfig.model_json_schema()
    schema["$schema"] = SCHEMA_DIALECT
    schema["title"] = "monitor.yaml"
    return schema


def rules_schema() -> dict[str, Any]:
    """JSON Schema of a rule file."""
    from monitor.matching.schema import RuleFile  # noqa: PLC0415 - as in _load_rules

    schema = RuleFile.model_json_schema()
    schema["$schema"] = SCHEMA_DIALECT
    schema["title"] = "monitor rule file"
    return schema


def combined_schema() -> dict[str, Any]:
    """One schema that accepts either file: both schemas' definitions hoisted to the top."""
    parts = {"ConfigFile": config_schema(), "RuleFile": rules_schema()}
    definitions: dict[str, Any] = {}
    for name, part in parts.items():
        part.pop("$schema")
        for key, value in part.pop("$defs", {}).items():
            if key in definitions:
                raise RuntimeError(f"schema definition {key!r} is defined twice")
            definitions[key] = value
        definitions[name] = part
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "monitor config or rule file",
        "$defs": definitions,
        "anyOf": [{"$ref": "#/$defs/ConfigFile"}, {"$ref": "#/$defs/RuleFile"}],
    }
