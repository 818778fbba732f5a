"""`ivr import ...`: records from files the clinic's systems export."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from ivr.services import current_services


@click.group("import")
def import_group() -> None:
    """Bring in patients, appointments and prescriptions from files, by the clinic's own ids."""


@import_group.command("csv")
@click.argument("kind", type=click.Choice(("patients", "appointments", "prescriptions")))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--clinic", "clinic_id", type=int, required=True, help="Whose records they are.")
@with_appcontext
def import_csv(kind: str, file: Path, clinic_id: int) -> None:
    """Write each row of FILE (UTF-8 CSV with a header row; see the README for the columns).
    A bad row is reported with its line and reason, and the rest are written; importing the
    same file again changes nothing. Exits 1 when any row was refused."""
    from ivr.imports.csv_files import ImportRefused, import_file, read_rows

    from ivr.models import Clinic

    services = current_services()
    with services.sessions() as session:
        if session.get(Clinic, clinic_id) is None:
            raise click.ClickException(f"no clinic with id {clinic_id}")
    try:
        total = len(read_rows(file, kind)[0])  # (read twice: the count first, for the progress bar)
        with click.progressbar(length=total, label=f"importing {kind}", file=sys.stderr,
                               show_pos=True) as bar:
            report = import_file(services.sessions, clinic_id, kind, file, progress=bar.update)
    except ImportRefused as exc:
        raise click.ClickException(str(exc)) from None
    _tell(report, [(f"line {line}", why) for line, why in report.refused],
          [(f"line {line}", why) for line, why in report.kept])


@import_group.command("fhir")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--clinic", "clinic_id", type=int, required=True, help="Whose records they are.")
@with_appcontext
def import_fhir(file: Path, clinic_id: int) -> None:
    """Write the Patients, Appointments and MedicationRequests of a FHIR R4 Bundle (JSON) or bulk
    export (NDJSON), matched by identifier; a bad resource is reported and the rest written.
    Exits 1 when any resource was refused."""
    from ivr.imports.fhir_files import FhirRefused, import_resources, resources_of
    from ivr.models import Clinic

    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file.name} is not UTF-8 JSON; nothing was imported") from None
    try:
        found = resources_of(text)
    except FhirRefused as exc:
        raise click.ClickException(f"{file.name}: {exc}; nothing was imported") from None
    services = current_services()
    with services.sessions() as session:
        if session.get(Clinic, clinic_id) is None:
            raise click.ClickException(f"no clinic with id {clinic_id}")
    report = import_resources(services.sessions, clinic_id, found)
    _tell(report, report.refused, report.kept)


def _tell(report, refused: list[tuple[str, str]], kept: list[tuple[str, str]]) -> None:
    """The import's summary, then each refusal and each record kept as it was, where it stands in
    the file; exit 1 when anything was refused (the rest was written)."""
    click.echo(report.summary())
    for where, why in refused:
        click.echo(f"{where}: {why}")
    for where, why in kept:
        click.echo(f"{where}: kept: {why}")
    if refused:
        raise SystemExit(1)
