import io
import random
from pathlib import Path

import pytest
from PIL import Image

from bot.art.contact_sheet import (
    BACKGROUND,
    GAP,
    PLACEHOLDER,
    TILE_BACKGROUND,
    Grid,
    Tile,
    captioned_grid,
    contact_sheets,
    sheet_grid,
)

BIG = 50 * 1024 * 1024  # no limit in practice: sheets stay lossless PNG
COLOURS = [((i * 53) % 256, (i * 97 + 40) % 256, (i * 151 + 80) % 256) for i in range(20)]


def solid(path: Path, colour, size=(64, 64)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def close(a, b, tolerance=3) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def centre(grid: Grid, index: int) -> tuple[int, int]:
    x, y = grid.origin(index)
    return x + grid.tile_side // 2, y + grid.tile_side // 2


def colours(image: Image.Image) -> set:
    return {colour for _, colour in image.getcolors(image.width * image.height)}


def strip_pixels(sheet: Image.Image, grid: Grid, index: int) -> set:
    x, y = grid.origin(index)
    box = (x, y + grid.tile_side, x + grid.tile_side, y + grid.tile_side + grid.caption_height)
    return colours(sheet.crop(box))


@pytest.mark.parametrize(("count", "columns", "rows"), [(1, 1, 1), (5, 3, 2), (20, 5, 4)])
def test_grid_holds_one_tile_per_input_in_order(tmp_path, count, columns, rows):
    tiles = [Tile(solid(tmp_path / f"{i}.png", COLOURS[i]), f"artist {i}") for i in range(count)]
    [sheet] = contact_sheets(tiles, max_bytes=BIG, filename_prefix="gallery")
    assert (sheet.filename, sheet.tiles) == ("gallery-1.png", count)
    image = decode(sheet.data)
    grid = sheet_grid(count)
    assert (grid.columns, grid.rows) == (columns, rows)
    assert image.size == (columns * (256 + GAP) + GAP, rows * (256 + grid.caption_height + GAP) + GAP)
    for i in range(count):
        assert close(image.getpixel(centre(grid, i)), COLOURS[i])
        assert strip_pixels(image, grid, i) - {BACKGROUND}, "the caption is drawn"


def test_explicit_columns_and_tile_side(tmp_path):
    tiles = [Tile(solid(tmp_path / f"{i}.png", COLOURS[i]), str(i)) for i in range(5)]
    [sheet] = contact_sheets(tiles, max_bytes=BIG, columns=2, tile_side=100)
    grid = sheet_grid(5, tile_side=100, columns=2)
    assert (grid.columns, grid.rows) == (2, 3)
    image = decode(sheet.data)
    assert image.size == grid.size
    assert close(image.getpixel(centre(grid, 4)), COLOURS[4])
    assert sheet_grid(3, columns=10).columns == 3


def test_images_keep_their_aspect_and_small_ones_are_enlarged(tmp_path):
    wide = solid(tmp_path / "wide.png", (255, 0, 0), size=(400, 100))
    tiny = solid(tmp_path / "tiny.jpg", (0, 0, 255), size=(16, 16))
    [sheet] = contact_sheets([Tile(wide, "wide"), Tile(tiny, "tiny")], max_bytes=BIG)
    image, grid = decode(sheet.data), sheet_grid(2)
    x, y = grid.origin(0)
    assert close(image.getpixel((x + 128, y + 128)), (255, 0, 0))
    assert image.getpixel((x + 128, y + 10)) == TILE_BACKGROUND  # letterboxed above and below
    x, y = grid.origin(1)
    assert close(image.getpixel((x + 3, y + 3)), (0, 0, 255), tolerance=12)  # fills the whole square


def test_long_caption_is_cut_and_stays_in_its_own_strip(tmp_path):
    path = solid(tmp_path / "a.png", (200, 30, 30))
    tiles = [Tile(path, "W" * 500), Tile(path, ""), Tile(path, "short")]
    [sheet] = contact_sheets(tiles, max_bytes=BIG, columns=3)
    image, grid = decode(sheet.data), sheet_grid(3, columns=3)
    assert strip_pixels(image, grid, 0) - {BACKGROUND}
    assert strip_pixels(image, grid, 1) == {BACKGROUND}, "nothing spilled into the neighbour's strip"
    x, y = grid.origin(1)
    gap = image.crop((x - GAP, y + grid.tile_side, x, y + grid.tile_side + grid.caption_height))
    assert colours(gap) == {BACKGROUND}


@pytest.mark.parametrize(
    "caption", ["漢字 🎨 مرحبا", "two\nlines\tand\x00control", "\ud800 lone surrogate", "", " " * 50, "é" * 10_000]
)
def test_any_caption_is_drawn_without_error(tmp_path, caption):
    path = solid(tmp_path / "a.png", (10, 200, 10))
    [sheet] = contact_sheets([Tile(path, caption)], max_bytes=BIG, title=caption)
    assert decode(sheet.data).size == sheet_grid(1, titled=True).size


def test_title_bar(tmp_path):
    path = solid(tmp_path / "a.png", (10, 200, 10))
    [sheet] = contact_sheets([Tile(path, "x")] * 4, max_bytes=BIG, title="Lesson 2: style transfer")
    grid = sheet_grid(4, titled=True)
    image = decode(sheet.data)
    assert image.size == grid.size and grid.title_height > 0
    assert colours(image.crop((0, 0, image.width, grid.title_height))) - {BACKGROUND}
    assert close(image.getpixel(centre(grid, 3)), (10, 200, 10))


def test_pages_split_with_counts_and_names(tmp_path):
    paths = [solid(tmp_path / f"{i}.png", COLOURS[i]) for i in range(3)]
    tiles = [Tile(paths[i % 3], f"#{i + 1}") for i in range(45)]
    sheets = contact_sheets(tiles, max_bytes=BIG, filename_prefix="challenge-7", title="Entries", tile_side=64)
    assert [s.tiles for s in sheets] == [20, 20, 5]
    assert [s.filename for s in sheets] == ["challenge-7-1.png", "challenge-7-2.png", "challenge-7-3.png"]
    last, grid = decode(sheets[2].data), sheet_grid(5, tile_side=64, titled=True)
    assert last.size == grid.size
    assert close(last.getpixel(centre(grid, 0)), COLOURS[40 % 3])  # tile 41 is the first of page 3
    assert len(contact_sheets(tiles[:20], max_bytes=BIG)) == 1


def test_zero_tiles_give_no_sheets():
    assert contact_sheets([], max_bytes=1000) == []


def test_noisy_photos_fit_max_bytes(tmp_path):
    tiles = []
    for i in range(20):
        noise = Image.frombytes("RGB", (1024, 1024), random.Random(i).randbytes(1024 * 1024 * 3))
        path = tmp_path / (f"{i}.jpg" if i % 2 else f"{i}.png")
        noise.save(path, **({"quality": 95} if i % 2 else {}))
        tiles.append(Tile(path, f"photographer number {i}"))
    sheets = contact_sheets(tiles, max_bytes=200_000, title="Noise")
    assert [s.tiles for s in sheets] == [20]
    assert len(sheets[0].data) <= 200_000
    assert sheets[0].filename.endswith((".webp", ".jpg"))
    assert decode(sheets[0].data).size[0] > 500, "still a usable sheet, not a thumbnail"


def test_same_input_gives_same_bytes(tmp_path):
    tiles = [Tile(solid(tmp_path / f"{i}.png", COLOURS[i]), f"n{i}") for i in range(7)]
    first = contact_sheets(tiles, max_bytes=30_000, title="t", max_tiles_per_page=4)
    assert first == contact_sheets(tiles, max_bytes=30_000, title="t", max_tiles_per_page=4)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_unreadable_images_become_placeholders(tmp_path, monkeypatch):
    good = solid(tmp_path / "good.png", (250, 200, 0))
    (tmp_path / "text.png").write_text("not an image at all")
    truncated = tmp_path / "truncated.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300), (0, 90, 200)).save(buffer, format="JPEG")
    truncated.write_bytes(buffer.getvalue()[:400])
    (tmp_path / "empty.webp").write_bytes(b"")
    bmp = tmp_path / "image.bmp"
    Image.new("RGB", (8, 8)).save(bmp)  # a real image, but not a format stored submissions use
    bomb = solid(tmp_path / "bomb.png", (0, 0, 0), size=(200, 200))  # over 2x the limit: Pillow refuses
    near_bomb = solid(tmp_path / "near-bomb.png", (0, 0, 0), size=(120, 120))  # over 1x: Pillow only warns
    broken = [tmp_path / "missing.png", tmp_path / "text.png", truncated, tmp_path / "empty.webp", bmp, bomb,
              near_bomb, tmp_path]
    tiles = [Tile(good, "fine")] + [Tile(path, path.name) for path in broken]
    with monkeypatch.context() as patch:
        patch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)  # 10,000 pixels
        [sheet] = contact_sheets(tiles, max_bytes=BIG)
    image, grid = decode(sheet.data), sheet_grid(len(tiles))
    assert close(image.getpixel(centre(grid, 0)), (250, 200, 0))
    for index in range(1, len(tiles)):
        x, y = grid.origin(index)
        assert image.getpixel((x + 5, y + 5)) == PLACEHOLDER
        assert colours(image.crop((x, y, x + grid.tile_side, y + grid.tile_side))) - {PLACEHOLDER}, "says why"
        assert strip_pixels(image, grid, index) - {BACKGROUND}, "keeps its caption"


