"""``gridmap reassign``: move issues to the areas of a redrawn layer.

Each changed issue gets its new area codes and a ``reassigned`` event whose data keeps
the old assignment, so its history still shows where it was first placed. Statistics can
then be recomputed on the new boundaries (DOMAIN.md, "Boundaries change").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from data.assignment import load_assigner
from data.models import Issue, IssueEvent, utcnow
from geo.assign import records
from geo.issues import OPEN_STATUSES

AREA_FIELDS = ("grid_code", "community_code", "subdistrict_code", "district_code")


def reassign_issues(
    session: Session, on: dt.date, snap_metres: float, open_only: bool = False,
    actor: str = "system:reassign", progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Reassign issues to the layers in force on ``on``; per community: issues and how many changed grid."""
    say = progress or (lambda _m: None)
    query = select(Issue.id, func.ST_X(Issue.geom), func.ST_Y(Issue.geom), *(getattr(Issue, f) for f in AREA_FIELDS))
    query = query.where(Issue.geom.is_not(None))  # address-only reports have no place to move
    if open_only:
        query = query.where(Issue.status.in_(sorted(OPEN_STATUSES)))
    issues = pd.DataFrame(session.execute(query).all(), columns=["id", "lon", "lat", *AREA_FIELDS])
    if issues.empty:
        return pd.DataFrame(columns=["community_code", "issues", "changed_grid"])
    say(f"assigning {len(issues):,} issues to the layers in force on {on}")
    assigner = load_assigner(session, on, snap_metres)
    new = pd.DataFrame(records(assigner.assign(issues["lon"].to_numpy(), issues["lat"].to_numpy())))
    old = issues[list(AREA_FIELDS)].astype(object).where(issues[list(AREA_FIELDS)].notna(), None)
    changed = np.zeros(len(issues), dtype=bool)
    for field in AREA_FIELDS:
        changed |= (old[field].to_numpy() != new[field].to_numpy())
    say(f"recording {int(changed.sum()):,} changed assignments")
    _record(session, issues[changed], old[changed], new[changed], assigner.layer_version, actor)
    summary = pd.DataFrame({
        "community_code": new["community_code"].fillna("(none)"),
        "issues": 1,
        "changed_grid": (old["grid_code"].to_numpy() != new["grid_code"].to_numpy()).astype(int),
    })
    return summary.groupby("community_code", as_index=False).sum().sort_values("community_code", ignore_index=True)


def _record(session: Session, issues: pd.DataFrame, old: pd.DataFrame, new: pd.DataFrame, version: str, actor: str) -> None:
    if issues.empty:
        return
    now = utcnow()
    ids = [int(i) for i in issues["id"]]
    last = dict(session.execute(
        select(IssueEvent.issue_id, func.max(IssueEvent.seq)).where(IssueEvent.issue_id.in_(ids)).group_by(IssueEvent.issue_id)
    ).all())
    updates, events = [], []
    for issue_id, before, after in zip(ids, old.to_dict("records"), new[list(AREA_FIELDS)].to_dict("records"), strict=True):
        updates.append({"issue_id": issue_id, **after, "updated_at": now})
        events.append({
            "issue_id": issue_id, "seq": last.get(issue_id, 0) + 1, "at": now, "action": "reassigned",
            "from_status": None, "to_status": None, "actor": actor,
            "note": f"areas redrawn: grid {before['grid_code']} -> {after['grid_code']} (layer {version})",
            "data": {"from": before, "to": after, "layer_version": version},
        })
    table = Issue.__table__
    session.execute(
        update(table).where(table.c.id == bindparam("issue_id")).values(
            **{f: bindparam(f) for f in AREA_FIELDS}, updated_at=bindparam("updated_at")
        ),
        updates,
    )
    session.execute(IssueEvent.__table__.insert(), events)
