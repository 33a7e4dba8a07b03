"""The srq-hpn sample api (FastAPI).

GET  /api/health     liveness, never touches the database
GET  /api/db-health  SELECT now() through DATABASE_URL
GET  /api/events     rows of table events
POST /api/events     insert an event: {"title": "...", "starts_at": "<iso datetime>"}
"""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from .db import DatabaseNotConfigured, events, get_engine

log = logging.getLogger("srq_hpn.api")

app = FastAPI(title="srq-hpn api")


class EventIn(BaseModel):
    title: str = Field(min_length=1)
    starts_at: datetime


class EventOut(BaseModel):
    id: int
    title: str
    starts_at: datetime
    created_at: datetime | None = None


def _db_error(exc: Exception) -> JSONResponse:
    # Only the exception's class name leaves the process: its message could
    # name the server or the user, and the URL must never be shown.
    log.warning("database error: %s", type(exc).__name__)
    return JSONResponse(status_code=503, content={"db_ok": False, "error": type(exc).__name__})


@app.exception_handler(SQLAlchemyError)
async def _sqlalchemy_error(request: Request, exc: SQLAlchemyError) -> JSONResponse:
    return _db_error(exc)


@app.exception_handler(DatabaseNotConfigured)
async def _not_configured(request: Request, exc: DatabaseNotConfigured) -> JSONResponse:
    return _db_error(exc)


@app.get("/api/health")
def health() -> dict:
    return {"ok": True, "service": "api"}


@app.get("/api/db-health")
def db_health():
    try:
        with get_engine().connect() as conn:
            now = conn.execute(text("SELECT now()")).scalar_one()
    except Exception as exc:  # noqa: BLE001 - report any failure as 503
        return _db_error(exc)
    return {"db_ok": True, "now": now.isoformat()}


@app.get("/api/events", response_model=list[EventOut])
def list_events():
    with get_engine().connect() as conn:
        rows = conn.execute(select(events).order_by(events.c.starts_at, events.c.id)).mappings().all()
    return [dict(row) for row in rows]


@app.post("/api/events", response_model=EventOut, status_code=201)
def create_event(event: EventIn):
    with get_engine().begin() as conn:
        row = conn.execute(
            insert(events).values(title=event.title, starts_at=event.starts_at).returning(*events.c)
        ).mappings().one()
    return dict(row)
