"""`INSERT … ON CONFLICT` for the database in use, SQLite or PostgreSQL.

Each dialect's insert construct is imported when first needed: on SQLite, importing SQLAlchemy's
PostgreSQL dialect cost ~50 ms of every start (`python -X importtime`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite


def conflict_insert(dialect: str, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An insert into `table` offering `on_conflict_do_nothing` / `on_conflict_do_update`."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # noqa: PLC0415 - see above

        return insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

    return sqlite_insert(table)
