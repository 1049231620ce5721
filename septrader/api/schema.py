"""OpenAPI additions: every operation documents the error shape for the statuses it can answer."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Stable: invalid, not_found, ..."},
                "message": {"type": "string"},
                "field": {"type": "string", "description": "The input at fault, or empty."},
            },
            "required": ["code", "message", "field"],
        }
    },
    "required": ["error"],
}

_DESCRIPTIONS = {
    "400": "Invalid input (a malformed or too deeply nested body included); the message names the "
    "field, the value and what was expected.",
    "401": "No valid token (or session).",
    "403": "Your role does not allow this.",
    "404": "No such record.",
    "409": "Conflicts with the current state (already closed, not promotable, ...).",
    "413": "The body is larger than REQUEST_MAX_BODY_BYTES (1 MiB unless configured).",
    "429": "Throttled, or the username is locked after repeated failed logins.",
    "502": "The broker refused or could not be reached.",
    "503": "The feature is not available on this installation.",
}


# Public, never throttled and without input: it answers 200 or 503 with its own body.
_WITHOUT_ERRORS = frozenset({"/api/health"})


def add_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        if path in _WITHOUT_ERRORS:
            continue
        for method, operation in operations.items():
            public = path.startswith("/api/token/")
            statuses = ["400", "429"]
            if not public:
                statuses += ["401", "403"]
            if "{" in path:
                statuses.append("404")
            if method in ("post", "put", "patch", "delete") and not public:
                statuses += ["409", "502", "503"]
            if public:
                statuses.append("401")
            if method in ("post", "put", "patch"):
                statuses.append("413")
            responses = operation.setdefault("responses", {})
            for status in statuses:
                responses.setdefault(
                    status,
                    {
                        "description": _DESCRIPTIONS[status],
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result
