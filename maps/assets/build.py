"""Copy the browser assets that folium maps load into maps/static/vendor/.

Run after `npm ci` in this folder (see `make assets`). Standard library only.

Why: our maps must work with no internet, so every JS/CSS/font/image is served by
our own app. Files keep their layout inside each npm package, because the CSS
refers to fonts and images by relative paths (e.g. Font Awesome's
`../webfonts/...`, Leaflet's `images/...`).

Output: maps/static/vendor/<npm package>/<same path as in the package>, plus
vendor/folium/ for two files folium itself provides. The folder is rebuilt from
scratch on every run (so it is idempotent and never keeps stale files) and
swapped in at the end; `build-info.json` is written last and marks a complete build.

Run it with the project's Python: the HeatMap script is copied from the installed
folium package (see FOLIUM_FILES).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
VENDOR = HERE.parent / "static" / "vendor"
BUILD_INFO = "build-info.json"

# npm package -> files or folders to copy, relative to the package root.
# Keep in step with ASSET_MAP in maps/local_assets.py (the test checks it).
NPM_FILES: dict[str, list[str]] = {
    "leaflet": ["dist/leaflet.js", "dist/leaflet.css", "dist/images"],
    "jquery": ["dist/jquery.min.js"],
    "bootstrap": ["dist/js/bootstrap.bundle.min.js", "dist/css/bootstrap.min.css"],
    "@fortawesome/fontawesome-free": ["css/all.min.css", "webfonts", "LICENSE.txt"],
    "drmonty-leaflet-awesome-markers": [
        "js/leaflet.awesome-markers.js",
        "css/leaflet.awesome-markers.css",
        "css/images",
    ],
    # Bootstrap 3 only for its glyphicons font (folium's default marker icons);
    # the CSS is cut out of bootstrap.css below so Bootstrap 3 styles never load.
    "bootstrap3": ["dist/fonts"],
    "leaflet.markercluster": [
        "dist/leaflet.markercluster.js",
        "dist/MarkerCluster.css",
        "dist/MarkerCluster.Default.css",
    ],
    "leaflet-search": ["dist/leaflet-search.min.js", "dist/leaflet-search.min.css", "images"],
    "leaflet.vectorgrid": ["dist/Leaflet.VectorGrid.bundled.js"],
    # d3 v3: branca's colour-scale legend (Choropleth, colormaps) loads it.
    "d3": ["d3.min.js"],
}

# Files that come with the folium Python package, not with npm. folium links its
# own patched copy of Leaflet.heat (a fix for point weights that the npm
# `leaflet.heat@0.2.0` lacks), so we serve that same file.
FOLIUM_FILES: dict[str, str] = {"templates/leaflet_heat.min.js": "leaflet_heat.min.js"}

GLYPHICONS_SOURCE = "bootstrap3/dist/css/bootstrap.css"
GLYPHICONS_TARGET = "bootstrap3/dist/css/bootstrap-glyphicons.css"
ROTATE_CSS_TARGET = "folium/leaflet.awesome.rotate.min.css"

SOURCE_MAP_RE = re.compile(r"[#@] sourceMappingURL=(\S+?)\s*(?:\*/)?\s*$")


def fail(message: str) -> None:
    print(f"build.py: error: {message}", file=sys.stderr)
    sys.exit(1)


def copy_entry(src: Path, dst: Path) -> list[Path]:
    """Copy a file (with its source map, if shipped) or a whole folder."""
    if not src.exists():
        fail(f"{src} is missing: run `npm ci` in {HERE}")
    if src.is_dir():
        shutil.copytree(src, dst)
        return [p for p in dst.rglob("*") if p.is_file()]
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    copied = [dst]
    # Copy the source map next to it so browser dev tools work offline too.
    if src.suffix in {".js", ".css"}:
        tail = src.read_bytes()[-300:].decode("utf-8", "replace").strip()
        match = SOURCE_MAP_RE.search(tail)
        if match and (src.parent / match.group(1)).is_file():
            shutil.copy2(src.parent / match.group(1), dst.parent / match.group(1))
            copied.append(dst.parent / match.group(1))
    return copied


def package_version(package: str) -> str:
    meta = json.loads((NODE_MODULES / package / "package.json").read_text("utf-8"))
    return str(meta["version"])


def glyphicons_css(bootstrap_css: str) -> str:
    """Keep only the glyphicon font-face and `.glyphicon*` rules of Bootstrap 3.

    folium's CDN link is a glyphicons-only stylesheet; loading all of Bootstrap 3
    next to Bootstrap 5 would restyle the page. Font URLs stay `../fonts/...`.
    """
    css = re.sub(r"/\*.*?\*/", "", bootstrap_css, flags=re.DOTALL)
    kept: list[str] = []
    for match in re.finditer(r"([^{}]+)\{([^{}]*)\}", css):
        selector, body = match.group(1).strip(), match.group(2)
        selectors = [s.strip() for s in selector.split(",")]
        is_font = selector == "@font-face" and "Glyphicons Halflings" in body
        if is_font or all(s.startswith(".glyphicon") for s in selectors):
            kept.append(f"{selector} {{{body}}}")
    if len(kept) < 100:  # 250+ icons in 3.4.1; fewer means the parse went wrong
        fail(f"found only {len(kept)} glyphicon rules in {GLYPHICONS_SOURCE}")
    return (
        "/* Glyphicons rules cut from Bootstrap 3.4.1 (MIT) by build.py */\n"
        + "\n".join(kept)
        + "\n"
    )


def rotate_css() -> str:
    """`fa-rotate-N` classes that folium's Icon(angle=N) puts on marker icons."""
    return "".join(f".fa-rotate-{n}{{transform:rotate({n}deg)}}" for n in range(360)) + "\n"


