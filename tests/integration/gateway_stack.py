"""A gateway (in a thread, on a free port) over a real retriever, PostgreSQL and Redis, with two
knowledge bases filled as the ingestion worker would leave them, an admin key and a key scoped to
the first; shared by the MCP and the OpenAI tool-calling tests."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from retriever.app import create_app as create_retriever
from services.common import api_keys
from services.common.chunks import ChunkIn
from services.common.db import make_engine, make_sessionmaker, upgrade_database
from services.common.embedding import create_embedder
from services.common.models import Chunk, Document, KnowledgeBase
from services.common.retriever_client import RetrieverClient
from services.common.settings import Settings
from services.common.tasks import llm_queue
from services.gateway.app import create_app as create_gateway
from services.launcher import free_port

TOKEN = SecretStr("internal-mcp-token")
ALPHA = {  # (filename, text) per chunk of the scoped knowledge base
    "hr.md": ["Employees get 15 days of paid leave per year.", "公司每年为员工提供一次免费体检。"],
    "it.md": ["The office Wi-Fi password changes on the first Monday of each month."],
}
BETA = {"secret.md": ["The launch code for project Kestrel is 0417."]}


def _serve(app: FastAPI) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    return server, thread, f"http://127.0.0.1:{port}"


@dataclass
class Stack:
    gateway: str
    app: FastAPI
    settings: Settings
    admin_key: str
    alpha_key: str
    alpha: str
    beta: str


def _fill(
    settings: Settings, retriever: RetrieverClient, kb_name: str, docs: dict[str, list[str]]
) -> None:
    """Ready documents and their chunks, indexed as the ingestion worker would leave them."""
    sessions = make_sessionmaker(make_engine(settings.sqlalchemy_url))
    embedder = create_embedder(settings.embedding)
    with sessions() as session:
        model, dim = retriever.info()
        kb = KnowledgeBase(name=kb_name, embedding_model=model, embedding_dim=dim)
        session.add(kb)
        session.flush()
        items: list[ChunkIn] = []
        for filename, texts in docs.items():
            doc = Document(
                knowledge_base_id=kb.id,
                filename=filename,
                content_type="text/markdown",
                size_bytes=100,
                sha256=uuid.uuid4().hex * 2,
                storage_path=filename,
                status="ready",
                chunk_count=len(texts),
            )
            session.add(doc)
            session.flush()
            for position, text in enumerate(texts):
                chunk = Chunk(
                    document_id=doc.id, knowledge_base_id=kb.id, position=position, text=text
                )
                session.add(chunk)
                session.flush()
                vector = embedder.embed([text])[0]
                items.append(
                    ChunkIn(chunk_id=chunk.id, document_id=doc.id, text=text, vector=vector)
                )
        session.commit()
        retriever.add(kb.id, model, dim, items)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("mcp-data")
    upgrade_database(postgres_url)
    retriever_settings = Settings(data_dir=data_dir / "retriever", internal_token=TOKEN)
    r_server, r_thread, r_url = _serve(create_retriever(retriever_settings))
    settings = Settings(
        data_dir=data_dir,
        database_url=postgres_url,
        redis_url=redis_url,
        queue_prefix=f"zhiku-mcp-{uuid.uuid4().hex[:8]}",
        retriever_url=r_url,
        internal_token=TOKEN,
    )
    retriever = RetrieverClient(r_url, token=TOKEN)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            retriever.info()
            break
        except Exception:
            time.sleep(0.3)
    alpha, beta = f"alpha-{uuid.uuid4().hex[:6]}", f"beta-{uuid.uuid4().hex[:6]}"
    _fill(settings, retriever, alpha, ALPHA)
    _fill(settings, retriever, beta, BETA)
    sessions = make_sessionmaker(make_engine(postgres_url))
    with sessions() as session:
        admin = api_keys.create_key(session, api_keys.ApiKeyCreate(admin=True)).token
        scoped = api_keys.create_key(session, api_keys.ApiKeyCreate(knowledge_bases=[alpha])).token
    app = create_gateway(settings)
    g_server, g_thread, g_url = _serve(app)
    try:
        yield Stack(g_url, app, settings, admin, scoped, alpha, beta)
    finally:
        for server, thread in ((g_server, g_thread), (r_server, r_thread)):
            server.should_exit = True
            thread.join(30)
        retriever.close()
        redis.Redis.from_url(redis_url).delete(llm_queue(settings))
