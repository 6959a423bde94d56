"""Opening the database: URL normalization, SQLite pragmas, migrations on start."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
SCHEMA_REVISION = "0012"  # the newest migration (tests/store checks it is Alembic's head)
_MIGRATION_LOCK = 7_262_011  # pg_advisory_xact_lock key: replicas starting at once migrate in turn


def normalize_url(url: str) -> str:
    """`postgresql://` means psycopg 3; relative SQLite paths are relative to the working dir."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str) -> Engine:
    """An engine for `url`; for SQLite, the file's folder is created and WAL mode turned on."""
    try:
        parsed = make_url(normalize_url(url))
    except SQLAlchemyError as exc:
        raise StoreError(f"invalid storage URL: {exc}") from exc
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot open storage {parsed!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Apply every Alembic migration not yet applied, in one transaction.

    A database already at `SCHEMA_REVISION` is left alone without loading Alembic and its
    scripts: that is every start but the first after an upgrade, and importing Alembic is a
    noticeable part of a short `run --once`.
    """
    if _current_revision(engine) == SCHEMA_REVISION:
        return
    from alembic import command  # noqa: PLC0415 - see above
    from alembic.config import Config as AlembicConfig  # noqa: PLC0415

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate the database: {exc}") from exc


def check_revision(engine: Engine) -> None:
    """StoreError unless the database's schema is the one this version of monitor writes."""
    found = _current_revision(engine)
    if found != SCHEMA_REVISION:
        raise StoreError(
            f"the database schema is at revision {found or 'none (empty database)'}, this "
            f"monitor expects {SCHEMA_REVISION}: start `monitor run` of this version to migrate "
            "it, or use the monitor version the running daemons use"
        )


def _current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return None
            version = connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the schema version: {exc}") from exc
    return str(version) if version is not None else None


class Transaction:
    """`with begin(engine) as db:` — a transaction whose driver errors become StoreError."""

    def __init__(self, engine: Engine) -> None:
        self._context = engine.begin()

    def __enter__(self) -> Connection:
        try:
            return self._context.__enter__()
        except SQLAlchemyError as exc:
            raise StoreError(f"database unavailable: {exc}") from exc

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._context.__exit__(*exc_info)  # type: ignore[arg-type]
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {exc}") from exc


def begin(engine: Engine) -> Transaction:
    return Transaction(engine)


def lease_free(column: sa.ColumnElement[datetime], now: datetime) -> sa.ColumnElement[bool]:
    """True where a lease is not held: never taken, or ended before `now`."""
    return sa.or_(column.is_(None), column < now)
