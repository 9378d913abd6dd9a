"""The web page at `/` and the offline API docs, in a real chromium against real stacks.

Each test is bounded (120 s); the suite runs in well under two minutes once the worker is up.
Screenshots go to the test's tmp dir; their paths are printed (pytest -s shows them).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.browser.browser_page import OfflinePage
from tests.support.stack import CONTENT, Stack, long_params, png

pytestmark = pytest.mark.timeout(120)

# A fast job that still runs long enough for the bar to be seen moving, a preview every step.
WATCHABLE = {"scales": [32, 64], "iterations": [30, 20], "optimizer": "adam", "preview_every": 1}

# Every value the progress bar takes and every preview shown, recorded in the page itself.
RECORDER = """() => {
  window.__progress = []; window.__previews = 0;
  new MutationObserver(() => window.__progress.push(Number(document.getElementById('progress').value)))
    .observe(document.getElementById('progress'), {attributes: true, attributeFilter: ['value']});
  new MutationObserver(() => { window.__previews += 1; })
    .observe(document.getElementById('preview'), {attributes: true, attributeFilter: ['src']});
}"""


def _file(name: str, data: bytes) -> dict:
    return {"name": name, "mimeType": "image/png", "buffer": data}


def _open(offline: OfflinePage, stack: Stack, key: str | None) -> None:
    page = offline.page
    page.goto(stack.url + "/")
    if key is not None:  # keys configured: the page finds out (401 from the list) and asks
        page.get_by_label("API key").wait_for(state="visible")
        page.get_by_label("API key").fill(key)
        page.get_by_label("API key").press("Tab")
    page.evaluate(RECORDER)


def _fill(offline: OfflinePage, size: int, extra: dict | None, styles: int = 1) -> None:
    page = offline.page
    page.set_input_files("#content-input", _file("content.png", CONTENT))
    page.set_input_files("#style-input", [_file(f"style-{i}.png", png((64, 64), 2 * i + 1))
                                          for i in range(styles)])
    page.get_by_label("Quality").select_option("fast")
    page.get_by_label("Size (px)").fill(str(size))
    if extra is not None:
        page.get_by_text("Advanced parameters").click()
        page.get_by_label("Extra parameters").fill(json.dumps(extra))


def _shot(offline: OfflinePage, tmp_path: Path, name: str, full_page: bool = True) -> Path:
    path = tmp_path / f"{name}.png"
    offline.page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return path


def test_submit_watch_progress_and_download(keyed_stack: Stack, offline: OfflinePage,
                                            tmp_path: Path) -> None:
    page = offline.page
    _open(offline, keyed_stack, "key-alice")
    _fill(offline, 64, WATCHABLE, styles=2)
    assert page.locator(".thumb").count() == 3  # thumbnails of the content and both styles
    assert page.get_by_label("Weight of style 2").is_visible()  # one blend weight per style
    _shot(offline, tmp_path, "form-filled")
    page.get_by_role("button", name="Stylize").click()

    page.wait_for_function("() => { const p = window.__progress.filter(v => v > 0 && v < 100);"
                           " return p.length > 0; }")
    assert "Painting" in page.locator("#progress-text").inner_text() or \
        "Preparing" in page.locator("#progress-text").inner_text()
    _shot(offline, tmp_path, "running")
    result = page.get_by_alt_text("The stylized result")
    page.wait_for_function("() => { const r = document.getElementById('result');"
                           " return !r.hidden && r.complete && r.naturalWidth > 0; }", timeout=90_000)
    _shot(offline, tmp_path, "succeeded")

    values = page.evaluate("window.__progress")
    moving = [v for v in values if 0 < v < 100]
    assert moving and values[-1] == 100, values  # the bar went through values before the end
    assert sorted(moving) == moving, values  # and only forward
    assert page.evaluate("window.__previews") > 0  # the live preview was shown
    assert result.evaluate("img => img.naturalWidth") == 64
    assert page.locator("#job-status").inner_text().lower() == "succeeded"

    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    data = Path(download.value.path()).read_bytes()
    assert Image.open(io.BytesIO(data)).size == (64, 43)
    assert download.value.suggested_filename.endswith(".png")

    # The job is listed as this browser's, and the key never reached localStorage.
    item = page.locator(".history-item").first
    assert "succeeded" in item.inner_text().lower()
    storage = page.evaluate("JSON.stringify(localStorage)")
    assert "key-alice" not in storage
    assert page.evaluate("sessionStorage.getItem('nst.apiKey')") == "key-alice"
    # The one expected console line: the keyless probe's 401 that reveals keys are configured.
    errors = [e for e in offline.console_errors if "401" not in e]
    assert not offline.left_loopback and not errors, (offline.left_loopback, errors)


def test_cancel_a_running_job(keyed_stack: Stack, offline: OfflinePage, tmp_path: Path) -> None:
    page = offline.page
    _open(offline, keyed_stack, "key-bob")
    _fill(offline, 64, {k: v for k, v in long_params(2000).items() if k != "size"})
    page.get_by_role("button", name="Stylize").click()
    page.wait_for_function("() => window.__progress.some(v => v > 0)", timeout=60_000)
    page.get_by_role("button", name="Cancel job").click()
    page.wait_for_function("() => document.getElementById('job-status').textContent === 'canceled'")
    assert page.get_by_role("button", name="Cancel job").is_hidden()
    assert "Canceled" in page.locator("#progress-text").inner_text()
    _shot(offline, tmp_path, "canceled")
    job_id = page.locator("#job-id").inner_text()
    with keyed_stack.client("key-bob") as bob:
        assert bob.http.get(f"/v1/jobs/{job_id}").json()["status"] == "canceled"


def test_wrong_key_and_api_errors_are_shown(keyed_stack: Stack, open_stack: Stack,
                                            offline: OfflinePage, tmp_path: Path) -> None:
    page = offline.page
    _open(offline, keyed_stack, "not-a-key")
    _fill(offline, 64, None)
    page.get_by_role("button", name="Stylize").click()
    page.get_by_role("alert").filter(has_text="unknown API key").wait_for()

    # Open mode: no key field; the server's 422 message is shown next to the form.
    page.goto(open_stack.url + "/")
    page.wait_for_load_state("networkidle")
    assert page.get_by_label("API key").is_hidden()
    page.get_by_role("button", name="Stylize").click()
    page.get_by_role("alert").filter(has_text="Choose a content photo").wait_for()
    _fill(offline, 5000, None)
    page.get_by_role("button", name="Stylize").click()
    alert = page.get_by_role("alert").filter(has_text="size")
    alert.wait_for()
    _shot(offline, tmp_path, "error")
    assert not offline.left_loopback, offline.left_loopback


def test_keyboard_reaches_the_drop_zones(open_stack: Stack, offline: OfflinePage,
                                        tmp_path: Path) -> None:
    page = offline.page
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: one column
    page.goto(open_stack.url + "/")
    _shot(offline, tmp_path, "phone")
    focused = []
    for _ in range(8):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id || document.activeElement.textContent"))
    assert "content-input" in focused and "style-input" in focused, focused
    # The zone around the focused input shows a visible focus ring.
    page.focus("#content-input")
    outline = page.eval_on_selector("#content-drop", "e => getComputedStyle(e).outlineStyle")
    assert outline == "solid"
    for img in page.locator("img").all():
        assert img.get_attribute("alt")


def test_size_field_takes_its_ceiling_from_the_service(stack_factory, offline: OfflinePage) -> None:
    """The page offers sizes up to the service's NST_MAX_SIZE, whatever the operator set."""
    stack = stack_factory("browser-limits", NST_API_KEYS="", NST_OPEN_MODE="true",
                          NST_MAX_SIZE="768").start_api()
    offline.page.goto(stack.url + "/")
    # A function, not an expression string: the page's CSP forbids the eval a string would need.
    offline.page.wait_for_function("() => document.getElementById('size').max === '768'",
                                   timeout=10_000)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_render_offline(open_stack: Stack, offline: OfflinePage, path: str,
                                 tmp_path: Path) -> None:
    page = offline.page
    page.goto(open_stack.url + path)
    page.get_by_text("/v1/jobs/{job_id}/cancel").first.wait_for()
    text = page.locator("body").inner_text()
    assert "POST" in text.upper() and "/v1/jobs" in text
    _shot(offline, tmp_path, path.strip("/"), full_page=False)
    # Nothing reached the network beyond the loopback: not routed out, no answer from elsewhere;
    # ReDoc's one remote asset (a logo on cdn.redoc.ly) is stopped by the page's CSP.
    assert offline.responses and not offline.left_loopback, offline.left_loopback
    assert all(r.startswith(open_stack.url) for r in offline.responses), offline.responses
    remote = [r for r in offline.requests if not r.startswith(open_stack.url)]
    assert all(offline.failed.get(r) == "csp" for r in remote), offline.failed
