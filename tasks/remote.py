"""Running things on the server from inside an operation, and failing one clearly.

Most operations yield commands and let pyinfra run them (pyinfra then shows a
failing command's own output). Two kinds of work do not fit that: reading a
root-only file whose content must never be logged, and bookkeeping that is not a
change of the server's state (taking the deploy lock, appending to the audit
log). Those run here, with pyinfra's output logging off.
"""

from __future__ import annotations

import shlex

from pyinfra import host, logger
from pyinfra.api import FactBase, FunctionCommand, StringCommand
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments

from tasks import snapshot


class RemoteError(RuntimeError):
    """A command run directly on the server failed; the message holds its output."""


def executing() -> bool:
    """True while pyinfra executes operations (not while it plans them)."""
    return bool(host.state.is_executing)


def _quietly(state, target, command: str, stdin: str | None = None):
    """Run a shell command on ``target`` now (with this run's connector arguments, e.g.
    sudo), printing neither it nor its output: (ok, output). ``stdin``: text for its
    standard input (how a secret reaches a command without being on its command line)."""
    global_arguments, _ = pop_global_arguments(state, target, {})
    connector_arguments = {k: global_arguments[k] for k in CONNECTOR_ARGUMENT_KEYS if k in global_arguments}
    if stdin is not None:
        connector_arguments["_stdin"] = stdin
    return target.run_shell_command(StringCommand(command), print_output=False, print_input=False,
                                    **connector_arguments)


def run(command: str, *, secret_output: bool = False, stdin: str | None = None) -> list[str]:
    """Run a shell command on the server now, without printing it or its output;
    return its stdout lines. Raises RemoteError with its stderr (unless the output
    is secret) when it fails. (A read or bookkeeping: never a change of the stack.)"""
    with snapshot.reading(host):
        ok, output = _quietly(host.state, host, command, stdin)
    if not ok:
        detail = "(output withheld: it may hold secrets)" if secret_output else "\n".join(output.stderr_lines[-20:])
        raise RemoteError(f"`{command.split(' ', 1)[0]} ...` failed on {host.name}: {detail}")
    return list(output.stdout_lines)


def check(command: str) -> tuple[bool, list[str]]:
    """Run a read-only check on the server now, without printing it; return whether
    it passed and its output (stdout, then stderr), for the operator when it did not."""
    with snapshot.reading(host):
        ok, output = _quietly(host.state, host, command)
    return ok, list(output.stdout_lines) + list(output.stderr_lines)


def shown(command: str, explain: bool = False):
    """Yield a command whose output the operator sees at default verbosity (its stdout
    line by line, its stderr in red when it fails): for server programs whose report is
    the point (a restore drill's table, a restore's steps). Its output must hold no secret.
    ``explain``: when it fails, the run ends with its last line (the program's own summary)
    rather than pyinfra's "No hosts remaining!"."""

    def run_and_show(state, host):  # pyinfra passes both
        ok, output = _quietly(state, host, command)
        for line in output.stdout_lines:
            host.log(line)
        for line in output.stderr_lines:
            host.log_styled(line, fg="red" if not ok else "yellow", log_func=logger.error if not ok else logger.warning)
        last = next((line.strip() for line in reversed(output.stderr_lines) if line.strip()), "")
        if not ok and explain and last:
            explained(state, host, last)
        return ok

    yield FunctionCommand(run_and_show, (), {})


class QuietFact(FactBase):
    """A question whose answer may hold a secret: asked with ``ask_quietly``, never
    through pyinfra's fact machinery (which prints a fact's output at -vvv), and
    answered from the run's snapshot when it can (tasks.snapshot)."""


def ask_quietly(cls, **kwargs):
    """The answer to a QuietFact: from the snapshot, else from the server, quietly."""
    answers = snapshot.of(host)
    answers.asked.append([f"{cls.__module__}:{cls.__qualname__}", kwargs])
    try:
        return answers.answer(cls, kwargs)
    except KeyError:
        pass
    fact = cls()
    return fact.process(run(fact.command(**kwargs), secret_output=True))


class PrivateFile(QuietFact):
    """Returns the content of a root-only file ("" when it does not exist)."""

    def command(self, path):
        return f"test ! -e {shlex.quote(path)} || cat {shlex.quote(path)}"

    def process(self, output):
        return "\n".join(output)


def read_private_file(path: str) -> str:
    """The content of a root-only file on the server ("" when it does not exist)."""
    return ask_quietly(PrivateFile, path=path)


def fail(message: str, last_words: str = ""):
    """Yield a command that fails the operation, after logging why in red, line by line.
    The run then ends with ``last_words`` (default: the message's first line) instead of
    pyinfra's "No hosts remaining!": the failure is explained."""
    for line in message.splitlines():
        host.log_styled(line, fg="red", log_func=logger.error)

    def failed(state, host):  # pyinfra passes both
        explained(state, host, last_words or message.strip().splitlines()[0].rstrip(":"))
        return False

    yield FunctionCommand(failed, (), {})


_last_words: dict[str, str] = {}


def explained(state, target, words: str) -> None:
    """The failure of ``target`` is explained: when every host has failed so (or a group's run
    stops at a failure), the run ends with each one's last words rather than pyinfra's "No
    hosts remaining!" (or "Over 0% of hosts failed")."""
    _last_words[target.name] = words
    if getattr(state, "_srq_hpn_explained", False):
        return
    state._srq_hpn_explained = True
    fail_hosts = state.fail_hosts

    def fail_hosts_explained(hosts_to_fail, activated_count=None):
        try:
            return fail_hosts(hosts_to_fail, activated_count)
        except PyinfraError as error:
            words = {name: _last_words.get(name) for name in sorted(h.name for h in state.failed_hosts)}
            # Every host failed, or (several servers, FAIL_PERCENT = 0) one did and the run stops everywhere.
            ended = str(error) == "No hosts remaining!" or str(error).startswith("Over 0% of hosts failed")
            if not ended or not all(words.values()):
                raise
            from tasks.refusal import StoppedExplained  # under the CLI only

            raise StoppedExplained(words) from None

    state.fail_hosts = fail_hosts_explained
