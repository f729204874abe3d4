"""Draws the Subject video tab's example subject, a toy robot, and the other subjects of
`zsstudio eval video` (a rubber duck, a toy car), each on a transparent background (RGBA, so
its alpha is the cut-out). Our own drawings: `python assets/video/make_assets.py` rewrites the
PNGs identically."""

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


def rubber_duck(size: int = SIZE) -> Image.Image:
    """A yellow rubber duck facing left, with an orange beak."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    s = size / 384

    def box(x0, y0, x1, y1):
        return (x0 * s, y0 * s, x1 * s, y1 * s)

    yellow, dark = (250, 205, 40, 255), (60, 45, 20, 255)
    orange, white = (245, 130, 30, 255), (255, 255, 255, 255)
    draw.ellipse(box(70, 170, 340, 340), fill=yellow, outline=dark, width=round(5 * s))
    draw.polygon([(290 * s, 230 * s), (350 * s, 160 * s), (330 * s, 250 * s)], fill=yellow)
    draw.ellipse(box(90, 60, 230, 200), fill=yellow, outline=dark, width=round(5 * s))
    draw.ellipse(box(40, 120, 110, 160), fill=orange, outline=dark, width=round(4 * s))
    draw.ellipse(box(125, 100, 155, 130), fill=white, outline=dark, width=round(3 * s))
    draw.ellipse(box(133, 108, 149, 124), fill=dark)
    draw.arc(box(150, 220, 290, 310), 200, 340, fill=dark, width=round(5 * s))
    return image


def toy_car(size: int = SIZE) -> Image.Image:
    """A blue toy car seen from the side, with grey windows and black wheels."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    s = size / 384

    def box(x0, y0, x1, y1):
        return (x0 * s, y0 * s, x1 * s, y1 * s)

    blue, dark = (40, 90, 210, 255), (30, 30, 40, 255)
    glass, hub = (190, 215, 235, 255), (200, 200, 205, 255)
    draw.rounded_rectangle(
        box(30, 170, 354, 270), radius=30 * s, fill=blue, outline=dark, width=round(5 * s)
    )
    draw.rounded_rectangle(
        box(100, 100, 280, 185), radius=30 * s, fill=blue, outline=dark, width=round(5 * s)
    )
    draw.rounded_rectangle(box(122, 118, 184, 172), radius=10 * s, fill=glass, outline=dark)
    draw.rounded_rectangle(box(196, 118, 258, 172), radius=10 * s, fill=glass, outline=dark)
    draw.rectangle(box(330, 190, 350, 212), fill=(250, 220, 90, 255))
    for x in (105, 280):
        draw.ellipse(box(x - 45, 225, x + 45, 315), fill=dark)
        draw.ellipse(box(x - 20, 250, x + 20, 290), fill=hub)
    return image


SUBJECTS = {"toy-robot.png": toy_robot, "rubber-duck.png": rubber_duck, "toy-car.png": toy_car}


def main() -> None:
    for name, draw in SUBJECTS.items():
        draw().save(HERE / name, optimize=False)


if __name__ == "__main__":
    main()
