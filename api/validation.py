"""Turning a job request's raw parts into validated params and re-encoded images."""

from __future__ import annotations

import hashlib
import json
import threading
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from api.errors import ApiError
from nst_core.errors import ImageError
from nst_core.image import ImageInfo, decode_image, encode_image, probe_image, resize_long_side
from nst_core.params import StyleParams
from service.error_codes import ErrorCode
from service.settings import Settings
from service.webhooks import WebhookRefused, check_url, parse_events

MIN_SIDE = 16  # nst_core.transfer.MIN_SIDE (that module imports torch; the API never does)
UPLOAD_SIDE_FACTOR = 2  # stored inputs: at most this x NST_MAX_SIZE on the long side
DECODE_WAIT_SECONDS = 30.0  # how long a request waits for a decode slot before 503 `busy`


def parse_params(raw: str | None, n_styles: int, settings: Settings) -> StyleParams:
    """The job's StyleParams from the `params` JSON field, within this service's limits."""
    try:
        data: Any = json.loads(raw, parse_constant=_refuse_constant) if raw and raw.strip() else {}
    except (ValueError, RecursionError) as e:  # also too deep, too many digits, NaN/Infinity
        reason = e.msg if isinstance(e, json.JSONDecodeError) else str(e) or "nested too deeply"
        raise ApiError(422, ErrorCode.INVALID_PARAMS, f"params is not valid JSON: {reason[:200]}",
                       field="params") from e
    if not isinstance(data, dict):
        raise ApiError(422, ErrorCode.INVALID_PARAMS, "params must be a JSON object", field="params")
    try:
        params = StyleParams.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ApiError(422, ErrorCode.INVALID_PARAMS, first["msg"],
                       field=f"params.{where}" if where else "params") from e
    _check_limits(params, n_styles, settings)
    return params


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _check_limits(params: StyleParams, n_styles: int, settings: Settings) -> None:
    def refuse(field: str, message: str) -> ApiError:
        return ApiError(422, ErrorCode.INVALID_PARAMS, message, field=f"params.{field}")

    if params.size > settings.max_size:
        raise refuse("size", f"size must be at most {settings.max_size}")
    if round(params.size * params.style_scale) > settings.max_size:
        raise refuse("style_scale", f"style_scale x size must be at most {settings.max_size}")
    if params.total_iterations > settings.max_steps:
        raise refuse("iterations", f"at most {settings.max_steps} iterations in total "
                                   f"(this request: {params.total_iterations})")
    if params.style_blend is not None and len(params.style_blend) != n_styles:
        raise refuse("style_blend", f"style_blend needs one weight per style image ({n_styles})")
    if params.device != "auto":
        raise refuse("device", "the service picks the device; leave device as 'auto'")
    if params.init == "image":
        raise refuse("init", "init='image' is not offered by the service")


def prepare_images(content: bytes, styles: list[bytes], params: StyleParams,
                   settings: Settings) -> tuple[bytes, list[bytes]]:
    """Check every header against the request's pixel budget and the content's aspect ratio,
    then decode one image at a time (a few per process) into a PNG no larger than a job uses."""
    infos = [_probe(content, "content", settings)] + [_probe(s, "style", settings) for s in styles]
    pixels = sum(i.width * i.height for i in infos)
    if pixels > settings.max_request_pixels:
        raise ApiError(422, ErrorCode.IMAGE_TOO_LARGE, f"the images hold {pixels} pixels in all; the "
                       f"limit per request is {settings.max_request_pixels}")
    _check_aspect(infos[0], params)
    return (_reencode(content, "content", settings),
            [_reencode(s, "style", settings) for s in styles])


def _probe(data: bytes, field: str, settings: Settings) -> ImageInfo:
    try:
        return probe_image(data, max_pixels=settings.max_pixels)
    except ImageError as e:
        raise ApiError(422, ErrorCode(e.code), e.message, field=field) from e


def _check_aspect(content: ImageInfo, params: StyleParams) -> None:
    # The engine gives every side at least MIN_SIDE pixels: a thinner output would be stretched.
    short = min(content.width, content.height) * params.size / max(content.width, content.height)
    if round(short) < MIN_SIDE:
        raise ApiError(422, ErrorCode.UNSUPPORTED_ASPECT_RATIO,
                       f"a {content.width}x{content.height} image at size {params.size} would be "
                       f"under {MIN_SIDE} px on its short side; crop it or raise size",
                       field="content")


def _reencode(data: bytes, field: str, settings: Settings) -> bytes:
    """Decode with the engine's safe rules (format, pixels, frames); store a plain PNG of at most
    UPLOAD_SIDE_FACTOR x NST_MAX_SIZE on its long side (no job can use more)."""
    if not _decode_slots(settings.max_concurrent_decodes).acquire(timeout=DECODE_WAIT_SECONDS):
        raise ApiError(503, ErrorCode.BUSY, "the API is decoding other uploads; retry later",
                       headers={"Retry-After": str(settings.retry_after_seconds)})
    try:
        image = decode_image(data, max_pixels=settings.max_pixels)
        limit = UPLOAD_SIDE_FACTOR * settings.max_size
        if max(image.size) > limit:
            image = resize_long_side(image, limit)
        return encode_image(image, "png")
    except ImageError as e:
        raise ApiError(422, ErrorCode(e.code), e.message, field=field) from e
    finally:
        _decode_slots(settings.max_concurrent_decodes).release()


@lru_cache
def _decode_slots(n: int) -> threading.BoundedSemaphore:
    """The process-wide limit on images being decoded at once (each may take 100s of MB)."""
    return threading.BoundedSemaphore(n)


def request_digest(params: StyleParams, content: bytes, styles: list[bytes]) -> str:
    """A hash of what the job would do, to tell an idempotent retry from a different request."""
    h = hashlib.sha256(json.dumps(params.model_dump(mode="json"), sort_keys=True).encode())
    for part in (content, *styles):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def parse_webhook(url: str | None, events: str | None, settings: Settings) -> tuple[str, str] | None:
    """(url, comma-separated events) from the form, or None; 422 `invalid_webhook` if refused."""
    if url is None:
        if events is not None:
            raise ApiError(422, ErrorCode.INVALID_WEBHOOK, "webhook_events needs a webhook",
                           field="webhook_events")
        return None
    if not settings.webhook_secrets():
        raise ApiError(422, ErrorCode.INVALID_WEBHOOK, "webhooks are not enabled on this server "
                                               "(no NST_WEBHOOK_SECRET)", field="webhook")
    try:
        check_url(url, settings.webhook_hosts())
    except WebhookRefused as e:
        raise ApiError(422, ErrorCode.INVALID_WEBHOOK, str(e), field="webhook") from e
    try:
        return url, ",".join(parse_events(events))
    except WebhookRefused as e:
        raise ApiError(422, ErrorCode.INVALID_WEBHOOK, str(e), field="webhook_events") from e
