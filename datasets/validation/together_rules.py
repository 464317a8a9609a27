"""Together AI's rules for one parsed example (pure Python, no Django).

Sources: Together's data-preparation guide (docs.together.ai/docs/fine-tuning-data-preparation)
and its preference fine-tuning page, checked against the file checker of Together's own SDK
(``together.utils.files``, ``validate_messages`` / ``validate_preference_openai``):

* a format is told by its keys: ``messages`` (conversational), ``prompt`` + ``completion``
  (instruction), ``text`` (generic), ``input`` + ``preferred_output`` + ``non_preferred_output``
  (preference, for DPO). A line holding the keys of two formats is rejected, and so is a file
  mixing formats. Other keys are ignored by Together (the guide: "they will be ignored"), so
  they are not findings here;
* conversations: roles system, user, assistant or tool; the first message is system or user
  (the guide); no two messages in a row share a role (the SDK's check, which is what
  "alternating" comes to); at least one assistant message (the SDK); ``weight`` may sit on any
  message and must be the integer 0 or 1 (the SDK rejects 1.0: ``isinstance(w, int)``);
  content must be present and non-empty — a string, or text/image parts (Together trains
  vision models on the same parts as OpenAI), or left out only by an assistant carrying
  tool_calls;
* preference examples: the input conversation follows the same role rules, without the
  system/user start (Together's own example starts with an assistant) and without needing an
  assistant, and must not end with an assistant message (the SDK); each output is a list of
  exactly one assistant message with string content.

The checker walks what the OpenAI rules already parsed and counts no tokens itself, except for
``text`` lines, which the OpenAI rules do not know (so nothing counted them): their text is
counted once, through the same tally, as Together's own (see ``engine``).
"""

from __future__ import annotations

from itertools import islice

from .checks import KIND_CHAT, KIND_CHAT_TOOLS, KIND_VISION, Outcome, json_type, short
from .findings import FindingCollector
from .tokens import TokenTally

NAME = "together"

GROUP_CHAT = "chat"
GROUP_INSTRUCTION = "legacy_completion"  # the same shape as OpenAI's legacy prompt/completion
GROUP_TEXT = "text"
GROUP_PREFERENCE = "dpo"
GROUP_UNKNOWN = "unknown"

ROLES = frozenset({"system", "user", "assistant", "tool"})
_FIRST_ROLES = frozenset({"system", "user"})
_PREFERENCE_KEYS = ("input", "preferred_output", "non_preferred_output")


