"""Step 16: log aggregation (the guide's optional checklist item). With
``log_shipping_url``, every container of the stack logs to the server's journal (the
deploy's compose layer gives each service Docker's journald log driver, see
tasks.deploy_layer), and systemd-journal-upload, from the distribution's
systemd-journal-remote package (installed with Docker, step 5), sends the journal to a
systemd-journal-remote collector. Without it, a drop-in this deploy wrote before is
removed and the uploader it started stopped; an uploader set up by hand is left alone."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import files, systemd

from tasks import layout, render
from tasks.settings import Settings


@deploy("Ship the logs off the server")
def ship(settings: Settings):
    drop_in = layout.JOURNAL_UPLOAD_DROP_IN
    if not settings.log_shipping_url:
        if host.get_fact(File, path=drop_in):  # shipped by an earlier deploy
            files.file(name=f"Ensure {drop_in} is absent (log_shipping_url is empty)", path=drop_in, present=False)
            systemd.service(name=f"Ensure {layout.JOURNAL_UPLOAD_SERVICE} is stopped and disabled",
                            service=layout.JOURNAL_UPLOAD_SERVICE, running=False, enabled=False)
        return
    files.directory(name=f"Ensure {drop_in.rsplit('/', 1)[0]} exists", path=drop_in.rsplit("/", 1)[0], mode="755")
    config = files.put(
        name=f"Ensure {drop_in} sends the journal to {settings.log_shipping_url}",
        src=StringIO(render.journal_upload_conf(settings)),
        dest=drop_in,
        mode="644",
    )
    systemd.service(
        name=f"Ensure {layout.JOURNAL_UPLOAD_SERVICE} ships the journal and is enabled at boot",
        service=layout.JOURNAL_UPLOAD_SERVICE,
        running=True,
        enabled=True,
        # It reads its configuration when it starts.
        restarted=bool(config.will_change),
    )
