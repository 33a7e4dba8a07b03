"""Facts about the app's checkout on the server: what is on disk, not what was recorded."""

from __future__ import annotations

import base64
import shlex

from pyinfra.api import FactBase

from tasks import layout


class TextFile(FactBase):
    """Returns a small text file's content with surrounding space removed, or None."""

    def command(self, path):
        return f"cat {shlex.quote(path)} 2>/dev/null || true"

    def process(self, output):
        return "\n".join(output).strip() or None


def holds_upload(state_dir: str, manifest_sha: str) -> str:
    """A shell test: the server's record of the last upload is the manifest whose sha256
    is ``manifest_sha`` (false when there is no record)."""
    record = shlex.quote(f"{state_dir}/source.manifest")
    return f'[ "$(sha256sum < {record} 2>/dev/null | cut -c1-64)" = {shlex.quote(manifest_sha)} ]'


class UploadedSource(FactBase):
    """
    Returns ``"current"`` when the app directory holds exactly the files of the upload
    whose manifest has the sha256 ``manifest_sha`` (every file checked on disk), else
    the reason it does not: ``"stale: ..."``.
    """

    default = str

    def command(self, manifest_sha, app_dir=layout.APP_DIR, state_dir=layout.STATE_DIR):
        record = shlex.quote(f"{state_dir}/source.manifest")
        return (
            f"if [ ! -f {record} ]; then echo 'stale: nothing uploaded yet'; "
            f"elif ! {holds_upload(state_dir, manifest_sha)}; then "
            "echo 'stale: a different source was uploaded last'; "
            f"elif ! (cd {shlex.quote(app_dir)} 2>/dev/null && sha256sum --quiet --strict -c {record} >/dev/null 2>&1); then "
            "echo 'stale: files on disk differ from the upload'; "
            "else echo current; fi"
        )

    def process(self, output):
        return (output[0] if output else "stale: no answer").strip()


class GitCheckout(FactBase):
    """
    Returns the app directory's git state and the branch's newest commit upstream::

        {"head": "<sha>" or None, "branch": "main", "dirty": ["M compose.yml"], "remote": "<sha>" or None}
    """

    default = dict

    def command(self, repo, branch, app_dir=layout.APP_DIR, ssh_command=""):
        d = shlex.quote(app_dir)
        env = f"GIT_SSH_COMMAND={shlex.quote(ssh_command)} " if ssh_command else ""
        return (
            f"if [ -d {d}/.git ]; then echo \"head $(git -C {d} rev-parse HEAD 2>/dev/null)\"; "
            f"echo \"branch $(git -C {d} symbolic-ref --short -q HEAD)\"; "
            f"git -C {d} status --porcelain --untracked-files=no 2>&1 | sed 's/^/dirty /'; fi; "
            f"echo \"remote $({env}git ls-remote -- {shlex.quote(repo)} {shlex.quote('refs/heads/' + branch)} 2>/dev/null | cut -f1)\""
        )

    def process(self, output):
        state = {"head": None, "branch": None, "dirty": [], "remote": None}
        for line in output:
            key, _, value = line.partition(" ")
            if key == "dirty":
                state["dirty"].append(value.strip())
            elif key in state:
                state[key] = value.strip() or None
        return state


class CheckoutHead(FactBase):
    """Returns the commit the app directory's git checkout is at, or None."""

    def command(self, app_dir=layout.APP_DIR):
        return f"git -C {shlex.quote(app_dir)} rev-parse HEAD 2>/dev/null || true"

    def process(self, output):
        return output[0].strip() if output and output[0].strip() else None


class DataVolumes(FactBase):
    """
    Returns, for each docker volume named, whether it exists and holds a PostgreSQL
    data directory: ``{"srq-hpn_postgres_data": {"exists": True, "data": True}}``.
    """

    requires_command = "docker"
    default = dict

    def command(self, names):
        quoted = " ".join(shlex.quote(name) for name in names)
        return (
            f"for v in {quoted}; do m=$(docker volume inspect --format '{{{{.Mountpoint}}}}' \"$v\" 2>/dev/null) "
            "|| { echo \"$v absent\"; continue; }; "
            "if [ -n \"$(find \"$m\" -maxdepth 3 -name PG_VERSION -print -quit 2>/dev/null)\" ]; "
            "then echo \"$v data\"; else echo \"$v empty\"; fi; done"
        )

    def process(self, output):
        volumes = {}
        for line in output:
            name, _, state = line.rpartition(" ")
            if name:
                volumes[name] = {"exists": state != "absent", "data": state == "data"}
        return volumes


