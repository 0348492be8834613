"""The README's command-line examples run as written, in order, on a fresh database.

The blocks marked ``<!-- example: tests/test_readme_examples.py runs this block -->`` are
taken from README.md as they are and run by bash with the installed ``gridmap`` on the
PATH, in an empty folder (so ``var/`` is a fresh SpatiaLite database, the default a
reader gets). Only ``R=../shared/realdata`` is pointed at the real folder, since the
examples are written to be run from the repository's folder.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from tests.conftest import REALDATA, realdata

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- example: tests/test_readme_examples.py runs this block -->"
BLOCK = re.compile(re.escape(MARKER) + r"\s*```sh\n(.*?)```", re.DOTALL)


def example_blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_readme_examples_run_as_written(tmp_path: Path) -> None:
    blocks = example_blocks()
    assert blocks, f"no block marked {MARKER!r} in README.md"
    script = "\n".join(blocks)
    assert "R=../shared/realdata" in script
    realdata("")  # skips when the shared data is missing, except in CI
    script = script.replace("R=../shared/realdata", f"R={REALDATA}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["GRIDMAP_TILE_SEED_ZOOM"] = "0"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"README example failed:\n{done.stderr[-4000:]}"
    assert "problem" not in done.stderr and "error:" not in done.stderr, done.stderr[-4000:]
    for command in re.findall(
        r"^(?:\S+=\S+ )?gridmap import (\w+) \S+/([\w.-]+)", script, re.MULTILINE
    ):
        layer, file = command
        assert re.search(rf"imported \d+ {layer} from {re.escape(file)}", done.stderr), (
            layer,
            file,
        )
    assert (tmp_path / "var" / "gridmap.sqlite").exists()
    # Hong Kong's constituency areas found their districts: every grid has its parent.
    with closing(sqlite3.connect(tmp_path / "var" / "hongkong" / "gridmap.sqlite")) as hk:
        grids, parented = hk.execute(
            "SELECT count(*), count(parent_code) FROM areas WHERE level = 'grid'"
        ).fetchone()
    assert grids == parented > 0
