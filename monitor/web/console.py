"""The console at `/`: alerts as stories, a story with its evidence and deliveries (and replay),
feeds with their health, rules with their recent alerts, and the rule playground.

Server-rendered HTML (Jinja2, autoescaped) over the same reads as the API, every read in a
worker thread. Filters are query parameters (monitor.web.params), so a page's address is a link
that can be shared. Pages are private and change: `Cache-Control: no-store`; the stylesheet and
script (monitor/web/static) are served under a name that carries their digest, so they can be
cached for a year.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.http.urls import mask_urls, shown_url
from monitor.store import reads
from monitor.store.reads import Evidence
from monitor.web.api import Api
from monitor.web.auth import csrf_token, reads_only
from monitor.web.context import WebContext
from monitor.web.params import SEVERITIES, ParameterError, filter_query, listing
from monitor.web.playground import PlaygroundError
from monitor.web.schemas import BacktestIn, MatchIn
from monitor.web.static import static_routes, static_url
from monitor.web.stories import stories_of, story

PAGE = 50  # alerts a page of the console holds
NO_STORE = {"Cache-Control": "no-store"}
MAX_FORM = 256 * 1024


def highlighted(text: str, evidence: tuple[Evidence, ...], field: str) -> Markup:
    """`text` escaped, with the words the rule matched in `field` marked (`<mark>`)."""
    hits = sorted(
        (hit for hit in evidence if hit.field == field and 0 <= hit.start < hit.end <= len(text)),
        key=lambda hit: (hit.start, -hit.end),
    )
    parts: list[str] = []
    done = 0
    for hit in hits:
        if hit.start < done:  # overlaps a word already marked
            continue
        parts.append(escape(text[done : hit.start]))
        title = f"term {hit.term} ({hit.how or 'exact'}, {hit.score:.0f})"
        parts.append(Markup('<mark title="{}">{}</mark>').format(title, text[hit.start : hit.end]))
        done = hit.end
    parts.append(escape(text[done:]))
    return Markup("").join(parts)


def _when(moment: datetime | None) -> Markup:
    if moment is None:
        return Markup("—")
    return Markup('<time datetime="{}">{}</time>').format(
        moment.isoformat(), moment.strftime("%Y-%m-%d %H:%M")
    )


def _bar(index: int, count: int, top: int, height: int) -> Markup:
    tall = max(1, round(count / top * height))
    return Markup('<rect x="{}" y="{}" width="3" height="{}"><title>{}</title></rect>').format(
        index * 4, height - tall, tall, count
    )


def _sparkline(counts: tuple[int, ...]) -> Markup:
    """Items per day as a small inline SVG bar chart (no script, no image request)."""
    top = max(counts, default=0) or 1
    width, height = 4 * len(counts), 16
    bars = Markup("").join(_bar(index, count, top, height) for index, count in enumerate(counts))
    return Markup(
        '<svg class="spark" viewBox="0 0 {} {}" width="{}" height="{}" role="img" '
        'aria-label="items per day: {}">{}</svg>'
    ).format(width, height, width * 2, height * 2, ", ".join(map(str, counts)), bars)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("monitor.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(static=static_url, when=_when, shown_url=shown_url, mask_urls=mask_urls)
    env.globals.update(highlighted=highlighted, sparkline=_sparkline, severities=SEVERITIES)
    return env


def _can_write(request: Request) -> bool:
    """Whether the principal may replay. The server's auth puts it in scope["auth"]; without
    auth there is no principal and nothing to refuse."""
    principal = request.scope.get("auth")
    return principal is None or bool(getattr(principal, "can_write", False))


class Console:
    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx
        self.api = Api(ctx)
        self.env = _environment()

    @property
    def engine(self) -> Engine:
        return self.ctx.store.engine

    def render(self, request: Request, name: str, status: int = 200, **values: Any) -> Response:
        template = self.env.get_template(name)
        body = template.render(
            request=request,
            root=request.scope.get("root_path", "") + "/",
            csrf=csrf_token(request),
            can_write=_can_write(request),
            page=name.removesuffix(".html"),
            **values,
        )
        return HTMLResponse(body, status_code=status, headers=NO_STORE)

    # alerts ---------------------------------------------------------------------------------

    def _alerts(self, query: Mapping[str, str]) -> dict[str, Any]:
        wanted = listing(query, self.ctx.now(), default_limit=PAGE)
        page = reads.alerts_page(self.engine, wanted.where, after=wanted.cursor, limit=wanted.limit)
        older = None
        if page.next is not None:
            older = "?" + urlencode({**filter_query(query), "cursor": page.next.encode()})
        feeds = reads.feed_names(self.engine)
        return {
            "stories": stories_of(page.alerts),
            "older": older,
            "query": dict(query),
            "rules": self.ctx.config().matcher.rules,
            "feeds": feeds,
            "atom": "alerts.atom"
            + (f"?{urlencode({'rule': query['rule']})}" if query.get("rule") else ""),
        }

    async def alerts(self, request: Request) -> Response:
        query = dict(request.query_params)
        try:
            values = await run_in_threadpool(self._alerts, query)
        except ParameterError as exc:
            values = await run_in_threadpool(self._alerts, {})
            return self.render(request, "alerts.html", 400, error=str(exc), **values)
        return self.render(request, "alerts.html", **values)

    def _story(self, story_id: str) -> dict[str, Any] | None:
        found = story(self.engine, story_id)
        if found is None:
            return None
        sent = reads.deliveries_of(self.engine, [a.id for a in found.alerts])
        return {"story": found, "deliveries": sent}

    async def story(self, request: Request) -> Response:
        values = await run_in_threadpool(self._story, request.path_params["story_id"])
        if values is None:
            return self.render(request, "missing.html", 404, what="story")
        replayed = request.query_params.get("replayed")
        return self.render(request, "story.html", replayed=replayed, **values)

    async def alert(self, request: Request) -> Response:
        """An alert's address (the Atom feed's links): its story, at the alert."""
        alert_id = request.path_params["alert_id"]
        found = await run_in_threadpool(story, self.engine, alert_id)
        if found is None:
            return self.render(request, "missing.html", 404, what="alert")
        return RedirectResponse(f"{request.base_url}stories/{found.id}#{alert_id}", 303)

    async def replay(self, request: Request) -> Response:
        """The replay button: the alert's delivery to one webhook (or all) due again now."""
        if not _can_write(request):
            return self.render(request, "missing.html", 403, what="permission to replay")
        form = await request.form(max_files=0, max_fields=10, max_part_size=MAX_FORM)
        webhook = str(form.get("webhook") or "") or None
        alert_id = request.path_params["alert_id"]
        count = await run_in_threadpool(self.api.requeue, alert_id, webhook)
        if count is None:
            return self.render(request, "missing.html", 404, what="alert")
        back = str(form.get("story") or alert_id)
        return RedirectResponse(
            f"{request.base_url}stories/{back}?{urlencode({'replayed': count})}#{alert_id}", 303
        )

    # feeds and rules ------------------------------------------------------------------------

    async def feeds(self, request: Request) -> Response:
        views = await run_in_threadpool(reads.feed_views, self.engine, self.ctx.now())
        return self.render(request, "feeds.html", feeds=views, days=7)

    def _rules(self) -> dict[str, Any]:
        counts = reads.rule_counts(self.engine, self.ctx.now() - timedelta(days=7))
        return {"rules": self.ctx.config().matcher.rules, "counts": counts}

    async def rules(self, request: Request) -> Response:
        return self.render(request, "rules.html", **await run_in_threadpool(self._rules))

    # the playground -------------------------------------------------------------------------

    def _playground(self, form: Mapping[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {
            "form": dict(form),
            "rules": self.ctx.config().matcher.rules,
            "items": reads.recent_items(self.engine),
        }
        action = form.get("action")
        if action not in ("match", "backtest"):
            return values
        rule = form.get("rule") or None
        draft = form.get("draft") if form.get("source") == "draft" else None
        try:
            if action == "match":
                item = form.get("item") or ""
                values["verdicts"] = self.api.try_match(
                    MatchIn(
                        title=form.get("title", ""),
                        summary=form.get("summary", ""),
                        item=int(item) if item.isdigit() else None,
                        rule=None if draft else rule,
                        draft=draft,
                    )
                ).verdicts
            else:
                values["backtest"] = self.api.try_backtest(
                    BacktestIn(rule=None if draft else rule, draft=draft)
                )
        except PlaygroundError as exc:
            values["problems"] = list(exc.problems)
        return values

    @reads_only  # a match or a backtest writes nothing: read-only tokens may try rules
    async def playground(self, request: Request) -> Response:
        # a GET takes defaults from the query (the rules page links `?rule=ID`), never runs
        fields = {k: v for k, v in request.query_params.items() if k in ("rule", "item")}
        if request.method == "POST":
            form = await request.form(max_files=0, max_fields=20, max_part_size=MAX_FORM)
            fields = {key: value for key, value in form.items() if isinstance(value, str)}
        values = await run_in_threadpool(self._playground, fields)
        return self.render(request, "playground.html", **values)


def console_routes(ctx: WebContext) -> list[BaseRoute]:
    console = Console(ctx)
    return [
        Route("/", console.alerts, methods=["GET"]),
        Route("/stories/{story_id}", console.story, methods=["GET"]),
        Route("/alerts/{alert_id}", console.alert, methods=["GET"]),
        Route("/alerts/{alert_id}/replay", console.replay, methods=["POST"]),
        Route("/feeds", console.feeds, methods=["GET"]),
        Route("/rules", console.rules, methods=["GET"]),
        Route("/playground", console.playground, methods=["GET", "POST"]),
        *static_routes(),
    ]
