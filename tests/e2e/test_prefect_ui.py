"""Monitoring in the Prefect UI, in a real browser.

``lab server up`` serves the Prefect API and UI; a short campaign runs against it; headless
Debian Chromium, driven by Playwright (no browser download: ``executable_path`` is the
distribution's binary, ``.ci/chromium.sh``), opens the campaign's flow run in both UIs the
server ships (V1 at ``/``, V2 at ``/v2``, where ``/`` sends a new browser) and finds the
progress and proposals artifacts there, then opens each and reads its content.

Skipped only when Chromium or the ``playwright`` package (the ``dev`` extra) is missing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port, lab, lab_env, small_campaign

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 60_000  # every wait in the browser: the machine can be slow and shared

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (/usr/bin/chromium): run `bash .ci/chromium.sh`"
    " or `apt-get install chromium`",
)
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the playwright package is not installed: pip install -c constraints.txt -e '.[dev]'",
)
expect = sync_api.expect


@pytest.fixture
def lab_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``lab server up`` on a free port; yields the base URL and an environment that uses it."""
    port = free_port()
    env = lab_env(tmp_path)
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.console", "server", "up", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # its own process group: `prefect server start` is a child
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (
                "`lab server up` did not start:\n" + (tmp_path / "server.log").read_text()[-3000:]
            )
            time.sleep(0.5)
        yield base, {**env, "PREFECT_API_URL": f"{base}/api"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


def _campaign_flow_run(base: str) -> str:
    flows = httpx.post(f"{base}/api/flows/filter", json={}, timeout=10).json()
    (flow_id,) = [f["id"] for f in flows if f["name"] == "interface-campaign"]
    runs = httpx.post(f"{base}/api/flow_runs/filter", json={}, timeout=10).json()
    (run,) = [r for r in runs if r["flow_id"] == flow_id]
    assert run["state_type"] == "COMPLETED"
    return run["id"]


@pytest.mark.timeout(900)
def test_flow_run_page_shows_progress_and_proposals(lab_server, tmp_path: Path) -> None:
    base, env = lab_server
    # the UI asks the server where the API is: this server, not the default port 4200
    ui_settings = httpx.get(f"{base}/ui-settings", timeout=10).json()
    assert ui_settings["api_url"] == f"{base}/api"

    db = f"sqlite:///{tmp_path / 'lab.db'}"
    campaign = small_campaign(tmp_path, budget=1, initial_design=1)
    out = lab(["campaign", "launch", str(campaign), "--db", db], env)
    assert out.returncode == 0, out.stdout + out.stderr
    run_id = _campaign_flow_run(base)

    artifacts = {
        # key: (type shown on its card, description, what its own page shows)
        "campaign-1-progress": ("progress", "demo-interlayer: budget spent (%)", "100%"),
        "campaign-1-proposals": (
            "table",
            "demo-interlayer: every experiment, its result and why it was chosen",
            "space-filling initial design",
        ),
    }
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            for ui, prefix in (("v1", ""), ("v2", "/v2")):
                page.goto(f"{base}{prefix}/runs/flow-run/{run_id}")
                expect(page.get_by_text("interface-campaign").first).to_be_visible(timeout=WAIT_MS)
                for key, (kind, description, content) in artifacts.items():
                    # the Artifacts tab of the run: a card (a link) per artifact version
                    page.get_by_role("tablist").get_by_text("Artifacts", exact=True).click()
                    card = page.get_by_role("tabpanel").get_by_role("link").filter(has_text=key)
                    expect(card.first).to_be_visible(timeout=WAIT_MS)
                    expect(card.first).to_contain_text(
                        re.compile(rf"\b{kind}\b", re.IGNORECASE),
                        use_inner_text=True,  # as laid out: the type is a line of its own
                        timeout=WAIT_MS,
                    )
                    expect(card.first).to_contain_text(description, timeout=WAIT_MS)
                    page.screenshot(path=tmp_path / f"{ui}-flow-run-artifacts.png", full_page=True)
                    # ... and the artifact itself, one click away
                    card.first.click()
                    expect(page).to_have_url(re.compile(r"/artifacts/artifact/"), timeout=WAIT_MS)
                    expect(page.get_by_text(content).filter(visible=True).first).to_be_visible(
                        timeout=WAIT_MS
                    )
                    page.screenshot(path=tmp_path / f"{ui}-{key}.png", full_page=True)
                    page.go_back()
        finally:
            browser.close()
    shots = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(shots) == 6 and all((tmp_path / s).stat().st_size > 10_000 for s in shots), shots
