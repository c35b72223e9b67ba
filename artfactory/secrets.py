"""The secrets this project holds, and masking them out of any text.

Providers sometimes echo the caller's key in an error body; a library may
put a connection string in an exception. Whatever text is stored, shown or
logged from such a source goes through ``mask_secrets`` first.
"""
import logging
import os

from django.conf import settings

# Settings (and environment variables of the same name) that hold secrets.
SECRET_NAMES = (
    "FAL_KEY", "REPLICATE_API_TOKEN", "CIVITAI_API_TOKEN", "SECRET_KEY",
    "REPLICATE_WEBHOOK_SECRET", "AWS_SECRET_ACCESS_KEY",
)
MASK = "***"
# Shorter values are not masked: they would hide ordinary words.
MIN_SECRET_LENGTH = 8


def secret_values() -> set[str]:
    """Every configured secret, read now (tests and deployments change them)."""
    values = {str(getattr(settings, name, "") or "") for name in SECRET_NAMES}
    values |= {os.environ.get(name, "") for name in SECRET_NAMES}
    values |= {str(db.get("PASSWORD") or "") for db in settings.DATABASES.values()}
    return {value for value in values if len(value) >= MIN_SECRET_LENGTH}


def mask_secrets(text: str) -> str:
    """``text`` with every configured secret replaced by ``***``."""
    # Longest first: a secret that contains another is masked whole.
    for value in sorted(secret_values(), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


class MaskingFormatter(logging.Formatter):
    """Log lines, tracebacks included, with every configured secret masked.

    The last line of defence: code never logs a secret on purpose, but a
    library's exception text might carry one.
    """

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))
