"""The client's address, as the throttles see it, in the form the AuditLog stores."""

from __future__ import annotations

import ipaddress
from typing import cast

from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle


def client_address(request: Request | HttpRequest) -> str | None:
    """REMOTE_ADDR, or the X-Forwarded-For entry that ``NUM_PROXIES`` trusted proxies vouch for
    (DRF's own rule, so the audit log, the throttles and the login lockout agree); None if that
    is not an address. The rule reads only ``META``, which a plain Django request has too."""
    # A WSGI server may leave REMOTE_ADDR out (a Unix socket), and DRF then returns None.
    ident = BaseThrottle().get_ident(cast(Request, request))
    try:
        return str(ipaddress.ip_address(str(ident).strip()))
    except ValueError:
        return None


def actor_of(request: Request) -> str:
    """The AuditLog actor of a request: the username."""
    return str(request.user.get_username())
