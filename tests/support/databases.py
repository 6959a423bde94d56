"""Test databases: empty ones, and copies of one migrated once per test process.

Migrating from zero (Alembic, eight revisions) is most of what opening a new store costs, and
nearly every store test wants the schema, not the migration. So each test process (each xdist
worker) migrates one template per backend, and a test gets a copy: SQLite copies the file,
PostgreSQL creates the test's database `TEMPLATE` the migrated one. The migration tests take an
empty database instead and migrate it themselves.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import sqlalchemy as sa

from monitor.store import Store


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def migrate_sqlite_template(path: Path) -> Path:
    """A SQLite file at the current schema, to copy (its engine closed, so its WAL is merged)."""
    Store.open(sqlite_url(path)).close()
    return path


def copy_sqlite(template: Path, path: Path) -> str:
    """The URL of a copy of `template` at `path` (its folder made as the store would)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    return sqlite_url(path)


def database_name(kind: str) -> str:
    return f"monitor_{kind}_{uuid.uuid4().hex[:12]}"


def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """CREATE DATABASE `name` (from `template`, if given); the URL of the new database.

    PostgreSQL refuses to copy a template while anyone is connected to it; the template's
    engine is disposed after its migration, and this process alone uses it."""
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    source = f' TEMPLATE "{template}"' if template else ""
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"{source}'))
    finally:
        admin.dispose()
    url = sa.make_url(server_url).set(database=name)
    return url.render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def migrate_postgresql_template(server_url: str) -> str:
    """A new database at the current schema, for test databases to be created from."""
    name = database_name("template")
    url = create_database(server_url, name)
    Store.open(url).close()
    return name
