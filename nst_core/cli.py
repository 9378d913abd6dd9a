"""`nst stylize`: run the engine on local files, with a progress bar or one JSON summary."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

from nst_core.errors import NstError
from nst_core.image import encode_image, load_image
from nst_core.params import (
    COARSE_CONTENT_WEIGHT_DEFAULT,
    CONTENT_WEIGHT_DEFAULT,
    STYLE_CLIP_DEFAULT,
    StyleParams,
)
from nst_core.progress import Progress

MAX_INPUT_PIXELS = 64_000_000
# `--coarse-content-weight none` is the API's null: the content weight at every scale.
NO_WEIGHT = "none"
OUTPUT_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `nst stylize`."""
    p = argparse.ArgumentParser(prog="nst stylize", description="Paint CONTENT in the style of STYLE(s).")
    p.add_argument("content", type=Path)
    p.add_argument("styles", type=Path, nargs="+", metavar="STYLE")
    p.add_argument("-o", "--output", type=Path, required=True, help="output file (.png, .jpg, .webp)")
    p.add_argument("--size", type=int, default=512, help="long side of the output in pixels")
    p.add_argument("--preset", choices=["fast", "balanced", "high"], default="balanced")
    p.add_argument("--style-weights", type=float, nargs="+", metavar="W", help="blend weight per style")
    p.add_argument("--style-scale", type=float, default=1.0)
    p.add_argument("--content-weight", type=float,
                   help=f"weight of the content loss (default {CONTENT_WEIGHT_DEFAULT}; "
                        "at the last scale; higher keeps more of the photo)")
    p.add_argument("--coarse-content-weight", type=_weight_or_none,
                   help=f"weight of the content loss at the scales before the last, where a face's "
                        f"layout is set (default {COARSE_CONTENT_WEIGHT_DEFAULT}; "
                        f"{NO_WEIGHT}: the content weight at every scale)")
    p.add_argument("--style-weight", type=float)
    p.add_argument("--previous-scale-style-weight", type=float,
                   help="at the last scale, weight of a second style loss on the picture seen at the "
                        "previous scale's size, so its large strokes survive (default: the preset's, "
                        "fast 0.5, others 0)")
    p.add_argument("--tv-weight", type=float)
    p.add_argument("--style-clip", nargs="*", metavar="LAYER=Q", type=_clip_item,
                   help="clip each channel of these style layers at quantile Q of its values over the "
                        "style before the Gram is taken, so features that fire in few places (eyes, "
                        f"faces) are not painted (default {_clip_text(STYLE_CLIP_DEFAULT)}; "
                        "no value: no clipping)")
    p.add_argument("--scales", type=int, nargs="+", metavar="PX", help="explicit coarse-to-fine sizes")
    p.add_argument("--iterations", type=int, nargs="+", metavar="N", help="iterations per scale")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    p.add_argument("--init", choices=["content", "noise", "image"], default="content")
    p.add_argument("--init-image", type=Path)
    p.add_argument("--color", choices=["none", "luminance", "histogram"], default="none")
    p.add_argument("--pooling", choices=["max", "avg"], default="max")
    p.add_argument("--precision", choices=["auto", "fp32"], default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--weights", default="original", help="original, torchvision, or a state-dict path")
    p.add_argument("--json", action="store_true", help="print one JSON object with the run's figures")
    return p


def _weight_or_none(text: str) -> float | str:
    if text.lower() == NO_WEIGHT:
        return NO_WEIGHT
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or '{NO_WEIGHT}'") from None


def _clip_item(text: str) -> tuple[str, float]:
    layer, sep, q = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not LAYER=Q (e.g. relu5_1=0.75)")
    try:
        return layer, float(q)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{q!r} is not a number") from None


def _clip_text(clip: dict[str, float]) -> str:
    return " ".join(f"{k}={v}" for k, v in clip.items())


def params_from_args(args: argparse.Namespace) -> StyleParams:
    """The StyleParams the arguments describe (unset options keep the model's defaults)."""
    fields = {
        "size": args.size, "preset": args.preset, "style_blend": args.style_weights,
        "style_scale": args.style_scale, "content_weight": args.content_weight,
        "coarse_content_weight": args.coarse_content_weight,
        "style_weight": args.style_weight, "tv_weight": args.tv_weight, "scales": args.scales,
        "previous_scale_style_weight": args.previous_scale_style_weight,
        "iterations": args.iterations, "optimizer": args.optimizer, "init": args.init,
        "color": args.color, "pooling": args.pooling, "precision": args.precision,
        "seed": args.seed, "device": args.device, "preview_every": 0,
        "style_clip": None if args.style_clip is None else dict(args.style_clip),
    }
    given = {k: v for k, v in fields.items() if v is not None}
    if given.get("coarse_content_weight") == NO_WEIGHT:
        given["coarse_content_weight"] = None  # the model's own spelling of "not set"
    return StyleParams(**given)


def _progress_bar(enabled: bool):  # noqa: ANN202 - returns (callback, close)
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=1, unit="it", file=sys.stderr, dynamic_ncols=True)

    def on_progress(event: Progress) -> None:
        bar.total = event.total_steps
        bar.set_description(f"scale {event.scale}/{event.scales} {event.size[0]}x{event.size[1]}")
        if "total" in event.losses:
            bar.set_postfix(style=f"{event.losses['style']:.3g}", content=f"{event.losses['content']:.3g}")
        bar.update(event.step - bar.n)

    return on_progress, bar.close


