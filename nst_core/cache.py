"""Style targets (Gram matrices) depend only on the style image, its size and the layers.

A worker process keeps them in an LRU keyed by a content hash, so the next job
with the same style skips that work.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable

import torch
from PIL import Image


def image_digest(image: Image.Image) -> str:
    """Content hash of an image's pixels (not of its file bytes or name)."""
    h = hashlib.sha256()
    h.update(f"{image.mode}:{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


class GramCache:
    """A small thread-safe LRU of per-layer Gram matrices."""

    def __init__(self, max_entries: int = 64) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, dict[str, torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key: Hashable) -> dict[str, torch.Tensor] | None:
        """The cached Grams for `key`, or None (counts a hit)."""
        with self._lock:
            grams = self._items.get(key)
            if grams is None:
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return grams

    def put(self, key: Hashable, grams: dict[str, torch.Tensor]) -> None:
        """Store Grams, evicting the least recently used entry past the limit."""
        with self._lock:
            self._items[key] = grams
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        """Forget every entry and the hit count."""
        with self._lock:
            self._items.clear()
            self.hits = 0
