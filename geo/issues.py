"""Issue statuses of the closed loop (DOMAIN.md: 吹哨报到 and the digital city-management steps)."""

from __future__ import annotations

# In loop order. The transitions between them come with the closed-loop work.
STATUSES: tuple[str, ...] = (
    "reported",  # 信息收集
    "accepted",  # 立案
    "rejected",  # 不予立案
    "dispatched",  # 派遣
    "in_progress",  # 处置
    "responded",  # 处置反馈
    "verified",  # 核查
    "closed",  # 结案
)
OPEN_STATUSES: frozenset[str] = frozenset(STATUSES) - {"rejected", "closed"}
