"""The release's migrations, read from its files without running the app (pure code,
unit-tested): where alembic keeps the scripts (``alembic.ini``'s ``script_location``,
in the migration service's build context), each script's ``revision`` and
``down_revision``, and so the heads that ``alembic upgrade head`` goes to.

Only literal values are read (as alembic's own generated scripts write them); a
script whose revision is computed makes the heads unknown, and the deploy then asks
alembic itself.
"""

from __future__ import annotations

import ast
import configparser
import posixpath
from dataclasses import dataclass
from typing import Callable, Iterable

ALEMBIC_INI = "alembic.ini"


class UnreadableMigrations(ValueError):
    """The migration scripts cannot be read without running them; the message says why."""


@dataclass(frozen=True)
class Script:
    revision: str
    down_revisions: tuple[str, ...]


def _literal(node: ast.AST | None):
    if node is None:
        return None
    return ast.literal_eval(node)


def read_script(text: str, name: str = "script") -> Script | None:
    """The revision and down revision(s) of one migration script, or None for a file
    that is not one (no ``revision``). UnreadableMigrations when they are not literals."""
    try:
        tree = ast.parse(text, name)
    except SyntaxError as error:
        raise UnreadableMigrations(f"{name} is not valid Python: {error.msg} (line {error.lineno})") from None
    values: dict[str, ast.AST | None] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                values[target.id] = value
    if "revision" not in values:
        return None
    try:
        revision = _literal(values["revision"])
        down = _literal(values.get("down_revision"))
    except ValueError:
        raise UnreadableMigrations(f"{name}: its revision or down_revision is computed, not written out") from None
    if not isinstance(revision, str) or not revision:
        raise UnreadableMigrations(f"{name}: revision is not a string")
    if down is None:
        downs: tuple[str, ...] = ()
    elif isinstance(down, str):
        downs = (down,)
    elif isinstance(down, (tuple, list)) and all(isinstance(d, str) for d in down):
        downs = tuple(down)
    else:
        raise UnreadableMigrations(f"{name}: down_revision is neither a revision, a list of them, nor None")
    return Script(revision, downs)


def heads(scripts: Iterable[Script]) -> list[str]:
    """The revisions no other script revises: where `alembic upgrade head` goes."""
    scripts = list(scripts)
    revised = {down for script in scripts for down in script.down_revisions}
    return sorted(script.revision for script in scripts if script.revision not in revised)


def versions_dirs(ini_text: str, ini_dir: str) -> list[str]:
    """The directories of the migration scripts that an alembic.ini names, relative to the
    repository (``script_location``/versions, or ``version_locations``)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(ini_text)
    if not parser.has_section("alembic") or not parser.has_option("alembic", "script_location"):
        raise UnreadableMigrations(f"{posixpath.join(ini_dir, ALEMBIC_INI)} names no script_location")

    def place(value: str) -> str:
        value = value.strip()
        if "%(here)s" in value:  # relative to the ini file
            return posixpath.normpath(value.replace("%(here)s", ini_dir or "."))
        if ":" in value and not value.startswith(("/", ".")):
            raise UnreadableMigrations(f"script location {value!r} is a package resource, not a directory")
        # relative to where alembic runs: the migration service's build context, where the ini is
        return posixpath.normpath(posixpath.join(ini_dir, value))

    locations = parser.get("alembic", "version_locations", fallback="").strip()
    if locations:
        separator = {"os": ":", "space": " ", "newline": "\n", "colon": ":", "semicolon": ";"}.get(
            parser.get("alembic", "version_path_separator", fallback="space").strip(), " ")
        return [place(part) for part in locations.split(separator) if part.strip()]
    return [posixpath.join(place(parser.get("alembic", "script_location")), "versions")]


def release_heads(paths: Iterable[str], read: Callable[[str], str | None], build_context: str) -> list[str]:
    """The heads of the release whose repository holds ``paths`` (its files, relative),
    read with ``read(path)``; ``build_context`` is the migration service's (relative),
    where alembic runs. UnreadableMigrations when they cannot be told."""
    paths = list(paths)
    context = posixpath.normpath(build_context or ".")
    ini = posixpath.join(context, ALEMBIC_INI) if context != "." else ALEMBIC_INI
    ini_text = read(ini)
    if ini_text is None:
        raise UnreadableMigrations(f"no {ALEMBIC_INI} in {context}/ (the migration service's build context)")
    scripts = []
    for directory in versions_dirs(ini_text, "" if context == "." else context):
        prefix = directory.rstrip("/") + "/"
        for path in sorted(p for p in paths if p.startswith(prefix) and p.endswith(".py")
                           and "/" not in p[len(prefix):]):
            script = read_script(read(path) or "", path)
            if script is not None:
                scripts.append(script)
    return heads(scripts)
