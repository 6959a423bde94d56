"""The daemon's web layer (the `http:` server): health and metrics, WebSub callbacks, the
console at `/`, the JSON API under `/api/v1/` and the Atom feed of alerts.

It sits between the runtime, which starts the server, and the pipeline, whose read side it
shows: routes get a `WebContext` (monitor.web.context) and import the layers below as they need.
"""
