"""The deterministic fake model: the reply echoes the text of the last user message.

Tokens are counted as one per four characters (rounded up, at least one), which is close enough to real
tokenizers for sizing and cost tests. A reply longer than ``max_tokens`` tokens is cut to ``4 * max_tokens``
characters and stops with ``max_tokens``. A request asking for structured output gets JSON built from its
schema instead (see ``structured_answer``): as the reply's text, or as the forced tool's ``input`` with
``stop_reason: "tool_use"``.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_batches.api.models import CacheCreation, ContentBlock, Message, TextBlock, ToolUseBlock, Usage
from airflow_batches.emulator.ids import derived_id
from airflow_batches.emulator.structured_answer import broken, example, structured_request

__all__ = ["CHARS_PER_TOKEN", "input_tokens", "reply", "text_of"]

CHARS_PER_TOKEN = 4


def text_of(content: Any) -> str:
    """The text of a string, or the joined text of the ``text`` blocks in a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            block["text"]
            for block in content
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
        )
    return ""


def _tokens(characters: int) -> int:
    return max(1, -(-characters // CHARS_PER_TOKEN))


def input_tokens(params: dict[str, Any]) -> int:
    """The prompt's tokens: every message's text and the system prompt (what usage and count_tokens say)."""
    prompt_chars = sum(len(text_of(message["content"])) for message in params["messages"])
    return _tokens(prompt_chars + len(text_of(params.get("system"))))


def reply(params: dict[str, Any], *, batch_id: str, custom_id: str, invalid_output: bool = False) -> Message:
    """The message the fake model answers to one request's (already validated) ``params``.

    ``invalid_output``: a structured answer breaks its schema (ignored for plain text requests).
    """
    messages: list[dict[str, Any]] = params["messages"]
    last_user = next((message for message in reversed(messages) if message["role"] == "user"), None)
    text = text_of(last_user["content"]) if last_user else ""
    max_tokens: int = params["max_tokens"]
    stop_reason = "end_turn"
    content: list[ContentBlock]
    structured = structured_request(params)
    if structured is not None:
        value = example(structured.schema, text)
        if invalid_output:
            value = broken(value, structured.schema)
        text = json.dumps(value, ensure_ascii=False)
        if structured.tool_name is not None:
            tool_id = derived_id("toolu_", batch_id, custom_id)
            content = [ToolUseBlock(id=tool_id, name=structured.tool_name, input=value)]
            stop_reason = "tool_use"
        else:
            content = [TextBlock(text=text)]
    elif _tokens(len(text)) > max_tokens:
        text = text[: max_tokens * CHARS_PER_TOKEN]
        stop_reason = "max_tokens"
        content = [TextBlock(text=text)]
    else:
        content = [TextBlock(text=text)]
    return Message(
        id=derived_id("msg_", batch_id, custom_id),
        model=params["model"],
        content=content,
        stop_reason=stop_reason,
        usage=Usage(
            input_tokens=input_tokens(params),
            output_tokens=min(_tokens(len(text)), max_tokens),
            cache_creation_input_tokens=0,
            cache_read_input_tokens=0,
            cache_creation=CacheCreation(ephemeral_5m_input_tokens=0, ephemeral_1h_input_tokens=0),
            service_tier="batch",
        ),
    )
