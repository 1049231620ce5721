"""Roles: viewer (reads), operator (controls trading), admin (configuration, audit log).

Each role is a Django group holding one permission of its own and those of the roles below it
(created by the migration ``septrader/0004_api_roles``; ``manage.py set_role USER ROLE`` assigns
one). Superusers hold every permission, so they count as admin. Every API view names the role
each method needs (``roles``); reads default to viewer and writes to operator, so a view that
forgets to say still refuses anonymous and read-only users.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from django.contrib.auth.models import User
from django.db import connection
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


# A user's highest role as its rank in ROLES (1 viewer, 2 operator, 3 admin; NULL for none), from
# the role permissions held directly or through a group. Every API request asks it, so it is
# written out: the ORM's query for the same answer joined six tables with an OR across two outer
# joins and sorted by content type, which PostgreSQL took 2.2 ms to plan; it was 2.6 ms of the
# 6.4 ms a GET /api/pairs/status cost in-process (bench/api.py --profile).
_ROLE_RANK = (
    "(SELECT MAX(CASE p.codename "
    + " ".join(
        f"WHEN '{ROLE_PERMISSIONS[role][0]}' THEN {rank}" for rank, role in enumerate(ROLES, 1)
    )
    + " END) FROM auth_permission p"
    " JOIN django_content_type t ON t.id = p.content_type_id"
    " WHERE t.app_label = 'septrader'"
    " AND (p.id IN (SELECT gp.permission_id FROM auth_group_permissions gp"
    " JOIN auth_user_groups ug ON ug.group_id = gp.group_id WHERE ug.user_id = u.id)"
    " OR p.id IN (SELECT up.permission_id FROM auth_user_user_permissions up"
    " WHERE up.user_id = u.id)))"
)
_USER_COLUMNS = [field.column for field in User._meta.concrete_fields]
_USER_WITH_ROLE = (
    f"SELECT {', '.join(f'u.{column}' for column in _USER_COLUMNS)}, {_ROLE_RANK}"
    " FROM auth_user u WHERE u.id = %s"
)
_ROLE_OF_USER = f"SELECT {_ROLE_RANK} FROM auth_user u WHERE u.id = %s"


def _fetch_one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """One row; on PostgreSQL from a statement prepared once per connection (Django's cursors
    never prepare; see DATABASE_PREPARED_STATEMENTS in the settings), so every API request
    does not plan its authentication again."""
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchone()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _role_named(rank: int | None) -> str | None:
    return ROLES[rank - 1] if rank else None


def user_with_role(user_id: int) -> User | None:
    """The user with this id, their role already looked up (``role_of`` asks nothing more), in
    one statement; None if there is no such user. The API's JWT authentication calls it."""
    row = _fetch_one(_USER_WITH_ROLE, [user_id])
    if row is None:
        return None
    user = User.from_db(
        connection.alias, [field.attname for field in User._meta.concrete_fields], row[:-1]
    )
    user._api_role = _role_named(row[-1])  # type: ignore[attr-defined]
    return user


def role_of(user: Any) -> str | None:
    """The highest role a user holds, or None; remembered on the user object for the request."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return None
    if user.is_superuser:
        return ADMIN
    cached: str | bool | None = getattr(user, "_api_role", False)
    if cached is not False:
        return cached  # type: ignore[return-value]
    row = _fetch_one(_ROLE_OF_USER, [user.pk])
    role = _role_named(row[0] if row else None)
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
