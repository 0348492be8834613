"""Who is calling: bearer tokens for staff, and a per-address limit on reports."""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from api.deps import SessionDep
from data.cases import CaseError, Staff, staff_for_token

# RFC 6750 §2.1: "Bearer" (any case), one or more spaces, then a token68.
BEARER = re.compile(r"bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
HOW_TO = "send Authorization: Bearer <token> with a token from an admin (gridmap users add)"


class Unauthorized(CaseError):
    status = 401


class StaffBearer(HTTPBearer):
    """Declares the bearer scheme in OpenAPI; any Authorization header that is not one is a 401.

    FastAPI's own HTTPBearer treats an empty or non-Bearer header as no header at all, so a
    client with a broken header would silently be served as the public.
    """

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        header = request.headers.get("authorization")
        if header is None:
            return None
        found = BEARER.fullmatch(header.strip())
        if found is None:
            raise Unauthorized(f"the Authorization header is not a bearer token: {HOW_TO}")
        return found.group(1)


_bearer = StaffBearer(
    auto_error=False,
    scheme_name="StaffToken",
    description="A staff token from `gridmap users add`; optional where the public may call",
)


def optional_staff(
    session: SessionDep, token: Annotated[str | None, Depends(_bearer)]
) -> Staff | None:
    """The staff member behind the bearer token, or None for the public. A bad token is a 401."""
    if token is None:
        return None
    staff = staff_for_token(session, token)
    if staff is None:
        raise Unauthorized(f"the bearer token is not valid: {HOW_TO}")
    return staff


CurrentStaff = Annotated[Staff | None, Depends(optional_staff)]


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: Request, trusted_proxies: list[Network]) -> str:
    """The client's address: the peer, or, behind trusted proxies, the first untrusted hop
    of X-Forwarded-For read from the right. Anyone else may write that header, so it is
    ignored unless the peer is one of ours."""
    peer = request.client.host if request.client else "unknown"
    hops = [
        h.strip()
        for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",")
        if h.strip()
    ]
    address = peer
    while hops and _is_trusted(address, trusted_proxies):
        address = hops.pop()
    return address


def _is_trusted(address: str, trusted_proxies: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted_proxies)


class RateLimiter:
    """At most ``per_minute`` events per key in a 60 s window, in memory for one process.

    The `limits` library's sliding-window counter: two counters per key, each dropped by the
    storage when it expires, so memory stays bounded by the clients of the last two minutes.
    (Its moving window keeps an empty list per key forever in memory storage.)
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.item = RateLimitItemPerMinute(per_minute)
        self.storage = MemoryStorage()
        self._limiter = SlidingWindowCounterRateLimiter(self.storage)

    def allow(self, key: str) -> tuple[bool, float]:
        """Whether one more event is allowed for ``key`` now, and if not, how long to wait (s)."""
        if self._limiter.hit(self.item, key):
            return True, 0.0
        stats = self._limiter.get_window_stats(self.item, key)
        return False, max(stats.reset_time - time.time(), 0.0)


class TooManyReports(CaseError):
    status = 429


def rate_limit_reports(request: Request) -> None:
    limiter: RateLimiter = request.app.state.report_limiter
    key = client_address(request, request.app.state.settings.trusted_proxies)
    allowed, wait = limiter.allow(key)
    if not allowed:
        raise TooManyReports(
            f"too many reports from {key}: at most {limiter.per_minute} a minute; try again in {wait:.0f} s"
        )
