"""Routing an issue to a department by category and place (DOMAIN.md, street-chief schemes).

A rule maps a category to a department, optionally limited to one area. The most
specific matching rule wins: a grid rule over a community rule over a sub-district rule
over a district rule over a city-wide rule (no area). An issue no rule matches goes to
its sub-district's command centre, never nowhere; that fallback needs the departments,
so the data layer applies it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# From most to least specific; "city" is a rule with no area.
SPECIFICITY: tuple[str, ...] = ("grid", "community", "subdistrict", "district", "city")


@dataclass(frozen=True)
class RoutingRule:
    category: str
    department_code: str
    area_code: str | None = None  # None: city-wide


@dataclass(frozen=True)
class Route:
    department_code: str
    level: str  # which rule matched: grid ... city
    rule: RoutingRule


def route(category: str, chain: Mapping[str, str | None], rules: Iterable[RoutingRule]) -> Route | None:
    """The most specific rule for the category at the place; None if no rule matches.

    ``chain`` maps level to the issue's area code at that level (grid, community,
    subdistrict, district); missing levels may be None.
    """
    by_area: dict[str | None, RoutingRule] = {}
    for rule in rules:
        if rule.category == category:
            by_area.setdefault(rule.area_code, rule)  # first rule per area wins: stable
    for level in SPECIFICITY:
        code = None if level == "city" else chain.get(level)
        if (level == "city" or code) and code in by_area:
            return Route(by_area[code].department_code, level, by_area[code])
    return None