def test_impossible_limits_raise_value_error(tmp_path):
    path = solid(tmp_path / "a.png", (1, 2, 3))
    with pytest.raises(ValueError):
        contact_sheets([Tile(path, "a")], max_bytes=20)
    with pytest.raises(ValueError):
        contact_sheets([Tile(path, "a")], max_bytes=BIG, max_tiles_per_page=0)
    with pytest.raises(ValueError):
        contact_sheets([Tile(path, "a")], max_bytes=BIG, tile_side=8)


def test_captioned_grid_lays_out_images_in_memory_under_a_wrapped_title():
    pictures = [(Image.new("RGB", (40, 40), COLOURS[i]), f"lr 0.0{i}") for i in range(3)]
    long_title = "a lighthouse in a storm\n" + " · ".join(["steps 200", "size 256", "param stack"] * 6)
    image = captioned_grid(pictures, tile_side=64, columns=3, title=long_title, max_title_lines=3)
    grid = sheet_grid(3, tile_side=64, columns=3, titled=True, title_lines=3)  # the prompt, the recipe on two
    assert image.size == grid.size
    for i in range(3):
        assert close(image.getpixel(centre(grid, i)), COLOURS[i])  # small pictures fill their square
        assert strip_pixels(image, grid, i) - {BACKGROUND}
    one_line = captioned_grid(pictures, tile_side=64, title="short")
    assert one_line.size == sheet_grid(3, tile_side=64, titled=True).size
    assert captioned_grid(pictures[:1]).size == sheet_grid(1).size
