"""One Settings object, read from ``ZHIKU_*`` environment variables (nested with ``__``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ChunkingSettings(BaseModel):
    size: int = Field(500, ge=50, le=8000, description="Chunk size in characters.")
    overlap: int = Field(80, ge=0, le=2000, description="Overlap between chunks in characters.")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingSettings:
        if self.overlap >= self.size:
            raise ValueError(
                f"chunk overlap ({self.overlap}) must be below chunk size ({self.size})"
            )
        return self


class EmbeddingSettings(BaseModel):
    backend: Literal["use", "sentence-transformers"] = Field(
        "use", description="'use': multilingual USE v3 (offline default); else a local model dir."
    )
    model_path: str | None = Field(
        None,
        description="Local sentence-transformers model directory (backend sentence-transformers).",
    )
    batch_size: int = Field(64, ge=1, le=4096)
    threads: int = Field(2, ge=1, le=256)
    device: str = Field(
        "cpu", description="torch device of the sentence-transformers backend, e.g. 'cuda:0'."
    )


class LLMSettings(BaseModel):
    model_path: str | None = Field(
        None, description="Path of a GGUF file; unset uses the default model assembled under data/."
    )
    default_model: Literal["qwen2.5-0.5b", "qwen2.5-1.5b"] = Field(
        "qwen2.5-1.5b", description="Which bundled model to assemble when model_path is unset."
    )
    n_ctx: int = Field(4096, ge=512, le=131072)
    n_threads: int = Field(2, ge=1, le=256)
    n_batch: int = Field(512, ge=8, le=8192)
    max_tokens: int = Field(512, ge=1, le=8192)
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    seed: int = Field(42)
    n_gpu_layers: int = Field(0, ge=-1, description="Layers offloaded to the GPU; -1 means all.")
    main_gpu: int = Field(0, ge=0)
    tensor_split: list[float] | None = Field(None, description="Share of the model per GPU.")
    flash_attn: bool = Field(False)
    use_mmap: bool = Field(
        False,
        description="Map the GGUF instead of reading it: llama.cpp repacks the weights for its CPU "
        "kernels, so a mapped file keeps a second copy resident (bench/results/footprint.md).",
    )
    grounding_hold: bool = Field(
        True,
        description="Hold the answer's first sentence back until it is found in the passages; "
        "costs its generation time before the first token, stops answers from model memory.",
    )
    stream_flush_ms: int = Field(
        0,
        ge=0,
        le=1000,
        description="Join the pieces generated within this many ms into one token event (the "
        "first goes at once); 0: one event per piece. Saves a publish per token on a GPU.",
    )
    prompt_cache_mb: int = Field(
        0,
        ge=0,
        description="RAM for evaluated prompt states (llama.cpp LlamaRAMCache), so a repeated "
        "question skips its prompt evaluation even after other requests; 0: the live context only.",
    )
    context_tokens: int = Field(
        600,
        ge=0,
        le=65536,
        description="Tokens of passage text in an answer prompt: the question's best sentences of "
        "the passages (with their neighbours) up to this many; 0: the passages whole. On 196 "
        "CMRC/XQuAD questions the answer span was always kept from 300 on; 600 leaves room for "
        "questions worded unlike their passage and cuts five Chinese chunks from ~1,700 tokens.",
    )
    prefix_states: int = Field(
        4,
        ge=0,
        le=64,
        description="Evaluated fixed prompt prefixes (rules and worked examples, one per language "
        "and purpose) kept per worker and restored for each request; 0: off.",
    )
    prompt_lookup: int = Field(
        0,
        ge=0,
        le=64,
        description="Draft tokens copied from the prompt per step (prompt-lookup decoding); 0: "
        "off. Off by default: it keeps every position's logits (n_ctx x vocabulary floats, "
        "2.5 GB for Qwen2.5 at n_ctx 4096) and changed one of two temperature-0 answers.",
    )


class RetrievalSettings(BaseModel):
    top_k: int = Field(5, ge=1, le=100)
    mode: Literal["dense", "keyword", "hybrid"] = Field("hybrid", description="Default mode.")
    rerank: bool = Field(
        True, description="Rescore the candidates by default (bench/results/retrieval.md)."
    )
    min_score: float = Field(
        0.15,
        ge=-1.0,
        le=1.0,
        description="Dense similarity under which a chunk is not context; no passage reaching "
        "it answers not-found without generating (bench/results/gate.md: at 0.15 no answerable "
        "question of the same language was refused).",
    )
    reranker: Literal["fusion", "lexical", "e5", "cross-encoder"] = Field(
        "fusion", description="What rescores candidates when rerank is on (see retriever.rerank)."
    )
    reranker_path: str | None = Field(
        None, description="Local sentence-transformers CrossEncoder directory (cross-encoder)."
    )
    reranker_device: str = Field("cpu", description="torch device of the cross-encoder.")
    ann_min_vectors: int = Field(
        50_000,
        ge=1,
        description="Vectors from which a knowledge base's dense index is approximate (IVF); "
        "below, search is exact. It turns exact again under half of this.",
    )
    ann_nprobe: int = Field(
        48,
        ge=1,
        le=65_536,
        description="Inverted lists scanned per approximate search (bench/results/"
        "retrieval_scale.md: recall@10 against exact search).",
    )
    ann_lists_per_sqrt: float = Field(
        2.0, gt=0, le=64, description="IVF lists per square root of the vector count."
    )
    journal_compact_fraction: float = Field(
        0.25,
        gt=0,
        le=10,
        description="Rewrite an index snapshot once its change journal exceeds this fraction "
        "of the snapshot's size (and 1 MiB).",
    )


class ParsingSettings(BaseModel):
    """Bounds on parsing one uploaded document, so a hostile file cannot exhaust a worker."""

    timeout_s: float = Field(
        120.0, gt=0, description="A document (any format) taking longer to parse is refused."
    )
    max_memory_mb: int = Field(
        2048, ge=16, description="Memory of the child process that parses one document."
    )
    pdf_max_pages: int = Field(2000, ge=1, description="A PDF with more pages is refused.")
    max_unpacked_mb: float = Field(200.0, gt=0, description="A .docx unpacking to more: refused.")
    max_compression_ratio: float = Field(
        200.0, gt=1, description="A .docx compressed more than this (a zip bomb) is refused."
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
    rate_limit_per_minute: int = Field(600, ge=0, description="Per API key (or IP); 0: off.")
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
