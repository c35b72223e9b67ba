"""Provider adapters, chosen by the machine's provider slug."""
from factory.providers.base import ProviderBackend
from factory.providers.civitai import CivitaiBackend
from factory.providers.demo import DemoBackend
from factory.providers.fal import FalBackend
from factory.providers.replicate import ReplicateBackend

BACKENDS: dict[str, type[ProviderBackend]] = {
    DemoBackend.slug: DemoBackend,
    FalBackend.slug: FalBackend,
    ReplicateBackend.slug: ReplicateBackend,
    CivitaiBackend.slug: CivitaiBackend,
}


def missing_key(slug: str) -> str | None:
    """The setting a provider still needs before it can be used, if any."""
    from django.conf import settings

    backend = BACKENDS.get(slug)
    if backend is None or not backend.key_setting:
        return None
    return None if getattr(settings, backend.key_setting, "") else backend.key_setting


def get_backend(slug: str) -> ProviderBackend:
    """A ready adapter for the provider ``slug``."""
    try:
        return BACKENDS[slug]()
    except KeyError:
        raise LookupError(
            f"no adapter for provider {slug!r}; known: {sorted(BACKENDS)}"
        ) from None
