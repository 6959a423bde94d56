# monitor: the daemon, as a non-root user. Config is read from /app/config, state kept in /app/data.
# docker-compose.yml runs it with `monitor sink` as its webhook and a `monitor health` check.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install '.[postgresql]' \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin monitor \
 && mkdir -p /app/data /app/config && chown monitor:monitor /app/data
COPY config ./config
USER monitor
VOLUME ["/app/data"]
# /healthz and /metrics when `http:` (or MONITOR_HTTP) is set, e.g. MONITOR_HTTP=0.0.0.0:9108
EXPOSE 9108
STOPSIGNAL SIGTERM
ENTRYPOINT ["monitor"]
CMD ["run", "--config", "/app/config"]
