# monitor: the daemon, as a non-root user. Config is read from /app/config, state kept in /app/data.
# docker-compose.yml runs it with `monitor sink` as its webhook and a `monitor health` check.
#
# The dependencies are installed at the versions the suite passed with (constraints.txt, made by
# scripts/lock), so an image built next month is the image we tested. BASE_IMAGE is any Debian-
# based Python 3.11 image; where no registry is reachable, scripts/container-base makes one
# (docs/operations.md, Containers). PIP_INDEX_URL points pip at a mirror, if you use one.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG PIP_INDEX_URL=https://pypi.org/simple
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY monitor ./monitor
# the word dictionaries as tries, built here once rather than at every container's first start;
# compiled rules are saved in its rules/ folder, which the monitor user may write
ENV MONITOR_CACHE_DIR=/opt/monitor-cache
RUN pip install --index-url "$PIP_INDEX_URL" -c constraints.txt '.[postgresql]' \
 && python3 -m monitor.dictionaries \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin monitor \
 && install -d -o monitor -g monitor -m 700 /opt/monitor-cache/rules \
 && mkdir -p /app/data /app/config && chown monitor:monitor /app/data
COPY config ./config
USER monitor
VOLUME ["/app/data"]
# /healthz and /metrics, which the health check asks; set MONITOR_HTTP to another HOST:PORT, or
# to nothing to use the `http:` key of the mounted config (`docker run -e MONITOR_HTTP= ...`)
ENV MONITOR_HTTP=0.0.0.0:9108
EXPOSE 9108
# `monitor health` asks the daemon's /healthz (a recent scheduler tick, a store that takes writes);
# start-period covers migrating the store and the first tick
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["monitor", "health", "--config", "/app/config"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["monitor"]
CMD ["run", "--config", "/app/config"]