class FileStates(FactBase):
    """
    Returns the checksum and mode of each file, and the mode of each directory, named
    (absent ones are left out), in one round trip::

        {"/usr/local/lib/srq-hpn/lib.sh": {"sha256": "…", "mode": "644"},
         "/usr/local/lib/srq-hpn": {"mode": "755"}}
    """

    default = dict

    def command(self, paths):
        quoted = " ".join(shlex.quote(path) for path in paths)
        # Three processes whatever the number of paths: the files' checksums, then every mode.
        return (f"files=; for p in {quoted}; do [ -f \"$p\" ] && files=\"$files $p\"; done; "
                "[ -z \"$files\" ] || sha256sum $files | sed 's/^/s /'; "
                f"stat -c 'm %F|%a|%n' {quoted} 2>/dev/null || true")

    def process(self, output):
        sums, states = {}, {}
        for line in output:
            if line.startswith("s "):
                digest, _, path = line[2:].partition("  ")
                sums[path] = digest
            elif line.startswith("m "):
                kind, mode, path = line[2:].split("|", 2)
                if kind == "directory":
                    states[path] = {"mode": mode}
                elif kind.startswith("regular"):
                    states[path] = {"sha256": sums.get(path, ""), "mode": mode}
        return states


class GitRelease(FactBase):
    """
    Returns the newest commit of a git branch and the files of it the plan reads (the
    compose files, ``.env.production.example``, alembic's configuration and migration
    scripts), read from a shallow clone in a private directory removed at once: the
    checkout in the app directory is not touched::

        {"ok": True, "commit": "<sha>", "paths": {"compose.yml": "<blob sha>", ...},
         "files": {"compose.yml": "...", "apps/api/alembic/versions/0001_x.py": "..."}}

    ``{"ok": False, "error": [...]}`` when the branch cannot be read (git is not installed
    yet, the deploy key or the git server's key is not on the server yet, ...). Given
    ``checkout`` (the app directory, when its clean checkout is the branch's newest commit
    already), that checkout's HEAD is read instead of a clone.
    """

    @staticmethod
    def default():
        return {"ok": False, "error": ["git is not installed on the server yet"]}

    def command(self, repo, branch, ssh_command="", checkout=""):
        env = f"GIT_SSH_COMMAND={shlex.quote(ssh_command)} " if ssh_command else ""
        wanted = " ".join(shlex.quote(name) for name in layout.CONTRACT_FILES)
        # The checkout itself when it is that commit already (read, never changed); else a clone.
        fetch = (f"rm -rf \"$tmp/r\"; ln -s {shlex.quote(checkout.rstrip('/') + '/.git')} \"$tmp/r\"" if checkout else
                 f"if ! {env}git clone --quiet --bare --depth 1 --single-branch --branch {shlex.quote(branch)} -- "
                 f"{shlex.quote(repo)} \"$tmp/r\" 2>\"$tmp/err\" </dev/null; then echo error; tail -n 5 \"$tmp/err\"; "
                 "exit 0; fi")
        return (
            "command -v git >/dev/null || { echo error; echo 'git is not installed on the server yet'; exit 0; }; "
            "tmp=$(mktemp -d) && trap 'rm -rf \"$tmp\"' EXIT && "
            f"{fetch}; "
            "echo ok; echo \"commit $(git -C \"$tmp/r\" rev-parse HEAD)\"; "
            "git -C \"$tmp/r\" ls-tree -r HEAD | awk -F '\\t' '{split($1, a, \" \"); print a[3] \" \" $2}' > \"$tmp/tree\"; "
            "sed 's/^/path /' \"$tmp/tree\"; cut -d' ' -f2- \"$tmp/tree\" > \"$tmp/paths\"; "
            f"{{ for f in {wanted}; do grep -x -F -e \"$f\" \"$tmp/paths\"; done; "
            "grep -E '(^|/)alembic\\.ini$|/versions/[^/]+\\.py$' \"$tmp/paths\"; } | sort -u | "
            "while IFS= read -r f; do printf 'file %s %s\\n' \"$(git -C \"$tmp/r\" show \"HEAD:$f\" | base64 -w0)\" \"$f\"; done"
        )

    def process(self, output):
        lines = list(output)
        if not lines or lines[0] != "ok":
            return {"ok": False, "error": [line for line in lines[1:] if line.strip()][-5:] or ["no answer"]}
        result = {"ok": True, "commit": None, "paths": {}, "files": {}}
        for line in lines[1:]:
            kind, _, rest = line.partition(" ")
            if kind == "commit":
                result["commit"] = rest.strip() or None
            elif kind == "path":
                digest, _, name = rest.partition(" ")
                result["paths"][name] = digest
            elif kind == "file":
                encoded, _, name = rest.partition(" ")
                result["files"][name] = base64.b64decode(encoded).decode(errors="replace")
        return result

