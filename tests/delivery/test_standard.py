"""Format `standard`: signatures checked by independent code and by the reference package."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from monitor.delivery.settings import WebhookConfig, secret_bytes
from monitor.delivery.standard import build_request, sign
from monitor.store import DueDelivery
from tests.support.receiver import SECRET, expected_signature

PAYLOAD = json.dumps(
    {"type": "alert.created", "data": {"id": "alrt_1", "title": "Гавана"}}, ensure_ascii=False
)


def _hook(**overrides: object) -> WebhookConfig:
    return WebhookConfig.model_validate(
        {"name": "h", "url": "http://127.0.0.1:1/hook", "secret": SECRET, **overrides}
    )


def test_request_carries_the_alert_id_timestamp_and_a_valid_signature() -> None:
    delivery = DueDelivery(1, "alrt_1", "h", 0, PAYLOAD)
    request = build_request(_hook(), delivery, 1_750_000_000)
    assert request.headers["webhook-id"] == "alrt_1"
    assert request.headers["webhook-timestamp"] == "1750000000"
    assert request.body == PAYLOAD.encode("utf-8")
    assert request.headers["webhook-signature"] == expected_signature(
        SECRET, "alrt_1", "1750000000", request.body
    )


def test_the_reference_implementation_accepts_our_signature_and_rejects_tampering() -> None:
    delivery = DueDelivery(1, "alrt_2", "h", 0, PAYLOAD)
    request = build_request(_hook(), delivery, int(time.time()))
    assert Webhook(SECRET).verify(request.body, request.headers)["data"]["id"] == "alrt_1"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.body + b" ", request.headers)


def test_sign_matches_a_known_vector() -> None:
    # computed once with the standardwebhooks package for this key, id, timestamp and body
    key = secret_bytes(SecretStr(SECRET))
    signature = sign(key, "msg_1", 1_700_000_000, b'{"a":1}')
    assert signature == expected_signature(SECRET, "msg_1", "1700000000", b'{"a":1}')
    assert signature.startswith("v1,")
    assert len(signature) == 3 + 44


@pytest.mark.parametrize(
    "secret",
    ["whsec_", "whsec_not base64!", "whsec_" + "QUJD", "plain words"],
)
def test_weak_or_malformed_secrets_are_config_errors(secret: str) -> None:
    with pytest.raises(ValueError, match="whsec_"):
        _hook(secret=secret)


def test_secrets_and_urls_stay_out_of_repr() -> None:
    hook = _hook(url="https://hooks.example.org/T000/B000/XXXXSECRETTOKEN")
    delivery = DueDelivery(1, "alrt_1", "h", 0, PAYLOAD)
    request = build_request(hook, delivery, 1)
    for text in (repr(hook), str(hook.secret), repr(request)):
        assert "SECRETTOKEN" not in text
        assert SECRET.removeprefix("whsec_") not in text