def folium_dir() -> Path:
    spec = importlib.util.find_spec("folium")
    if spec is None or spec.origin is None:
        fail("folium is not importable: run build.py with the project's Python (the venv)")
    return Path(spec.origin).parent  # type: ignore[arg-type]


def fill(staging: Path, folium_root: Path) -> None:
    """Copy/generate every vendored file into `staging` and write build-info.json."""
    versions: dict[str, str] = {}
    for package, entries in NPM_FILES.items():
        files: list[Path] = []
        for entry in entries:
            files += copy_entry(NODE_MODULES / package / entry, staging / package / entry)
        versions[package] = package_version(package)
        size = sum(f.stat().st_size for f in files)
        print(f"  {package}@{versions[package]}: {len(files)} files, {size // 1024} KiB")

    source = (NODE_MODULES / GLYPHICONS_SOURCE).read_text("utf-8")
    (staging / GLYPHICONS_TARGET).parent.mkdir(parents=True, exist_ok=True)
    (staging / GLYPHICONS_TARGET).write_text(glyphicons_css(source), "utf-8")
    print(f"  wrote {GLYPHICONS_TARGET} (glyphicons only)")

    for src, dst in FOLIUM_FILES.items():
        copy_entry(folium_root / src, staging / "folium" / dst)
        print(f"  folium: copied {src} -> folium/{dst}")
    (staging / ROTATE_CSS_TARGET).write_text(rotate_css(), "utf-8")
    print(f"  wrote {ROTATE_CSS_TARGET}")

    # Written last: its presence means the build completed (see assets_built()).
    info = {"npm": versions, "folium": importlib.metadata.version("folium")}
    (staging / BUILD_INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", "utf-8")


def main() -> None:
    if not NODE_MODULES.is_dir():
        fail(f"{NODE_MODULES} is missing: run `npm ci --no-audit --no-fund` in {HERE}")
    folium_root = folium_dir()  # fail before touching anything

    # Build beside the real folder and swap it in at the end: a failed run never
    # leaves a half-built vendor dir, and no scratch folder outlives the run
    # (only maps/static/vendor/ is gitignored).
    staging = VENDOR.with_name(VENDOR.name + ".tmp")
    old = VENDOR.with_name(VENDOR.name + ".old")
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        fill(staging, folium_root)
        shutil.rmtree(old, ignore_errors=True)
        if VENDOR.exists():
            VENDOR.rename(old)
        staging.rename(VENDOR)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    total = sum(1 for p in VENDOR.rglob("*") if p.is_file())
    print(f"build.py: {total} files in {VENDOR}")


if __name__ == "__main__":
    main()
