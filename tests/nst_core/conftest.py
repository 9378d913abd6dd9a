"""Shared fixtures for the nst_core unit tests: one Stylizer per session and small generated images.

Every image is generated in memory; nothing is read from ../shared or the network.
"""

from __future__ import annotations

import pytest
from PIL import Image

from tests.support.images import checker_style, gradient_content, stripes_style


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny images gain nothing from threads, and on a shared 2-core machine OpenMP's spinning
    threads slow every step down by 5-10x once the cores are oversubscribed."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def stylizer():
    """The one VGG19 (original weights, CPU) shared by every engine test of the session."""
    from nst_core.transfer import Stylizer

    return Stylizer(weights="original", device="cpu")


@pytest.fixture(scope="session")
def extractor(stylizer):
    return stylizer.extractor


@pytest.fixture(scope="session")
def content_image() -> Image.Image:
    return gradient_content()


@pytest.fixture(scope="session")
def style_a() -> Image.Image:
    return stripes_style()


@pytest.fixture(scope="session")
def style_b() -> Image.Image:
    return checker_style()
