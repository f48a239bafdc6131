"""`fulfil`, the platform's command line (click and rich, the `cli` extra): a client of the
REST API through `fulfil_client`. `fulfil --help` lists the commands, the configuration
and the exit codes."""

from fulfil_client.cli import _commands as _commands  # registers the commands on `cli`
from fulfil_client.cli._app import cli


def main() -> None:
    cli(prog_name="fulfil")


__all__ = ["cli", "main"]
