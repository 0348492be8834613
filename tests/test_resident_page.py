"""The residents' page (/maps/resident) in a real browser, on both backends.

Debian's Chromium is driven by Playwright (never `playwright install`: it downloads a
browser). The app runs under uvicorn on a free 127.0.0.1 port with the demo city loaded,
and the page is held to the nearby API: every count the page shows is compared with what
the API answers for the same query. Every request that is not to 127.0.0.1 is blocked and
recorded, so a CDN link or a tile server slipping into the page fails the test.

Skips when Chromium, Playwright or the built assets are missing, except in CI (CI=true),
where that is a failure.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from api.app import create_app
from data.demo import load_demo_city
from data.models import Facility
from data.settings import Settings
from geo.crs import wgs84_to_gcj02
from tests.browser import (
    LiveServer,
    Watch,
    chromium,
    live_server,
    require_assets,
    screenshot,
    watched_page,
)

# Inside the demo city (Wuzhou), with a few dozen facilities within the page's 2 km.
HOME = {"longitude": 111.2790, "latitude": 23.4660}
PHONE = {"width": 375, "height": 667}
MARKERS = ".leaflet-marker-pane .fac"


@pytest.fixture
def server(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The app with the demo city, served by uvicorn in a thread on a free port."""
    require_assets()
    load_demo_city(engine)
    settings = Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0)
    with live_server(create_app(settings)) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


Opener = Callable[..., tuple[Any, Watch]]


@pytest.fixture
def phone(browser: Any, server: LiveServer) -> Iterator[Opener]:
    """Opens /maps/resident on a phone-sized page; the contexts close even when a test fails.

    The browser's time zone is UTC, so only the page's own Shanghai handling can make the
    times it shows agree with the API's.
    """
    contexts: list[Any] = []

    def open_page(*, geolocation: dict[str, float] | None) -> tuple[Any, Watch]:
        context = browser.new_context(
            viewport=PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            timezone_id="UTC",
            geolocation=geolocation,
            permissions=["geolocation"] if geolocation else [],
        )
        contexts.append(context)
        page, watch = watched_page(context)
        page.goto(f"{server.url}/maps/resident")
        return page, watch

    yield open_page
    for context in contexts:
        context.close()


def _query(page: Any) -> dict[str, list[str]]:
    """The parameters of the page's last answered API query."""
    return parse_qs(urlsplit(page.get_attribute("#resident-panel", "data-query")).query)


def _loads(page: Any) -> int:
    return int(page.get_attribute("#resident-panel", "data-loads") or 0)


def _settle(page: Any, after: int) -> None:
    """Wait until the page has finished a query started after load number ``after``."""
    page.wait_for_function(
        "n => { const p = document.getElementById('resident-panel');"
        " return Number(p.dataset.loads) > n && p.dataset.status !== 'loading'; }",
        arg=after,
        timeout=15_000,
    )
    assert page.get_attribute("#resident-panel", "data-status") == "ready", page.inner_text(
        "#resident-status"
    )


