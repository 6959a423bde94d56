"""Webhook settings: the keys every webhook has — where alerts go, how they are signed, routed
and retried, how their noise is kept down (story groups, digests, quiet hours, urgent
severity) — in `WebhookConfig`, the base of each target's own settings.

Each target module declares its settings as a subclass naming its `format` (a `Literal`), with
the keys only it takes, their defaults and checks: `SlackWebhook(WebhookConfig)` in slack.py,
`JsonWebhook` with its `template` in json_format.py, and so on. `webhook_union` combines them
into one union discriminated on `format` (monitor.delivery.targets.Webhook, what the config
reads), `standard` when `format` is absent. `WebhookConfig.model_validate` parses any webhook
into the settings of its format.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import time, timedelta
from typing import Annotated, Any, ClassVar, Self, Union, cast, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

from monitor.durations import parse_duration
from monitor.events import EventType, Severity
from monitor.fields import Duration, StrictModel, http_url
from monitor.http.urls import redact_url

DEFAULT_RETRY = ("5s", "5m", "30m", "2h", "5h", "10h", "10h")
SEVERITIES = ("low", "medium", "high", "critical")
ALERT_EVENTS: tuple[EventType, ...] = ("alert.created", "alert.updated", "alert.digest")
DEFAULT_FORMAT = "standard"
FORMAT_ERROR = "webhook_format"  # the error type of a `format` no target declares
# what the config puts in a webhook for a `${NAME}` left unset (a warning for the commands that
# do not deliver, monitor.config): each format's own checks let these pass
UNSET_URL = "https://unset.invalid/"
UNSET = "unset"


_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class QuietHours(StrictModel):
    """A daily span during which alerts are held, then sent as one digest when it ends."""

    start: str = Field(description="Local time `HH:MM` when quiet hours begin, e.g. `22:00`.")
    end: str = Field(
        description="Local time `HH:MM` when they end, e.g. `07:00` (the next day when earlier "
        "than `start`)."
    )
    timezone: str = Field(
        default="UTC",
        description="An IANA time zone, e.g. `Europe/Madrid` (daylight saving time followed).",
    )

    @field_validator("start", "end")
    @classmethod
    def _check_clock(cls, value: str) -> str:
        if not _CLOCK.match(value.strip()):
            raise ValueError(f"{value!r} is not a time of day: write HH:MM, e.g. 22:00")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name like Europe/Madrid or UTC"
            ) from None
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start_time == self.end_time:
            raise ValueError("quiet hours `start` and `end` are the same time")
        return self

    @property
    def start_time(self) -> time:
        return _clock(self.start)

    @property
    def end_time(self) -> time:
        return _clock(self.end)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


class WebhookConfig(StrictModel):
    """One place alerts are delivered to: the keys of every format."""

    formats: ClassVar[dict[str, type[WebhookConfig]]] = {}  # format -> its settings, as declared
    _foreign: dict[str, list[str]] = PrivateAttr(default_factory=dict)  # keys of other formats

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Stable name.")
    url: str = Field(description="Where alerts are POSTed. Kept out of logs (it may hold a token).")
    format: str = Field(description="The target format (each format's settings name theirs).")
    secret: SecretStr | list[SecretStr] | None = Field(
        default=None,
        description="Standard Webhooks signing secret, `whsec_` + base64; a list signs with "
        "each (one signature per secret in `webhook-signature`), for rotating secrets. "
        "Formats `standard`, `cloudevents` and `json` sign with it; chat formats do not.",
    )
    rules: list[str] | None = Field(default=None, description="Only these rule ids; default all.")
    severity: Severity | None = Field(
        default=None,
        description="Only alerts of at least this severity (low < medium < high < critical).",
    )
    events: list[EventType] = Field(
        default_factory=lambda: list(ALERT_EVENTS),
        min_length=1,
        description="The event types this webhook receives; default: the alert ones "
        "(alert.created, alert.updated, alert.digest). Add `feed.unhealthy` and "
        "`feed.recovered` for feed health; a list without `alert.created` receives no alerts.",
        json_schema_extra={"default": list(ALERT_EVENTS)},
    )
    group: Duration | None = Field(
        default=None,
        description="Story groups: an alert telling the same story as an earlier one of the "
        "same rule (within this long of the story's first alert) is sent as `alert.updated` of "
        "that story's group, never as a second `alert.created`. E.g. `12h`.",
        json_schema_extra={"examples": ["12h"]},
    )
    digest: Duration | None = Field(
        default=None,
        description="Digests: alerts are held and sent as one `alert.digest` per window, which "
        "opens with the first alert held and lasts this long. E.g. `1h`.",
        json_schema_extra={"examples": ["1h"]},
    )
    digest_max_items: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="At most this many stories (each listed by its first item, with every "
        "alert of it in the window) in one `alert.digest` message; a window with more is sent "
        "as several messages, `data.part` = {number, of}, each signed and retried on its own.",
    )
    quiet: QuietHours | None = Field(
        default=None,
        description="Quiet hours: alerts arriving then are held and sent as one `alert.digest` "
        "when they end.",
    )
    urgent: Severity | None = Field(
        default=None,
        description="Alerts of at least this severity are never held by `digest` or `quiet`: "
        "they go out at once.",
    )
    retry: list[Duration] = Field(
        default_factory=lambda: [parse_duration(d) for d in DEFAULT_RETRY],
        description="Waits between attempts; after the last, the alert is kept as failed.",
        json_schema_extra={"default": list(DEFAULT_RETRY)},
    )
    timeout: Duration = Field(
        default=timedelta(seconds=15),
        description="Per attempt.",
        json_schema_extra={"default": "15s"},
    )
    rate_limit: float | None = Field(
        default=None,
        gt=0,
        description="At most this many requests per second to this webhook; default: the "
        "target's documented limit (slack 1, teams 4, discord 2.5 and its X-RateLimit headers, "
        "ntfy 0.2 with bursts of 60, telegram 20 a minute, matrix 0.2 with bursts of 10, "
        "mattermost 5, email and apprise 1; none for standard, cloudevents and json).",
    )
    concurrency: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Requests in flight at once to this webhook; default: 1 for chat targets, "
        "8 otherwise.",
    )

    _check_url = field_validator("url")(http_url)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """A target's settings register under the format their `format` field names."""
        super().__pydantic_init_subclass__(**kwargs)
        names = get_args(cls.model_fields["format"].annotation)
        if len(names) == 1:
            WebhookConfig.formats[names[0]] = cls

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        """On WebhookConfig itself: the settings of the webhook's format (`standard` when it
        has no `format`), as the config reads them."""
        if cls is not WebhookConfig:
            return super().model_validate(obj, **kwargs)
        return cast(Self, _any_format().validate_python(obj, **kwargs))

    @model_validator(mode="wrap")
    @classmethod
    def _set_aside_keys_of_other_formats(
        cls, data: Any, handler: ModelWrapValidatorHandler[Self]
    ) -> Self:
        """`template` on a slack webhook is not an unknown key: `_checks` says which format
        takes it, after the problems of the webhook's own keys (as it always did)."""
        if not isinstance(data, Mapping):
            return handler(data)
        foreign = {
            key: [name for name, model in cls.formats.items() if key in model.model_fields]
            for key in data
            if key not in cls.model_fields
        }
        foreign = {key: owners for key, owners in foreign.items() if owners}
        webhook = handler({key: value for key, value in data.items() if key not in foreign})
        webhook._foreign = foreign
        return webhook

    @field_validator("secret")
    @classmethod
    def _check_secret(
        cls, value: SecretStr | list[SecretStr] | None
    ) -> SecretStr | list[SecretStr] | None:
        for secret in [value] if isinstance(value, SecretStr) else value or []:
            secret_bytes(secret)
        if isinstance(value, list) and not value:
            raise ValueError("`secret` is a list of at least one `whsec_…` secret")
        return value

    def format_problem(self) -> str | None:
        """What a webhook of this format lacks to work (a target's settings say), or None."""
        return None

    @model_validator(mode="after")
    def _checks(self) -> Self:
        problem = self.format_problem()
        if problem is not None:
            raise ValueError(problem)
        for key, owners in self._foreign.items():
            listed = ", ".join(f"`{name}`" for name in owners)
            raise ValueError(f"`{key}` is for format{'s' if len(owners) > 1 else ''} {listed} only")
        for key in ("group", "digest"):
            value = getattr(self, key)
            if value is not None and value < timedelta(seconds=1):
                raise ValueError(f"`{key}` is a duration of at least 1s, like 1h")
        for key, event in (("group", "alert.updated"), ("digest", "alert.digest")):
            if getattr(self, key) is not None and event not in self.events:
                raise ValueError(f"`{key}` sends `{event}`: add it to `events`, or drop `{key}`")
        if self.quiet is not None and "alert.digest" not in self.events:
            raise ValueError("`quiet` hours end with an `alert.digest`: add it to `events`")
        return self

    @property
    def noisy(self) -> bool:
        """Whether deliveries to this webhook are routed (groups, digests, quiet hours) before
        they are sent (monitor.delivery.noise)."""
        return self.group is not None or self.digest is not None or self.quiet is not None

    def urgent_enough(self, severity: str) -> bool:
        """Whether an alert of this severity bypasses `digest` and `quiet` (`urgent`)."""
        return self.urgent is not None and severity_rank(severity) >= severity_rank(self.urgent)

    def signing_keys(self) -> list[bytes]:
        """The HMAC keys, newest first as written; empty when the webhook is unsigned."""
        if self.secret is None:
            return []
        secrets = [self.secret] if isinstance(self.secret, SecretStr) else self.secret
        return [secret_bytes(s) for s in secrets]

    def wants_event(self, event_type: str) -> bool:
        """Whether events of this type go to this webhook (`events`)."""
        return event_type in self.events

    def wants_rule(self, rule_id: str) -> bool:
        """Whether alerts of this rule may go to this webhook (`rules`, and `alert.created`
        among its `events`), whatever their severity."""
        return self.wants_event("alert.created") and (self.rules is None or rule_id in self.rules)

    def wants(self, rule_id: str, severity: str) -> bool:
        """Whether an alert of this rule and severity goes to this webhook (`rules`, `severity`,
        and `alert.created` among its `events`)."""
        if not self.wants_rule(rule_id):
            return False
        return self.severity is None or severity_rank(severity) >= severity_rank(self.severity)

    def url_digest(self) -> str:
        """A digest of the URL: tells whether the URL changed without keeping the URL itself."""
        return hashlib.sha256(self.url.encode("utf-8")).hexdigest()[:32]

    def secret_values(self) -> list[str]:
        """The values of its secret settings (SecretStr fields), to keep out of any text shown."""
        values: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, SecretStr):
                    values.append(item.get_secret_value())
        return values

    def safe_url(self) -> str:
        """The URL with path and query hidden: `https://hooks.slack.com/…`."""
        return redact_url(self.url)

    def __repr__(self) -> str:  # the URL may carry a token
        return f"WebhookConfig(name={self.name!r}, format={self.format!r})"

    __str__ = __repr__


