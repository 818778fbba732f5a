"""Voice engagement server for clinics: Flask app factory."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from ivr.config import load_settings
from ivr.log_hygiene import guard_database_logs
from ivr.services import Services

# Keys of create_app's config that are objects rather than settings (tests inject doubles).
_OBJECT_KEYS = ("DIALER", "REDIS", "SYNTHESIZER", "RECORDINGS", "MESSENGER")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from IVR_* variables, with `config` (keys like DATABASE_URL) taking precedence."""
    app = Flask(__name__, instance_relative_config=True)
    config = dict(config or {})
    objects = {key: config.pop(key) for key in _OBJECT_KEYS if key in config}
    settings = load_settings(overrides=config, instance_path=app.instance_path)
    # A body over MAX_CONTENT_LENGTH is refused with 413 when first read (the signature check
    # reads every /twilio/ form), before it is held in memory.
    app.config.update(SECRET_KEY=settings.secret_key, TESTING=settings.env == "test",
                      MAX_CONTENT_LENGTH=settings.max_content_length or None)
    app.extensions["ivr"] = Services(settings, dialer_override=objects.get("DIALER"),
                                     redis_override=objects.get("REDIS"),
                                     synthesizer_override=objects.get("SYNTHESIZER"),
                                     recordings_override=objects.get("RECORDINGS"),
                                     messenger_override=objects.get("MESSENGER"))
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops,
                                x_host=settings.proxy_hops, x_prefix=settings.proxy_hops)

    from ivr import audio, cli, webhooks
    from ivr.messaging import webhooks as messaging_webhooks

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(messaging_webhooks.bp)
    app.register_blueprint(audio.bp)
    if settings.carrier == "sandbox":
        from ivr.sandbox import rest

        app.register_blueprint(rest.bp)
    from ivr import api, events

    api.init_app(app, app.extensions["ivr"])
    events.init_app(app)
    cli.register(app)

    @app.get("/health")
    def health() -> dict:
        """Liveness for load balancers and `make run`'s start-up check."""
        return {"status": "ok", "env": settings.env, "carrier": settings.carrier}

    if not app.debug and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # twilio's client logs every API request at INFO; the calls are ours to log, without numbers.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    guard_database_logs(production=settings.is_production)
    if settings.env != "test":  # tests build many apps; the check's own tests use development
        from ivr.voice_engines import warn_about_clinics_without_engine

        warn_about_clinics_without_engine(app.extensions["ivr"])
    return app
