"""The one error hierarchy: each type has one HTTP status and a stable ``error_type``."""

from __future__ import annotations


class ZhikuError(Exception):
    status_code = 500
    error_type = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        """HTTP headers the error response carries besides the envelope."""
        return {}


class ValidationFailedError(ZhikuError):
    status_code = 422
    error_type = "validation_error"


class EmptyInputError(ZhikuError):
    status_code = 400
    error_type = "empty_input"


class UnauthorizedError(ZhikuError):
    """No API key, or one that is unknown or revoked."""

    status_code = 401
    error_type = "unauthorized"


class ForbiddenError(ZhikuError):
    """A valid API key without the right to do this."""

    status_code = 403
    error_type = "forbidden"


class NotFoundError(ZhikuError):
    status_code = 404
    error_type = "not_found"


class ConflictError(ZhikuError):
    status_code = 409
    error_type = "conflict"


class IndexInUseError(ConflictError):
    """A local index directory already held by another retriever process (raised at start)."""


class PayloadTooLargeError(ZhikuError):
    status_code = 413
    error_type = "payload_too_large"


class UnsupportedFileTypeError(ZhikuError):
    status_code = 415
    error_type = "unsupported_file_type"


class DocumentParseError(ZhikuError):
    status_code = 422
    error_type = "document_parse_error"


class EmbeddingMismatchError(ZhikuError):
    status_code = 409
    error_type = "embedding_mismatch"


class OverloadedError(ZhikuError):
    status_code = 429
    error_type = "overloaded"

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


class NotReadyError(ZhikuError):
    status_code = 503
    error_type = "not_ready"


class UpstreamError(ZhikuError):
    status_code = 502
    error_type = "upstream_error"


class GenerationTimeoutError(ZhikuError):
    status_code = 504
    error_type = "generation_timeout"


class IngestionTimeoutError(ZhikuError):
    """An ingestion job that ran past its time limit (ZHIKU_INGEST_SOFT_TIME_LIMIT_S)."""

    status_code = 504
    error_type = "ingestion_timeout"


ERROR_TYPES: dict[str, type[ZhikuError]] = {
    cls.error_type: cls
    for cls in (
        ZhikuError,
        ValidationFailedError,
        EmptyInputError,
        UnauthorizedError,
        ForbiddenError,
        NotFoundError,
        ConflictError,
        PayloadTooLargeError,
        UnsupportedFileTypeError,
        DocumentParseError,
        EmbeddingMismatchError,
        OverloadedError,
        NotReadyError,
        UpstreamError,
        GenerationTimeoutError,
        IngestionTimeoutError,
    )
}


def error_from_payload(status_code: int, payload: dict[str, object]) -> ZhikuError:
    """Rebuild the error an internal service answered with, keeping its type."""
    cls = ERROR_TYPES.get(str(payload.get("error_type", "")), UpstreamError)
    err = cls(str(payload.get("error", f"upstream answered {status_code}")))
    return err
