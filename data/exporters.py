"""Writing results out as files people can open in QGIS: GeoJSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import shapely

from geo.coverage import Fault


def faults_feature_collection(faults: Sequence[Fault]) -> dict:
    """Coverage faults as an RFC 7946 FeatureCollection."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "kind": f.kind,
                    "community_code": f.community_code,
                    "grid_codes": list(f.grid_codes),
                    "area_m2": round(f.area_m2, 1),
                    "description": f.describe(),
                },
                "geometry": json.loads(shapely.to_geojson(f.geom)),
            }
            for f in faults
        ],
    }


def write_faults(faults: Sequence[Fault], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(faults_feature_collection(faults), ensure_ascii=False), encoding="utf-8")
