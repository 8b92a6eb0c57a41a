"""Contact sheets: many stored images in one captioned grid (for /gallery and challenge entries).

Pure Pillow and synchronous: callers run `contact_sheets` in a worker thread
(`asyncio.to_thread`); it decodes every image and encodes every sheet itself.
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
    title_height: int  # 0 without a title

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


def sheet_grid(count: int, *, tile_side: int = 256, columns: int | None = None, titled: bool = False) -> Grid:
    """The grid for `count` tiles: `columns` wide (at most `count`), or near-square when None."""
    if count < 1 or tile_side < MIN_TILE_SIDE or (columns is not None and columns < 1):
        raise ValueError(f"need count >= 1, tile_side >= {MIN_TILE_SIDE} and columns >= 1")
    columns = min(columns, count) if columns else math.ceil(math.sqrt(count))
    caption_size = max(12, tile_side // 12)
    title_size = round(caption_size * 1.4)
    title_height = _line_height(_font(title_size)) + GAP if titled else 0
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
            picture = ImageOps.exif_transpose(image).convert("RGBA")
        return ImageOps.contain(picture, (side, side), Image.Resampling.LANCZOS)  # small ones grow
    except Exception:  # any damaged file (Pillow raises many kinds) costs its tile, never the sheet
        return None


def _cell(tile: Tile, grid: Grid, font: ImageFont.FreeTypeFont) -> Image.Image:
    """One tile: the picture square and its caption strip, drawn apart so nothing spills over."""
    side = grid.tile_side
    cell = Image.new("RGB", (side, side + grid.caption_height), BACKGROUND)
    draw = ImageDraw.Draw(cell)
    picture = _picture(Path(tile.image_path), side)
    if picture is None:
        draw.rectangle((0, 0, side - 1, side - 1), fill=PLACEHOLDER)
        draw.text((side / 2, side / 2), _fit_text(UNAVAILABLE, font, side - 2 * PAD), font=font, fill=TEXT,
                  anchor="mm")
    else:
        draw.rectangle((0, 0, side - 1, side - 1), fill=TILE_BACKGROUND)
        cell.paste(picture, ((side - picture.width) // 2, (side - picture.height) // 2), picture)
    draw.text((side / 2, side + grid.caption_height / 2), _fit_text(tile.caption, font, side - 2 * PAD),
              font=font, fill=TEXT, anchor="mm")
    return cell


def _render(tiles: Sequence[Tile], grid: Grid, title: str | None) -> Image.Image:
    sheet = Image.new("RGB", grid.size, BACKGROUND)
    if title is not None:
        font = _font(grid.title_font_size)
        text = _fit_text(title, font, grid.size[0] - 2 * GAP)
        ImageDraw.Draw(sheet).text((GAP, GAP + _line_height(font) / 2), text, font=font, fill=TEXT, anchor="lm")
    font = _font(grid.caption_font_size)
    for index, tile in enumerate(tiles):
        sheet.paste(_cell(tile, grid, font), grid.origin(index))
    return sheet


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
        grid = sheet_grid(len(page), tile_side=tile_side, columns=columns, titled=page_title is not None)
        data, extension = encode_for_upload(_render(page, grid, page_title), max_bytes)
        sheets.append(Sheet(data, f"{filename_prefix}-{number}.{extension}", len(page)))
    return sheets