def run(args: argparse.Namespace) -> dict:
    """Load inputs, stylize, write the output; returns the run's figures."""
    fmt = OUTPUT_FORMATS.get(args.output.suffix.lower())
    if fmt is None:
        raise NstError(f"output {args.output} must end in one of {', '.join(OUTPUT_FORMATS)}", field="output")
    params = params_from_args(args)
    clock = time.perf_counter()
    content = load_image(args.content, max_pixels=MAX_INPUT_PIXELS)
    styles = [load_image(p, max_pixels=MAX_INPUT_PIXELS) for p in args.styles]
    init = load_image(args.init_image, max_pixels=MAX_INPUT_PIXELS) if args.init_image else None
    timings = {"decode": time.perf_counter() - clock}

    clock = time.perf_counter()
    # torch's import makes ~190k objects that live as long as the process, and the collector
    # walked them all about three times: 0.15-0.2 s of a 1.2 s import (bench/RESULTS.md).
    gc.disable()
    try:
        from nst_core.transfer import Stylizer  # torch loads here, after the cheap checks

        stylizer = Stylizer(args.weights, args.device)
    finally:
        gc.enable()
    timings["load_model"] = time.perf_counter() - clock
    on_progress, close = _progress_bar(not args.json and sys.stderr.isatty())
    try:
        result = stylizer.stylize(content, styles, params, on_progress, init)
    finally:
        close()
    clock = time.perf_counter()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(encode_image(result.image, fmt))
    timings["encode"] = time.perf_counter() - clock
    return {
        "output": str(args.output), "size": list(result.image.size),
        "wall_seconds": round(result.wall_seconds, 3), "iterations": result.iterations,
        "evaluations": result.evaluations, "losses": result.losses,
        "style_cache_hits": result.style_cache_hits,
        "timings": {k: round(v, 3) for k, v in (timings | result.timings).items()},
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point; bad input prints one line to stderr and exits non-zero, no traceback."""
    args = build_parser().parse_args(argv)
    try:
        summary = run(args)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "params"
        print(f"nst stylize: invalid {where}: {err['msg']}", file=sys.stderr)
        return 2
    except (NstError, RuntimeError, OSError) as e:
        print(f"nst stylize: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nst stylize: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {summary['output']} ({summary['size'][0]}x{summary['size'][1]}) "
              f"in {summary['wall_seconds']:.1f} s", file=sys.stderr)
    return 0


def exit_process(code: int) -> NoReturn:
    """End the process now: the interpreter's teardown of torch adds about 0.55 s to every run."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_process(main())
