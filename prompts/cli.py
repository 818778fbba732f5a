"""`ivr prompts ...`: keep the prompt catalogues complete and plain."""

from __future__ import annotations

import click

import prompts
from prompts.check import MAX_GRADE, problems


@click.group("prompts")
def prompts_group() -> None:
    """Prompt catalogues: one per language."""


@prompts_group.command("check")
def check() -> None:
    """Every language has every key with the same placeholders; English reads at grade 6 or below."""
    found = problems()
    for line in found:
        click.echo(line)
    languages = ", ".join(prompts.available_languages())
    if found:
        raise click.ClickException(f"{len(found)} problem(s) in the catalogues ({languages})")
    click.echo(f"catalogues {languages}: complete and consistent; English at or below grade {MAX_GRADE:.0f}")
