"""One round trip for the facts a deploy asks, when it has nothing to change.

pyinfra asks a fact when the deploy needs it: one round trip to the server each,
some sixty for a whole deploy. Here, every fact the last run asked is asked again at
once, when the run starts, in the same command that reads the server's env file: the
server keeps the last run's questions (fact and arguments, never an answer) and the
script that asks them in parallel. Each answer then serves its question once, for
as long as this run has changed nothing on the server: the first command that changes
something (any command an operation runs, any file it uploads) spoils the whole
snapshot, and from then on every fact is asked live, as pyinfra always does. So does
another run that took the deploy lock between this run's start and its own lock (the
lock counts the runs). A fact whose class says ``snapshot = False`` (one that starts a
container, asked only on the way to a change) is always asked live, and never again
at the next run's start. A question the snapshot has no answer for is asked live; a
script written by another version of this code is not run. So an answer is never
older than this run's last change, and a deploy with nothing to change costs a
handful of round trips.
"""

from __future__ import annotations

import importlib
import json
import shlex
from dataclasses import dataclass, field

from pyinfra.api import StringCommand

from tasks import layout
from tasks.facts.source import holds_upload

QUESTIONS = "fact-questions.json"  # in the state directory: the last run's questions
SCRIPT = "fact-snapshot.sh"  # ... and the script that asks them
GENERATION = "generation"  # ... and how many runs took the deploy lock


def _key(cls, kwargs: dict) -> str:
    return f"{cls.__module__}.{cls.__qualname__} " + json.dumps(kwargs, sort_keys=True, default=list)


@dataclass
class Snapshot:
    """The answers of one host's snapshot, and the questions this run asked."""

    answers: dict[str, list] = field(default_factory=dict)  # key -> answers not used yet
    pristine: bool = True  # nothing changed on the server in this run yet
    generation: str | None = None  # the lock's run count when the answers were taken
    reading: int = 0  # > 0 while a fact or a quiet read runs (not a change)
    asked: list[list] = field(default_factory=list)  # [class path, kwargs] in the order asked

    def answer(self, cls, kwargs: dict):
        """The snapshot's answer to a question, used once; KeyError when it has none."""
        queue = self.answers.get(_key(cls, kwargs)) if self.pristine else None
        if not queue:
            raise KeyError(cls)
        return queue.pop(0)


_snapshots: dict[str, Snapshot] = {}


def of(host) -> Snapshot:
    return _snapshots.setdefault(host.name, Snapshot())


class reading:
    """Within it, commands run on the server only read (a fact, a quiet check): no change."""

    def __init__(self, host) -> None:
        self.snapshot = of(host)

    def __enter__(self) -> None:
        self.snapshot.reading += 1

    def __exit__(self, *_exc) -> None:
        self.snapshot.reading -= 1


def watch(host) -> None:
    """Serve this host's facts from its snapshot, record the questions, and spoil the
    snapshot at the first command that is not a read. (The host object's own methods
    are wrapped: pyinfra calls them for every fact and every command.)"""
    snapshot = of(host)
    if getattr(host, "_srq_hpn_watched", False):
        return
    ask, run, put = host.get_fact, host.run_shell_command, host.put_file

    def get_fact(cls, *args, **kwargs):
        if not args and getattr(cls, "snapshot", True):
            snapshot.asked.append([f"{cls.__module__}:{cls.__qualname__}", kwargs])
            try:
                return snapshot.answer(cls, kwargs)
            except KeyError:
                pass
        with reading(host):
            return ask(cls, *args, **kwargs)

    def run_shell_command(*args, **kwargs):
        if not snapshot.reading:
            snapshot.pristine = False
        return run(*args, **kwargs)

    def put_file(*args, **kwargs):
        snapshot.pristine = False
        return put(*args, **kwargs)

    host.get_fact, host.run_shell_command, host.put_file = get_fact, run_shell_command, put_file
    host._srq_hpn_watched = True


def _fact_class(path: str):
    module, _, name = path.partition(":")
    target = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    return target


