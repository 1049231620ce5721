"""The sync endpoint: import the inbox's new bundles (DESIGN.md section 9)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from septrader.api.client import actor_of, client_address
from septrader.api.errors import ApiError
from septrader.api.permissions import ADMIN, OPERATOR, has_role
from sync import services as sync


class SyncPullSerializer(serializers.Serializer[Any]):
    result = serializers.JSONField()


class SyncPullView(APIView):
    """Import the inbox's new bundles (operator). Only an admin's pull changes settings: an
    operator's applies signals and models and lists the settings left for an admin."""

    roles = {"POST": OPERATOR}

    @extend_schema(
        request=None,
        responses=SyncPullSerializer,
        summary="Import every new bundle of the sync inbox, oldest first (settings: admin)",
    )
    def post(self, request: Request) -> Response:
        try:
            result = sync.sync_pull(
                inbox=settings.SYNC_INBOX_DIR,
                actor=actor_of(request),
                address=client_address(request),
                config_allowed=has_role(request.user, ADMIN),
            )
        except sync.SyncConfigurationError as error:
            raise ApiError(str(error), code="unavailable", status_code=503) from None
        except sync.SyncError as error:
            raise ApiError(str(error), code="rejected", field="bundle") from None
        return Response({"result": _plain(result)})


def _plain(value: Any) -> Any:
    """A JSON-friendly form of whatever the sync service returns."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=str))
