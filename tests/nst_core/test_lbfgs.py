"""The engine's L-BFGS: torch's iterates on a first scale; later ones start from the previous scale's."""

from __future__ import annotations

import pytest
import torch

from nst_core import lbfgs
from nst_core.lbfgs import LBFGS, Carried, carried_curvature


def _problem(n: int = 50, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """An ill-conditioned quadratic with a non-quadratic term: curvatures 1..100 and a quartic."""
    g = torch.Generator().manual_seed(seed)
    return torch.linspace(1.0, 100.0, n), torch.randn(n, generator=g)


def _closure(x: torch.Tensor, curv: torch.Tensor, target: torch.Tensor, evals: list[float]):
    def closure() -> torch.Tensor:
        x.grad = None
        d = x - target
        loss = 0.5 * (curv * d * d).sum() + 0.1 * d.pow(4).sum()
        loss.backward()
        evals.append(loss.item())
        return loss
    return closure


def test_without_a_carried_estimate_it_follows_torch_lbfgs_step_for_step():
    curv, target = _problem()
    ours, theirs = torch.zeros(50, requires_grad=True), torch.zeros(50, requires_grad=True)
    ours_opt = LBFGS(ours, history=5)
    torch_opt = torch.optim.LBFGS([theirs], lr=1.0, max_iter=1, history_size=5,
                                  tolerance_grad=-1.0, tolerance_change=-1.0)
    ours_evals: list[float] = []
    torch_evals: list[float] = []
    for _ in range(12):  # past the history size, so old pairs are dropped as torch drops them
        ours_opt.step(_closure(ours, curv, target, ours_evals))
        torch_opt.step(_closure(theirs, curv, target, torch_evals))
        torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=1e-4, atol=1e-6)
    assert ours_evals == pytest.approx(torch_evals, rel=1e-4)
    assert ours_evals[-1] < 0.01 * ours_evals[0]


def test_a_carried_estimate_makes_the_first_step_count():
    # torch's first step is a probe of L1 norm 1: on an image-sized problem the second
    # evaluation finds the loss unchanged.
    n = 20_000
    curv, target = _problem(n)
    probe = torch.zeros(n, requires_grad=True)
    probe_evals: list[float] = []
    opt = LBFGS(probe)
    for _ in range(2):
        opt.step(_closure(probe, curv, target, probe_evals))
    assert probe_evals[1] > 0.999 * probe_evals[0]
    # With the curvature known from a previous scale, the first step already cuts the loss.
    carried = torch.zeros(n, requires_grad=True)
    carried_evals: list[float] = []
    opt = LBFGS(carried, inverse_curvature=1 / 50)
    for _ in range(2):
        opt.step(_closure(carried, curv, target, carried_evals))
    assert carried_evals[1] < 0.5 * carried_evals[0]


def test_the_estimate_follows_the_pairs_and_ignores_curvature_free_ones():
    x = torch.zeros(3, requires_grad=True)
    opt = LBFGS(x, inverse_curvature=0.5)

    def flat() -> torch.Tensor:  # a linear loss: y = 0, no curvature to learn
        x.grad = None
        loss = x.sum()
        loss.backward()
        return loss

    opt.step(flat)
    opt.step(flat)
    assert opt.inverse_curvature == 0.5
    torch.testing.assert_close(x.detach(), torch.full((3,), -1.0))  # two steps of -0.5 * grad

    def bowl() -> torch.Tensor:  # loss 2 x^2: inverse curvature 1/4
        x.grad = None
        loss = 2 * x.pow(2).sum()
        loss.backward()
        return loss

    opt = LBFGS(x, inverse_curvature=0.1)
    opt.step(bowl)
    opt.step(bowl)
    assert opt.inverse_curvature == pytest.approx(0.25)


def test_carried_curvature_grows_with_the_square_root_of_the_pixels():
    assert carried_curvature(None, 100, 400) is None
    assert carried_curvature(3.0, 100, 400) == pytest.approx(6.0)
    assert carried_curvature(3.0, 400, 100) == pytest.approx(1.5)
    assert carried_curvature(3.0, 100, 100) == pytest.approx(3.0)


def _smooth(h: int, w: int, low: float, high: float) -> torch.Tensor:
    """A field rising smoothly from `low` at the top left to `high` at the bottom right."""
    ramp = torch.linspace(0, 1, h)[:, None] + torch.linspace(0, 1, w)[None, :]
    return (low + (high - low) * ramp / 2).view(1, 1, h, w)


def _scale_problem(h: int, w: int):
    """A loss that is a mean over pixels, as the engine's are, with smooth curvatures 1..100."""
    curv, target = _smooth(h, w, 1.0, 100.0), _smooth(h, w, 0.2, 0.8) ** 2

    def loss_of(x: torch.Tensor) -> torch.Tensor:
        d = x - target
        return (0.5 * curv * d * d + 0.1 * d.pow(4)).mean()
    return loss_of


def _run(opt: LBFGS, loss_of, steps: int) -> list[float]:
    evals: list[float] = []

    def closure() -> torch.Tensor:
        opt.x.grad = None
        loss = loss_of(opt.x)
        loss.backward()
        evals.append(loss.item())
        return loss
    for _ in range(steps):
        opt.step(closure)
    return evals


def _coarse_then_fine(carry_pairs: bool) -> list[float]:
    coarse = torch.zeros(1, 1, 16, 12, requires_grad=True)
    opt = LBFGS(coarse)
    _run(opt, _scale_problem(16, 12), 15)
    carried = opt.carried()
    if not carry_pairs:
        carried = Carried(carried.inverse_curvature, [], carried.shape)
    fine = torch.nn.functional.interpolate(coarse.detach(), size=(32, 24), mode="bilinear")
    fine.requires_grad_(True)
    return _run(carried.optimizer_for(fine), _scale_problem(32, 24), 4)


def test_the_previous_scales_pairs_make_the_finer_scales_steps_count():
    with_pairs, estimate_only = _coarse_then_fine(True), _coarse_then_fine(False)
    assert with_pairs[0] == pytest.approx(estimate_only[0])  # the same starting image
    assert with_pairs[-1] < 0.5 * estimate_only[-1]


def test_carried_pairs_keep_the_newest_that_fit_the_byte_cap(monkeypatch):
    x = torch.zeros(1, 3, 8, 8)
    pairs = [(torch.full((3 * 4 * 4,), float(i + 1)), torch.full((3 * 4 * 4,), 1.0)) for i in range(12)]
    carried = Carried(2.0, pairs[-lbfgs.CARRIED_PAIRS:], (1, 3, 4, 4))
    opt = carried.optimizer_for(x.clone().requires_grad_(True))
    assert len(opt._pairs) == lbfgs.CARRIED_PAIRS
    # A smooth pair, upsampled 2x with its gradient change divided by the pixel ratio of 4,
    # sets the estimate to 4 times the coarser one (s.y / y.y = 12 / 1 * 4).
    assert opt.inverse_curvature == pytest.approx(4 * 12.0)
    monkeypatch.setattr(lbfgs, "CARRIED_BYTES", 3 * 2 * x.numel() * 4)
    opt = carried.optimizer_for(x.clone().requires_grad_(True))
    assert [float(s[0]) for s, _, _ in opt._pairs] == [10.0, 11.0, 12.0]  # the newest three
    monkeypatch.setattr(lbfgs, "CARRIED_BYTES", 0)
    opt = carried.optimizer_for(x.clone().requires_grad_(True))
    assert not opt._pairs
    assert opt.inverse_curvature == pytest.approx(carried_curvature(2.0, 48, 192))  # the square-root rule
