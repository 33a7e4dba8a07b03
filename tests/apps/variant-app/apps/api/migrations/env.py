"""Migrations run as the superuser: DATABASE_URL_ADMIN (a SQLAlchemy URL)."""

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

if context.config.config_file_name:
    fileConfig(context.config.config_file_name)

url = os.environ.get("DATABASE_URL_ADMIN")
if not url:
    raise SystemExit("migrations need DATABASE_URL_ADMIN")

engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
