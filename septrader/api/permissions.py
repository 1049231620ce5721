"""Roles: viewer (reads), operator (controls trading), admin (configuration, audit log).

Each role is a Django group holding one permission of its own and those of the roles below it
(created by the migration ``septrader/0004_api_roles``; ``manage.py set_role USER ROLE`` assigns
one). Superusers hold every permission, so they count as admin. Every API view names the role
each method needs (``roles``); reads default to viewer and writes to operator, so a view that
forgets to say still refuses anonymous and read-only users.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.db.models import Q
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
ROLES: tuple[str, ...] = (VIEWER, OPERATOR, ADMIN)

# The permission (on the AuditLog model, app ``septrader``) that each role adds.
ROLE_PERMISSIONS: dict[str, tuple[str, str]] = {
    VIEWER: ("api_read", "Can read the API"),
    OPERATOR: ("api_control", "Can control trading through the API"),
    ADMIN: ("api_admin", "Can change configuration and read the audit log through the API"),
}


def role_permission(role: str) -> str:
    return f"septrader.{ROLE_PERMISSIONS[role][0]}"


def role_of(user: Any) -> str | None:
    """The highest role a user holds, or None; remembered on the user object for the request."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return None
    if user.is_superuser:
        return ADMIN
    cached: str | bool | None = getattr(user, "_api_role", False)
    if cached is not False:
        return cached  # type: ignore[return-value]
    # One query for the role permissions held directly or through groups (ModelBackend's
    # has_perm makes two, and loads every other permission too).
    codenames = set(
        Permission.objects.filter(
            Q(group__user=user) | Q(user=user),
            content_type__app_label="septrader",
            codename__in=[codename for codename, _ in ROLE_PERMISSIONS.values()],
        ).values_list("codename", flat=True)
    )
    role = next((role for role in reversed(ROLES) if ROLE_PERMISSIONS[role][0] in codenames), None)
    user._api_role = role
    return role


def has_role(user: Any, role: str) -> bool:
    held = role_of(user)
    return held is not None and ROLES.index(held) >= ROLES.index(role)


def required_role(view: Any, method: str) -> str | None:
    """The role ``view`` needs for ``method``; None means public."""
    roles: dict[str, str | None] = getattr(view, "roles", {})
    if method in roles:
        return roles[method]
    if method == "HEAD" and "GET" in roles:
        return roles["GET"]
    return VIEWER if method in SAFE_METHODS else OPERATOR


class HasRole(BasePermission):
    """The default permission of every API view: the role its ``roles`` asks for."""

    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        role = required_role(view, request.method or "GET")
        if role is None:
            return True
        return has_role(request.user, role)
