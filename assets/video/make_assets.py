"""Draws the Subject video tab's example subject, a toy robot on a transparent background
(RGBA, so its alpha is the cut-out). Our own drawing: `python assets/video/make_assets.py`
rewrites toy-robot.png identically."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SIZE = 384


def toy_robot(size: int = SIZE) -> Image.Image:
    """A red-and-cream toy robot, centred, filling most of the square."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    s = size / 384

    def box(x0, y0, x1, y1):
        return (x0 * s, y0 * s, x1 * s, y1 * s)

    red, cream = (200, 40, 45, 255), (245, 232, 205, 255)
    dark, blue = (40, 40, 50, 255), (70, 150, 230, 255)
    draw.line(box(192, 40, 192, 78), fill=dark, width=round(6 * s))
    draw.ellipse(box(178, 26, 206, 54), fill=red)
    draw.rounded_rectangle(
        box(112, 70, 272, 170), radius=24 * s, fill=cream, outline=dark, width=round(5 * s)
    )
    draw.ellipse(box(140, 100, 180, 140), fill=blue, outline=dark, width=round(4 * s))
    draw.ellipse(box(204, 100, 244, 140), fill=blue, outline=dark, width=round(4 * s))
    draw.rounded_rectangle(
        box(96, 176, 288, 310), radius=20 * s, fill=red, outline=dark, width=round(5 * s)
    )
    draw.rounded_rectangle(
        box(150, 200, 234, 260), radius=10 * s, fill=cream, outline=dark, width=round(4 * s)
    )
    for x0, x1 in ((56, 92), (292, 328)):
        draw.rounded_rectangle(
            box(x0, 186, x1, 286), radius=14 * s, fill=cream, outline=dark, width=round(4 * s)
        )
    for x0, x1 in ((124, 172), (212, 260)):
        draw.rounded_rectangle(box(x0, 312, x1, 366), radius=10 * s, fill=dark)
    return image


def main() -> None:
    toy_robot().save(HERE / "toy-robot.png", optimize=False)


if __name__ == "__main__":
    main()
