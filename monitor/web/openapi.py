"""The OpenAPI 3.1 document of `/api/v1/`, generated from the pydantic bodies of
monitor.web.schemas (their JSON Schemas are the document's components), so it cannot drift
from what the handlers send."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from monitor import __version__
from monitor.web import schemas

REF = "#/components/schemas/{model}"
FILTERS = {
    "rule": "Only alerts of this rule (its id).",
    "severity": "low | medium | high | critical",
    "lang": "The item's language: `es` also takes `es-419`.",
    "feed": "A feed's id (from /api/v1/feeds).",
    "since": "An ISO 8601 time, or a duration back from now: `24h`, `7d`.",
    "until": "An ISO 8601 time, or a duration back from now.",
    "cursor": "Where the previous page ended (its `next`).",
    "limit": "Page size, 1 to 200 (default 50).",
}

# (method, path, operation id, summary, request body, answer, parameters)
OPERATIONS: list[tuple[str, str, str, str, type[BaseModel] | None, type[BaseModel], list[str]]] = [
    ("get", "/alerts", "listAlerts", "Alerts, newest first, with their deliveries", None,
     schemas.AlertsOut, list(FILTERS)),
    ("get", "/alerts/{alert_id}", "getAlert", "One alert", None, schemas.AlertOut, ["alert_id"]),
    ("get", "/alerts/{alert_id}/deliveries", "listDeliveries", "An alert's deliveries, one per "
     "webhook", None, schemas.DeliveriesOut, ["alert_id"]),
    ("post", "/alerts/{alert_id}/replay", "replayAlert", "Requeue an alert's deliveries (all, or "
     "one webhook's) with a fresh retry budget", schemas.ReplayIn, schemas.ReplayOut,
     ["alert_id"]),
    ("get", "/stories", "listStories", "A page of alerts told as stories", None,
     schemas.StoriesOut, list(FILTERS)),
    ("get", "/stories/{story_id}", "getStory", "One story with all its alerts", None,
     schemas.StoryOut, ["story_id"]),
    ("get", "/feeds", "listFeeds", "Feeds with their health and items per day", None,
     schemas.FeedsOut, []),
    ("get", "/rules", "listRules", "Rules with their alerts of the last 7 days", None,
     schemas.RulesOut, []),
    ("post", "/match", "tryMatch", "A live rule or a draft over a text or a stored item: match "
     "or why not", schemas.MatchIn, schemas.MatchOut, []),
    ("post", "/backtest", "tryBacktest", "A live rule or a draft over the items stored in the "
     "last 7 days, compared with the alerts they raised", schemas.BacktestIn,
     schemas.BacktestOut, []),
]  # fmt: skip


def _parameter(name: str) -> dict[str, Any]:
    if name in ("alert_id", "story_id"):
        return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
    kind = "integer" if name in ("feed", "limit") else "string"
    return {"name": name, "in": "query", "description": FILTERS[name], "schema": {"type": kind}}


def _response(model: type[BaseModel], description: str) -> dict[str, Any]:
    schema = {"$ref": REF.format(model=model.__name__)}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(
    op_id: str,
    summary: str,
    body: type[BaseModel] | None,
    answer: type[BaseModel],
    parameters: list[str],
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "parameters": [_parameter(name) for name in parameters],
        "responses": {
            "200": _response(answer, "OK"),
            "400": _response(schemas.ProblemOut, "A parameter cannot be read"),
            "401": {"description": "No valid token"},
            "404": _response(schemas.ProblemOut, "No such alert or story"),
        },
    }
    if body is not None:
        schema = {"$ref": REF.format(model=body.__name__)}
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": schema}},
        }
        operation["responses"]["413"] = _response(schemas.ProblemOut, "Body too large")
        operation["responses"]["422"] = _response(schemas.ProblemOut, "Body or draft invalid")
    return operation


@cache
def openapi_document() -> dict[str, Any]:
    models: set[type[BaseModel]] = {schemas.ProblemOut}
    for _method, _path, _id, _summary, body, answer, _params in OPERATIONS:
        models.add(answer)
        if body is not None:
            models.add(body)
    ordered = sorted(models, key=lambda model: model.__name__)
    _keys, definitions = models_json_schema(
        [(model, "serialization") for model in ordered], ref_template=REF
    )
    paths: dict[str, dict[str, Any]] = {}
    for method, path, op_id, summary, body, answer, params in OPERATIONS:
        paths.setdefault(path, {})[method] = _operation(op_id, summary, body, answer, params)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "monitor API",
            "version": __version__,
            "description": "Alerts, stories, feeds and rules of one monitor daemon, and its rule "
            "playground. Send `Authorization: Bearer <token>`; docs/console.md.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