def script(questions: list[list]) -> tuple[str, list]:
    """(one shell script answering every distinct question in parallel, the facts and
    their arguments by position) (pure; unit-tested)."""
    seen, asked, parts = {}, [], ['d=$(mktemp -d); trap \'rm -rf "$d"\' EXIT']
    for path, kwargs in questions:
        try:
            cls = _fact_class(path)
        except (ImportError, AttributeError, ValueError):
            continue
        if not getattr(cls, "snapshot", True):  # in the questions of an older version
            continue
        key = _key(cls, kwargs)
        if key in seen:
            continue
        fact = cls()
        try:
            command = fact.command(**kwargs)
        except TypeError:
            continue
        if isinstance(command, StringCommand):
            command = command.get_raw_value()
        seen[key] = len(asked)
        asked.append((cls, kwargs, fact))
        parts.append(f"{{ ( {command} ) >\"$d/{seen[key]}\" 2>/dev/null </dev/null; echo $? >\"$d/{seen[key]}.rc\"; }} &")
    parts.append("wait")
    parts.append(f'for i in $(seq 0 {len(asked) - 1}); do echo "@@answer $i $(cat "$d/$i.rc")"; cat "$d/$i"; done'
                 if asked else "true")
    return "\n".join(parts), asked


def parse(output: list[str], asked: list, counts: dict[str, int]) -> dict[str, list]:
    """The answers, by key, as many copies as the question was asked (pure; unit-tested)."""
    lines: dict[int, list[str]] = {}
    current = None
    for line in output:
        if line.startswith("@@answer "):
            _, index, code = (line.split() + ["1"])[:3]
            current = int(index) if code == "0" else None  # a failed command is asked live
            if current is not None:
                lines[current] = []
        elif current is not None:
            lines[current].append(line)
    answers = {}
    for index, (cls, kwargs, fact) in enumerate(asked):
        if index not in lines:
            continue
        try:
            value = fact.process(lines[index])
        except Exception:  # noqa: BLE001 - a fact that cannot read its answer is asked live
            continue
        key = _key(cls, kwargs)
        answers[key] = [value] * counts.get(key, 1)
    return answers


def read_command(paths: layout.Paths, first: list[str], manifest_sha: str | None = None) -> str:
    """One command printing the files in ``first`` (the env file: its output is secret),
    then the last run's questions, the lock's run count, and the snapshot's answers
    (pure; unit-tested). Given the sha256 of the manifest this run uploads, the answers
    are only asked when the server holds that upload: another one means this run ships
    a new source, and its first change would spoil them anyway."""
    state = paths.state_dir
    sections = [*first, f"{state}/{QUESTIONS}", f"{state}/{GENERATION}", f"{state}/{SCRIPT}"]
    parts = [f"echo @@section; test ! -e {shlex.quote(p)} || cat {shlex.quote(p)}" for p in sections]
    same_source = f" && {holds_upload(state, manifest_sha)}" if manifest_sha else ""
    parts.append(f"echo @@section; if [ -e {shlex.quote(state + '/' + SCRIPT)} ]{same_source}; then "
                 f"sh {shlex.quote(state + '/' + SCRIPT)}; fi")
    return "; ".join(parts)


def sections_of(output: list[str]) -> list[list[str]]:
    sections: list[list[str]] = []
    for line in output:
        if line == "@@section":
            sections.append([])
        elif sections:
            sections[-1].append(line)
    return sections


def load(host, questions_text: str, generation: str, stored_script: str, answers: list[str]) -> None:
    """Keep the answers of the stored script, when this code writes the very same script
    for those questions (another version's script could mean other answers)."""
    snapshot = of(host)
    snapshot.generation = generation.strip() or "0"
    questions = questions_of(questions_text)
    text, asked = script(questions)
    if not asked or text.strip() != stored_script.strip():
        return
    counts: dict[str, int] = {}
    for _, (cls, kwargs, _fact) in enumerate(asked):
        counts[_key(cls, kwargs)] = 0
    for path, kwargs in questions:
        try:
            key = _key(_fact_class(path), kwargs)
        except (ImportError, AttributeError, ValueError):
            continue
        counts[key] = counts.get(key, 0) + 1
    snapshot.answers = parse(answers, asked, counts)


def current(host, generation: str) -> bool:
    """Whether no other run took the lock since this run read the server (its answers and
    its plan are as the server is): ``generation``, the lock's count when this run took it."""
    snapshot = of(host)
    return snapshot.generation is None or snapshot.generation == generation.strip()


def record_command(host, paths: layout.Paths) -> str:
    """Keep this run's questions, and the script that asks them, for the next run."""
    asked = of(host).asked
    text, _ = script(asked)
    state = paths.state_dir
    return (f"printf '%s\\n' {shlex.quote(json.dumps(asked, default=list))} > {shlex.quote(state + '/' + QUESTIONS)}"
            f" && printf '%s\\n' {shlex.quote(text)} > {shlex.quote(state + '/' + SCRIPT)}")


def questions_of(text: str) -> list[list]:
    try:
        questions = json.loads(text or "[]")
    except ValueError:
        return []
    return [q for q in questions if isinstance(q, list) and len(q) == 2 and isinstance(q[1], dict)]
