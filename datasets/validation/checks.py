"""Rules for one parsed example: chat (with tools and images), DPO and legacy formats.

The checker walks each example once, reporting findings and feeding every counted string to
the token tally on the way, so validation and token counting share a single traversal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

from .encodings import special_tokens
from .findings import FindingCollector
from .jsontext import has_unicode_escape, json_clip
from .tokens import TOKENS_PER_MESSAGE, TOKENS_PER_NAME, TokenTally, image_tokens
from .vision import MAX_IMAGES_PER_EXAMPLE, check_image

FAMILY_CHAT = "chat"
FAMILY_DPO = "dpo"
FAMILY_LEGACY = "legacy_completion"
FAMILY_UNKNOWN = "unknown"

KIND_CHAT = "chat"
KIND_CHAT_TOOLS = "chat_tools"
KIND_VISION = "vision"

_COMMON = frozenset({"role", "content", "name"})
ROLE_KEYS: dict[str, frozenset[str]] = {
    "system": _COMMON,
    "developer": _COMMON,
    "user": _COMMON,
    "assistant": _COMMON | {"weight", "tool_calls", "function_call", "refusal"},
    "tool": frozenset({"role", "content", "tool_call_id"}),
    "function": _COMMON,  # deprecated
}
KNOWN_MESSAGE_KEYS = frozenset().union(*ROLE_KEYS.values())
_ROLE_LIST = ", ".join(ROLE_KEYS)

CHAT_KEYS = frozenset({"messages", "tools", "functions", "parallel_tool_calls"})
DPO_KEYS = frozenset({"input", "preferred_output", "non_preferred_output"})
DPO_INPUT_KEYS = CHAT_KEYS
LEGACY_KEYS = frozenset({"prompt", "completion"})
_TOOL_CALL_KEYS = frozenset({"id", "type", "function"})
_TEXT_PART_KEYS = frozenset({"type", "text"})
_IMAGE_PART_KEYS = frozenset({"type", "image_url"})
_IMAGE_URL_KEYS = frozenset({"url", "detail"})
_DPO_OUTPUTS = ("preferred_output", "non_preferred_output")

_JSON_DECODER = json.JSONDecoder()


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def short(value: object, limit: int = 40) -> str:
    """A value quoted in a message: strings as JSON, scalars as Python writes them (True),
    containers as JSON; bounded work whatever the value holds."""
    if value is None or isinstance(value, bool | int | float):
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 1] + "…"
    return json_clip(value, limit)


def is_json_text(value: str) -> bool:
    try:
        _JSON_DECODER.decode(value)
    except (ValueError, RecursionError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Outcome:
    family: str
    kind: str
    n_images: int


def _ignore(_: object) -> None:
    pass


class ExampleChecker:
    def __init__(self, findings: FindingCollector, tally: TokenTally) -> None:
        self.findings = findings
        self.tally = tally
        self.line = 0
        self.text = ""
        self.raw = b""
        self.n_images = 0
        self.has_tools = False
        self.deprecated = False
        self._may_spell = False
        self._tok: Callable[[str], None] = _ignore
        self._tok_trained: Callable[[str], None] = _ignore
        self._tok_fixed: Callable[[int], None] = _ignore
        self._specials = tuple(special_tokens(tally.encoding_name))

    # --- plumbing --------------------------------------------------------------------

    def _err(self, code: str, message: str, source: object = None) -> None:
        self.findings.add(code, self.line, message, self.text if source is None else source)

    def _counting(self, on: bool) -> None:
        if on:
            self.tally.start()
            self._tok = self.tally.add
            self._tok_trained = self.tally.add_trained
            self._tok_fixed = self.tally.add_fixed
        else:
            self._tok = self._tok_trained = _ignore
            self._tok_fixed = _ignore

    def _end_counting(self, n_messages: int | None) -> None:
        if self._tok is not _ignore:
            self.tally.end(self.line, n_messages, self.raw[:1024])
        self._counting(False)

    # --- entry point -----------------------------------------------------------------

    def check(self, obj: dict[str, object], line: int, text: str, raw: bytes) -> Outcome:
        self.line, self.text, self.raw = line, text, raw
        # A string may hold "<|", which a special token starts with, only if the line has a
        # "<" or a \\u escape (Go's encoder, for one, writes "<" as \\u003c): two quick
        # searches of the line spare searching each of its strings.
        self._may_spell = b"<" in raw or has_unicode_escape(raw)
        self.n_images = 0
        self.has_tools = False
        self.deprecated = False
        self._counting(False)
        if "messages" in obj:
            family = FAMILY_CHAT
            self._check_chat(obj)
        elif "input" in obj or "preferred_output" in obj or "non_preferred_output" in obj:
            family = FAMILY_DPO
            self._check_dpo(obj)
        elif "prompt" in obj or "completion" in obj:
            family = FAMILY_LEGACY
            self._check_legacy(obj)
        else:
            family = FAMILY_UNKNOWN
            keys = ", ".join(short(k, 30) for k in islice(obj, 5)) or "no keys"
            self._err("unknown_format", f"object ({keys}) matches no known example format")
        if self.n_images > MAX_IMAGES_PER_EXAMPLE:
            self._err(
                "too_many_images",
                f"example has {self.n_images} images; at most {MAX_IMAGES_PER_EXAMPLE} allowed",
            )
        if self.deprecated:
            self._err(
                "deprecated_function_calling",
                "uses functions/function_call/function role; prefer tools and tool_calls",
            )
        if family == FAMILY_CHAT:
            kind = (
                KIND_VISION if self.n_images else KIND_CHAT_TOOLS if self.has_tools else KIND_CHAT
            )
        else:
            kind = family
        return Outcome(family, kind, self.n_images)

    def _spelled(self, text: str, where: str) -> None:
        """Notes text that spells a special token of the encoding (one note per string)."""
        if not self._may_spell or "<|" not in text:  # keeps this off the hot path
            return
        found = [token for token in self._specials if token in text]
        if not found:
            return
        token = min(found, key=text.find)
        at = text.find(token)
        self._err(
            "special_token_text",
            f"{where}: text contains {token}, counted as ordinary text",
            text[max(0, at - 80) : at + len(token) + 80],
        )

    def _unknown_keys(self, obj: dict[str, object], allowed: frozenset[str], where: str) -> None:
        for key in obj:
            if key not in allowed:
                self.findings.add(
                    "unknown_top_level_key",
                    self.line,
                    f"unknown key {short(where + key)}",
                    self.text,
                )

    # --- chat ------------------------------------------------------------------------

    def _check_chat(self, obj: dict[str, object]) -> None:
        self._unknown_keys(obj, CHAT_KEYS, "")
        messages = obj["messages"]
        if not isinstance(messages, list) or not messages:
            what = "an empty array" if messages == [] else json_type(messages)
            self._err("invalid_messages", f"messages is {what}; it must be a non-empty array")
            self._check_tool_fields(obj, "")
            return
        self._counting(True)
        self._check_tool_fields(obj, "")
        trainable = False
        for index, message in enumerate(messages, 1):
            if self._check_message(message, f"message {index}", train=True):
                trainable = True
        if not trainable:
            has_assistant = any(
                isinstance(m, dict) and m.get("role") == "assistant" for m in messages
            )
            self._err(
                "no_trainable_assistant",
                "every assistant message has weight 0"
                if has_assistant
                else "no assistant message to train on",
            )
        self._end_counting(len(messages))

    def _check_message(self, message: object, label: str, *, train: bool) -> bool:
        """Check one message; True when it is an assistant message that will be trained on."""
        if not isinstance(message, dict):
            self._err("message_not_object", f"{label} is {json_type(message)}, not an object")
            return False
        tok, tok_fixed = self._tok, self._tok_fixed
        tok_fixed(TOKENS_PER_MESSAGE)
        role = message.get("role")
        allowed = ROLE_KEYS.get(role) if isinstance(role, str) else None
        if allowed is None:
            if "role" not in message:
                self._err("invalid_role", f"{label} has no role", message)
            else:
                self._err(
                    "invalid_role",
                    f"{label} has role {short(role)}; expected one of {_ROLE_LIST}",
                    message,
                )
            allowed = KNOWN_MESSAGE_KEYS
        if isinstance(role, str):
            tok(role)
        for key in message:
            if key in allowed:
                continue
            if key == "weight":
                self._err(
                    "invalid_weight", f"{label}: weight is only allowed on assistant messages"
                )
            elif key in KNOWN_MESSAGE_KEYS:
                self._err(
                    "invalid_message_key",
                    f"{label}: {short(key)} is not allowed on {role} messages",
                    message,
                )
            else:
                self._err("invalid_message_key", f"{label}: unknown key {short(key)}", message)

        is_assistant = role == "assistant"
        trained = is_assistant and train
        if is_assistant and "weight" in message:
            weight = message["weight"]
            if type(weight) is float and weight in (0.0, 1.0):
                # The same JSON number as 0 or 1 (OpenAI's schema validator agrees).
                self._err(
                    "decimal_weight",
                    f"{label}: weight {weight!r} is the number {int(weight)}; accepted",
                    message,
                )
                weight = int(weight)
            # bool is an int subclass in Python, but true/false are not valid weights.
            if type(weight) is not int or weight not in (0, 1):
                self._err("invalid_weight", f"{label}: weight must be 0 or 1, not {short(weight)}")
            elif weight == 0:
                trained = False
        tok_out = self._tok_trained if trained else tok

        if "name" in message:
            name = message["name"]
            if isinstance(name, str):
                tok(name)
                tok_fixed(TOKENS_PER_NAME)
            else:
                self._err("invalid_message_field", f"{label}: name must be a string", message)
        elif role == "function":
            self._err("invalid_message_field", f"{label}: function messages need a name", message)
        if role == "function":
            self.deprecated = True

        if "refusal" in message:
            refusal = message["refusal"]
            if isinstance(refusal, str):
                self._spelled(refusal, label)
                tok_out(refusal)
            elif refusal is not None:
                self._err("invalid_message_field", f"{label}: refusal must be a string", message)

        call_id = message.get("tool_call_id")
        if isinstance(call_id, str):
            tok(call_id)
        elif role == "tool":
            problem = "needs a tool_call_id" if call_id is None else "tool_call_id must be a string"
            self._err("invalid_message_field", f"{label}: tool message {problem}", message)

        carries_call = False
        if is_assistant and message.get("tool_calls") is not None:
            carries_call = True
            self.has_tools = True
            self._check_tool_calls(message["tool_calls"], label, tok_out)
        if is_assistant and message.get("function_call") is not None:
            carries_call = True
            self.has_tools = True
            self.deprecated = True
            self._check_function_call(message["function_call"], label, tok_out)

        content = message.get("content")
        if isinstance(content, str):
            if not content and is_assistant and not carries_call:
                self._err(
                    "empty_assistant_content",
                    f"{label} (assistant) has empty content and no tool call",
                    message,
                )
            self._spelled(content, label)
            tok_out(content)
        elif content is None:
            if not carries_call:
                state = "null content" if "content" in message else "no content"
                self._err("missing_content", f"{label} ({role}) has {state}", message)
        elif isinstance(content, list):
            self._check_parts(content, label, role, tok_out)
        else:
            self._err(
                "invalid_content",
                f"{label}: content is {json_type(content)}; expected a string or an array",
                message,
            )
        return trained

    def _check_parts(
        self, parts: list[object], label: str, role: object, tok_out: Callable[[str], None]
    ) -> None:
        if not parts:
            self._err("invalid_content", f"{label}: content is an empty array")
            return
        for index, part in enumerate(parts, 1):
            where = f"{label} part {index}"
            if not isinstance(part, dict):
                self._err("invalid_content_part", f"{where} is {json_type(part)}, not an object")
                continue
            kind = part.get("type")
            if kind == "text":
                text = part.get("text")
                if isinstance(text, str):
                    self._spelled(text, where)
                    tok_out(text)
                else:
                    self._err("invalid_content_part", f"{where}: text part needs a string text")
                extra = part.keys() - _TEXT_PART_KEYS
            elif kind == "image_url":
                self._check_image_part(part, where, role)
                extra = part.keys() - _IMAGE_PART_KEYS
            else:
                self._err(
                    "invalid_content_part", f"{where}: type {short(kind)} is not text or image_url"
                )
                continue
            if extra:
                self._err(
                    "invalid_content_part",
                    f"{where}: unexpected key(s) {', '.join(sorted(map(short, extra)))}",
                )

    def _check_image_part(self, part: dict[str, object], where: str, role: object) -> None:
        self.n_images += 1
        if role == "assistant":
            self._err("image_in_assistant", f"{where}: assistant messages cannot contain images")
        elif role != "user":
            self._err("invalid_content_part", f"{where}: images are only allowed in user messages")
        spec = part.get("image_url")
        if not isinstance(spec, dict):
            self._err("invalid_image_url", f"{where}: image_url must be an object with a url")
            self._tok_fixed(image_tokens(None, None, None))
            return
        extra = spec.keys() - _IMAGE_URL_KEYS
        if extra:
            self._err(
                "invalid_content_part",
                f"{where}: unexpected image_url key(s) {', '.join(sorted(map(short, extra)))}",
            )
        url, detail = spec.get("url"), spec.get("detail")
        result = check_image(url, detail)
        # The URL itself is the useful excerpt; the line would start with unrelated text.
        source = url[:300] if isinstance(url, str) else spec
        for code, message in result.problems:
            self._err(code, f"{where}: {message}", source)
        self._tok_fixed(
            image_tokens(result.width, result.height, detail if isinstance(detail, str) else None)
        )

    # --- tools -----------------------------------------------------------------------

    def _check_tool_calls(self, calls: object, label: str, tok_out: Callable[[str], None]) -> None:
        if not isinstance(calls, list) or not calls:
            what = "an empty array" if calls == [] else json_type(calls)
            self._err("invalid_tool_calls", f"{label}: tool_calls is {what}")
            return
        for index, call in enumerate(calls, 1):
            where = f"{label} tool call {index}"
            if not isinstance(call, dict):
                self._err("invalid_tool_calls", f"{where} is {json_type(call)}, not an object")
                continue
            problems = []
            extra = call.keys() - _TOOL_CALL_KEYS
            if extra:
                problems.append(f"unexpected key(s) {', '.join(sorted(map(short, extra)))}")
            call_id = call.get("id")
            if isinstance(call_id, str) and call_id:
                tok_out(call_id)
            else:
                problems.append("id must be a non-empty string")
            kind = call.get("type")
            if kind == "function":
                tok_out(kind)
            else:
                problems.append(f'type must be "function", not {short(kind)}')
            function = call.get("function")
            if isinstance(function, dict):
                problems.extend(self._function_problems(function, tok_out))
            else:
                problems.append("function must be an object with name and arguments")
            for problem in problems:
                self._err("invalid_tool_calls", f"{where}: {problem}", call)

    def _check_function_call(
        self, call: object, label: str, tok_out: Callable[[str], None]
    ) -> None:
        if not isinstance(call, dict):
            self._err("invalid_function_call", f"{label}: function_call must be an object")
            return
        for problem in self._function_problems(call, tok_out):
            self._err("invalid_function_call", f"{label}: function_call {problem}", call)

    @staticmethod
    def _function_problems(
        function: dict[str, object], tok_out: Callable[[str], None]
    ) -> list[str]:
        problems = []
        name = function.get("name")
        if isinstance(name, str) and name:
            tok_out(name)
        else:
            problems.append("name must be a non-empty string")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            problems.append("arguments must be a string holding JSON")
        else:
            tok_out(arguments)
            if not is_json_text(arguments):
                problems.append(f"arguments is not valid JSON: {short(arguments)}")
        return problems

    def _check_tool_fields(self, obj: dict[str, object], where: str) -> None:
        if "tools" in obj:
            self.has_tools = True
            tools = obj["tools"]
            self._check_definitions(tools, f"{where}tools", "invalid_tools", wrapped=True)
            self._count_json(tools)
        if "functions" in obj:
            self.has_tools = True
            self.deprecated = True
            functions = obj["functions"]
            self._check_definitions(
                functions, f"{where}functions", "invalid_functions", wrapped=False
            )
            self._count_json(functions)
        if "parallel_tool_calls" in obj and not isinstance(obj["parallel_tool_calls"], bool):
            value = obj["parallel_tool_calls"]
            self._err(
                "invalid_parallel_tool_calls",
                f"{where}parallel_tool_calls must be true or false, not {short(value)}",
            )

    def _check_definitions(self, items: object, label: str, code: str, *, wrapped: bool) -> None:
        if not isinstance(items, list):
            self._err(code, f"{label} is {json_type(items)}; it must be an array")
            return
        for index, item in enumerate(items, 1):
            where = f"{label}[{index}]"
            if not isinstance(item, dict):
                self._err(code, f"{where} is {json_type(item)}, not an object")
                continue
            function: object = item
            if wrapped:
                if item.get("type") != "function":
                    self._err(code, f'{where}: type must be "function"', item)
                function = item.get("function")
                if not isinstance(function, dict):
                    self._err(code, f"{where}: function must be an object", item)
                    continue
            assert isinstance(function, dict)
            name = function.get("name")
            if not isinstance(name, str) or not name:
                self._err(code, f"{where}: name must be a non-empty string", item)
            if "description" in function and not isinstance(function["description"], str):
                self._err(code, f"{where}: description must be a string", item)
            if "parameters" in function and not isinstance(function["parameters"], dict):
                self._err(code, f"{where}: parameters must be a JSON schema object", item)

    def _count_json(self, value: object) -> None:
        if self._tok is _ignore:
            return
        try:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        except (ValueError, RecursionError):
            return
        self._tok(text)

    # --- DPO -------------------------------------------------------------------------

    def _check_dpo(self, obj: dict[str, object]) -> None:
        self._unknown_keys(obj, DPO_KEYS, "")
        source = obj.get("input")
        messages = source.get("messages") if isinstance(source, dict) else None
        countable = isinstance(messages, list) and bool(messages)
        self._counting(countable)
        n_messages = 0
        if not isinstance(source, dict):
            state = "missing" if "input" not in obj else f"{json_type(source)}"
            self._err("invalid_dpo_input", f"input is {state}; it must be an object with messages")
        else:
            self._unknown_keys(source, DPO_INPUT_KEYS, "input.")
            self._check_tool_fields(source, "input.")
            if isinstance(messages, list) and messages:
                n_messages += len(messages)
                for index, message in enumerate(messages, 1):
                    # Input turns are context only: DPO trains on the outputs.
                    self._check_message(message, f"input message {index}", train=False)
            else:
                what = "an empty array" if messages == [] else json_type(messages)
                self._err("invalid_dpo_input", f"input.messages is {what}")
        for key in _DPO_OUTPUTS:
            n_messages += self._check_dpo_output(obj, key)
        self._end_counting(n_messages)

    def _check_dpo_output(self, obj: dict[str, object], key: str) -> int:
        if key not in obj:
            self._err("invalid_dpo_output", f"{key} is missing")
            return 0
        output = obj[key]
        if not isinstance(output, list):
            self._err("invalid_dpo_output", f"{key} is {json_type(output)}; it must be an array")
            return 0
        if len(output) != 1:
            self._err(
                "invalid_dpo_output",
                f"{key} has {len(output)} messages; it must hold exactly one assistant message",
            )
        for index, message in enumerate(output, 1):
            self._check_message(message, f"{key} message {index}", train=True)
            if isinstance(message, dict) and message.get("role") != "assistant":
                self._err(
                    "invalid_dpo_output",
                    f"{key} message {index} has role {short(message.get('role'))}, not assistant",
                    message,
                )
        return len(output)

    # --- legacy ----------------------------------------------------------------------

    def _check_legacy(self, obj: dict[str, object]) -> None:
        self._unknown_keys(obj, LEGACY_KEYS, "")
        prompt, completion = obj.get("prompt"), obj.get("completion")
        for key, value in (("prompt", prompt), ("completion", completion)):
            if not isinstance(value, str):
                state = "missing" if key not in obj else json_type(value)
                self._err("invalid_legacy_example", f"{key} is {state}; it must be a string")
        if isinstance(prompt, str) and isinstance(completion, str):
            self._spelled(prompt, "prompt")
            self._spelled(completion, "completion")
            self._counting(True)
            self.tally.start_plain()
            self._tok(prompt)
            self._tok_trained(completion)
            self._end_counting(None)
