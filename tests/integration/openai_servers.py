"""Model servers for the openai backends' tests: llama_cpp.server, and servers that fail on cue.

The failing servers are raw sockets: a real server fails like this only by chance (a crash, a
hung GPU, a firewall), so the tests make each failure happen at a known moment.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def llama_cpp_server(model: Path, alias: str, n_ctx: int = 4096) -> Iterator[str]:
    """``python -m llama_cpp.server`` on ``model``; yields its /v1 base URL; stopped at the end."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model),
        "--model_alias", alias, "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(n_ctx), "--n_threads", "2", "--seed", "42", "--verbose", "False",
        # Else a second request (another worker's, a readiness probe) cuts the running one short.
        "--interrupt_requests", "False",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {proc.stderr.read()!r}"[:2000])  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start within 120 s")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def raw_server(reply: bytes | None) -> Iterator[str]:
    """A socket server that reads each request, sends ``reply`` (None: nothing) and hangs up.

    None stalls: the connection stays open and silent until the test ends. A reply without its
    end (a chunked body cut short) is a server dying mid-stream.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(65536)
            if reply is None:
                held.append(conn)
                continue
            conn.sendall(reply)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        stop.set()
        listener.close()
        for conn in held:
            conn.close()
        thread.join(timeout=5)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


def dying_stream_reply(first_token: str) -> bytes:
    """An SSE chat stream that sends one token and then loses its connection."""
    return _STREAM_HEAD + _token_event(first_token)


def interrupted_stream_reply(first_token: str) -> bytes:
    """A whole SSE chat stream that ends (``[DONE]``) before any choice has a finish reason."""
    return dying_stream_reply(first_token) + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"


def _token_event(token: str) -> bytes:
    event = {
        "id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
        "choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}],
    }  # fmt: skip
    return _chunk(f"data: {json.dumps(event)}\n\n".encode())


@contextmanager
def endless_stream_server(every_s: float = 0.02) -> Iterator[tuple[str, threading.Event]]:
    """A chat server whose answer never ends: one token every ``every_s`` until the client leaves.

    Yields the base URL and an event set once the client closed the stream (a send failed), so
    a test can tell that cancelling really stopped the server's generation. A real model ends
    its answer when it likes (how soon differs between CPUs); this one never does.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    closed, stop = threading.Event(), threading.Event()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(_STREAM_HEAD)
                while not stop.is_set():
                    conn.sendall(_token_event(" leave"))
                    time.sleep(every_s)
            except OSError:  # the client hung up: its generation was cancelled
                closed.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1", closed
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


class _EmbeddingRequest(BaseModel):
    model: str
    input: list[str] | str
    encoding_format: str = "float"


@contextmanager
def embedding_server(model_dir: Path, fail_first: int = 0) -> Iterator[tuple[str, list[int]]]:
    """/v1/embeddings over a local sentence-transformers model, in uvicorn on a free port.

    llama_cpp.server returns one vector per token for the GGUF models at hand (they have no
    pooling), so a small server like TEI's stands in. The first ``fail_first`` calls answer 503;
    the yielded list holds the batch size of every call.
    """
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    app = FastAPI()
    calls: list[int] = []

    @app.post("/v1/embeddings", response_model=None)
    def embeddings(body: _EmbeddingRequest) -> object:
        texts = [body.input] if isinstance(body.input, str) else body.input
        calls.append(len(texts))
        if len(calls) <= fail_first:
            from fastapi.responses import JSONResponse

            return JSONResponse({"error": {"message": "loading"}}, status_code=503)
        vectors = np.asarray(model.encode(texts), dtype=np.float32)
        data = [
            {"object": "embedding", "index": i, "embedding": v.tolist()}
            for i, v in enumerate(vectors)
        ]
        usage = {"prompt_tokens": 0, "total_tokens": 0}
        return {"object": "list", "data": data, "model": body.model, "usage": usage}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1", calls
    finally:
        server.should_exit = True
        thread.join(timeout=10)
