"""A page as one self-contained HTML file: every script, stylesheet, font and image that
the app would serve from /static/vendor is written into the page itself.

Such a copy opens from a file, a share or another web server, with no request for an
asset; it still reads its data from the gridmap server it names (the API allows GETs from
other origins, see GRIDMAP_CORS_ORIGINS).

Written here rather than taken from a bundler: the pages' assets are a fixed, known list
of plain files, and inlining them is two regular expressions and a base64 call, where
a bundler would add a Node build step to the Python command.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from pathlib import Path

from maps.local_assets import VENDOR_URL, require_assets_built, vendor_dir

_SCRIPT = re.compile(r'<script src="' + re.escape(VENDOR_URL) + r'/([^"]+)"></script>')
_STYLESHEET = re.compile(r'<link rel="stylesheet" href="' + re.escape(VENDOR_URL) + r'/([^"]+)"\s*/?>')
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")
# A @font-face lists fallbacks after WOFF2; every browser that runs Leaflet 1.9 reads
# WOFF2, so the fallbacks would only double the file.
_FONT_FALLBACK = re.compile(
    r""",\s*url\(\s*['"]?[^'")]+\.(?:ttf|eot|svg|woff)(?:[?#][^'")]*)?['"]?\s*\)\s*format\([^)]*\)"""
)
_TYPES = {".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf", ".eot": "application/vnd.ms-fontobject",
          ".svg": "image/svg+xml", ".png": "image/png", ".gif": "image/gif"}


class AssetMissing(FileNotFoundError):
    """A page links a vendor file that the build did not produce."""


def _vendor_file(relative: str) -> Path:
    path = (vendor_dir() / relative).resolve()
    if vendor_dir().resolve() not in path.parents or not path.is_file():
        raise AssetMissing(f"{VENDOR_URL}/{relative} is not in {vendor_dir()}: run `make assets`")
    return path


def _data_uri(path: Path) -> str:
    kind = _TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _inline_css(css: str, folder: Path) -> str:
    css = _FONT_FALLBACK.sub("", css)

    def replace(match: re.Match[str]) -> str:
        target = match.group(2)
        if target.startswith(("data:", "#")) or "//" in target:
            return match.group(0)
        path = (folder / target.split("?")[0].split("#")[0]).resolve()
        if not path.is_file():  # a rule for a file the package does not ship: leave it
            return match.group(0)
        return f'url("{_data_uri(path)}")'

    return _CSS_URL.sub(replace, css)


def standalone(html: str) -> str:
    """``html`` with every /static/vendor link replaced by the file's content."""
    require_assets_built()

    def script(match: re.Match[str]) -> str:
        code = _vendor_file(match.group(1)).read_text(encoding="utf-8")
        return "<script>" + code.replace("</script", "<\\/script") + "</script>"

    def stylesheet(match: re.Match[str]) -> str:
        path = _vendor_file(match.group(1))
        return "<style>" + _inline_css(path.read_text(encoding="utf-8"), path.parent) + "</style>"

    html = _SCRIPT.sub(script, html)
    html = _STYLESHEET.sub(stylesheet, html)
    if VENDOR_URL in html:
        left = sorted(set(re.findall(re.escape(VENDOR_URL) + r'/[^"\')\s]+', html)))
        raise AssetMissing(f"links the standalone page could not inline: {', '.join(left)}")
    return html
