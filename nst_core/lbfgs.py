"""L-BFGS on one image tensor: one evaluation a step, no line search, curvature carried across scales.

torch.optim.LBFGS starts every run with a probe, a step of L1 norm 1 over the whole image,
whose evaluation buys no progress: in a coarse-to-fine run that wastes one evaluation per
scale, a whole one at the output size. Here a scale's first step uses the previous scale's
inverse-curvature estimate instead (bench/RESULTS.md, "The first step of each scale").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import torch

# The inverse-curvature estimate grows about as the square root of the pixel count: measured
# on tübingen x the scream, 128 -> 256 -> 512 px; exponents 0.25 and 1 both gave a worse first step.
CURVATURE_EXPONENT = 0.5
MIN_CURVATURE = 1e-10  # pairs with less curvature than this carry noise, not information


class LBFGS:
    """Minimizes a closure's loss over the pixels of `x` (its `.grad` set by the closure)."""

    def __init__(self, x: torch.Tensor, history: int = 100, inverse_curvature: float | None = None) -> None:
        self.x = x
        self.inverse_curvature = inverse_curvature
        self._pairs: deque[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = deque(maxlen=history)
        self._grad: torch.Tensor | None = None
        self._step: torch.Tensor | None = None

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


def carried_curvature(inverse_curvature: float | None, pixels_from: int, pixels_to: int) -> float | None:
    """The previous scale's inverse-curvature estimate, rescaled to a scale of `pixels_to` pixels."""
    if inverse_curvature is None:
        return None
    return inverse_curvature * (pixels_to / pixels_from) ** CURVATURE_EXPONENT