def _api(server: LiveServer, **changes: Any) -> dict[str, Any]:
    """The nearby API for the page's query around HOME, with ``changes``."""
    params: dict[str, Any] = {
        "lon": f"{HOME['longitude']:.7f}",
        "lat": f"{HOME['latitude']:.7f}",
        "crs": "wgs84",
        "radius_m": "2000.0",
        "limit": "200",
        "include_closed": "true",
        "kind": ["car_park", "sports_ground", "toilet"],
    }
    params.update(changes)
    response = httpx.get(f"{server.url}/api/v1/facilities/nearby", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _page_states(page: Any) -> dict[int, tuple[str, bool]]:
    """Each drawn marker's facility id -> (state it is drawn as, drawn as open)."""
    drawn = page.eval_on_selector_all(
        MARKERS,
        """els => els.map(e => [Number(e.dataset.id),
            [...e.classList].find(c => c.startsWith('state-')).slice(6),
            e.classList.contains('is-open')])""",
    )
    return {i: (state, is_open) for i, state, is_open in drawn}


def _api_states(body: dict[str, Any]) -> dict[int, tuple[str, bool]]:
    return {
        f["properties"]["id"]: (f["properties"]["state"], f["properties"]["open"])
        for f in body["features"]
    }


def _opened(states: dict[int, tuple[str, bool]]) -> set[int]:
    return {i for i, (_state, is_open) in states.items() if is_open}


def _make_exit_only(server: LiveServer, engine: Engine, hours: str) -> int:
    """Turn the nearest 24/7 car park into one residents may leave but not enter in ``hours``.

    The demo city has no such car park; the rule is the access:entry:conditional tag that
    geo/opening.py reads.
    """
    body = _api(server, kind=["car_park"])
    target = next(
        f["properties"]["id"]
        for f in body["features"]
        if f["properties"]["opening_hours"] == "24/7"
    )
    table = Facility.__table__
    with engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.id == target)
            .values(tags={"access:entry:conditional": f"no @ ({hours})"})
        )
    return int(target)


def _working_weekday(server: LiveServer) -> dt.date:
    """A Wednesday that is an ordinary working day (no holiday, no make-up day)."""
    calendar = server.app.state.clock.calendar
    day = dt.date(2026, 12, 2)
    while day.weekday() != 2 or not calendar.is_workday(day) or calendar.is_holiday(day):
        day += dt.timedelta(days=1)
    return day


def _clickable_marker(page: Any, ids: list[int]) -> int:
    """The first of ``ids`` whose marker is not covered by another (a finger could tap it)."""
    found = page.evaluate(
        """ids => ids.find(id => {
            const el = document.querySelector(`.fac[data-id="${id}"]`);
            const r = el.getBoundingClientRect();
            const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
            const below = r.y > document.getElementById('resident-panel').offsetHeight;
            return top && el.contains(top) && below;
        })""",
        ids,
    )
    assert found is not None, "every marker is covered by another one or by the panel"
    return int(found)


