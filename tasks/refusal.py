"""The refusal of bad input before pyinfra connects to a host.

pyinfra prints a CliError as its own error ("--> pyinfra error: ..."), without the
file and line it adds to a PyinfraError. This module imports pyinfra's CLI, so only
code that runs under the CLI imports it (importing the CLI patches gevent in).
"""

from pyinfra_cli.exceptions import CliError


class RefusedBeforeConnecting(CliError):
    """Bad input found before any connection; the message lists every problem."""
