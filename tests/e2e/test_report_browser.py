"""The campaign report renders in a real browser: headless Debian Chromium takes a screenshot
of ``index.html`` and every plot must appear in it, pixel for pixel, as a non-blank image.

Chromium comes from Debian's ``chromium`` package (``.ci/chromium.sh``); without it the test
is skipped with the command that installs it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lab.report import PLOTS, write_report
from tests.lab.test_report import write_multi_fidelity_db

CHROMIUM = Path("/usr/bin/chromium")
WINDOW = (1200, 2000)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (/usr/bin/chromium): run `bash .ci/chromium.sh`"
    " or `apt-get install chromium`",
)


def screenshot(page: Path, tmp: Path) -> np.ndarray:
    """Render ``page`` in headless Chromium; return the screenshot as an RGB array."""
    shot = tmp / f"{page.parent.name}-shot.png"
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={tmp / f'{page.parent.name}-profile'}",
        f"--screenshot={shot}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        page.resolve().as_uri(),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and shot.is_file(), out.stdout + out.stderr[-3000:]
    with Image.open(shot) as im:
        assert im.size == WINDOW
        return np.asarray(im.convert("RGB")).astype(float)


def locate(shot: np.ndarray, img: np.ndarray) -> tuple[int, int, float]:
    """Best placement of ``img`` in ``shot`` (least squared difference, by FFT).

    Returns:
        ``(row, column, mean absolute RGB difference there)``.
    """
    from scipy.signal import fftconvolve

    s, a = shot.mean(axis=2), img.mean(axis=2)
    h, w = a.shape
    corr = fftconvolve(s, a[::-1, ::-1], mode="valid")
    c = np.pad(np.cumsum(np.cumsum(s**2, 0), 1), ((1, 0), (1, 0)))
    window = c[h:, w:] - c[:-h, w:] - c[h:, :-w] + c[:-h, :-w]
    ssd = window - 2 * corr + (a**2).sum()
    y, x = np.unravel_index(int(np.argmin(ssd)), ssd.shape)
    return int(y), int(x), float(np.abs(shot[y : y + h, x : x + w] - img).mean())


def non_blank(region: np.ndarray) -> bool:
    """Drawn content: some dark pixels, many colours, not one flat colour."""
    px = region.reshape(-1, 3)
    dark = float(np.mean(np.any(px < 200, axis=1)))
    return dark > 0.01 and len(np.unique(px, axis=0)) > 50


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    db_url = f"sqlite:///{tmp / 'lab.db'}"
    cid = write_multi_fidelity_db(db_url)
    return write_report(db_url, cid, tmp / "report")


def test_report_plots_render_in_chromium(report: Path, tmp_path: Path) -> None:
    shot = screenshot(report, tmp_path)
    assert not non_blank(np.full((10, 10, 3), 255.0))  # the check itself tells blank from drawn
    placed = []
    for name in PLOTS:
        with Image.open(report.parent / name) as im:
            img = np.asarray(im.convert("RGB")).astype(float)
        assert non_blank(img), name
        y, x, diff = locate(shot, img)
        h, w = img.shape[:2]
        # the browser drew this very PNG, whole and unscaled, inside the window
        assert diff < 3.0, f"{name}: not found in the screenshot (mean difference {diff:.1f})"
        assert non_blank(shot[y : y + h, x : x + w]), f"{name}: blank where it was drawn"
        placed.append((y, x, h, w))
    # four distinct places, none overlapping
    for i, (y1, x1, h1, w1) in enumerate(placed):
        for y2, x2, h2, w2 in placed[i + 1 :]:
            assert y1 + h1 <= y2 or y2 + h2 <= y1 or x1 + w1 <= x2 or x2 + w2 <= x1


def test_missing_images_are_detected(report: Path, tmp_path: Path) -> None:
    """Control: the same page without its PNGs (broken images) fails the check above."""
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(report, broken / "index.html")
    shot = screenshot(broken / "index.html", tmp_path)
    for name in PLOTS:
        with Image.open(report.parent / name) as im:
            img = np.asarray(im.convert("RGB")).astype(float)
        _, _, diff = locate(shot, img)
        assert diff > 3.0, f"{name}: matched although the file is missing"
