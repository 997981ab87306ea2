"""Every string of the web app in Simplified Chinese and English, and the language in use."""

from __future__ import annotations

from typing import Literal

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

Lang = Literal["zh", "en"]
LANG_KEY = "lang"
LANG_NAMES: dict[Lang, str] = {"zh": "中文", "en": "English"}
_LAST_LANG: list[Lang] = ["zh"]

CATALOGUE: dict[str, tuple[str, str]] = {
    # key: (Chinese, English)
    "tagline": ("文档知识问答", "Ask questions about your documents"),
    "language": ("语言", "Language"),
    "page_chat": ("对话", "Chat"),
    "page_library": ("知识库", "Knowledge bases"),
    "page_lab": ("检索实验", "Retrieval lab"),
    "page_eval": ("评测", "Evaluation"),
    # gateway state
    "unreachable": ("无法连接网关：{url}", "Gateway unreachable at {url}"),
    "start_hint": ("请启动网关：`make run`", "Start it with: `make run`"),
    "loading": ("模型加载中，请稍候…", "Model loading, please wait…"),
    "loading_checks": ("未就绪：{checks}", "Not ready yet: {checks}"),
    "loading_hint": (
        "页面会在就绪后工作；稍后刷新即可。",
        "The page works once everything is ready; refresh in a moment.",
    ),
    "auth": (
        "API 密钥缺失或错误（{status}）：请为网页应用设置 `ZHIKU_API_KEY` 后重启。",
        "API key missing or wrong ({status}): set `ZHIKU_API_KEY` for the web app and restart it.",
    ),
    "timeout": ("网关响应超时：{error}", "The gateway timed out: {error}"),
    # knowledge bases
    "login_title": ("登录", "Log in"),
    "username": ("用户名", "Username"),
    "password": ("密码", "Password"),
    "log_in": ("登录", "Log in"),
    "log_out": ("退出登录", "Log out"),
    "login_wrong": ("用户名或密码错误。", "Wrong username or password."),
    "login_ended": ("登录已过期，请重新登录。", "Your login has ended: log in again."),
    "logged_in_as": ("已登录：{name}", "Logged in as {name}"),
    "kb": ("知识库", "Knowledge base"),
    "kb_none": ("还没有知识库，请先创建。", "No knowledge base yet: create one."),
    "kb_new": ("新建知识库", "New knowledge base"),
    "kb_go_create": (
        "在上方导航的「知识库」页面创建一个。",
        "Create one on the “Knowledge bases” page (navigation above).",
    ),
    "name": ("名称", "Name"),
    "description": ("描述（可选）", "Description (optional)"),
    "create": ("创建", "Create"),
    "name_needed": ("请输入名称。", "Enter a name."),
    "rename": ("重命名", "Rename"),
    "save": ("保存", "Save"),
    "delete": ("删除", "Delete"),
    "kb_delete_confirm": (
        "删除知识库「{kb}」及其全部文档",
        "Delete knowledge base “{kb}” and all its documents",
    ),
    "upload": ("上传文档", "Upload documents"),
    "upload_hint": (
        "拖放文件到这里：TXT / MD / HTML / PDF / DOCX",
        "Drop files here: TXT / MD / HTML / PDF / DOCX",
    ),
    "upload_button": ("上传", "Upload"),
    "duplicate": ("{name}：已在知识库中", "{name}: already in the knowledge base"),
    "jobs": ("导入任务", "Ingestion jobs"),
    "jobs_none": ("还没有导入任务。", "No ingestion job yet."),
    "retry": ("重试", "Retry"),
    "stage_queued": ("排队中", "queued"),
    "stage_parsing": ("解析中", "parsing"),
    "stage_chunking": ("分块中", "chunking"),
    "stage_embedding": ("向量化中", "embedding"),
    "stage_indexing": ("建索引中", "indexing"),
    "stage_done": ("完成", "done"),
    "stage_failed": ("失败", "failed"),
    "documents": ("文档（{n}）", "Documents ({n})"),
    "documents_none": ("还没有文档：在上方上传。", "No documents yet: upload some above."),
    "doc_meta": ("{size} · {chunks} 个片段 · {date}", "{size} · {chunks} chunks · {date}"),
    # chat
    "new_chat": ("新对话", "New chat"),
    "history": ("历史对话", "Past chats"),
    "history_none": ("还没有保存的对话。", "No saved chats yet."),
    "title": ("标题", "Title"),
    "placeholder": ("向知识库提问…", "Ask the knowledge base…"),
    "placeholder_no_kb": ("请先选择或创建知识库", "Pick or create a knowledge base first"),
    "thinking": ("检索与生成中…", "Retrieving and generating…"),
    "reading": ("正在阅读 {n} 段资料…", "Reading {n} passages…"),
    "read": ("已阅读 {n} 段资料", "Read {n} passages"),
    "not_grounded": ("文档中未找到依据", "Not found in the documents"),
    "sources": ("引用", "Sources"),
    "source_title": ("引用来源", "Source"),
    "source_where": ("{doc} · 第 {pos} / {count} 段", "{doc} · chunk {pos} of {count}"),
    "where_page": ("第 {n} 页", "page {n}"),
    "where_slide": ("第 {n} 张幻灯片", "slide {n}"),
    "where_sheet": ("工作表「{sheet}」", "sheet '{sheet}'"),
    "where_rows": ("第 {rows} 行", "rows {rows}"),
    "searched_for": ("检索语句：{query}", "Searched for: {query}"),
    "copy": ("复制", "Copy"),
    "copy_hint": ("点击右上角图标复制答案", "Use the icon at the top right to copy"),
    "comment": ("补充意见（可选）", "Comment (optional)"),
    "send": ("发送", "Send"),
    "thanks": ("感谢反馈！", "Thanks for the feedback!"),
    "welcome": (
        "提问吧：答案会标注引用 [n]，点击引用可查看原文。",
        "Ask away: answers cite their sources as [n]; open one to read the passage.",
    ),
    # settings
    "settings": ("对话设置", "Chat settings"),
    "mode": ("检索方式", "Retrieval mode"),
    "deep": ("深度回答（多步检索）", "Deep answer (several searches)"),
    "deep_help": (
        "模型可改写问题或换知识库再检索几次，然后综合作答；较慢。",
        "The model may search again, reformulated or in another knowledge base, then answers "
        "from every search; slower.",
    ),
    "step": ("第 {n} 步检索：{query} · {kb}", "Search {n}: {query} · {kb}"),
    "step_none": ("没有找到段落。", "Nothing found."),
    "mode_hybrid": ("混合", "hybrid"),
    "mode_dense": ("向量", "dense"),
    "mode_keyword": ("关键词", "keyword"),
    "top_k": ("引用片段数", "Passages (top-k)"),
    "temperature": ("温度", "Temperature"),
    "max_tokens": ("最大生成长度", "Max tokens"),
    "system_prompt": ("系统提示词（留空使用默认）", "System prompt (empty: zhiku's default)"),
    # retrieval lab
    "lab_intro": (
        "查看某个问题会检索到哪些片段，以及各自的向量、关键词与融合分数。",
        "See which chunks a query retrieves, with their dense, keyword and fused scores.",
    ),
    "query": ("查询", "Query"),
    "rerank": ("重排序", "Rerank"),
    "search": ("检索", "Search"),
    "no_hits": ("没有检索到片段。", "No chunk matched."),
    "col_rank": ("排名", "Rank"),
    "col_doc": ("文档", "Document"),
    "col_pos": ("段落", "Chunk"),
    "col_score": ("融合分", "Score"),
    "col_dense": ("向量分", "Dense"),
    "col_keyword": ("关键词分", "Keyword"),
    "col_text": ("内容", "Text"),
    # evaluation
    "eval_intro": (
        "`bench/` 中各项评测的最新结果。",
        "The latest results of the benchmarks in `bench/`.",
    ),
    "eval_none": (
        "还没有评测结果：运行 `bench/` 中的评测后，`{dir}` 里的 JSON 文件会显示在这里。",
        "No results yet: run the benchmarks in `bench/`; the JSON files in `{dir}` show up here.",
    ),
    "eval_recall": ("各检索方式的召回率", "Recall by retrieval mode"),
    "eval_latency": ("延迟", "Latency"),
    "eval_raw": ("原始 JSON", "Raw JSON"),
    "eval_bad": ("无法读取 {name}：{error}", "Could not read {name}: {error}"),
}


