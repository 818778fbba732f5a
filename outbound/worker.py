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

    def perform_job(self, *args, **kwargs):
        try:
            return super().perform_job(*args, **kwargs)
        finally:
            # The work horse ends with os._exit (no atexit): stop the synthesiser process it
            # started, so that nothing is left running or waiting to be reaped.
            services = self.app.extensions["ivr"]
            if "synthesizer" in services.__dict__:
                services.synthesizer.close()


class AppSimpleWorker(_AppContextMixin, SimpleWorker):
    """Runs jobs in its own process: for tests and platforms without fork."""

    def __init__(self, *args, app: Flask, **kwargs):
        self.app = app
        super().__init__(*args, **kwargs)
