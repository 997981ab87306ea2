"""One Settings object, read from ``ZHIKU_*`` environment variables (nested with ``__``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.common.settings_sections import (
    ChatSettings,
    ChunkingSettings,
    EmbeddingSettings,
    LLMSettings,
    ParsingSettings,
    RetrievalSettings,
)


def _comma_list(value: object) -> object:
    """``a,b`` from the environment, or a list as given."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every knob of zhiku; build it in entrypoints, never at import time."""

    model_config = SettingsConfigDict(
        env_prefix="ZHIKU_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    data_dir: Path = Field(
        Path("data"), description="Uploads, indexes, models and SQLite live here."
    )
    database_url: str | None = Field(None, description="SQLAlchemy URL; unset: SQLite in data_dir.")
    redis_url: str | None = Field(
        None, description="Celery broker and token streams; unset: embedded."
    )
    queue_prefix: str = Field(
        "zhiku", pattern=r"^[\w.-]+$", description="Names the Celery queues; one per deployment."
    )
    retriever_url: str = Field("http://127.0.0.1:8001", description="Internal retriever service.")
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    max_upload_mb: float = Field(50.0, gt=0)
    generation_timeout_s: float = Field(300.0, gt=0)
    llm_queue_depth: int = Field(
        8,
        ge=0,
        le=10_000,
        description="Chats waiting or generating per live llm worker; beyond: 429 at once. 0: off.",
    )
    stream_send_timeout_s: float = Field(
        60.0,
        gt=0,
        description="A streamed chat whose client reads nothing for this long is stopped and "
        "its generation slot released.",
    )
    llm_workers: int = Field(
        1, ge=0, le=64, description="llm worker processes the local launcher starts on one queue."
    )
    log_level: str = "INFO"

    chunking: ChunkingSettings = ChunkingSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    llm: LLMSettings = LLMSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    chat: ChatSettings = ChatSettings()

    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Browser origins allowed to call the API; none: none."
    )
    keyless_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="Clients served without a key while no API key exists.",
    )
    keyless: bool | None = Field(
        None,
        description="true: serve keyless_networks without a key while no API key is active; "
        "false: every call needs a key; unset: keyless only while the gateway binds loopback "
        "and no API key was ever created (revoking the last key does not reopen it).",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host headers the gateway answers ('*': any); none: localhost, 127.0.0.1, "
        "::1 and gateway_host. Stops DNS rebinding.",
    )
    internal_token: SecretStr | None = Field(
        None,
        description="Shared secret of the internal retriever API; `make run` makes one per run.",
    )
    rate_limit_per_minute: int = Field(
        600,
        ge=0,
        description="Per caller once authenticated (web user, API key, keyless local), else per "
        "IP (failed authentications, logins); 0: off.",
    )
    session_hours: float = Field(
        12.0, gt=0, le=24 * 90, description="How long a web login lasts before a new login."
    )
    max_request_mb: float = Field(100.0, gt=0, description="Largest upload request body.")
    parsing: ParsingSettings = ParsingSettings()
    ingest_soft_time_limit_s: float = Field(
        3600.0,
        gt=0,
        description="An ingestion job running longer is stopped and failed with this reason "
        "(a 50 MB upload takes ~8 min at bench/results/langchain_baseline.md's 0.11 MB/s).",
    )
    ingest_time_limit_s: float = Field(
        3900.0,
        gt=0,
        description="Celery's hard limit on the ingestion task; only a prefork pool enforces it.",
    )
    ingest_requeue_after_s: float = Field(
        300.0,
        gt=0,
        description="A job still queued this long was never picked up (its message was lost): "
        "the ingestion worker queues it again, checking this often, and retry accepts it.",
    )

    @field_validator("cors_origins", "keyless_networks", "allowed_hosts", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        return _comma_list(value)

    @model_validator(mode="after")
    def _time_limits_nest(self) -> Settings:
        parse, soft, hard = (
            self.parsing.timeout_s,
            self.ingest_soft_time_limit_s,
            self.ingest_time_limit_s,
        )
        if not parse < soft < hard:
            raise ValueError(
                f"need parsing timeout ({parse:g} s) < ingestion soft time limit ({soft:g} s) "
                f"< ingestion time limit ({hard:g} s)"
            )
        return self

    @property
    def trusted_hosts(self) -> list[str]:
        """The Host headers the gateway answers: allowed_hosts, or this machine's names."""
        hosts = self.allowed_hosts or ["localhost", "127.0.0.1", "::1", self.gateway_host]
        # A Host header writes an IPv6 address in brackets: [::1]:8000.
        bracketed = (f"[{h}]" if ":" in h and not h.startswith("[") else h for h in hosts)
        return list(dict.fromkeys(bracketed))

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'zhiku.db').resolve()}"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "indexes"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "queue"

    def ensure_dirs(self) -> None:
        for path in (
            self.data_dir,
            self.uploads_dir,
            self.index_dir,
            self.models_dir,
            self.broker_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)
