"""Fuzz the whole API over its own OpenAPI document (schemathesis 4), on the demo city.

Every operation is called with generated requests, valid and invalid (schemathesis'
positive and negative modes), once anonymously and once with a staff token, and each
answer is checked: no 5xx, it conforms to the schema (status, content type, body,
headers), and every error is problem+json, or GeoReport v2's error list on /open311.
The run is seeded and bounded: EXAMPLES per operation on SpatiaLite, a handful on PostGIS.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine, text

from api.app import create_app
from data.cases import add_user
from data.db import make_engine, session_factory
from data.demo import load_demo_city
from data.migrate import upgrade
from data.settings import Settings
from tests.conftest import POSTGIS_URL, TABLES

PROBLEM = "application/problem+json"
OPEN311_ERROR_TYPES = ("application/json", "application/xml")
SEED = 20261202
# Examples per operation and mode; the whole module stays within about two minutes on 2 cores.
EXAMPLES = int(os.environ.get("GRIDMAP_FUZZ_EXAMPLES", "25"))
POSTGIS_EXAMPLES = int(os.environ.get("GRIDMAP_FUZZ_POSTGIS_EXAMPLES", "5"))
PHASES = [Phase.explicit, Phase.generate]  # no shrinking: a failure is reported as found
# What the API promises: no server error, and answers as documented (status, content type,
# headers, body). Schemathesis' checks of how strictly requests are refused are left out.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def fuzz_settings(data_dir: Path, database_url: str) -> Settings:
    # No rate limit: the fuzzer reports thousands of times a minute from one address.
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        escalate_every_seconds=0,
        report_rate_per_minute=10**9,
        tile_seed_zoom=0,
    )


def schema_for(app: FastAPI) -> Any:
    """The app's own document; the app is started by schemathesis on its first call."""
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.app = app
    return schema


# The apps exist at import, as schemathesis parametrizes over their operations; their
# databases are filled by the fixtures below before the first request starts them.
SPATIALITE_DIR = Path(tempfile.mkdtemp(prefix="gridmap-fuzz-"))
SPATIALITE_URL = f"sqlite:///{SPATIALITE_DIR / 'gridmap.sqlite'}"
spatialite_app = create_app(fuzz_settings(SPATIALITE_DIR, SPATIALITE_URL))
spatialite_schema = schema_for(spatialite_app)
postgis_app = create_app(fuzz_settings(SPATIALITE_DIR / "postgis", POSTGIS_URL))
postgis_schema = schema_for(postgis_app)


@dataclass(frozen=True)
class Staff:
    token: str


def load_city(engine: Engine) -> Staff:
    load_demo_city(engine)
    with session_factory(engine)() as session, session.begin():
        return Staff(add_user(session, "fuzz-admin", "admin"))


@pytest.fixture(scope="module")
def spatialite_city() -> Iterator[Staff]:
    engine = make_engine(SPATIALITE_URL)
    upgrade(engine)
    yield load_city(engine)
    engine.dispose()
    shutil.rmtree(SPATIALITE_DIR, ignore_errors=True)


@pytest.fixture(scope="module")
def postgis_city(postgis_engine: Engine) -> Staff:
    with postgis_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    return load_city(postgis_engine)


def check_answer(case: Any, headers: dict[str, str] | None) -> None:
    """One call: the schema's checks, then the error shape this API promises."""
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        media = content_type.split(";")[0].strip()
        if case.path.startswith("/open311"):
            assert media in OPEN311_ERROR_TYPES + (PROBLEM,), (case.path, content_type)
        else:
            assert media == PROBLEM, (case.path, response.status_code, content_type)


def run_case(case: Any, staff: Staff) -> None:
    check_answer(case, None)
    # The same request as a staff member (it may already carry a generated Authorization).
    check_answer(case, {"Authorization": f"Bearer {staff.token}"})


@spatialite_schema.parametrize()
@seed(SEED)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=PHASES,
    suppress_health_check=list(HealthCheck),
)
def test_fuzz_spatialite(case: Any, spatialite_city: Staff) -> None:
    run_case(case, spatialite_city)


@postgis_schema.parametrize()
@seed(SEED)
@settings(
    max_examples=POSTGIS_EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=PHASES,
    suppress_health_check=list(HealthCheck),
)
def test_fuzz_postgis(case: Any, postgis_city: Staff) -> None:
    run_case(case, postgis_city)
