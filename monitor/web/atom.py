"""`/alerts.atom`: the latest alerts as an Atom 1.0 feed (RFC 4287), all or one rule's
(`?rule=ID`), so a feed reader can follow them.

Each entry's id is the alert's own (`urn:monitor:alert:ID`), so a reader sees an alert once
however often it polls; its link goes to the alert on the console. The XML is built with
xml.etree (escaping is its job), after removing the characters XML 1.0 cannot carry, which a
hostile feed's titles may hold.
"""

from __future__ import annotations

import re
from datetime import datetime
from xml.etree import ElementTree as ET

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from monitor.http.urls import shown_url
from monitor.store import reads
from monitor.store.reads import AlertFilter, AlertView
from monitor.web.context import WebContext

ATOM = "http://www.w3.org/2005/Atom"
ENTRIES = 50
MEDIA_TYPE = "application/atom+xml; charset=utf-8"
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _add(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(
        parent, f"{{{ATOM}}}{tag}", {k: _clean(v) for k, v in attributes.items()}
    )
    if text is not None:
        element.text = _clean(text)
    return element


def _entry(feed: ET.Element, alert: AlertView, base: str) -> None:
    entry = _add(feed, "entry")
    _add(entry, "id", f"urn:monitor:alert:{alert.id}")
    _add(entry, "title", alert.title or "(untitled)")
    _add(entry, "updated", _stamp(alert.created_at))
    if alert.published_at is not None:
        _add(entry, "published", _stamp(alert.published_at))
    author = _add(entry, "author")
    _add(author, "name", alert.feed_name or shown_url(alert.feed_url))
    _add(entry, "link", rel="alternate", type="text/html", href=f"{base}alerts/{alert.id}")
    if alert.link:
        _add(entry, "link", rel="related", href=alert.link)
    _add(entry, "category", term=alert.rule_id, label=alert.rule_title)
    _add(entry, "category", term=f"severity:{alert.severity}", label=alert.severity)
    words = ", ".join(dict.fromkeys(hit.text for hit in alert.evidence))
    why = f"{alert.rule_title} ({alert.severity}, score {alert.score:.1f})"
    summary = f"{why}: {words}\n\n{alert.summary}" if words else f"{why}\n\n{alert.summary}"
    _add(entry, "summary", summary.strip(), type="text")


def atom_document(alerts: list[AlertView], *, base: str, rule: str | None, now: datetime) -> bytes:
    """The feed of `alerts` (newest first); `base` is the console's URL, ending in `/`."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    suffix = f":rule:{rule}" if rule else ""
    _add(feed, "id", f"urn:monitor:alerts{suffix}")
    _add(feed, "title", f"monitor alerts: {rule}" if rule else "monitor alerts")
    _add(feed, "updated", _stamp(alerts[0].created_at if alerts else now))
    _add(feed, "generator", "monitor")
    query = f"?rule={rule}" if rule else ""
    _add(feed, "link", rel="self", type="application/atom+xml", href=f"{base}alerts.atom{query}")
    _add(feed, "link", rel="alternate", type="text/html", href=f"{base}{query}")
    for alert in alerts:
        _entry(feed, alert, base)
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document


def atom_routes(ctx: WebContext) -> list[BaseRoute]:
    async def alerts_atom(request: Request) -> Response:
        rule = request.query_params.get("rule", "").strip()[:200] or None

        def read() -> list[AlertView]:
            return reads.alerts_page(ctx.store.engine, AlertFilter(rule=rule), limit=ENTRIES).alerts

        alerts = await run_in_threadpool(read)
        body = atom_document(alerts, base=str(request.base_url), rule=rule, now=ctx.now())
        return Response(body, media_type=MEDIA_TYPE, headers={"Cache-Control": "no-cache"})

    return [Route("/alerts.atom", alerts_atom, methods=["GET"])]
