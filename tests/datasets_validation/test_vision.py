"""Requirement 3, vision rules: image counts and places, URLs, decoded data-URL images."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from PIL import Image

from datasets.validation import vision
from datasets.validation.tokens import image_tokens

from .helpers import GPT4O, codes, jsonl, messages_of, padded, validate

REPO = Path(__file__).resolve().parents[2]


def data_url(fmt: str = "PNG", mode: str = "RGB", size: tuple[int, int] = (8, 8)) -> str:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format=fmt)
    mime = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}[fmt]
    return f"data:image/{mime};base64," + base64.b64encode(buffer.getvalue()).decode()


def image(url: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, **extra}}


def with_images(*parts: dict[str, Any], role: str = "user") -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "look"}]
    if role == "user":
        messages.append({"role": "user", "content": list(parts)})
        messages.append({"role": "assistant", "content": "ok"})
    else:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": "x"}, *parts]})
    return {"messages": messages}


def check(*examples: Any) -> Any:
    return validate(jsonl(padded(list(examples))), model_id=GPT4O)


def test_valid_images_in_all_accepted_forms() -> None:
    report = check(
        with_images(image("https://example.com/a.png")),
        with_images(image("http://example.com/a.jpg", detail="low")),
        with_images(image(data_url("PNG", "RGBA")), image(data_url("JPEG"), detail="high")),
        with_images(image(data_url("WEBP"), detail="auto")),
    )
    assert codes(report) == {}
    assert report.format == "vision"
    assert report.n_image_examples == 4
    assert report.format_counts == {"chat": 56, "vision": 4}


def test_at_most_ten_images_per_example() -> None:
    report = check(
        with_images(*[image(f"https://e.com/{i}.png") for i in range(10)]),
        with_images(*[image(f"https://e.com/{i}.png") for i in range(11)]),
    )
    assert codes(report) == {"too_many_images": 1}
    assert report.lines("too_many_images") == [2]
    assert messages_of(report, "too_many_images") == ["example has 11 images; at most 10 allowed"]


def test_no_images_in_assistant_messages() -> None:
    report = check(with_images(image("https://e.com/a.png"), role="assistant"))
    assert codes(report) == {"image_in_assistant": 1}
    assert messages_of(report, "image_in_assistant") == [
        "message 2 part 2: assistant messages cannot contain images"
    ]


def test_image_urls_must_be_http_or_data() -> None:
    report = check(
        with_images(image("ftp://e.com/a.png")),
        with_images(image("/local/file.png")),
        with_images(image(42)),
        with_images(image("https://")),
        with_images(image("data:text/plain;base64,aGk=")),
        with_images(image("data:image/png,rawbytes")),
        with_images({"type": "image_url", "image_url": "https://e.com/a.png"}),
    )
    assert codes(report) == {"invalid_image_url": 7}
    assert report.lines("invalid_image_url") == [1, 2, 3, 4, 5, 6, 7]
    assert messages_of(report, "invalid_image_url") == [
        "message 2 part 1: URL 'ftp://e.com/a.png' is neither http(s) nor a data URL",
        "message 2 part 1: URL '/local/file.png' is neither http(s) nor a data URL",
        "message 2 part 1: image_url.url must be a string",
        "message 2 part 1: malformed URL 'https://'",
        "message 2 part 1: a data URL must look like data:image/<type>;base64,<data>",
        "message 2 part 1: a data URL must look like data:image/<type>;base64,<data>",
        "message 2 part 1: image_url must be an object with a url",
    ]
    # The excerpt of an image finding is the URL, not the start of the line.
    assert report.findings["invalid_image_url"].examples[0].excerpt == "ftp://e.com/a.png"


def test_detail_must_be_low_high_or_auto() -> None:
    report = check(
        with_images(image("https://e.com/a.png", detail="medium")),
        with_images(image("https://e.com/a.png", detail="low", size=3)),
    )
    assert codes(report) == {"invalid_image_detail": 1, "invalid_content_part": 1}
    assert messages_of(report, "invalid_image_detail") == [
        "message 2 part 1: detail 'medium' is not low, high or auto"
    ]
    assert messages_of(report, "invalid_content_part") == [
        'message 2 part 1: unexpected image_url key(s) "size"'
    ]


def test_data_url_images_are_decoded_and_checked() -> None:
    report = check(
        with_images(image(data_url("GIF", "P"))),
        with_images(image(data_url("BMP"))),
        with_images(image(data_url("PNG", "L"))),
        with_images(image(data_url("PNG", "P"))),
        with_images(image(data_url("JPEG", "CMYK"))),
        with_images(image("data:image/png;base64,not*base64")),
        with_images(image("data:image/png;base64," + base64.b64encode(b"garbage").decode())),
    )
    assert codes(report) == {
        "unsupported_image_format": 2,
        "unsupported_image_mode": 4,
        "invalid_image_data": 2,
    }
    assert report.lines("unsupported_image_format") == [1, 2]
    assert messages_of(report, "unsupported_image_format") == [
        "message 2 part 1: image format GIF is not JPEG, PNG or WEBP",
        "message 2 part 1: image format BMP is not JPEG, PNG or WEBP",
    ]
    assert report.lines("unsupported_image_mode") == [1, 3, 4, 5]
    assert messages_of(report, "unsupported_image_mode")[1:] == [
        "message 2 part 1: image mode L is not RGB or RGBA",
        "message 2 part 1: image mode P is not RGB or RGBA",
        "message 2 part 1: image mode CMYK is not RGB or RGBA",
    ]
    assert report.lines("invalid_image_data") == [6, 7]
    assert messages_of(report, "invalid_image_data")[0].startswith(
        "message 2 part 1: data URL is not valid base64"
    )
    assert messages_of(report, "invalid_image_data")[1].startswith(
        "message 2 part 1: data URL does not hold a readable image"
    )


def test_images_over_10_mb_are_rejected() -> None:
    limit = vision.MAX_IMAGE_BYTES
    assert limit == 10 * 1024 * 1024
    just_over = base64.b64encode(b"\0" * (limit + 1)).decode()
    far_over = base64.b64encode(b"\0" * (limit + 1_000_000)).decode()
    report = check(
        with_images(image("data:image/png;base64," + just_over)),
        with_images(image("data:image/png;base64," + far_over)),
    )
    assert codes(report) == {"image_too_large": 2}
    assert messages_of(report, "image_too_large") == [
        "message 2 part 1: image is 10,485,761 bytes (max 10 MB)",
        "message 2 part 1: image is about 11,485,761 bytes (max 10 MB)",
    ]


def test_images_need_a_vision_model() -> None:
    examples = padded([with_images(image("https://e.com/a.png")) for _ in range(3)])
    examples[1]["messages"][1]["content"][0]["image_url"]["url"] += "?v=2"
    examples[2]["messages"][1]["content"][0]["image_url"]["url"] += "?v=3"
    report = validate(jsonl(examples), model_id="gpt-4o-mini-2024-07-18")
    assert codes(report) == {"vision_not_supported": 3}
    assert report.lines("vision_not_supported") == [1, 2, 3]
    assert messages_of(report, "vision_not_supported")[0] == (
        "example with images; gpt-4o-mini-2024-07-18 cannot be fine-tuned on images"
    )
    assert validate(jsonl(examples), model_id=GPT4O).is_valid


def test_image_token_estimates() -> None:
    assert image_tokens(None, None, "low") == 85
    assert image_tokens(4000, 4000, "low") == 85
    assert image_tokens(None, None, None) == 765  # remote: assumed 1024×1024 at high detail
    assert image_tokens(1024, 1024, "high") == 765  # 768×768 → 2×2 tiles
    assert image_tokens(2048, 4096, "auto") == 1105  # → 1024×2048 → 768×1536 → 2×3 tiles
    assert image_tokens(100, 100, "high") == 255  # one tile
    assert image_tokens(513, 100, None) == 425  # two tiles, no scaling


def test_image_tokens_count_in_the_example_total() -> None:
    url = data_url("PNG", size=(1024, 1024))
    one = validate(jsonl([with_images(image(url))]), model_id=GPT4O)
    low = validate(jsonl([with_images(image(url, detail="low"))]), model_id=GPT4O)
    assert one.tokens.total.total - low.tokens.total.total == 765 - 85


def test_pillow_is_imported_only_for_data_url_images(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from datasets.validation import validate_stream
        text = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\\n'
        remote = b'{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://e.com/a.png"}}]}, {"role": "assistant", "content": "yo"}]}\\n'
        validate_stream(text * 20 + remote)
        print("PIL" in sys.modules)
        validate_stream(sys.stdin.buffer.read())
        print("PIL" in sys.modules)
        """
    )
    line = jsonl([with_images(image(data_url()))])
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=line,
        capture_output=True,
        check=True,
        cwd=tmp_path,
        env=env,
    )
    assert done.stdout.split() == [b"False", b"True"]
