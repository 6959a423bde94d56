"""Webhook settings: where alerts go, how they are signed, and the retry schedule."""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from monitor.configtypes import Duration, StrictModel, http_url
from monitor.durations import parse_duration

DEFAULT_RETRY = ("5s", "5m", "30m", "2h", "5h", "10h", "10h")


class WebhookConfig(StrictModel):
    """One place alerts are delivered to."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Stable name.")
    url: str = Field(description="Where alerts are POSTed.")
    format: Literal["standard"] = Field(
        default="standard",
        description="`standard`: JSON signed per the Standard Webhooks specification.",
    )
    secret: SecretStr | None = Field(
        default=None, description="Standard Webhooks signing secret: `whsec_` + base64."
    )
    rules: list[str] | None = Field(default=None, description="Only these rule ids; default all.")
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

    _check_url = field_validator("url")(http_url)

    @field_validator("secret")
    @classmethod
    def _check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            secret_bytes(value)
        return value

    @model_validator(mode="after")
    def _standard_needs_a_secret(self) -> Self:
        if self.format == "standard" and self.secret is None:
            raise ValueError(
                "format `standard` signs every alert and needs a `secret` (`whsec_` + base64)"
            )
        return self

    def __repr__(self) -> str:  # the URL may carry a token
        return f"WebhookConfig(name={self.name!r}, format={self.format!r})"


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
