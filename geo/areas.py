"""The area hierarchy and its codes (DOMAIN.md, "The area hierarchy")."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Top to bottom. Residential compounds sit inside communities but are not a level of
# the administrative tiling, so they have their own table.
LEVELS: tuple[str, ...] = ("district", "subdistrict", "community", "grid")

# Names people type on the command line, mapped to levels.
LAYER_ALIASES: dict[str, str] = {
    "districts": "district",
    "subdistricts": "subdistrict",
    "communities": "community",
    "grids": "grid",
}


def parent_level(level: str) -> str | None:
    """The level directly above, or None for districts."""
    index = LEVELS.index(level)
    return LEVELS[index - 1] if index else None


def child_level(level: str) -> str | None:
    """The level directly below, or None for grids."""
    index = LEVELS.index(level)
    return LEVELS[index + 1] if index + 1 < len(LEVELS) else None


@dataclass(frozen=True)
class CodeScheme:
    """How codes look at each level, and whether a child code must extend its parent's."""

    name: str
    patterns: dict[str, re.Pattern[str]]
    hierarchical: bool

    def problem(self, level: str, code: str, parent_code: str | None) -> str | None:
        """Why ``code`` is malformed at ``level`` under this scheme, or None if it is fine."""
        # Layers outside the hierarchy (compounds, facilities, ...) get the free format.
        pattern = self.patterns.get(level, _FREE)
        if not pattern.fullmatch(code):
            return f"malformed {level} code {code!r}: expected {_describe(pattern)}"
        if self.hierarchical and parent_code and not code.startswith(parent_code):
            return f"{level} code {code!r} does not start with its parent code {parent_code!r}"
        return None


def _describe(pattern: re.Pattern[str]) -> str:
    digits = re.fullmatch(r"\\d\{(\d+)\}", pattern.pattern)
    return f"{digits.group(1)} digits" if digits else f"a match for {pattern.pattern}"


# Any printable code without spaces, up to 32 characters: real files use all sorts.
_FREE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.:/-]{0,31}")

CODE_SCHEMES: dict[str, CodeScheme] = {
    "free": CodeScheme("free", {level: _FREE for level in LEVELS}, hierarchical=False),
    # Beijing DB11/T 2157-2023 style: GB/T 2260 district (6) + sub-district (3) +
    # community (3) + grid sequence (3).
    "cn15": CodeScheme(
        "cn15",
        {
            "district": re.compile(r"\d{6}"),
            "subdistrict": re.compile(r"\d{9}"),
            "community": re.compile(r"\d{12}"),
            "grid": re.compile(r"\d{15}"),
        },
        hierarchical=True,
    ),
}


def code_scheme(name: str) -> CodeScheme:
    """The named scheme; a ValueError lists the known ones."""
    try:
        return CODE_SCHEMES[name]
    except KeyError:
        raise ValueError(
            f"unknown code scheme {name!r}: use one of {', '.join(CODE_SCHEMES)}"
        ) from None
