"""The closed loop of an issue as a state machine (DOMAIN.md: 吹哨报到, GB/T 30428 steps).

    reported --accept--> accepted --dispatch--> dispatched --start--> in_progress
    reported --reject--> rejected                                       |
    in_progress --respond--> responded --verify--> verified --close--> closed
    responded --fail_verification--> in_progress      (核查不通过: back to the handler)
    closed --reopen--> accepted                        (to be dispatched again)
"""

from __future__ import annotations

from dataclasses import dataclass

from geo.issues import STATUSES

ROLES: tuple[str, ...] = ("grid_worker", "dispatcher", "handler", "planner", "admin")


@dataclass(frozen=True)
class Transition:
    action: str
    source: str
    target: str
    roles: frozenset[str]


def _t(action: str, source: str, target: str, *roles: str) -> Transition:
    return Transition(action, source, target, frozenset(roles) | {"admin"})


TRANSITIONS: tuple[Transition, ...] = (
    _t("accept", "reported", "accepted", "dispatcher"),  # 立案
    _t("reject", "reported", "rejected", "dispatcher"),  # 不予立案
    _t("dispatch", "accepted", "dispatched", "dispatcher"),  # 派遣
    _t("start", "dispatched", "in_progress", "handler"),  # 报到, 处置
    _t("respond", "in_progress", "responded", "handler"),  # 处置反馈
    _t("verify", "responded", "verified", "grid_worker", "dispatcher"),  # 核查
    _t("fail_verification", "responded", "in_progress", "grid_worker", "dispatcher"),
    _t("close", "verified", "closed", "dispatcher"),  # 结案
    _t("reopen", "closed", "accepted", "dispatcher"),
)
ACTIONS: tuple[str, ...] = tuple(dict.fromkeys(t.action for t in TRANSITIONS))
assert {t.source for t in TRANSITIONS} | {t.target for t in TRANSITIONS} <= set(STATUSES)


class IllegalTransition(ValueError):
    """The action is not possible from the issue's status; ``allowed`` lists what is."""

    def __init__(self, status: str, action: str, allowed: list[str]) -> None:
        self.status, self.action, self.allowed = status, action, allowed
        options = ", ".join(allowed) if allowed else "none (the case is finished)"
        super().__init__(f"cannot {action} an issue that is {status}; allowed actions: {options}")


class RoleNotAllowed(PermissionError):
    """The action exists from this status, but not for this role."""

    def __init__(self, action: str, role: str, roles: frozenset[str]) -> None:
        self.action, self.role = action, role
        super().__init__(f"a {role} may not {action}; roles that may: {', '.join(sorted(roles))}")


def allowed_actions(status: str, role: str | None = None) -> list[str]:
    """Actions possible from ``status`` (for ``role``, if given), in loop order."""
    return [t.action for t in TRANSITIONS if t.source == status and (role is None or role in t.roles)]


def next_status(status: str, action: str, role: str) -> str:
    """The status after ``action``; IllegalTransition or RoleNotAllowed if it cannot happen."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    for transition in TRANSITIONS:
        if transition.source == status and transition.action == action:
            if role not in transition.roles:
                raise RoleNotAllowed(action, role, transition.roles)
            return transition.target
    raise IllegalTransition(status, action, allowed_actions(status))
