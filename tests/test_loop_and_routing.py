"""The issue state machine and the routing rules, as tables."""

from __future__ import annotations

import pytest

from geo.loop import ACTIONS, IllegalTransition, RoleNotAllowed, allowed_actions, next_status
from geo.routing import RoutingRule, route


@pytest.mark.parametrize(
    ("status", "action", "role", "expected"),
    [
        ("reported", "accept", "dispatcher", "accepted"),  # 立案
        ("reported", "reject", "dispatcher", "rejected"),  # 不予立案
        ("accepted", "dispatch", "dispatcher", "dispatched"),
        ("dispatched", "start", "handler", "in_progress"),  # the department reports for duty
        ("in_progress", "respond", "handler", "responded"),
        ("responded", "fail_verification", "grid_worker", "in_progress"),  # back to the handler
        ("responded", "verify", "grid_worker", "verified"),
        ("verified", "close", "dispatcher", "closed"),
        ("closed", "reopen", "dispatcher", "accepted"),
        ("reported", "accept", "admin", "accepted"),  # admin may do anything legal
    ],
)
def test_legal_transitions(status: str, action: str, role: str, expected: str) -> None:
    assert next_status(status, action, role) == expected


def test_illegal_transition_names_the_allowed_ones() -> None:
    with pytest.raises(IllegalTransition) as caught:
        next_status("reported", "close", "dispatcher")
    assert caught.value.allowed == ["accept", "reject"]
    assert "allowed actions: accept, reject" in str(caught.value)
    with pytest.raises(IllegalTransition, match=r"none \(the case is finished\)"):
        next_status("rejected", "accept", "dispatcher")


@pytest.mark.parametrize(
    ("status", "action", "role"),
    [
        ("reported", "accept", "handler"),  # handlers do not open cases
        ("dispatched", "start", "dispatcher"),  # only the department reports for duty
        ("responded", "verify", "handler"),  # nobody verifies their own work
        ("verified", "close", "planner"),  # planners only read
    ],
)
def test_roles(status: str, action: str, role: str) -> None:
    with pytest.raises(RoleNotAllowed, match=f"a {role} may not {action}"):
        next_status(status, action, role)


def test_unknown_action_and_per_role_listing() -> None:
    with pytest.raises(ValueError, match="unknown action 'fix'"):
        next_status("reported", "fix", "admin")
    assert allowed_actions("responded", "grid_worker") == ["verify", "fail_verification"]
    assert allowed_actions("responded", "handler") == []
    assert set(ACTIONS) == {"accept", "reject", "dispatch", "start", "respond", "verify", "fail_verification", "close", "reopen"}


CHAIN = {"grid": "450403001001001", "community": "450403001001", "subdistrict": "450403001", "district": "450403"}
RULES = [
    RoutingRule("illegal_parking", "CITY-TRAFFIC"),  # city-wide
    RoutingRule("illegal_parking", "D450403-TRAFFIC", "450403"),  # district override
    RoutingRule("illegal_parking", "S450403001-TRAFFIC", "450403001"),  # sub-district override
    RoutingRule("exposed_rubbish", "CITY-SANITATION"),
    RoutingRule("exposed_rubbish", "G-SPECIAL", "450403001001001"),  # one grid's own rule
    RoutingRule("exposed_rubbish", "OTHER-SUBDISTRICT", "450405001"),  # elsewhere: never matches here
]


@pytest.mark.parametrize(
    ("category", "chain", "department", "level"),
    [
        ("illegal_parking", CHAIN, "S450403001-TRAFFIC", "subdistrict"),  # the sub-district overrides the district and city
        ("illegal_parking", {**CHAIN, "subdistrict": "450403002"}, "D450403-TRAFFIC", "district"),
        ("illegal_parking", {**CHAIN, "subdistrict": "450405001", "district": "450405"}, "CITY-TRAFFIC", "city"),
        ("exposed_rubbish", CHAIN, "G-SPECIAL", "grid"),  # grid beats everything
        ("exposed_rubbish", {**CHAIN, "grid": "450403001001002"}, "CITY-SANITATION", "city"),
        ("exposed_rubbish", {"grid": None, "community": None, "subdistrict": None, "district": None}, "CITY-SANITATION", "city"),
    ],
)
def test_most_specific_rule_wins(category: str, chain: dict, department: str, level: str) -> None:
    found = route(category, chain, RULES)
    assert found is not None and (found.department_code, found.level) == (department, level)


def test_no_rule_is_none_for_the_caller_to_fall_back() -> None:
    assert route("manhole_cover_damaged", CHAIN, RULES) is None