class TogetherChecker:
    def __init__(self, findings: FindingCollector, tally: TokenTally) -> None:
        self.findings = findings
        self.tally = tally
        self.line = 0
        self.text = ""
        self.n_images = 0
        self.has_tools = False

    def _err(self, code: str, message: str, source: object = None) -> None:
        self.findings.add(code, self.line, message, self.text if source is None else source)

    # --- entry point -----------------------------------------------------------------

    def check(
        self, obj: dict[str, object], line: int, text: str, raw: bytes, *, counted: bool
    ) -> Outcome:
        """``counted``: the OpenAI rules already counted this example's tokens."""
        self.line, self.text = line, text
        self.n_images = 0
        self.has_tools = False
        chat = "messages" in obj
        plain = "text" in obj
        instruction = "prompt" in obj and "completion" in obj
        preference = "input" in obj and "preferred_output" in obj and "non_preferred_output" in obj
        matched = chat + plain + instruction + preference
        if matched == 0:
            keys = ", ".join(short(k, 30) for k in islice(obj, 5)) or "no keys"
            self._err(
                "together_unknown_format",
                f"object ({keys}) matches none of Together's formats",
            )
            return Outcome(GROUP_UNKNOWN, GROUP_UNKNOWN, 0)
        if matched > 1:
            names = [
                name
                for name, found in (
                    ("conversational", chat),
                    ("instruction", instruction),
                    ("text", plain),
                    ("preference", preference),
                )
                if found
            ]
            self._err(
                "together_ambiguous_format",
                f"the example has the keys of {' and '.join(names)} data",
            )
            return Outcome(GROUP_UNKNOWN, GROUP_UNKNOWN, 0)
        if chat:
            self.has_tools = "tools" in obj
            self._conversation(obj["messages"])
            kind = (
                KIND_VISION if self.n_images else KIND_CHAT_TOOLS if self.has_tools else KIND_CHAT
            )
            return Outcome(GROUP_CHAT, kind, self.n_images)
        if preference:
            self._preference(obj)
            return Outcome(GROUP_PREFERENCE, GROUP_PREFERENCE, self.n_images)
        if instruction:
            self._instruction(obj["prompt"], obj["completion"])
            return Outcome(GROUP_INSTRUCTION, GROUP_INSTRUCTION, 0)
        self._text(obj["text"], raw, counted=counted)
        return Outcome(GROUP_TEXT, GROUP_TEXT, 0)

    # --- formats ---------------------------------------------------------------------

    def _conversation(self, messages: object) -> None:
        if not isinstance(messages, list) or not messages:
            what = "an empty array" if messages == [] else json_type(messages)
            self._err(
                "together_invalid_messages", f"messages is {what}; it must be a non-empty array"
            )
            return
        if not self._messages(messages, "message", first_roles=_FIRST_ROLES):
            self._err("together_no_assistant", "no assistant message to train on")

    def _preference(self, obj: dict[str, object]) -> None:
        source = obj["input"]
        messages = source.get("messages") if isinstance(source, dict) else None
        if not isinstance(messages, list) or not messages:
            what = (
                "not an object"
                if not isinstance(source, dict)
                else "missing"
                if "messages" not in source
                else "an empty array"
                if messages == []
                else json_type(messages)
            )
            where = "input" if not isinstance(source, dict) else "input.messages"
            self._err("together_invalid_preference", f"{where} is {what}")
        else:
            self._messages(messages, "input message", first_roles=None)
            last = messages[-1]
            if isinstance(last, dict) and last.get("role") == "assistant":
                self._err(
                    "together_invalid_preference",
                    "the input conversation ends with an assistant message",
                )
        for key in _PREFERENCE_KEYS[1:]:
            self._output(obj[key], key)

    def _output(self, output: object, key: str) -> None:
        if not isinstance(output, list) or len(output) != 1:
            what = f"{len(output)} messages" if isinstance(output, list) else json_type(output)
            self._err(
                "together_invalid_preference",
                f"{key} is {what}; it must be a list of exactly one assistant message",
            )
            return
        message = output[0]
        if not isinstance(message, dict):
            self._err(
                "together_invalid_preference", f"{key}[0] is {json_type(message)}, not an object"
            )
            return
        role = message.get("role")
        if role != "assistant":
            self._err(
                "together_invalid_preference",
                f"{key} message has role {short(role)}, not assistant",
                message,
            )
        content = message.get("content")
        if not isinstance(content, str) or not content:
            state = "empty" if content == "" else json_type(content)
            self._err(
                "together_invalid_preference",
                f"{key} message content is {state}; it must be a non-empty string",
                message,
            )

    def _instruction(self, prompt: object, completion: object) -> None:
        for key, value in (("prompt", prompt), ("completion", completion)):
            if not isinstance(value, str):
                self._err(
                    "together_invalid_instruction",
                    f"{key} is {json_type(value)}; it must be a string",
                )
        if completion == "":
            self._err("together_invalid_instruction", "completion is empty: nothing to train on")

    def _text(self, value: object, raw: bytes, *, counted: bool) -> None:
        if not isinstance(value, str) or not value:
            state = "empty" if value == "" else json_type(value)
            self._err("together_invalid_text", f"text is {state}; it must be a non-empty string")
            return
        if not counted:
            # The whole text is trained on; nothing else in the line is tokenized.
            tally = self.tally
            tally.start_plain()
            tally.add_trained(value)
            tally.end(self.line, None, raw[:1024], owner=NAME)

    # --- messages --------------------------------------------------------------------

    def _messages(
        self, messages: list[object], label: str, *, first_roles: frozenset[str] | None
    ) -> bool:
        """Check a conversation's messages; True when one of them is an assistant's.

        The common case (a well-formed message) costs a few lookups: messages are only named
        (``label``, index) once something is wrong with them."""
        previous: object = None
        assistant = False
        roles = ROLES
        for index, message in enumerate(messages, 1):
            if type(message) is not dict:
                self._err(
                    "together_invalid_messages",
                    f"{label} {index} is {json_type(message)}, not an object",
                )
                previous = None
                continue
            role = message.get("role")
            if type(role) is not str or role not in roles:
                self._bad_role(message, role, f"{label} {index}")
                previous = None
            else:
                if role == previous or (index == 1 and first_roles and role not in first_roles):
                    self._out_of_turn(message, role, f"{label} {index}", first=index == 1)
                previous = role
                if role == "assistant":
                    assistant = True
                elif role == "tool":
                    self.has_tools = True
            if "weight" in message:
                weight = message["weight"]
                # bool is an int in Python, but true/false are not 0/1 in JSON.
                if type(weight) is not int or weight not in (0, 1):
                    self._err(
                        "together_invalid_weight",
                        f"{label} {index}: weight must be the integer 0 or 1, not {short(weight)}",
                        message,
                    )
            content = message.get("content")
            if type(content) is not str or not content:
                self._content(message, role, f"{label} {index}")
        return assistant

    def _bad_role(self, message: dict[str, object], role: object, where: str) -> None:
        problem = "has no role" if "role" not in message else f"has role {short(role)}"
        self._err(
            "together_invalid_role",
            f"{where} {problem}; expected system, user, assistant or tool",
            message,
        )

    def _out_of_turn(
        self, message: dict[str, object], role: str, where: str, *, first: bool
    ) -> None:
        if first:
            text = f"the conversation starts with a {role} message, not system or user"
        else:
            text = f"{where} is a second {role} message in a row; roles must alternate"
        self._err("together_role_order", text, message)

    def _content(self, message: dict[str, object], role: object, where: str) -> None:
        """The content is not a non-empty string: parts, a tool call, or a problem."""
        content = message.get("content")
        if isinstance(content, str):
            if content:
                return
            problem = "has empty content"
        elif isinstance(content, list):
            self._parts(content, where)
            return
        elif content is None:
            if role == "assistant" and message.get("tool_calls"):
                self.has_tools = True
                return
            problem = "has null content" if "content" in message else "has no content"
        else:
            problem = f"has content that is {json_type(content)}"
        self._err("together_invalid_content", f"{where} {problem}", message)

    def _parts(self, parts: list[object], where: str) -> None:
        if not parts:
            self._err("together_invalid_content", f"{where}: content is an empty array")
            return
        for index, part in enumerate(parts, 1):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part, dict) and isinstance(part.get("text"), str):
                continue
            if kind == "image_url" and isinstance(part, dict):
                spec = part.get("image_url")
                if isinstance(spec, dict) and isinstance(spec.get("url"), str):
                    self.n_images += 1
                    continue
            self._err(
                "together_invalid_content",
                f"{where} part {index} is not a text part or an image_url part with a url",
                part,
            )