def test_resident_page_on_a_phone(
    server: LiveServer, engine: Engine, phone: Opener, backend: str
) -> None:
    exit_only = _make_exit_only(server, engine, "Mo-Fr 09:00-11:00")
    page, watch = phone(geolocation=HOME)
    _settle(page, 0)

    # The page searched around the browser's location, for the time the API calls now.
    query = _query(page)
    assert (float(query["lon"][0]), float(query["lat"][0])) == (HOME["longitude"], HOME["latitude"])
    assert query["include_closed"] == ["true"] and query["radius_m"] == ["2000"]
    open_at = page.get_attribute("#resident-panel", "data-open-at")
    now = _api(server, open_at=open_at)
    assert 0 < now["numberReturned"] < 200, "the limit would make the counts below meaningless"
    assert page.locator(MARKERS).count() == now["numberReturned"]
    assert _page_states(page) == _api_states(now)
    assert page.input_value("#resident-time") == open_at[:16]
    assert "your location" in page.inner_text("#resident-status")

    # A popup says what a resident needs: name, state and hours, distance.
    nearest = [f["properties"] for f in now["features"]]
    chosen = _clickable_marker(page, [p["id"] for p in nearest])
    facility = next(p for p in nearest if p["id"] == chosen)
    page.click(f'.fac[data-id="{chosen}"]')
    popup = page.locator(".leaflet-popup-content").inner_text()
    assert facility["name"] in popup
    assert re.search(
        r"^(Open now|Closed now|Exit only now|Opening hours unknown)", popup, re.MULTILINE
    ), popup
    assert "Hours: " in popup
    metres = facility["distance_m"]
    shown = (
        f"{round(metres)} m" if metres < 1000 else f"{metres / 1000:.1f} km".replace(".0 km", " km")
    )
    assert f"Distance: {shown} from your location" in popup
    if facility["kind"] == "car_park":
        assert "Free spaces: " in popup
    page.keyboard.press("Escape")

    # Unchecking toilets drops exactly the toilets the API finds (the page re-queries).
    toilets = sum(f["properties"]["kind"] == "toilet" for f in now["features"])
    assert toilets > 0
    before, loads = page.locator(MARKERS).count(), _loads(page)
    page.click("label.rp-kind:has(input[value=toilet])")
    _settle(page, loads)
    assert not page.is_checked("input[value=toilet]")
    assert page.locator(MARKERS).count() == before - toilets
    assert page.locator(f"{MARKERS}.kind-toilet").count() == 0
    loads = _loads(page)
    page.click("label.rp-kind:has(input[value=toilet])")
    _settle(page, loads)

    # A weekday at 10:00 and at 20:00: the page's open set follows the API's, without a reload.
    page.evaluate("window.__sameDocument = true")
    day = _working_weekday(server)
    opened: dict[str, set[int]] = {}
    for hour in ("20:00", "10:00"):  # ends at 10:00, when many shared car parks are closed
        at = f"{day.isoformat()}T{hour}"
        loads = _loads(page)
        page.fill("#resident-time", at)
        _settle(page, loads)
        api = _api(server, open_at=at)
        assert _page_states(page) == _api_states(api), hour
        assert _query(page)["open_at"] == [at]
        opened[hour] = _opened(_api_states(api))
    assert opened["10:00"] != opened["20:00"], "the demo city should change between 10:00 and 20:00"
    # 10:00 is inside the exit-only car park's no-entry hours: drawn apart, with its badge.
    assert _page_states(page)[exit_only] == ("exit_only", False)
    assert page.inner_text(f'.fac[data-id="{exit_only}"] .badge') == "exit"
    assert page.evaluate("window.__sameDocument") is True

    # The screenshot, with a popup open as a resident would see it.
    morning = _api(server, open_at=f"{day.isoformat()}T10:00")
    # One that opens later the same day: the popup shows the API's Shanghai time, although
    # the browser runs in UTC.
    later_today = {
        p["id"]: p["opens_next_at"]
        for p in (f["properties"] for f in morning["features"])
        if p["state"] == "closed" and (p["opens_next_at"] or "").startswith(day.isoformat())
    }
    chosen = _clickable_marker(page, list(later_today))
    page.click(f'.fac[data-id="{chosen}"]')
    assert later_today[chosen].endswith("+08:00")
    opens = later_today[chosen][11:16]
    assert f"Closed · opens {opens}" in page.locator(".leaflet-popup-content").inner_text()
    # Leaflet fades popups in; a screenshot mid-fade shows a ghost.
    page.wait_for_function(
        "getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'"
    )
    screenshot(page, f"resident-{backend}")

    # "Now" goes back to the server's current time; "Locate me" asks the browser again.
    loads = _loads(page)
    page.click("#resident-now")
    _settle(page, loads)
    assert "open_at" not in _query(page)
    assert (
        page.input_value("#resident-time")
        == page.get_attribute("#resident-panel", "data-open-at")[:16]
    )
    loads = _loads(page)
    page.click("#resident-locate")
    _settle(page, loads)
    assert _query(page)["lon"] == [f"{HOME['longitude']:.7f}"]

    # Phone-sized: nothing is wider than the screen and every control is a big enough target.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for selector in ("#resident-locate", "#resident-now", "#resident-time", "label.rp-kind"):
        for box in (
            page.locator(selector).nth(i).bounding_box()
            for i in range(page.locator(selector).count())
        ):
            assert (
                box is not None
                and box["height"] >= 44
                and box["x"] + box["width"] <= PHONE["width"]
            ), selector
    watch.assert_clean()


