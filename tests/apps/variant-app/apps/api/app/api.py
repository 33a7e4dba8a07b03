"""Harbor notes api: health, database health, site facts, notes, worker status."""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import create_engine, text

from app.config import DATABASE_URL, required

SITE_NAME = required("SITE_NAME")
SESSION_SECRET = required("SESSION_SECRET")

engine = create_engine(DATABASE_URL, pool_pre_ping=True, connect_args={"connect_timeout": 5})
app = FastAPI(title="harbor notes")


class NoteIn(BaseModel):
    body: str = Field(min_length=1)


@app.get("/api/health")
def health():
    return {"ok": True, "service": "api"}


@app.get("/api/db-health")
def db_health():
    try:
        with engine.connect() as conn:
            now = conn.execute(text("SELECT now()")).scalar_one()
    except Exception as exc:  # noqa: BLE001
        return JSONResponse(status_code=503, content={"db_ok": False, "error": type(exc).__name__})
    return {"db_ok": True, "now": now.isoformat()}


@app.get("/api/site")
def site():
    return {"site_name": SITE_NAME, "session_secret_set": bool(SESSION_SECRET)}


@app.get("/api/notes")
def list_notes():
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, body FROM notes ORDER BY id")).mappings().all()
    return [dict(row) for row in rows]


@app.post("/api/notes", status_code=201)
def add_note(note: NoteIn):
    with engine.begin() as conn:
        row = conn.execute(text("INSERT INTO notes (body) VALUES (:b) RETURNING id, body"), {"b": note.body})
        return dict(row.mappings().one())


@app.get("/api/worker")
def worker():
    with engine.connect() as conn:
        beat = conn.execute(text("SELECT max(beat_at) FROM heartbeats")).scalar_one()
    age = (datetime.now(timezone.utc) - beat).total_seconds() if beat else None
    return {"last_beat_seconds_ago": age}
