"""The snapshot of facts: one script asks every question at once; its answers are those
the facts themselves would give (the script is run here with /bin/sh, as on servers)."""

import subprocess

from tasks import snapshot
from tasks.facts import FileStates, TextFile


def test_one_script_answers_every_question_as_the_facts_would(tmp_path):
    (tmp_path / "a").write_text("alpha\n")
    (tmp_path / "b").write_text("bravo\n")
    questions = [
        ["tasks.facts.source:FileStates", {"paths": [str(tmp_path / "a"), str(tmp_path)]}],
        ["tasks.facts.source:TextFile", {"path": str(tmp_path / "b")}],
        ["tasks.facts.source:TextFile", {"path": str(tmp_path / "b")}],  # asked twice: two answers
        ["tasks.facts.nowhere:Nothing", {}],  # a fact this code no longer has: left out
    ]
    text, asked = snapshot.script(questions)
    assert len(asked) == 2  # each distinct question is asked once
    output = subprocess.run(["sh", "-c", text], capture_output=True, text=True, check=True).stdout.splitlines()
    counts = {snapshot._key(TextFile, {"path": str(tmp_path / "b")}): 2}
    answers = snapshot.parse(output, asked, counts)
    states = answers[snapshot._key(FileStates, {"paths": [str(tmp_path / "a"), str(tmp_path)]})][0]
    assert states[str(tmp_path / "a")]["mode"] and states[str(tmp_path)] == {"mode": states[str(tmp_path)]["mode"]}
    assert answers[snapshot._key(TextFile, {"path": str(tmp_path / "b")})] == ["bravo", "bravo"]


def test_answers_serve_once_and_not_after_a_change():
    state = snapshot.Snapshot(answers={snapshot._key(TextFile, {"path": "/x"}): ["one"]})
    assert state.answer(TextFile, {"path": "/x"}) == "one"
    try:
        state.answer(TextFile, {"path": "/x"})  # used: asked live from now on
    except KeyError:
        pass
    else:
        raise AssertionError("an answer served twice")
    spoiled = snapshot.Snapshot(answers={snapshot._key(TextFile, {"path": "/x"}): ["one"]}, pristine=False)
    try:
        spoiled.answer(TextFile, {"path": "/x"})
    except KeyError:
        pass
    else:
        raise AssertionError("a spoiled snapshot answered")


def test_a_failed_question_is_asked_live():
    _text, asked = snapshot.script([["tasks.facts.source:TextFile", {"path": "/x"}]])
    assert snapshot.parse(["@@answer 0 1", "partial"], asked, {}) == {}
    assert snapshot.parse(["@@answer 0 0", "whole"], asked, {})[snapshot._key(TextFile, {"path": "/x"})] == ["whole"]


def test_the_answers_are_asked_only_while_the_server_holds_this_runs_upload(tmp_path):
    import hashlib

    from tasks import layout

    paths = layout.Paths(app_dir=str(tmp_path / "app"), state_dir=str(tmp_path))
    (tmp_path / snapshot.SCRIPT).write_text("echo the-answers\n")
    (tmp_path / "source.manifest").write_text("abc  compose.yml\n")
    uploaded = hashlib.sha256(b"abc  compose.yml\n").hexdigest()

    def answers(manifest_sha):
        out = subprocess.run(["sh", "-c", snapshot.read_command(paths, [], manifest_sha)],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        return snapshot.sections_of(out)[-1]

    assert answers(uploaded) == ["the-answers"]
    assert answers(None) == ["the-answers"]  # git mode: nothing uploaded to compare
    assert answers("0" * 64) == []  # this run ships another source: its first change spoils them
    (tmp_path / "source.manifest").unlink()
    assert answers(uploaded) == []


def test_a_fact_that_starts_a_container_is_neither_recorded_nor_asked_at_the_next_start():
    from types import SimpleNamespace

    from tasks.facts import MigrationState

    asked_live = []
    host = SimpleNamespace(name="snapshot-test-host", get_fact=lambda cls, *a, **kw: asked_live.append(cls) or {},
                           run_shell_command=lambda *a, **kw: None, put_file=lambda *a, **kw: None)
    snapshot.watch(host)
    host.get_fact(MigrationState, app_dir="/opt/srq-hpn")
    host.get_fact(TextFile, path="/x")
    assert asked_live == [MigrationState, TextFile]
    assert [path for path, _ in snapshot.of(host).asked] == ["tasks.facts.source:TextFile"]
    # A questions file written by an older version that still lists it: left out of the script.
    _, asked = snapshot.script([["tasks.facts.database:MigrationState", {"app_dir": "/opt/srq-hpn"}],
                                ["tasks.facts.source:TextFile", {"path": "/x"}]])
    assert [cls for cls, _, _ in asked] == [TextFile]
