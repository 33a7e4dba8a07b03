"""README.md and docs/*.md: the configuration reference (wherever the table lives) lists
exactly the settings of group_data/all.py, with their defaults; every relative link
resolves (the file, and the heading an anchor names); README.md links to every document.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasks.settings import ROOT

README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
DOC_IDS = [str(path.relative_to(ROOT)) for path in DOCS]
docs = pytest.mark.parametrize("path", DOCS, ids=DOC_IDS)

CONFIG_TABLE_HEADER = "| Setting | Default | Meaning |"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)


def text(path: Path) -> str:
    return path.read_text()


def flat(markdown: str) -> str:
    """The text with every run of white space (line breaks too) made one space."""
    return " ".join(markdown.split())


def code_blocks(markdown: str) -> list[str]:
    return FENCE.findall(markdown)


def prose(markdown: str) -> str:
    """The text outside fenced code blocks and inline code spans."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", markdown))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    found, seen = set(), {}
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", markdown), flags=re.M):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


# --- The configuration reference ----------------------------------------------------


def test_configuration_reference_matches_defaults(defaults):
    holders = [path for path in DOCS if CONFIG_TABLE_HEADER in text(path)]
    assert len(holders) == 1, f"the configuration table should be in exactly one file, found in {holders}"
    section = text(holders[0]).split(CONFIG_TABLE_HEADER, 1)[1].split("\n\n", 1)[0]
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| `(.*?)` \|", section, flags=re.M))
    assert sorted(rows) == sorted(defaults), "the configuration table and group_data/all.py list different settings"
    for key, value in defaults.items():
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        assert rows[key] == shown, f"the configuration table shows {key} = {rows[key]}, group_data/all.py says {shown}"


# --- Links ----------------------------------------------------------------------------


def links(markdown: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", prose(markdown))


def test_the_docs_are_linked_from_the_readme():
    linked = {(README.parent / target.split("#")[0]).resolve() for target in links(text(README))}
    missing = [str(path.relative_to(ROOT)) for path in DOCS[1:] if path.resolve() not in linked]
    assert not missing, f"README.md links to none of {missing}"


@docs
def test_relative_links_resolve(path):
    broken = []
    for target in links(text(path)):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(text(destination)):
            broken.append(f"{target}: no heading with that anchor in {destination.relative_to(ROOT)}")
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)


def test_slug_is_githubs():
    assert slug("Alerts: wiring the webhook") == "alerts-wiring-the-webhook"
    assert slug("The off-server copy's password") == "the-off-server-copys-password"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}