def webhook_union(models: Sequence[type[WebhookConfig]]) -> Any:
    """The settings of any of these formats: a union discriminated on `format`, `standard` when
    a webhook has none; a `format` none of them declares is an error of type FORMAT_ERROR."""
    names = {model: name for name, model in WebhookConfig.formats.items()}
    quoted = [repr(names[model]) for model in models]
    choices = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
    tagged = tuple(Annotated[model, Tag(names[model])] for model in models)
    return Annotated[
        Union[tagged],  # noqa: UP007 - `|` cannot join a tuple known only at run time
        Discriminator(
            _format_of,
            custom_error_type=FORMAT_ERROR,
            custom_error_message=f"Input should be {choices}",
        ),
    ]


def _format_of(value: object) -> object:
    if isinstance(value, Mapping):
        return value.get("format", DEFAULT_FORMAT)
    return getattr(value, "format", None)


@functools.cache
def _any_format() -> TypeAdapter[Any]:
    return TypeAdapter(webhook_union(tuple(WebhookConfig.formats.values())))


def severity_rank(severity: str) -> int:
    """low 0 … critical 3; an unknown severity ranks as medium."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else 1


def secret_bytes(secret: SecretStr) -> bytes:
    """The HMAC key of a `whsec_…` secret; ValueError says how to make a valid one."""
    text = secret.get_secret_value().strip()
    encoded = text.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 16:
        raise ValueError(
            "a secret is `whsec_` followed by base64 of at least 16 random bytes; make one with: "
            'python -c "import base64,os;'
            "print('whsec_'+base64.b64encode(os.urandom(32)).decode())\""
        )
    return key
