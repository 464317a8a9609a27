"""Provider clients: the only code in Tuneboard that speaks HTTP to a fine-tuning provider.

Callers build a ``ConnectionConfig`` from plain values, get a ``Provider`` from
``provider_for`` and work with the frozen records it returns; failures are
``ProviderError`` subclasses whose ``str()`` is safe to show.
"""

from jobs.providers.base import Provider
from jobs.providers.config import KINDS, ConnectionConfig
from jobs.providers.errors import (
    AuthError,
    BadRequestError,
    NotFoundError,
    OutcomeUnknownError,
    ProviderError,
    TransientProviderError,
)
from jobs.providers.openai_compat import OpenAICompatibleProvider
from jobs.providers.parameters import Parameter, Traits
from jobs.providers.records import (
    ChatResult,
    CheckpointInfo,
    ErrorInfo,
    EventInfo,
    FileInfo,
    JobInfo,
    JobSpec,
    ModelInfo,
    Page,
)
from jobs.providers.registry import (
    close_all,
    declared_parameters,
    families,
    parameters_for,
    provider_for,
    traits,
)
from jobs.providers.together import TogetherProvider
from jobs.providers.uploads import MULTIPART_THRESHOLD, PART_SIZE

__all__ = [
    "KINDS",
    "MULTIPART_THRESHOLD",
    "PART_SIZE",
    "AuthError",
    "BadRequestError",
    "ChatResult",
    "CheckpointInfo",
    "ConnectionConfig",
    "ErrorInfo",
    "EventInfo",
    "FileInfo",
    "JobInfo",
    "JobSpec",
    "ModelInfo",
    "NotFoundError",
    "OpenAICompatibleProvider",
    "OutcomeUnknownError",
    "Page",
    "Parameter",
    "Provider",
    "ProviderError",
    "TogetherProvider",
    "Traits",
    "TransientProviderError",
    "close_all",
    "declared_parameters",
    "families",
    "parameters_for",
    "provider_for",
    "traits",
]
