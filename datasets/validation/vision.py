"""Checks for image content parts. Pillow is imported only when a data URL is decoded, so
text-only files never load it."""

from __future__ import annotations

import binascii
import io
import warnings
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .jsontext import json_clip

MAX_IMAGES_PER_EXAMPLE = 10
MAX_IMAGE_EXAMPLES = 50_000
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # "10 MB" in OpenAI's guide; read as MiB, the lenient side
IMAGE_DETAILS = frozenset({"low", "high", "auto"})
IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
IMAGE_MODES = frozenset({"RGB", "RGBA"})


@dataclass(slots=True)
class ImageCheck:
    problems: list[tuple[str, str]] = field(default_factory=list)  # (code, message)
    width: int | None = None
    height: int | None = None


def check_image(url: object, detail: object) -> ImageCheck:
    result = ImageCheck()
    # A list or object as detail is unhashable: compare strings only.
    if detail is not None and not (isinstance(detail, str) and detail in IMAGE_DETAILS):
        result.problems.append(
            ("invalid_image_detail", f"detail {_short(detail)} is not low, high or auto")
        )
    if not isinstance(url, str):
        result.problems.append(("invalid_image_url", "image_url.url must be a string"))
        return result
    head = url[:5].lower()
    if head == "data:":
        _check_data_url(url, result)
    elif head in ("http:", "https"):
        parts = urlsplit(url[:2048])
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            result.problems.append(("invalid_image_url", f"malformed URL {_short(url)}"))
    else:
        result.problems.append(
            ("invalid_image_url", f"URL {_short(url)} is neither http(s) nor a data URL")
        )
    return result


def _check_data_url(url: str, result: ImageCheck) -> None:
    header, comma, payload = url.partition(",")
    if not comma or not header.endswith(";base64") or not header[5:].startswith("image/"):
        result.problems.append(
            ("invalid_image_url", "a data URL must look like data:image/<type>;base64,<data>")
        )
        return
    # Reject by size before decoding, so an oversized image is never held twice.
    if len(payload) // 4 * 3 - 2 > MAX_IMAGE_BYTES:
        result.problems.append(
            ("image_too_large", f"image is about {len(payload) * 3 // 4:,} bytes (max 10 MB)")
        )
        return
    try:
        data = binascii.a2b_base64(payload, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        result.problems.append(("invalid_image_data", f"data URL is not valid base64 ({exc})"))
        return
    if len(data) > MAX_IMAGE_BYTES:
        result.problems.append(("image_too_large", f"image is {len(data):,} bytes (max 10 MB)"))
        return
    _inspect_pixels(data, result)


def _inspect_pixels(data: bytes, result: ImageCheck) -> None:
    from PIL import Image  # lazy: Pillow costs ~30 ms to import and most files have no images

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt, mode, size = image.format, image.mode, image.size
                image.verify()
    except Exception as exc:  # Pillow raises many types for corrupt input
        result.problems.append(
            ("invalid_image_data", f"data URL does not hold a readable image ({exc})")
        )
        return
    result.width, result.height = size
    if fmt not in IMAGE_FORMATS:
        result.problems.append(
            ("unsupported_image_format", f"image format {fmt} is not JPEG, PNG or WEBP")
        )
    if mode not in IMAGE_MODES:
        result.problems.append(("unsupported_image_mode", f"image mode {mode} is not RGB or RGBA"))


def _short(value: object, limit: int = 60) -> str:
    # Bounded whatever the value: a 10 MB URL or a huge array costs ``limit`` characters.
    text = repr(value[: limit + 1]) if isinstance(value, str) else json_clip(value, limit)
    return text if len(text) <= limit else text[: limit - 1] + "…"