def detect_lang() -> Lang:
    """The browser's language: Chinese for a zh locale or when unknown, else English."""
    locale = ""
    try:
        locale = st.context.locale or st.context.headers.get("Accept-Language", "") or ""
    except (AttributeError, RuntimeError):
        locale = ""
    if not locale:
        return "zh"
    return "zh" if locale.strip().lower().startswith("zh") else "en"


def lang() -> Lang:
    """The language picked in the sidebar, else the browser's."""
    if get_script_run_ctx(suppress_warning=True) is None:
        # Outside a script run (a test formatting widget options) there is no session state.
        return _LAST_LANG[0]
    value = st.session_state.get(LANG_KEY)
    picked: Lang = ("zh" if value == "zh" else "en") if value in LANG_NAMES else detect_lang()
    _LAST_LANG[0] = picked
    return picked


def t(key: str, **values: object) -> str:
    """The string ``key`` in the current language, with ``{name}`` fields filled in."""
    zh, en = CATALOGUE[key]
    text = zh if lang() == "zh" else en
    return text.format(**values) if values else text


def language_picker() -> None:
    """A switch between the two languages, starting from the browser's."""
    st.session_state.setdefault(LANG_KEY, detect_lang())
    st.segmented_control(
        t("language"),
        options=list(LANG_NAMES),
        format_func=lambda code: LANG_NAMES[code],
        key=LANG_KEY,
        label_visibility="collapsed",
    )
