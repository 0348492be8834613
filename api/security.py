"""Who is calling: bearer tokens for staff, and a per-address limit on reports."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import SessionDep
from data.cases import CaseError, Staff, staff_for_token

_bearer = HTTPBearer(auto_error=False)


class Unauthorized(CaseError):
    status = 401


def optional_staff(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Staff | None:
    """The staff member behind the bearer token, or None for the public. A bad token is a 401."""
    if credentials is None:
        return None
    staff = staff_for_token(session, credentials.credentials)
    if staff is None:
        raise Unauthorized("the bearer token is not valid: ask an admin for one (gridmap users add)")
    return staff


CurrentStaff = Annotated[Staff | None, Depends(optional_staff)]


class RateLimiter:
    """At most ``per_minute`` events per key in any 60 s window (kept in memory)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, key: str) -> tuple[bool, float]:
        now = time.monotonic()
        with self._lock:
            window = self._seen[key]
            while window and now - window[0] > 60:
                window.popleft()
            if len(window) >= self.per_minute:
                return False, 60 - (now - window[0])
            window.append(now)
            return True, 0.0


class TooManyReports(CaseError):
    status = 429


def rate_limit_reports(request: Request) -> None:
    limiter: RateLimiter = request.app.state.report_limiter
    key = request.client.host if request.client else "unknown"
    allowed, wait = limiter.allow(key)
    if not allowed:
        raise TooManyReports(f"too many reports from {key}: at most {limiter.per_minute} a minute; try again in {wait:.0f} s")
