"""Wire contracts of saved conversations and of feedback on answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.common.schemas import AnswerCheck, Citation, StepEvent

# --- conversations ---------------------------------------------------------------------------


class ConversationCreate(BaseModel):
    knowledge_base: str = Field(..., min_length=1)
    title: str = Field("", max_length=200, description="Empty: set from the first question.")


class ConversationUpdate(BaseModel):
    title: str = Field(..., min_length=1, max_length=200)


class ConversationPublic(BaseModel):
    id: int
    knowledge_base: str
    title: str
    message_count: int = 0
    created_at: datetime
    updated_at: datetime


class ConversationsPublic(BaseModel):
    data: list[ConversationPublic]
    count: int


class ConversationMessagePublic(BaseModel):
    id: int
    role: Literal["user", "assistant"]
    content: str
    citations: list[Citation] = Field(default_factory=list)
    query: str = ""
    check: AnswerCheck = Field(default_factory=AnswerCheck)
    grounded: bool = True
    steps: list[StepEvent] = Field(
        default_factory=list, description="A deep answer's searches, as they were streamed."
    )
    created_at: datetime


class ConversationDetail(ConversationPublic):
    messages: list[ConversationMessagePublic]


# --- feedback --------------------------------------------------------------------------------


class FeedbackCreate(BaseModel):
    message_id: int | None = Field(None, description="The stored answer rated.")
    rating: Literal[-1, 1] = Field(..., description="1: thumbs up, -1: thumbs down.")
    comment: str = Field("", max_length=4000)
    knowledge_base: str = Field("", max_length=64)
    question: str = Field("", max_length=20000)
    answer: str = Field("", max_length=40000)


class FeedbackPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    message_id: int | None
    knowledge_base: str
    rating: int
    comment: str
    question: str
    answer: str
    created_at: datetime
