"""The JSON API under `/api/v1/`: alerts, stories, feeds, rules, deliveries; replay, match and
backtest. The bodies are monitor.web.schemas; `/api/v1/openapi.json` describes them.

Every handler reads the store in a worker thread (the store is synchronous SQLAlchemy), so the
event loop that also polls feeds and takes WebSub pushes is never held by a page or a backtest.
Request bodies are read up to MAX_BODY and no further.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from monitor.http.urls import shown_url
from monitor.models import Item
from monitor.store import reads
from monitor.web import playground, schemas
from monitor.web.auth import reads_only
from monitor.web.context import WebContext
from monitor.web.openapi import openapi_document
from monitor.web.params import ParameterError, listing
from monitor.web.playground import PlaygroundError
from monitor.web.stories import stories_of, story

MAX_BODY = 256 * 1024  # bytes of a request body: a draft rule file and a pasted text fit
RECENT = timedelta(days=7)  # the window of a rule's "recent" alerts
B = TypeVar("B", bound=BaseModel)


class BodyError(Exception):
    def __init__(self, status: int, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.problems = status, message, problems or []


def json_body(model: BaseModel, status: int = 200) -> Response:
    return JSONResponse(model.model_dump(mode="json"), status_code=status)


def problem(status: int, message: str, problems: list[str] | None = None) -> Response:
    return json_body(schemas.ProblemOut(error=message, problems=problems or []), status)


async def read_body(request: Request, model: type[B]) -> B:
    """The request's JSON body as `model`, read up to MAX_BODY; BodyError otherwise."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise BodyError(413, f"body larger than {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise BodyError(413, f"body larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks) or b"{}"
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        found = [
            f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        raise BodyError(422, "invalid body", found) from None


class Api:
    """The handlers, over one daemon's store and config."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx

    @property
    def engine(self) -> Engine:
        return self.ctx.store.engine

    # reads ----------------------------------------------------------------------------------

    def _alerts(self, query: dict[str, str]) -> schemas.AlertsOut:
        wanted = listing(query, self.ctx.now())
        page = reads.alerts_page(self.engine, wanted.where, after=wanted.cursor, limit=wanted.limit)
        sent = reads.deliveries_of(self.engine, [a.id for a in page.alerts])
        return schemas.AlertsOut(
            alerts=[schemas.alert_out(a, sent.get(a.id, [])) for a in page.alerts],
            next=None if page.next is None else page.next.encode(),
        )

    def _stories(self, query: dict[str, str]) -> schemas.StoriesOut:
        wanted = listing(query, self.ctx.now())
        page = reads.alerts_page(self.engine, wanted.where, after=wanted.cursor, limit=wanted.limit)
        sent = reads.deliveries_of(self.engine, [a.id for a in page.alerts])
        return schemas.StoriesOut(
            stories=[schemas.story_out(s, sent) for s in stories_of(page.alerts)],
            next=None if page.next is None else page.next.encode(),
        )

    def _alert(self, alert_id: str) -> schemas.AlertOut | None:
        found = reads.alerts_by_id(self.engine, [alert_id])
        if not found:
            return None
        sent = reads.deliveries_of(self.engine, [alert_id])
        return schemas.alert_out(found[0], sent.get(alert_id, []))

    def _story(self, story_id: str) -> schemas.StoryOut | None:
        found = story(self.engine, story_id)
        if found is None:
            return None
        sent = reads.deliveries_of(self.engine, [a.id for a in found.alerts])
        return schemas.story_out(found, sent)

    def _feeds(self) -> schemas.FeedsOut:
        views = reads.feed_views(self.engine, self.ctx.now())
        return schemas.FeedsOut(feeds=[schemas.feed_out(view) for view in views])

    def _rules(self) -> schemas.RulesOut:
        counts = reads.rule_counts(self.engine, self.ctx.now() - RECENT)
        return schemas.RulesOut(
            rules=[
                schemas.RuleOut(
                    id=info.id,
                    title=info.title,
                    severity=info.severity,
                    feeds=[shown_url(url) for url in info.feeds],
                    alerts=counts[info.id].alerts if info.id in counts else 0,
                    last_alert_at=counts[info.id].last_alert_at if info.id in counts else None,
                )
                for info in self.ctx.config().matcher.rules
            ]
        )

    async def alerts(self, request: Request) -> Response:
        return await self._listing(self._alerts, request)

    async def stories(self, request: Request) -> Response:
        return await self._listing(self._stories, request)

    async def _listing(
        self, read: Callable[[dict[str, str]], BaseModel], request: Request
    ) -> Response:
        try:
            return json_body(await run_in_threadpool(read, dict(request.query_params)))
        except ParameterError as exc:
            return problem(400, str(exc))

    async def alert(self, request: Request) -> Response:
        found = await run_in_threadpool(self._alert, request.path_params["alert_id"])
        return problem(404, "no such alert") if found is None else json_body(found)

    async def story(self, request: Request) -> Response:
        found = await run_in_threadpool(self._story, request.path_params["story_id"])
        return problem(404, "no such story") if found is None else json_body(found)

    async def deliveries(self, request: Request) -> Response:
        found = await run_in_threadpool(self._alert, request.path_params["alert_id"])
        if found is None:
            return problem(404, "no such alert")
        return json_body(schemas.DeliveriesOut(deliveries=found.deliveries))

    async def feeds(self, request: Request) -> Response:
        del request
        return json_body(await run_in_threadpool(self._feeds))

    async def rules(self, request: Request) -> Response:
        del request
        return json_body(await run_in_threadpool(self._rules))

    # writes and the playground --------------------------------------------------------------

    def requeue(self, alert_id: str, webhook: str | None) -> int | None:
        """What `monitor replay ID [--webhook NAME]` does; None when there is no such alert."""
        outbox = self.ctx.store.outbox
        if not outbox.known_alerts([alert_id]):
            return None
        return outbox.requeue(self.ctx.now(), alert_ids=[alert_id], webhook=webhook)

    async def replay(self, request: Request) -> Response:
        try:
            body = await read_body(request, schemas.ReplayIn)
        except BodyError as exc:
            return problem(exc.status, exc.message, exc.problems)
        alert_id = request.path_params["alert_id"]
        count = await run_in_threadpool(self.requeue, alert_id, body.webhook)
        if count is None:
            return problem(404, "no such alert")
        return json_body(schemas.ReplayOut(requeued=count))

    def _item(self, body: schemas.MatchIn) -> Item:
        if body.item is None:
            return playground.pasted_item(body.title, body.summary, lang=body.lang)
        found = reads.stored_item(self.engine, body.item)
        if found is None:
            raise PlaygroundError([f"no stored item {body.item}"])
        return found

    def try_match(self, body: schemas.MatchIn) -> schemas.MatchOut:
        choice = playground.choose(self.ctx.config(), rule=body.rule, draft=body.draft)
        outcomes = playground.try_rules(choice, self._item(body))
        return schemas.MatchOut(
            draft=choice.draft, verdicts=[schemas.verdict_out(o) for o in outcomes]
        )

    def try_backtest(self, body: schemas.BacktestIn) -> schemas.BacktestOut:
        choice = playground.choose(self.ctx.config(), rule=body.rule, draft=body.draft)
        return schemas.backtest_out(playground.backtest_week(self.engine, choice, self.ctx.now()))

    @reads_only
    async def match(self, request: Request) -> Response:
        return await self._playground(request, schemas.MatchIn, self.try_match)

    @reads_only
    async def backtest(self, request: Request) -> Response:
        return await self._playground(request, schemas.BacktestIn, self.try_backtest)

    async def _playground(
        self, request: Request, model: type[B], run: Callable[[B], BaseModel]
    ) -> Response:
        try:
            body = await read_body(request, model)
        except BodyError as exc:
            return problem(exc.status, exc.message, exc.problems)
        try:
            return json_body(await run_in_threadpool(run, body))
        except PlaygroundError as exc:
            return problem(422, "cannot try this", list(exc.problems))

    async def openapi(self, request: Request) -> Response:
        del request
        return JSONResponse(openapi_document())


def api_routes(ctx: WebContext) -> list[BaseRoute]:
    api = Api(ctx)
    return [
        Mount(
            "/api/v1",
            routes=[
                Route("/openapi.json", api.openapi, methods=["GET"]),
                Route("/alerts", api.alerts, methods=["GET"]),
                Route("/alerts/{alert_id}", api.alert, methods=["GET"]),
                Route("/alerts/{alert_id}/deliveries", api.deliveries, methods=["GET"]),
                Route("/alerts/{alert_id}/replay", api.replay, methods=["POST"]),
                Route("/stories", api.stories, methods=["GET"]),
                Route("/stories/{story_id}", api.story, methods=["GET"]),
                Route("/feeds", api.feeds, methods=["GET"]),
                Route("/rules", api.rules, methods=["GET"]),
                Route("/match", api.match, methods=["POST"]),
                Route("/backtest", api.backtest, methods=["POST"]),
            ],
        )
    ]
