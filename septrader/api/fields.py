"""Query and body fields shared by the apps' API serializers."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from rest_framework import serializers

from septrader.decimals import NonAsciiNumberError, parse_decimal


class AsciiDecimalField(serializers.DecimalField):
    """DRF's DecimalField, reading text with ASCII digits only (septrader/decimals.py).

    DRF reads text with ``Decimal()``, which takes the digits of any script (Arabic-Indic
    "\u0661.\u0661" is 1.1): the text is read here first, and DRF then checks the digits, places
    and bounds of the number.
    """

    def to_internal_value(self, data: Any) -> Decimal:
        # Longer text is left to DRF, which refuses it without reading it.
        if isinstance(data, str) and len(data) <= self.MAX_STRING_LENGTH:
            try:
                data = parse_decimal(data.strip())
            except NonAsciiNumberError as error:
                raise serializers.ValidationError(str(error)) from None
            except InvalidOperation:
                self.fail("invalid")
        return super().to_internal_value(data)


def ascii_digits_only(value: Any) -> None:
    """A validator for text that holds a number among other words (units: a number or ALL):
    text in another script is refused here; whether the rest is valid is left to the service,
    which knows the range."""
    try:
        parse_decimal(value)
    except NonAsciiNumberError as error:
        raise serializers.ValidationError(str(error)) from None
    except InvalidOperation:
        pass


# Far-off years are valid dates, but nothing is stored there and arithmetic on them overflows.
EARLIEST_YEAR = 1970
LATEST_YEAR = 2200


class BoundedDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time (UTC when no offset is given) between 1970 and 2200."""

    def to_internal_value(self, value: Any) -> Any:
        moment = super().to_internal_value(value)
        if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
            raise serializers.ValidationError(
                f"{value!r} is not valid; expected a time between {EARLIEST_YEAR} and "
                f"{LATEST_YEAR}."
            )
        return moment


class BoundedDateField(serializers.DateField):
    """A YYYY-MM-DD day between 1970 and 2200."""

    def to_internal_value(self, value: Any) -> Any:
        day = super().to_internal_value(value)
        if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
            raise serializers.ValidationError(
                f"{value!r} is not valid; expected a day between {EARLIEST_YEAR} and {LATEST_YEAR}."
            )
        return day


class TimeRangeSerializer(serializers.Serializer[Any]):
    """``from`` and ``to`` (ISO 8601; UTC when no offset is given), ``from`` before ``to``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so the fields are added by name.
        self.fields["from"] = BoundedDateTimeField(
            required=False, help_text="Start of the range, inclusive (ISO 8601)."
        )
        self.fields["to"] = BoundedDateTimeField(
            required=False, help_text="End of the range, exclusive (ISO 8601)."
        )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("from"), attrs.get("to")
        if start is not None and end is not None and end <= start:
            raise serializers.ValidationError(
                {"to": f"to={end.isoformat()} is not valid; expected a time after from."}
            )
        return attrs


def query(serializer_class: type[serializers.Serializer[Any]], request: Any) -> dict[str, Any]:
    """Validate a request's query string with a serializer (400 naming the field) and return
    the clean values; unknown parameters are ignored, as is usual for query strings."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
