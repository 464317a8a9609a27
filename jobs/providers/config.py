"""How to reach one provider account: plain values, so this package needs no Django."""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("openai", "azure_openai", "sandbox", "together")
AZURE_DEFAULT_API_VERSION = "preview"


@dataclass(frozen=True)
class ConnectionConfig:
    kind: str  # "openai" | "azure_openai" | "sandbox" | "together"
    base_url: str
    # repr=False: configs end up in logs and tracebacks; the key must not.
    api_key: str = field(repr=False)
    organization: str = ""
    project: str = ""
    api_version: str = ""
    timeout_connect: float = 5.0
    timeout_read: float = 60.0
    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    retry_after_cap: float = 60.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown provider kind {self.kind!r}; expected one of {KINDS}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")

    @property
    def is_azure(self) -> bool:
        return self.kind == "azure_openai"

    @property
    def effective_api_version(self) -> str:
        """The ``api-version`` query value to send, or "" when the kind does not use one."""
        if not self.is_azure:
            return ""
        return self.api_version or AZURE_DEFAULT_API_VERSION
