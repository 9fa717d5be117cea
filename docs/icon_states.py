"""Draw the five icon looks side by side at tray sizes, for the README.

    python docs/icon_states.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from ghubai_tray.desktop.icon import IconKind, icon_image

SIZES = (16, 24, 32, 48)


def main() -> None:
    cell = sum(SIZES) + 8 * len(SIZES) + 16
    sheet = Image.new("RGBA", (cell * len(IconKind), 80), (236, 236, 236, 255))
    draw = ImageDraw.Draw(sheet)
    for column, kind in enumerate(IconKind):
        x = column * cell + 8
        for size in SIZES:
            sheet.alpha_composite(icon_image(kind, size), (x, 48 - size))
            x += size + 8
        draw.text((column * cell + 8, 58), kind.value, fill=(30, 30, 30, 255))
    sheet.save(Path(__file__).parent / "screenshots" / "icon-states.png")


if __name__ == "__main__":
    main()
