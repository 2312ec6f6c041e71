"""The ``ownvault`` command line. Thin: parse -> engine -> render.

Errors are mapped to exit codes in exactly one place (:func:`main`), via
:func:`ownvault.errors.exit_code_for`. Command groups live in sibling modules and are
registered in :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import importlib
import sys

from ownvault.cli.app import cli, run_cli

__all__ = ["cli", "main"]

COMMAND_MODULES = [
    "ownvault.cli.files",
    "ownvault.cli.admin",
    "ownvault.cli.ipfs",
    "ownvault.cli.keys",
    "ownvault.cli.node",
]

for _module in COMMAND_MODULES:
    importlib.import_module(_module)


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_cli(argv))
