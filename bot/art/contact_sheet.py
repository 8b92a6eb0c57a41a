"""Contact sheets: many images in one captioned grid (for /gallery, challenge entries and /compare).

Pure Pillow and synchronous. `contact_sheets` pages and encodes stored images: callers run it in a
worker thread (`asyncio.to_thread`); it decodes every image and encodes every sheet itself.
`captioned_grid` lays out images already in memory (a /compare's variants) as one unencoded image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from bot.art.imagefiles import ACCEPTED_FORMATS, encode_for_upload

BACKGROUND = (32, 34, 37)  # the sheet, the gaps and the caption strips
TILE_BACKGROUND = (54, 57, 63)  # behind a picture that does not fill its square
PLACEHOLDER = (110, 112, 116)  # a tile whose image could not be read
TEXT = (220, 221, 222)
GAP = 8  # pixels around and between tiles
PAD = 6  # pixels between a caption and the edges of its strip
ELLIPSIS = "…"
UNAVAILABLE = "image unavailable"
MIN_TILE_SIDE = 32
_MAX_CAPTION_CHARS = 256  # far more than ever fits in a tile; bounds the cost of measuring


@dataclass(frozen=True)
class Tile:
    image_path: Path  # a stored PNG/JPEG/WebP; may be missing or damaged
    caption: str  # a display name, "#3", ...: any Unicode, any length


@dataclass(frozen=True)
class Sheet:
    data: bytes  # the encoded image
    filename: str  # e.g. "gallery-1.webp"; the extension matches the encoding (png, webp or jpg)
    tiles: int  # how many tiles are on this sheet


def _font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled Aileron: the same glyphs on every machine (Latin only; other scripts show boxes)."""
    return ImageFont.load_default(size=size)


def _line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent


@dataclass(frozen=True)
class Grid:
    """Where everything goes on one sheet: title bar on top, then rows of picture + caption strip."""

    count: int
    columns: int
    tile_side: int
    caption_font_size: int
    caption_height: int
    title_font_size: int
    title_height: int  # 0 without a title; a line of title text per line, then a gap

    @property
    def rows(self) -> int:
        return math.ceil(self.count / self.columns)

    @property
    def size(self) -> tuple[int, int]:
        width = self.columns * (self.tile_side + GAP) + GAP
        height = self.title_height + self.rows * (self.tile_side + self.caption_height + GAP) + GAP
        return width, height

    def origin(self, index: int) -> tuple[int, int]:
        """The top-left corner of tile `index`'s picture square; its caption strip lies just below."""
        row, column = divmod(index, self.columns)
        return (
            GAP + column * (self.tile_side + GAP),
            self.title_height + GAP + row * (self.tile_side + self.caption_height + GAP),
        )


def sheet_grid(count: int, *, tile_side: int = 256, columns: int | None = None, titled: bool = False,
               title_lines: int = 1) -> Grid:
    """The grid for `count` tiles: `columns` wide (at most `count`), or near-square when None; when `titled`,
    under a title of `title_lines` lines."""
    if count < 1 or tile_side < MIN_TILE_SIDE or (columns is not None and columns < 1):
        raise ValueError(f"need count >= 1, tile_side >= {MIN_TILE_SIDE} and columns >= 1")
    columns = min(columns, count) if columns else math.ceil(math.sqrt(count))
    caption_size = max(12, tile_side // 12)
    title_size = round(caption_size * 1.4)
    title_height = title_lines * _line_height(_font(title_size)) + GAP if titled else 0
    return Grid(count, columns, tile_side, caption_size, _line_height(_font(caption_size)) + 2 * PAD,
                title_size, title_height)


def _fit_text(text: str, font: ImageFont.FreeTypeFont, width: float) -> str:
    """One line of `text` no wider than `width`, cut with an ellipsis where needed."""
    text = "".join(c if c.isprintable() else " " for c in text[:_MAX_CAPTION_CHARS])
    text = " ".join(text.split())  # newlines and runs of spaces become single spaces
    if font.getlength(text) <= width:
        return text
    low, high = 0, len(text)  # binary search for the longest prefix that fits with the ellipsis
    while low < high:
        middle = (low + high + 1) // 2
        if font.getlength(text[:middle].rstrip() + ELLIPSIS) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ELLIPSIS


def _wrap_text(text: str, font: ImageFont.FreeTypeFont, width: float, max_lines: int) -> list[str]:
    """`text` as lines no wider than `width`, broken between words and at its own newlines; a text
    longer than `max_lines` lines is cut with an ellipsis at the end of the last one."""
    lines = []
    for paragraph in text[: max_lines * _MAX_CAPTION_CHARS].split("\n"):
        line = ""
        for word in "".join(c if c.isprintable() else " " for c in paragraph).split():
            longer = f"{line} {word}" if line else word
            if line and font.getlength(longer) > width:
                lines.append(line)
                line = word
            else:
                line = longer
        lines.append(line)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], " ".join(lines[max_lines - 1:])]
    return [_fit_text(line, font, width) for line in lines]


def _fitted(image: Image.Image, side: int) -> Image.Image:
    """`image` as RGBA, scaled to fit inside side x side with its aspect kept (small ones grow)."""
    return ImageOps.contain(image.convert("RGBA"), (side, side), Image.Resampling.LANCZOS)


