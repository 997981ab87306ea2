"""The gateway client's HTTP plumbing: one connection pool, errors mapped to GatewayError."""

from __future__ import annotations

from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from services.client.sse import GatewayError, error_from_response

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"

ModelT = TypeVar("ModelT", bound=BaseModel)


class BaseClient:
    """Sends requests to the gateway and parses its answers into the wire schemas."""

    def __init__(
        self,
        base_url: str = DEFAULT_GATEWAY_URL,
        api_key: str | None = None,
        timeout: float = 30.0,
        chat_timeout: float = 330.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.chat_timeout = chat_timeout
        self._timeout, self._transport = timeout, transport
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def with_api_key(self, api_key: str | None) -> Self:
        """A client of the same gateway sending another key (or a web login's token)."""
        return type(self)(self.base_url, api_key, self._timeout, self.chat_timeout, self._transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    def _transport_error(self, exc: httpx.TransportError) -> GatewayError:
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return GatewayError(0, f"gateway at {self.base_url} timed out: {exc}", "timeout")
        return GatewayError(
            0, f"gateway unreachable at URL: {self.base_url} ({exc})", "unreachable"
        )

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._send(method, path, **kwargs)
        if response.is_error:
            raise error_from_response(response)
        return response

    def _get_model(self, model: type[ModelT], method: str, path: str, **kwargs: Any) -> ModelT:
        response = self._request(method, path, **kwargs)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise GatewayError(
                response.status_code, f"unexpected answer from the gateway: {exc}", "bad_response"
            ) from exc

    @staticmethod
    def _kb_path(kb: str) -> str:
        return f"/api/v1/knowledge-bases/{quote(kb, safe='')}"
