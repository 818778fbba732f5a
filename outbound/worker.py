"""An RQ worker that runs every job inside the Flask app's context."""

from __future__ import annotations

from flask import Flask
from rq import SimpleWorker, Worker


class _AppContextMixin:
    app: Flask

    def perform_job(self, *args, **kwargs):
        with self.app.app_context():
            self.app.extensions["ivr"].after_fork()
            return super().perform_job(*args, **kwargs)


class AppWorker(_AppContextMixin, Worker):
    """Forks a work horse per job (isolation from crashes), as RQ does by default."""

    def __init__(self, *args, app: Flask, **kwargs):
        self.app = app
        super().__init__(*args, **kwargs)


class AppSimpleWorker(_AppContextMixin, SimpleWorker):
    """Runs jobs in its own process: for tests and platforms without fork."""

    def __init__(self, *args, app: Flask, **kwargs):
        self.app = app
        super().__init__(*args, **kwargs)
