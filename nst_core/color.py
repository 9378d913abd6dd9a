"""Color preservation: keep the content photo's colors while taking the style's texture."""

from __future__ import annotations

import torch

# RGB <-> YIQ (NTSC): Y carries luminance, I and Q chroma.
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114],
                         [0.596, -0.274, -0.322],
                         [0.211, -0.523, 0.312]])  # fmt: skip
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)


def _apply(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", matrix.to(image), image)


def keep_luminance(output: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The output's luminance with the content's chroma (Gatys et al. 2016, luminance-only)."""
    yiq = _apply(_RGB2YIQ, output)
    yiq[:, 1:] = _apply(_RGB2YIQ, content)[:, 1:]
    return _apply(_YIQ2RGB, yiq).clamp(0, 1)


def match_histogram(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """`source` with its color mean and covariance moved to `reference`'s (linear transfer)."""
    s = source.reshape(3, -1).double()
    r = reference.reshape(3, -1).double()
    s_mu, r_mu = s.mean(1, keepdim=True), r.mean(1, keepdim=True)
    eye = torch.eye(3, dtype=torch.float64, device=s.device) * 1e-5
    s_cov = torch.cov(s) + eye
    r_cov = torch.cov(r) + eye
    # Whiten with the source's covariance, color with the reference's (matrix square roots).
    transform = _sqrtm(r_cov) @ torch.linalg.inv(_sqrtm(s_cov))
    out = transform @ (s - s_mu) + r_mu
    return out.reshape(source.shape).to(source.dtype).clamp(0, 1)


def _sqrtm(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(m)
    return vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T
