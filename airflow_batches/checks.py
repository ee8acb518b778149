"""The one check for "a positive number" (of seconds, bytes, attempts) used by every argument that needs one.

NaN, infinities and booleans are refused everywhere: ``True`` is an ``int`` to Python, ``nan > 0`` is
``False`` but ``nan <= 0`` is ``False`` too, so a hand-written ``value <= 0`` lets both through.
"""

from __future__ import annotations

import math

__all__ = ["is_positive_number", "positive_number"]


def is_positive_number(value: object) -> bool:
    """A finite ``int`` or ``float`` (not a ``bool``) greater than 0."""
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def positive_number(
    name: str, value: object, *, seconds: bool = True, none_means: str | None = None
) -> float:
    """``value`` as a float, or a ``ValueError`` naming ``name`` and what it must be.

    ``none_means`` documents, in the message, what ``None`` would have meant for an optional argument (the
    caller handles ``None`` itself).
    """
    if not is_positive_number(value):
        what = "a number of seconds > 0" if seconds else "a positive number"
        alternative = f" or None ({none_means})" if none_means else ""
        raise ValueError(f"{name} must be {what}{alternative}, got {value!r}")
    return float(value)  # type: ignore[arg-type]
