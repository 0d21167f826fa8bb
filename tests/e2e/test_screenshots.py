"""The README screenshots script runs in CI: `loyalty demo`, `dagster dev`, headless Chromium, and it
fails if a page shows an error. Without Chromium it is skipped with the reason, except under
CI=true, where a missing browser is a failure (.ci/run installs Debian's `chromium`)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "screenshots.py"
sys.path.insert(0, str(SCRIPT.parent))
import screenshots  # noqa: E402  (scripts/ is not a package)


def _chromium() -> str | None:
    return (
        os.environ.get("CHROMIUM")
        or shutil.which("chromium")
        or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
    )


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_screenshots_script_captures_both_pages(tmp_path):
    binary = _chromium()
    if binary is None:
        reason = "chromium is not installed (Debian: apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true: the screenshots script must run", pytrace=False)
        pytest.skip(reason)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--chromium", binary],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"screenshots.py failed:\n{result.stdout}\n{result.stderr[-5000:]}"
    assert _png_size(tmp_path / "asset-graph.png") == screenshots.WINDOW
    assert _png_size(tmp_path / "birthday-partition.png") == screenshots.PARTITION_WINDOW
    for name in ("asset-graph.png", "birthday-partition.png"):
        assert (tmp_path / name).stat().st_size > 20_000, f"{name} looks blank"


def test_missing_chromium_is_a_clear_failure(tmp_path, capsys):
    assert screenshots.main(["--out", str(tmp_path), "--chromium", str(tmp_path / "no-chromium")]) == 3
    assert "apt-get install -y chromium" in capsys.readouterr().err


@pytest.mark.parametrize(
    "page_text",
    [
        "Assets birthday_log Unexpected GraphQL error: DagsterInvariantViolationError",
        "Assets nonexistent_asset No assets No assets were found",
        "Code location loyalty_pipeline.definitions failed to load",
    ],
)
def test_a_page_showing_an_error_fails_the_script(page_text):
    with pytest.raises(screenshots.ScreenshotError, match="shows an error"):
        screenshots.check_page("page", page_text, [])


def test_a_page_missing_its_content_fails_the_script():
    with pytest.raises(screenshots.ScreenshotError, match="does not show"):
        screenshots.check_page("birthday-partition", "Assets birthday_log Loading…", ["rewarded_now"])


def test_visible_text_ignores_styles_and_scripts():
    dom = "<style>.x{--error-bg:red}</style><script>throw new Error('x')</script><p>rewarded_now &amp; 2</p>"
    assert screenshots.visible_text(dom) == "rewarded_now & 2"
