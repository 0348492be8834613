"""Request bodies that routes read by hand (JSON or forms), declared for the OpenAPI document.

``POST /api/v1/issues`` takes JSON or multipart (with photos), nothing else, and Open311's
``POST requests`` takes a form, so FastAPI cannot infer their bodies; these schemas say what
the routes read, and the report's field list is what the route accepts.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from api.deps import Crs
from api.errors import BadRequest
from data.cases import MAX_DESCRIPTION, CaseError


class ReportIn(BaseModel):
    """A resident's or grid worker's report: a place (lon/lat, or an address) and what is wrong."""

    # A misspelt field (say "longitude") must not be dropped silently.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"anyOf": [{"required": ["lon", "lat"]}, {"required": ["address"]}]},
    )

    lon: float | None = Field(None, description="Longitude in `crs`")
    lat: float | None = Field(None, description="Latitude in `crs`")
    crs: Literal["wgs84", "cgcs2000", "gcj02", "bd09"] = Field(
        "wgs84", description="The system lon/lat are in"
    )
    category: str = Field(min_length=1, description="A category code (GET /api/v1/categories)")
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION, description="What is wrong")
    reporter_contact: str | None = Field(None, max_length=200, description="Private: staff only")
    source: str | None = Field(None, max_length=100, description="Where the report came from")
    address: str | None = Field(
        None, max_length=500, description="Where, in words (needed without lon/lat)"
    )


assert get_args(ReportIn.model_fields["crs"].annotation) == tuple(Crs)
REPORT_FIELDS = frozenset(ReportIn.model_fields) | {"media"}


# The only bodies POST /api/v1/issues reads; any other Content-Type is a 415.
REPORT_MEDIA_TYPES = ("application/json", "multipart/form-data")


class UnsupportedMediaType(CaseError):
    """A body of a type the route does not read (e.g. text/plain holding JSON)."""

    status = 415


class UnknownFields(BadRequest):
    """Fields the route does not read; the message lists the ones it does."""


def refuse_unknown_fields(fields: dict[str, Any], known: frozenset[str] = REPORT_FIELDS) -> None:
    unknown = sorted(set(fields) - known)
    if unknown:
        raise UnknownFields(
            f"unknown field(s) {', '.join(map(repr, unknown))}: "
            f"send only {', '.join(sorted(known))}"
        )


def _form_schema(with_media: bool) -> dict[str, Any]:
    schema = ReportIn.model_json_schema()
    properties = {name: _as_form_field(prop) for name, prop in schema["properties"].items()}
    if with_media:
        properties["media"] = {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "Photos or video (repeatable)",
        }
    return {**schema, "properties": properties}


def _as_form_field(prop: dict[str, Any]) -> dict[str, Any]:
    """Form fields are text: numbers are sent as their decimal text."""
    if any(option.get("type") == "number" for option in prop.get("anyOf", [])):
        return {
            "type": "string",
            "description": prop.get("description", ""),
            "pattern": r"^\s*-?[0-9.eE+-]+\s*$",
        }
    return prop


REPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": ReportIn.model_json_schema()},
            "multipart/form-data": {"schema": _form_schema(with_media=True)},
        },
    }
}


_OPEN311_FIELDS: dict[str, Any] = {
    "api_key": {"type": "string", "description": "A staff token (gridmap users add)"},
    "service_code": {"type": "string", "description": "From services.json"},
    "lat": {"type": "string", "description": "WGS84 latitude"},
    "long": {"type": "string", "description": "WGS84 longitude"},
    "address_string": {"type": "string", "maxLength": 500},
    "address_id": {"type": "string"},
    "email": {"type": "string"},
    "device_id": {"type": "string"},
    "account_id": {"type": "string"},
    "first_name": {"type": "string"},
    "last_name": {"type": "string"},
    "phone": {"type": "string"},
    "description": {"type": "string", "maxLength": MAX_DESCRIPTION},
    "media_url": {"type": "string", "description": "An http(s) URL of a photo"},
}
# GeoReport v2 clients send fields of their own (jurisdiction_id, attribute[...]); they are ignored.
_OPEN311_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["api_key", "service_code"],
    "properties": _OPEN311_FIELDS,
    "anyOf": [
        {"required": ["lat", "long"]},
        {"required": ["address_string"]},
        {"required": ["address_id"]},
    ],
}
OPEN311_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": _OPEN311_FORM},
            "multipart/form-data": {"schema": _OPEN311_FORM},
        },
    }
}
