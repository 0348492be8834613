"""Intake under a hostile or busy world, on both backends, over the demo city.

- A report being taken in (SQL, maybe rebuilding the assigner) never stalls the event
  loop: ``/health`` answers while the report is held inside the use case.
- A report's photos are served to staff at once and to the public only once the report
  is accepted.
- Uploaded file names are metadata only: path parts, NUL, line breaks and control
  characters are stripped and the length capped; files never land outside the media folder.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.app import create_app
from api.media import MAX_FILENAME, safe_filename
from data import cases
from data.cases import add_user
from data.db import session_factory
from data.demo import load_demo_city
from data.models import Department, Issue
from data.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@dataclass
class City:
    client: TestClient
    engine: Engine
    data_dir: Path
    tokens: dict[str, str]
    lon: float
    lat: float

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def report(self) -> dict[str, str]:
        return {
            "lon": repr(self.lon),
            "lat": repr(self.lat),
            "category": "exposed_rubbish",
            "description": "垃圾",
        }


@pytest.fixture
def city(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[City]:
    load_demo_city(engine)
    with session_factory(engine)() as session, session.begin():
        lon, lat, subdistrict = session.execute(
            select(func.ST_X(Issue.geom), func.ST_Y(Issue.geom), Issue.subdistrict_code)
            .where(Issue.grid_code.is_not(None))
            .order_by(Issue.id)
            .limit(1)
        ).one()
        elsewhere = session.scalar(
            select(Department.code)
            .where(Department.kind == "sanitation", Department.area_code != subdistrict)
            .limit(1)
        )
        tokens = {
            "dispatcher": add_user(session, "dispatcher1", "dispatcher"),
            "other_handler": add_user(session, "handler9", "handler", elsewhere),
            "relay": add_user(session, "relay", "dispatcher"),
        }
    data_dir = tmp_path / "data"
    settings = Settings(
        database_url=database_url,
        data_dir=data_dir,
        escalate_every_seconds=0,
        report_rate_per_minute=1000,
    )
    with TestClient(create_app(settings)) as client:
        yield City(client, engine, data_dir, tokens, float(lon), float(lat))


# --- the event loop stays free -----------------------------------------------------------------


def open311_fields(city: City) -> dict[str, str]:
    return {
        "api_key": city.tokens["relay"],
        "service_code": "exposed_rubbish",
        "lat": repr(city.lat),
        "long": repr(city.lon),
        "description": "垃圾",
    }


@pytest.mark.parametrize("door", ["api", "open311"])
def test_health_answers_while_a_report_is_held(
    city: City, door: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report waits inside the use case until /health has answered.

    If intake ran on the event loop, /health could not answer until the wait gave up, and
    the report would record that it was not released by this test.
    """
    entered, release = threading.Event(), threading.Event()
    released: list[bool] = []
    route_issue = cases.route_issue

    def held(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        released.append(release.wait(timeout=30))  # only a safety net: the test releases it
        return route_issue(*args, **kwargs)

    monkeypatch.setattr(cases, "route_issue", held)
    answers: dict[str, Any] = {}

    def send() -> None:
        if door == "api":
            answers["report"] = city.client.post("/api/v1/issues", json=city.report())
        else:
            answers["report"] = city.client.post(
                "/open311/v2/requests.json", data=open311_fields(city)
            )

    sender = threading.Thread(target=send)
    sender.start()
    assert entered.wait(timeout=60), "the report never reached the use case"
    health = city.client.get("/health")  # while the report is held
    release.set()
    sender.join(timeout=60)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert released == [True], "intake blocked the event loop: /health waited for the report"
    assert answers["report"].status_code in (200, 201), answers["report"].text


# --- photos before acceptance ------------------------------------------------------------------


def test_photos_are_staff_only_until_the_report_is_accepted(city: City) -> None:
    client = city.client
    created = client.post(
        "/api/v1/issues",
        data=city.report(),
        files=[("media", ("door.png", io.BytesIO(PNG), "image/png"))],
    )
    assert created.status_code == 201, created.text
    issue_id = created.json()["id"]
    staff_view = client.get(f"/api/v1/issues/{issue_id}", headers=city.auth("dispatcher")).json()[
        "properties"
    ]
    url = staff_view["media"][0]["url"]
    assert (
        "media" not in client.get(f"/api/v1/issues/{issue_id}").json()["properties"]
    )  # the link is not shown

    hidden = client.get(url)  # the public, even with the link: as if it did not exist
    assert (
        hidden.status_code == 404 and hidden.headers["content-type"] == "application/problem+json"
    )
    assert (
        client.get(url, headers=city.auth("other_handler")).status_code == 404
    )  # not their department's case
    seen = client.get(url, headers=city.auth("dispatcher"))
    assert (
        seen.status_code == 200
        and seen.content == PNG
        and seen.headers["content-type"] == "image/png"
    )
    assert "no-store" in seen.headers["cache-control"]

    accepted = client.post(
        f"/api/v1/issues/{issue_id}/transitions",
        json={"action": "accept"},
        headers={**city.auth("dispatcher"), "If-Match": '"1"'},
    )
    assert accepted.status_code == 200, accepted.text
    public = client.get(url)
    assert public.status_code == 200 and public.content == PNG
    assert client.get(f"/api/v1/issues/{issue_id}").json()["properties"]["media"][0]["url"] == url
    # Only the stored files are served: not another name, not a path out of the folder.
    ref = url.split("/")[2]
    for other in (
        f"/media/{ref}/nothing.png",
        f"/media/{ref}/..%2F..%2Fgridmap.sqlite",
        "/media/../gridmap.sqlite",
    ):
        assert client.get(other, headers=city.auth("dispatcher")).status_code == 404, other


# --- uploaded file names -----------------------------------------------------------------------


def multipart(fields: dict[str, str], filename: bytes, content: bytes) -> tuple[bytes, str]:
    """A multipart body written by hand, so that the file name arrives raw (NUL and LF included)."""
    parts = [
        f'--B\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        b'--B\r\nContent-Disposition: form-data; name="media"; filename="'
        + filename
        + b'"\r\nContent-Type: image/png\r\n\r\n'
        + content
        + b"\r\n--B--\r\n"
    )
    return b"".join(parts), "multipart/form-data; boundary=B"


NAMES = [  # as sent -> what is kept
    (b"../../x.jpg", "x.jpg"),  # a traversal: only the last part
    (b"..\\..\\windows\\x.jpg", "x.jpg"),  # the same, Windows-style
    (b"a\x00b\nc.png", "abc.png"),  # NUL and a line break
    (
        "照片\u202egnp.exe".encode(),
        "照片gnp.exe",
    ),  # a right-to-left override that would disguise the type
    (
        ("长" * 300 + ".png").encode(),
        "长" * (MAX_FILENAME - 5) + "….png",
    ),  # 300 characters: capped, type kept
    (b"..", "upload"),  # nothing left: a neutral name
]


@pytest.mark.parametrize(("sent", "kept"), NAMES)
def test_uploaded_names_are_metadata_only(city: City, sent: bytes, kept: str) -> None:
    body, content_type = multipart(city.report(), sent, PNG)
    created = city.client.post(
        "/api/v1/issues", content=body, headers={"content-type": content_type}
    )
    assert created.status_code == 201, created.text
    issue_id = created.json()["id"]
    # Every file is inside the media folder, under the case's reference, with a random name.
    files = [
        p
        for p in city.data_dir.parent.rglob("*")
        if p.is_file() and p.suffix in (".png", ".jpg", ".exe")
    ]
    media = (city.data_dir / "media").resolve()
    assert files and all(p.resolve().is_relative_to(media) for p in files), files
    assert not any(p.name in ("x.jpg", "abc.png") for p in files)
    with session_factory(city.engine)() as session:
        record = session.get(Issue, issue_id).media[0]  # type: ignore[union-attr]
    assert record["filename"] == kept and len(record["filename"]) <= MAX_FILENAME
    # The staff view is valid JSON with the cleaned name; the public never sees names.
    staff = city.client.get(f"/api/v1/issues/{issue_id}", headers=city.auth("dispatcher"))
    assert json.loads(staff.text)["properties"]["media"][0]["name"] == kept
    served = city.client.get(
        staff.json()["properties"]["media"][0]["url"], headers=city.auth("dispatcher")
    )
    assert served.status_code == 200 and served.content == PNG


@pytest.mark.parametrize(
    ("sent", "kept"),
    [(s.decode("utf-8"), k) for s, k in NAMES]
    + [
        (None, "upload"),
        ("a\rb\u2028c.jpg", "ab c.jpg"),
        ("  ", "upload"),
    ],
)
def test_safe_filename(sent: str | None, kept: str) -> None:
    assert safe_filename(sent) == kept
