"""L-BFGS on one image tensor: one evaluation a step, no line search, curvature carried across scales.

torch.optim.LBFGS starts every run with a probe, a step of L1 norm 1 over the whole image,
whose evaluation buys no progress: in a coarse-to-fine run that wastes one evaluation per
scale, a whole one at the output size. Here a scale starts from what the previous scale's
L-BFGS learned: its newest curvature pairs, upsampled, and so its inverse-curvature estimate
(bench/RESULTS.md, "The first step of each scale" and "The previous scale's curvature pairs").
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Without carried pairs (a size where none fits the byte cap below), the inverse-curvature estimate
# grows about as the square root of the pixel count: measured on tübingen x the scream,
# 128 -> 256 -> 512 px; exponents 0.25 and 1 both gave a worse first step there.
CURVATURE_EXPONENT = 0.5
MIN_CURVATURE = 1e-10  # pairs with less curvature than this carry noise, not information
# A scale starts with the previous scale's newest pairs: 10 did as well as all of them on the
# three shared pairs. The byte cap keeps a 2048 px job's peak under its 8 GB (a pair there is 75 MB).
CARRIED_PAIRS = 10
CARRIED_BYTES = 256 << 20

Pair = tuple[torch.Tensor, torch.Tensor]  # (step s, gradient change y), both flat


class LBFGS:
    """Minimizes a closure's loss over the pixels of `x` (its `.grad` set by the closure)."""

    def __init__(self, x: torch.Tensor, history: int = 100, inverse_curvature: float | None = None,
                 pairs: Iterable[Pair] = ()) -> None:
        self.x = x
        self.inverse_curvature = inverse_curvature
        self._pairs: deque[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = deque(maxlen=history)
        self._grad: torch.Tensor | None = None
        self._step: torch.Tensor | None = None
        for s, y in pairs:
            self._remember(y, s)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Evaluate the loss and its gradient at `x` once, then move `x` along the L-BFGS direction."""
        with torch.enable_grad():
            loss = closure()
        assert self.x.grad is not None, "the closure must call backward()"
        grad = self.x.grad.detach().flatten().clone()
        if self._grad is not None and self._step is not None:
            self._remember(grad - self._grad, self._step)
        direction = self._direction(grad)
        self.x.add_(direction.view_as(self.x))
        self._grad, self._step = grad, direction
        return loss

    def _remember(self, y: torch.Tensor, s: torch.Tensor) -> None:
        ys = y.dot(s)
        if ys > MIN_CURVATURE:
            self._pairs.append((s, y, 1.0 / ys))
            self.inverse_curvature = float(ys / y.dot(y))

    def _direction(self, grad: torch.Tensor) -> torch.Tensor:
        """-H grad by the two-loop recursion over the remembered (s, y) pairs."""
        if self.inverse_curvature is None:
            # Nothing known yet (the first scale): torch's probe, a step of L1 norm 1.
            h = 1.0 / max(float(grad.abs().sum()), 1.0)
        else:
            h = self.inverse_curvature
        q = grad.neg()
        alphas = []
        for s, y, rho in reversed(self._pairs):
            alpha = rho * s.dot(q)
            q.sub_(y * alpha)
            alphas.append(alpha)
        q.mul_(h)
        for (s, y, rho), alpha in zip(self._pairs, reversed(alphas), strict=True):
            q.add_(s * (alpha - rho * y.dot(q)))
        return q

    def carried(self) -> Carried:
        """What this run learned of the curvature, for the next, finer scale to start from."""
        pairs = [(s, y) for s, y, _ in self._pairs][-CARRIED_PAIRS:]
        return Carried(self.inverse_curvature, pairs, tuple(self.x.shape))


@dataclass(frozen=True)
class Carried:
    """A finished scale's inverse-curvature estimate and newest pairs, on images of `shape`."""

    inverse_curvature: float | None
    pairs: list[Pair]
    shape: tuple[int, ...]

    def optimizer_for(self, x: torch.Tensor, history: int = 100) -> LBFGS:
        """An L-BFGS on the finer image `x` that starts with this scale's pairs, upsampled."""
        ratio = x.numel() / math.prod(self.shape)
        keep = min(len(self.pairs), CARRIED_BYTES // (2 * x.numel() * x.element_size()))
        # The losses are means over positions, so a smooth change of the finer image changes the
        # loss as the same change of the coarser one did: its gradient per pixel is `ratio` times
        # smaller. The pairs then set the estimate to `ratio` times the coarser one.
        pairs = [(_resized(s, self.shape, x.shape), _resized(y, self.shape, x.shape) / ratio)
                 for s, y in self.pairs[len(self.pairs) - keep:]]
        start = carried_curvature(self.inverse_curvature, math.prod(self.shape), x.numel())
        return LBFGS(x, history, start, pairs)


def _resized(v: torch.Tensor, shape: tuple[int, ...], to: torch.Size) -> torch.Tensor:
    image = v.view(shape)
    return F.interpolate(image, size=to[-2:], mode="bilinear", align_corners=False).flatten()


def carried_curvature(inverse_curvature: float | None, pixels_from: int, pixels_to: int) -> float | None:
    """The previous scale's inverse-curvature estimate, rescaled to a scale of `pixels_to` pixels."""
    if inverse_curvature is None:
        return None
    return inverse_curvature * (pixels_to / pixels_from) ** CURVATURE_EXPONENT