def _picture(path: Path, side: int) -> Image.Image | None:
    """The image at `path` as RGBA fitted inside side x side, or None if it cannot be read safely.

    Only the header is read before the size check, `thumbnail` makes JPEGs decode at a reduced
    scale (`draft`), and the file is closed on return.
    """
    try:
        if not path.is_file():  # missing, a folder, or a pipe that would block the open
            return None
        with Image.open(path, formats=ACCEPTED_FORMATS) as image:
            width, height = image.size
            if Image.MAX_IMAGE_PIXELS and width * height > Image.MAX_IMAGE_PIXELS:
                return None  # Pillow only warns between 1x and 2x the limit; refuse it here
            image.thumbnail((side, side))
            picture = ImageOps.exif_transpose(image)
        return _fitted(picture, side)
    except Exception:  # any damaged file (Pillow raises many kinds) costs its tile, never the sheet
        return None


def _cell(picture: Image.Image | None, caption: str, grid: Grid, font: ImageFont.FreeTypeFont) -> Image.Image:
    """One tile: the picture square (a placeholder for None) and its caption strip, drawn apart so
    nothing spills over."""
    side = grid.tile_side
    cell = Image.new("RGB", (side, side + grid.caption_height), BACKGROUND)
    draw = ImageDraw.Draw(cell)
    if picture is None:
        draw.rectangle((0, 0, side - 1, side - 1), fill=PLACEHOLDER)
        draw.text((side / 2, side / 2), _fit_text(UNAVAILABLE, font, side - 2 * PAD), font=font, fill=TEXT,
                  anchor="mm")
    else:
        draw.rectangle((0, 0, side - 1, side - 1), fill=TILE_BACKGROUND)
        cell.paste(picture, ((side - picture.width) // 2, (side - picture.height) // 2), picture)
    draw.text((side / 2, side + grid.caption_height / 2), _fit_text(caption, font, side - 2 * PAD),
              font=font, fill=TEXT, anchor="mm")
    return cell


def _render(cells: Sequence[tuple[Image.Image | None, str]], grid: Grid, title_lines: Sequence[str]) -> Image.Image:
    """The sheet: `title_lines` (each cut to the width) above (fitted picture or None, caption) cells."""
    sheet = Image.new("RGB", grid.size, BACKGROUND)
    font = _font(grid.title_font_size)
    for number, line in enumerate(title_lines):
        text = _fit_text(line, font, grid.size[0] - 2 * GAP)
        middle = GAP + (number + 0.5) * _line_height(font)
        ImageDraw.Draw(sheet).text((GAP, middle), text, font=font, fill=TEXT, anchor="lm")
    font = _font(grid.caption_font_size)
    for index, (picture, caption) in enumerate(cells):
        sheet.paste(_cell(picture, caption, grid, font), grid.origin(index))
    return sheet


def captioned_grid(
    pictures: Sequence[tuple[Image.Image, str]],
    *,
    tile_side: int = 256,
    columns: int | None = None,
    title: str | None = None,
    max_title_lines: int = 3,
) -> Image.Image:
    """(image, caption) pairs already in memory as one captioned grid, not encoded.

    Each image is fitted into its square; the title is wrapped to the sheet's width (newlines in it
    start new lines), at most `max_title_lines` lines. Raises ValueError as `sheet_grid` does.
    """
    grid = sheet_grid(len(pictures), tile_side=tile_side, columns=columns)
    lines = []
    if title is not None:
        lines = _wrap_text(title, _font(grid.title_font_size), grid.size[0] - 2 * GAP, max_title_lines)
        grid = sheet_grid(len(pictures), tile_side=tile_side, columns=columns, titled=True, title_lines=len(lines))
    cells = [(_fitted(image, grid.tile_side), caption) for image, caption in pictures]
    return _render(cells, grid, lines)


def contact_sheets(
    tiles: Sequence[Tile],
    *,
    max_bytes: int,
    title: str | None = None,
    filename_prefix: str = "sheet",
    tile_side: int = 256,
    columns: int | None = None,
    max_tiles_per_page: int = 20,
) -> list[Sheet]:
    """The tiles as captioned grids, at most `max_tiles_per_page` a sheet, each sheet at most `max_bytes`.

    Zero tiles give no sheets. With several sheets the title gets " (page/pages)". A sheet is
    PNG when that fits, else WebP (JPEG without WebP support) at falling quality, then scaled
    down. Unreadable images become placeholders. Raises ValueError when a sheet cannot fit
    `max_bytes` even scaled down to about 16 pixels, or for a bad tile_side, columns or page size.
    Deterministic: the same tiles and files give the same bytes.
    """
    if max_tiles_per_page < 1:
        raise ValueError("max_tiles_per_page must be at least 1")
    pages = [tiles[start:start + max_tiles_per_page] for start in range(0, len(tiles), max_tiles_per_page)]
    sheets = []
    for number, page in enumerate(pages, start=1):
        page_title = f"{title} ({number}/{len(pages)})" if title is not None and len(pages) > 1 else title
        titles = [] if page_title is None else [page_title]
        grid = sheet_grid(len(page), tile_side=tile_side, columns=columns, titled=bool(titles))
        cells = [(_picture(Path(tile.image_path), grid.tile_side), tile.caption) for tile in page]
        data, extension = encode_for_upload(_render(cells, grid, titles), max_bytes)
        sheets.append(Sheet(data, f"{filename_prefix}-{number}.{extension}", len(page)))
    return sheets
