"""The local result store: atomic puts, the sweep, and the two racing (issue 11 #8)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from service.results import LocalStore, marker_key, upload_key


def test_a_sweep_racing_uploads_never_fails_them(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    errors: list[BaseException] = []
    stop = threading.Event()

    def sweep() -> None:
        while not stop.is_set():
            try:
                store.sweep(3600)  # removes no fresh file, only (momentarily) empty folders
            except BaseException as e:  # noqa: BLE001 - the test reports whatever it was
                errors.append(e)

    sweeper = threading.Thread(target=sweep)
    sweeper.start()
    try:
        deadline = time.monotonic() + 2
        n = 0
        while time.monotonic() < deadline:
            key = upload_key(f"{n:032x}", "content")
            store.put(key, b"x")
            assert store.get(key) == b"x"
            store.delete_prefix(f"uploads/{n:032x}")
            n += 1
    finally:
        stop.set()
        sweeper.join(5)
    assert not errors, errors[:3]
    assert n > 50


def test_the_sweep_keeps_the_store_marker(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.put(marker_key("abc"), b"m")
    store.put(upload_key("0" * 32, "content"), b"x")
    assert store.sweep(-1) == 1  # everything is "old": only the upload goes
    assert store.get(marker_key("abc")) == b"m"
