"""Every operation that changes state needs a login and at least the operator role.

tests/api/test_permissions.py checks a hand-written matrix; this walks the OpenAPI schema instead,
so an endpoint added later is covered without anyone remembering to list it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

WRITES = {"post", "put", "patch", "delete"}
# Values for the path parameters: enough to reach the view (which checks the role before it
# looks anything up).
PLACEHOLDERS = {"pair": "EUR_USD", "id": "999999", "pk": "999999"}


def write_operations() -> list[tuple[str, str]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = [
        (method, path)
        for path, methods in schema["paths"].items()
        for method in methods
        # Logging in, refreshing and logging out are how a caller gets a role in the first place.
        if method in WRITES and not path.startswith("/api/token/")
    ]
    assert operations, "the schema lists no write operation at all"
    return sorted(operations)


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: PLACEHOLDERS.get(match.group(1), "1"), path)


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), write_operations())
def test_every_write_operation_refuses_anonymous_callers_and_viewers(
    as_role: Callable[[str | None], APIClient], method: str, path: str
) -> None:
    url = concrete(path)
    anonymous = getattr(as_role(None), method)(url, {}, format="json")
    assert anonymous.status_code == 401, f"{method.upper()} {path} lets anonymous callers in"
    viewer = getattr(as_role("viewer"), method)(url, {}, format="json")
    assert viewer.status_code == 403, f"{method.upper()} {path} lets viewers in"
