"""An RQ worker that runs every job inside the Flask app's context."""

from __future__ import annotations

from flask import Flask
from rq import SimpleWorker, Worker

from outbound.queueing import outbound_queue, start_reconcile_chain


class _AppContextMixin:
    """Runs each job inside the app's context; with reconcile_every (seconds), keeps the periodic
    reconcile running."""

    def __init__(self, *args, app: Flask, reconcile_every: int | None = None, **kwargs):
        self.app, self.reconcile_every = app, reconcile_every
        super().__init__(*args, **kwargs)

    def perform_job(self, *args, **kwargs):
        with self.app.app_context():
            self.app.extensions["ivr"].after_fork()
            return super().perform_job(*args, **kwargs)

    def run_maintenance_tasks(self):
        """rq's upkeep (when the worker starts, then every maintenance interval), and the reconcile
        chain started: at start, and again should Redis have lost it (idempotent)."""
        super().run_maintenance_tasks()
        if self.reconcile_every:
            start_reconcile_chain(outbound_queue(self.connection), self.reconcile_every)


class AppWorker(_AppContextMixin, Worker):
    """Forks a work horse per job (isolation from crashes), as RQ does by default."""


class AppSimpleWorker(_AppContextMixin, SimpleWorker):
    """Runs jobs in its own process: for tests and platforms without fork."""
