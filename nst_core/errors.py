"""Typed errors of the engine; each carries a stable machine-readable code."""


class NstError(Exception):
    """Base class: `code` is stable and machine-readable, the message is for humans."""

    code = "nst_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class WeightsNotFound(NstError):
    """The selected VGG19 weights source is not available on this machine."""

    code = "weights_not_found"


class InvalidParams(NstError):
    """Parameters that validate individually but do not fit together or with the inputs."""

    code = "invalid_params"


class Canceled(NstError):
    """The progress callback asked the run to stop."""

    code = "canceled"

    def __init__(self, message: str = "canceled by the caller") -> None:
        super().__init__(message)


class ImageError(NstError):
    """Base of every image decode or validation error."""

    code = "invalid_image"


class InvalidImage(ImageError):
    """Not an image, or a corrupt or truncated one."""

    code = "invalid_image"


class UnsupportedImage(ImageError):
    """An image format or mode we refuse to decode."""

    code = "unsupported_image"


class ImageTooLarge(ImageError):
    """More pixels than the configured limit (checked before full decode)."""

    code = "image_too_large"


class AnimatedImage(ImageError):
    """Animated images (GIF, APNG, WebP) have no single frame to stylize."""

    code = "animated_image"
