"""The API's JSON parser: DRF's, refusing bodies nested deeper than API_MAX_JSON_DEPTH.

Python's json module parses arrays and objects recursively, so a body like ``[`` x 100,000 raised
RecursionError deep inside the parser, a 500 with a traceback in the log. The depth is measured
on the text first, without recursion, and a body nested too deep is a 400 like any other
malformed body. The body's size is limited before it is read at all: DRF reads it through
Django's ``request.body``, which raises RequestDataTooBig beyond DATA_UPLOAD_MAX_MEMORY_SIZE
(REQUEST_MAX_BODY_BYTES), answered with a 413 in septrader/api/errors.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from itertools import accumulate
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

# A JSON string from its opening quote to its closing one, escapes included. An unterminated
# string runs to the end of the text, so the pattern always matches where it starts and the
# whole text is read once (a pattern that could fail there would be retried from every quote).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (0 for a scalar), brackets inside
    strings not counted. Linear and without recursion, whatever the text: a megabyte of brackets
    takes about 0.1 s."""
    brackets = _NOT_BRACKETS.sub("", _STRING.sub("", text))
    # The running sum of +1 per opening and -1 per closing bracket, in C rather than a Python loop.
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser (strict: no NaN or Infinity), with the depth checked before parsing."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
        except (UnicodeDecodeError, LookupError) as error:
            raise ParseError(
                f"JSON parse error - the body is not {encoding} text: {error}"
            ) from None
        depth = json_depth(text)
        limit = settings.API_MAX_JSON_DEPTH
        if depth > limit:
            raise ParseError(
                f"The JSON body nests arrays and objects {depth} levels deep; expected at most "
                f"{limit} (API_MAX_JSON_DEPTH)."
            )
        try:
            return json.loads(text, parse_constant=strict_constant if self.strict else None)
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None
