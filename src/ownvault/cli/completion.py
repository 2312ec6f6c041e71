"""``ownvault completion bash|zsh|fish``: the shell completion script, from click's own
completion machinery (the script calls ``ownvault`` back with ``_OWNVAULT_COMPLETE`` set;
:func:`ownvault.cli.app.run_cli` answers through click)."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from ownvault.cli.app import cli, common, get_ctx
from ownvault.cli.render import emit

__all__ = ["COMPLETE_VAR", "completion"]

COMPLETE_VAR = "_OWNVAULT_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


@cli.command()
@common
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL. Load it at start-up:

    \b
      bash: eval "$(ownvault completion bash)"     in ~/.bashrc
      zsh:  eval "$(ownvault completion zsh)"      in ~/.zshrc
      fish: ownvault completion fish > ~/.config/fish/completions/ownvault.fish
    """
    cls = get_completion_class(shell)
    if cls is None:  # click knows every shell in SHELLS
        raise click.BadParameter(f"no completion for {shell}")
    script = cls(cli, {}, "ownvault", COMPLETE_VAR).source()
    emit(get_ctx(), {"shell": shell, "script": script}, lambda: click.echo(script))