def test_without_location_the_page_uses_the_city_centre_and_taps(
    server: LiveServer, phone: Opener
) -> None:
    page, watch = phone(geolocation=None)
    _settle(page, 0)
    assert "the city centre" in page.inner_text("#resident-status")
    first = _query(page)

    # A tap on the map (away from markers and the panel) searches around that point.
    loads = _loads(page)
    box = page.locator(".folium-map").bounding_box()
    page.mouse.click(box["x"] + 20, box["y"] + box["height"] - 60)
    _settle(page, loads)
    tapped = _query(page)
    assert tapped["lon"] != first["lon"] and "the chosen point" in page.inner_text(
        "#resident-status"
    )
    assert (
        page.locator(MARKERS).count()
        == _api(
            server,
            lon=tapped["lon"][0],
            lat=tapped["lat"][0],
            open_at=page.get_attribute("#resident-panel", "data-open-at"),
        )["numberReturned"]
    )

    # A tap that closes a popup only closes it: the search point stays where it was.
    ids = [int(i) for i in page.eval_on_selector_all(MARKERS, "els => els.map(e => e.dataset.id)")]
    page.click(f'.fac[data-id="{_clickable_marker(page, ids)}"]')
    page.wait_for_selector(".leaflet-popup-content")
    loads = _loads(page)
    page.mouse.click(box["x"] + box["width"] - 20, box["y"] + box["height"] - 120)
    page.wait_for_selector(".leaflet-popup", state="detached")
    page.wait_for_timeout(300)
    assert _loads(page) == loads and _query(page) == tapped

    # "Locate me" still cannot locate, so it goes back to the city centre.
    page.click("#resident-locate")
    _settle(page, loads)
    assert _query(page) == first
    watch.assert_clean()


def test_on_gcj02_tiles_markers_are_shifted(server: LiveServer, phone: Opener) -> None:
    # The route reads the settings per request, so the running app can switch base maps.
    settings = server.app.state.settings
    server.app.state.settings = settings.model_copy(update={"tile_crs": "gcj02"})
    page, watch = phone(geolocation=HOME)
    _settle(page, 0)

    # The page's port of the formula agrees with geo.crs, inside and outside China.
    rng = np.random.default_rng(7)
    points = np.column_stack((rng.uniform(70, 140, 200), rng.uniform(-5, 60, 200)))
    points = np.vstack(
        (points, [[72.004, 0.8293], [137.8347, 55.8271], [111.279, 23.466], [2.35, 48.85]])
    )
    shifted = np.array(
        page.evaluate("pts => pts.map(([x, y]) => gridmapResident.toGcj02(x, y))", points.tolist())
    )
    expected = np.column_stack(wgs84_to_gcj02(points[:, 0], points[:, 1]))
    assert np.abs(shifted - expected).max() < 1e-9

    # Every marker sits at its facility's GCJ-02 position.
    body = _api(server, open_at=page.get_attribute("#resident-panel", "data-open-at"))
    drawn = {
        int(i): (float(lat), float(lng))
        for i, lat, lng in page.eval_on_selector_all(
            MARKERS, "els => els.map(e => [e.dataset.id, e.dataset.lat, e.dataset.lng])"
        )
    }
    assert len(drawn) == body["numberReturned"] > 0
    for f in body["features"]:
        gx, gy = wgs84_to_gcj02(f["properties"]["lon"], f["properties"]["lat"])
        assert drawn[f["properties"]["id"]] == pytest.approx((float(gy), float(gx)), abs=1e-9)
    watch.assert_clean()


def test_page_html_links_only_local_assets(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """No browser needed: an empty database still gives a working, phone-ready page."""
    require_assets()
    with TestClient(
        create_app(Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0))
    ) as client:
        page = client.get("/maps/resident")
    assert page.status_code == 200
    assert 'name="viewport"' in page.text and 'type="datetime-local"' in page.text
    # Its assets are checked with the other pages' in tests/test_app.py.
    assert '"api": "/api/v1/facilities/nearby"' in page.text and '"centre": null' in page.text
