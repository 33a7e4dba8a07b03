"""Database access: the engine is created lazily from DATABASE_URL.

The URL is never logged or returned. Its password may be percent-encoded; it is
handed to SQLAlchemy as a string, whose URL parser decodes it.
"""

from __future__ import annotations

import os
import threading

from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, func
from sqlalchemy.engine import Engine, create_engine

metadata = MetaData()

# Mirrors the table created by the alembic revision 0001.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("title", Text, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def sqlalchemy_url(url: str) -> str:
    """Select the psycopg 3 driver for a postgresql:// (or postgres://) URL."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class DatabaseNotConfigured(RuntimeError):
    """DATABASE_URL is not set."""


_engine: Engine | None = None
_lock = threading.Lock()


def get_engine() -> Engine:
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                url = os.environ.get("DATABASE_URL")
                if not url:
                    raise DatabaseNotConfigured("DATABASE_URL is not set")
                _engine = create_engine(
                    sqlalchemy_url(url),
                    pool_pre_ping=True,
                    connect_args={"connect_timeout": 5},
                )
    return _engine
