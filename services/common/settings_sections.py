"""The sections of Settings: chunking, embedding, generation, retrieval and parsing."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator


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


class ServerSettings(BaseModel):
    """An OpenAI-compatible model server (vLLM, Ollama, llama.cpp server, TEI, Xinference, ...)."""

    base_url: str | None = Field(
        None, description="The server's API root, e.g. http://127.0.0.1:8080/v1 (backend openai)."
    )
    model: str | None = Field(None, description="The model name the server knows (backend openai).")
    api_key: SecretStr = Field(
        SecretStr("none"), description="Bearer key for the server; most local servers ignore it."
    )
    connect_timeout_s: float = Field(
        5.0, gt=0, le=600, description="A server not accepting the connection within this is down."
    )
    read_timeout_s: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="Longest wait for the server's next bytes (the first token included); keep it "
        "below ZHIKU_GENERATION_TIMEOUT_S so a stalled server is reported as such.",
    )


class EmbeddingSettings(ServerSettings):
    backend: Literal["use", "sentence-transformers", "openai"] = Field(
        "use",
        description="'use': multilingual USE v3 (offline default); 'sentence-transformers': a "
        "local model dir; 'openai': /v1/embeddings of an OpenAI-compatible server.",
    )
    retries: int = Field(
        3,
        ge=0,
        le=20,
        description="Retries of a failed /v1/embeddings batch, backing off (openai).",
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


class LLMSettings(ServerSettings):
    backend: Literal["llama.cpp", "openai"] = Field(
        "llama.cpp",
        description="'llama.cpp': the GGUF model loaded in each llm worker; 'openai': stream from "
        "an OpenAI-compatible server (base_url, model, api_key).",
    )
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
    grounding_support: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="Share of the held sentence's words that must occur in the passages, else the "
        "reply is the not-found sentence (chosen on raw answers: llm_worker/grounding.py).",
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
        400,
        ge=0,
        le=65536,
        description="Tokens of passage text in an answer prompt: the question's best sentences of "
        "the passages (with their neighbours) up to this many; 0: the passages whole. On 196 "
        "CMRC/XQuAD questions the answer span was always kept from 300 on; on 40 of the pool "
        "(seed 2) 400 kept it as often as 600 (39 and 38 against 39 whole), ~180 tokens fewer.",
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
    ann_sq8_min_vectors: int = Field(
        200_000,
        ge=1,
        description="Vectors from which the IVF stores 8-bit codes (a quarter of the memory; "
        "bench/results/retrieval_scale.md: recall@10 at a million); turns back under half.",
    )
    ann_mmap: bool = Field(
        True,
        description="Map saved dense indexes from disk at start-up instead of reading them in "
        "(a base is copied into memory at its first change after a restart).",
    )
    backend: Literal["local", "milvus"] = Field(
        "local",
        description="Where indexes live: local (FAISS + Tantivy files under the data dir) or "
        "milvus (a Milvus server or Milvus Lite file at milvus_uri; the retriever keeps no state).",
    )
    milvus_uri: str | None = Field(
        None, description="Milvus server (http://milvus:19530) or Milvus Lite file (milvus)."
    )
    journal_compact_fraction: float = Field(
        0.25,
        gt=0,
        le=10,
        description="Rewrite an index snapshot once its change journal exceeds this fraction "
        "of the snapshot's size (and 1 MiB).",
    )

    @model_validator(mode="after")
    def _milvus_has_a_uri(self) -> RetrievalSettings:
        if self.backend == "milvus" and not self.milvus_uri:
            raise ValueError("retrieval backend milvus needs ZHIKU_RETRIEVAL__MILVUS_URI")
        return self


class ChatSettings(BaseModel):
    deep_max_steps: int = Field(
        3,
        ge=1,
        le=5,
        description="Searches a deep chat may make before it answers (the first included); "
        "each further one costs a short planning generation.",
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
    max_unpacked_mb: float = Field(
        200.0, gt=0, description="A docx/xlsx/pptx unpacking to more is refused."
    )
    max_compression_ratio: float = Field(
        200.0, gt=1, description="A docx/xlsx/pptx compressed more than this (a zip bomb): refused."
    )
    max_sheet_rows: int = Field(
        200_000, ge=1, description="A spreadsheet (xlsx/csv) with more rows, all sheets: refused."
    )
    max_slides: int = Field(2000, ge=1, description="A presentation with more slides is refused.")
    ocr_max_pages: int = Field(
        300, ge=0, description="A PDF with more scanned (image-only) pages to OCR is refused."
    )
    max_image_pixels: float = Field(
        60e6, gt=0, description="An image (upload or rendered page) with more pixels: refused."
    )
    page_render_timeout_s: float = Field(
        20.0, gt=0, description="Rendering one PDF page for a preview taking longer is refused."
    )
    # OCR speed and accuracy: defaults chosen by bench.ocr_levers (README, "Parse quality").
    ocr_dpi: float = Field(
        200.0, ge=50, le=600, description="Scanned PDF pages are rendered at this for OCR."
    )
    ocr_max_side: int = Field(
        2000, ge=256, description="A page image is scaled down to this many pixels (long side)."
    )
    ocr_det_scale: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Text lines are found on the page scaled by this (recognition reads them "
        "at full size): detection costs about the square of it.",
    )
    ocr_threads: int = Field(
        2, ge=0, le=64, description="onnxruntime threads per OCR model (0: one per core)."
    )
    ocr_rec_batch: int = Field(
        1, ge=1, le=64, description="Text lines recognised per model call (a batch pads lines)."
    )
    ocr_angle_classifier: bool = Field(
        False, description="Turn upside-down text lines before reading (slower; rarely needed)."
    )
