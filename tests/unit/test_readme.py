"""The README's configuration reference matches group_data/all.py."""

import re

from tasks.settings import ROOT


def test_configuration_reference_matches_defaults(defaults):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| `(.*?)` \|", section, flags=re.M))
    assert sorted(rows) == sorted(defaults), "README table and group_data/all.py list different settings"
    for key, value in defaults.items():
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        assert rows[key] == shown, f"README shows {key} = {rows[key]}, group_data/all.py says {shown}"
