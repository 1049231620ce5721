"""One shape for every API error: ``{"error": {"code", "message", "field"}}``.

The apps raise their own exceptions (``trading.services.TradingError`` and its ``NotFound`` and
``Conflict``, ``septrader.config.ConfigValueError``, ...); they are translated here, once, into a
status and a stable code. DRF's own errors (validation, authentication, throttling) get the same
shape, with the first failing field named, so a client reads one format whatever went wrong.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from septrader.config import ConfigValueError

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An error raised by a view: a status, a stable code, a message naming the field."""

    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(
        self, message: str, *, code: str = "invalid", field: str = "", status_code: int = 400
    ) -> None:
        super().__init__(detail=message, code=code)
        self.message = message
        self.error_code = code
        self.field = field
        self.status_code = status_code


def invalid(field: str, value: Any, expected: str) -> ApiError:
    """The 400 for one bad input: ``field=value is not valid; expected ...``."""
    return ApiError(f"{field}={value!r} is not valid; expected {expected}.", field=field)


def not_found(field: str, value: Any, what: str) -> ApiError:
    return ApiError(
        f"{field}={value!r} is not a known {what}.", code="not_found", field=field, status_code=404
    )


def error_body(code: str, message: str, field: str = "") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


# Exceptions of the apps, by class name so this module imports none of them: (status, code).
_APP_ERRORS: dict[str, tuple[int, str]] = {
    "NotFound": (404, "not_found"),
    "Conflict": (409, "conflict"),
    "TradingError": (400, "invalid"),
    "PromotionRefusedError": (409, "promotion_refused"),
    "UnknownTimeframeError": (400, "invalid"),
    "ScheduleError": (400, "invalid"),
    # The broker refused or could not be reached: not the client's fault, not ours either.
    "OandaError": (502, "broker_error"),
    "SyncError": (409, "sync_failed"),
    # Bad input to the parity report (a day not finished, an unknown pair).
    "ParityError": (400, "invalid"),
    # A login on a locked username (septrader/lockout.py).
    "LoginLockedOutError": (429, "locked_out"),
}

# DRF's exceptions: their stable code (DRF's ``default_code`` is close but not uniform).
_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "malformed",
    exceptions.ValidationError: "invalid",
}


def _first_error(detail: Any, path: str = "") -> tuple[str, str, str]:
    """The first (field, message, code) of a nested DRF error detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            return _first_error(value, f"{path}.{name}" if path and name else name or path)
    if isinstance(detail, list):
        for index, value in enumerate(detail):
            # A list of messages belongs to the field; a list of objects is indexed.
            nested = isinstance(value, dict | list)
            return _first_error(value, f"{path}[{index}]" if nested else path)
        return path, "invalid", "invalid"
    code = getattr(detail, "code", "invalid") or "invalid"
    return path, str(detail), str(code)


def _message_with_field(field: str, message: str) -> str:
    return f"{field}: {message}" if field and field not in message else message


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApiError):
        return Response(error_body(exc.error_code, exc.message, exc.field), status=exc.status_code)
    name = type(exc).__name__
    # Every class in the chain is looked at, so subclasses (OandaRejected ...) are covered.
    for klass in type(exc).__mro__:
        if klass.__name__ in _APP_ERRORS and klass.__module__.split(".")[0] in {
            "trading",
            "marketdata",
            "qfh",
            "septrader",
            "monitoring",
            "parity",
        }:
            status_code, code = _APP_ERRORS[klass.__name__]
            message = getattr(exc, "message", None) or str(exc)
            return Response(
                error_body(code, message, getattr(exc, "field", "") or ""), status=status_code
            )
    if isinstance(exc, RequestDataTooBig):
        # DRF reads a body through Django's request.body, which refuses one larger than
        # DATA_UPLOAD_MAX_MEMORY_SIZE before reading it; uncaught, it was a 500.
        return _too_large(context)
    if isinstance(exc, ConfigValueError):
        field = exc.key if exc.key != "key" else str(exc.value)
        return Response(error_body("invalid", str(exc), field), status=400)
    if isinstance(exc, DjangoValidationError):
        messages = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
        field, texts = next(iter(messages.items()))
        return Response(error_body("invalid", "; ".join(texts), field), status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        # A bug, not bad input: logged with its traceback; the client gets the same shape.
        logger.error("event=api_unhandled_error error=%s", name, exc_info=exc)
        return Response(
            error_body("server_error", "The server failed to answer; the error is logged."),
            status=500,
        )
    assert isinstance(exc, exceptions.APIException)
    code = next((c for k, c in _DRF_CODES.items() if isinstance(exc, k)), "error")
    if isinstance(exc, exceptions.ValidationError):
        field, message, detail_code = _first_error(exc.detail)
        if detail_code not in ("invalid", "required", "null", "blank"):
            detail_code = "invalid"
        response.data = error_body(
            "required" if detail_code == "required" else "invalid",
            _message_with_field(field, message),
            field,
        )
    else:
        field, message, _ = _first_error(exc.detail)
        response.data = error_body(code, message, field)
    return response


def _too_large(context: dict[str, Any]) -> Response:
    request = context.get("request")
    size = request.META.get("CONTENT_LENGTH", "?") if request is not None else "?"
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return Response(
        error_body(
            "too_large",
            f"The request body has {size} bytes; expected at most {limit} "
            "(REQUEST_MAX_BODY_BYTES).",
        ),
        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 (no URL matched): the API's JSON shape under /api/, the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("not_found", f"No API endpoint at {request.path}."), status=404
        )
    return defaults.page_not_found(request, exception or Http404())


def json_server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("server_error", "The server failed to answer; the error is logged."),
            status=500,
        )
    return defaults.server_error(request)
