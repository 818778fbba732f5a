"""The REST API under /api/v1 for a clinic's scheduling system: its patients, appointments and
prescriptions in by the clinic's own ids, outcomes out. OpenAPI 3.1 comes from the code
(flask-smorest); errors are RFC 9457 problem details; each token is rate-limited through Redis."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

from flask import Flask, request
from werkzeug.routing import BaseConverter
from flask_limiter import Limiter
from flask_smorest import Api
from redis import ConnectionPool, UnixDomainSocketConnection
from werkzeug.exceptions import HTTPException

from ivr.api import problems
from ivr.api.schemas import EXTERNAL_ID, Problem
from ivr.api.tokens import rate_limit_key
from ivr.services import Services

PREFIX = "/api/v1"


class ExternalIdConverter(BaseConverter):
    """The clinic's own id in a path; anything else is not found (never a NUL into the database)."""

    regex = EXTERNAL_ID["pattern"].strip("^$")


class _Api(Api):
    """flask-smorest's Api, whose JSON errors would answer for the whole app: ours answer only
    under /api/ (Twilio's routes keep their own)."""

    def _register_error_handlers(self) -> None:
        self._app.register_error_handler(HTTPException, problems.answer_api_errors_only)

    def _register_responses(self) -> None:
        """Every error response in the document is a problem (application/problem+json)."""
        for status in HTTPStatus:
            if status >= 400:
                self.spec.components.response(status.name, {
                    "description": status.phrase, "content": {"application/problem+json": {"schema": Problem}}},
                    lazy=True)
        self.spec.components.response("DEFAULT_ERROR", {
            "description": "an error", "content": {"application/problem+json": {"schema": Problem}}}, lazy=True)


def init_app(app: Flask, services: Services) -> None:
    """Mount the API, its OpenAPI document and docs page, and its rate limit."""
    settings = services.settings
    app.config.update(
        API_TITLE="Clinic engagement server API", API_VERSION="1", OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX=PREFIX, OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs", OPENAPI_SWAGGER_UI_URL=settings.api_docs_assets_url,
        API_SPEC_OPTIONS={
            "info": {"description": "Patients, appointments and prescriptions by the clinic's own ids "
                                    "(idempotent PUT), and what became of each contact. Every request "
                                    "carries `Authorization: Bearer <token>` (`ivr tokens add`)."},
            "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
            "security": [{"token": []}],
        })

    @app.before_request
    def _redis_up_for_api() -> None:
        # The rate limit's pool only names the server; the first use of Redis starts or joins it.
        if request.path.startswith(PREFIX + "/") and services.redis_override is None:
            services.redis  # noqa: B018  (a cached property with an effect)

    limiter = Limiter(rate_limit_key, storage_uri="redis://", key_prefix="ivr-api",
                      storage_options={"connection_pool": _redis_pool(services)},
                      strategy="moving-window", headers_enabled=True,
                      # Redis down: each process counts for itself rather than refuse every request.
                      in_memory_fallback_enabled=True)
    limiter.init_app(app)
    app.url_map.converters["external_id"] = ExternalIdConverter
    api = _Api(app)
    api.register_converter(ExternalIdConverter, lambda _converter: {"type": "string", **EXTERNAL_ID})
    from ivr.api import fhir, outcomes, records

    for blueprint in (records.bp, outcomes.bp, fhir.bp):
        limiter.limit(settings.api_rate_limit)(blueprint)
        api.register_blueprint(blueprint, url_prefix=PREFIX)
    limiter.exempt(app.blueprints["api-docs"])


def _redis_pool(services: Services) -> ConnectionPool:
    """The Redis the app uses, as a pool that connects only when first asked."""
    if services.redis_override is not None:
        return services.redis_override.connection_pool
    if services.settings.redis_url:
        return ConnectionPool.from_url(services.settings.redis_url)
    socket = Path(services.settings.instance_path or "instance").resolve() / "redis.sock"
    return ConnectionPool(connection_class=UnixDomainSocketConnection, path=str(socket))
