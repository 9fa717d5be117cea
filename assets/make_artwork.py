"""Draw the GhubAi mark and write every size the app and the installers need.

The mark is original and drawn from geometry, so it is reproducible and
reviewable as code: a rounded chip (dark slate) with pins on each side, and a
bold "G" whose bar ends in a node, the hub's connection. It is drawn large
(1024 px) and scaled down with a good filter, with the strokes wide enough
to stay legible at 16 px.

    python assets/make_artwork.py     # rewrites the PNGs and the .ico in assets/
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).parent
BIG = 1024
SIZES = (16, 24, 32, 48, 64, 128, 256)
SLATE = (35, 52, 84, 255)
PIN = (120, 140, 170, 255)
WHITE = (255, 255, 255, 255)
ACCENT = (64, 196, 255, 255)


def draw_mark(size: int = BIG) -> Image.Image:
    s = size / 1024
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    # Pins: three per side, as on a chip.
    for i in range(3):
        c = (300 + i * 212) * s
        w = 70 * s
        d.rectangle([c - w / 2, 40 * s, c + w / 2, 140 * s], fill=PIN)
        d.rectangle([c - w / 2, 884 * s, c + w / 2, 984 * s], fill=PIN)
        d.rectangle([40 * s, c - w / 2, 140 * s, c + w / 2], fill=PIN)
        d.rectangle([884 * s, c - w / 2, 984 * s, c + w / 2], fill=PIN)
    d.rounded_rectangle([110 * s, 110 * s, 914 * s, 914 * s], radius=130 * s, fill=SLATE)
    # The G: a thick arc open on the right, and its bar.
    box = [230 * s, 230 * s, 794 * s, 794 * s]
    d.arc(box, start=40, end=330, fill=WHITE, width=int(120 * s))
    d.rectangle([520 * s, 470 * s, 790 * s, 580 * s], fill=WHITE)
    # The node at the end of the bar: the connection to the hub.
    r = 70 * s
    d.ellipse([512 * s - r, 525 * s - r, 512 * s + r, 525 * s + r], fill=ACCENT)
    return img


def main() -> None:
    big = draw_mark()
    big.resize((512, 512), Image.Resampling.LANCZOS).save(HERE / "ghubai-mark.png")
    for size in SIZES:
        big.resize((size, size), Image.Resampling.LANCZOS).save(HERE / f"ghubai-{size}.png")
    big.resize((256, 256), Image.Resampling.LANCZOS).save(
        HERE / "ghubai.ico", sizes=[(n, n) for n in SIZES])


if __name__ == "__main__":
    main()
