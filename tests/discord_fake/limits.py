"""Discord's size rules for what a bot sends: messages, embeds, components, modals, threads and commands.

Each `check_*` raises a `DiscordError` shaped like Discord's answer: 400 code 50035 "Invalid Form Body" with
an `errors` object that mirrors the request body (`{"embeds": {"0": {"title": {"_errors": [...]}}}}`), or 413
code 40005 for a file over the upload limit. They are all bot faults: a correct bot never sends such a body.
"""

from __future__ import annotations

import re

from .models import DiscordError, FakeAttachment

INVALID_FORM_BODY = 50035
EMPTY_MESSAGE = 50006
ENTITY_TOO_LARGE = 40005

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
EMBED_TEXT_LIMITS = {"title": 256, "description": 4096}
MAX_EMBED_FIELDS = 25
MAX_FIELD_NAME, MAX_FIELD_VALUE = 256, 1024
MAX_FOOTER_TEXT, MAX_AUTHOR_NAME = 2048, 256
MAX_ACTION_ROWS, MAX_ROW_ITEMS = 5, 5
MAX_CUSTOM_ID, MAX_BUTTON_LABEL = 100, 80
MAX_ATTACHMENTS = 10
MAX_THREAD_NAME = 100
MAX_MODAL_TITLE, MAX_INPUT_LABEL, MAX_INPUT_VALUE, MAX_PLACEHOLDER = 45, 45, 4000, 100
MAX_COMMAND_NAME, MAX_DESCRIPTION, MAX_OPTIONS, MAX_CHOICES = 32, 100, 25, 25
MAX_CHOICE_NAME, MAX_CHOICE_VALUE = 100, 100
# Chat-input command and option names: lowercase letters, digits, - and _ (any script), 1..32 of them.
COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")
ACTION_ROW, BUTTON, TEXT_INPUT, LABEL = 1, 2, 4, 18
SUB_COMMAND, SUB_COMMAND_GROUP, STRING = 1, 2, 3


class FormErrors:
    """Collects Discord-style errors under their body paths, then raises them all at once."""

    def __init__(self) -> None:
        self.tree: dict = {}

    def add(self, path: tuple[str | int, ...], code: str, message: str) -> None:
        node = self.tree
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def max_length(self, path: tuple[str | int, ...], value: object, limit: int) -> None:
        if value is not None and len(value) > limit:
            self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def length_between(self, path: tuple[str | int, ...], value: object, low: int, high: int) -> None:
        if value is None or not low <= len(value) <= high:
            self.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")

    def raise_if_any(self) -> None:
        if self.tree:
            raise DiscordError(400, INVALID_FORM_BODY, "Invalid Form Body", errors=self.tree, bot_fault=True)


def check_message(
    body: dict,
    files: list[FakeAttachment],
    *,
    upload_limit: int,
    prefix: tuple[str, ...] = (),
    kept_attachments: int = 0,
    creating: bool = True,
) -> None:
    """A message body (create or edit). `prefix` is ("data",) inside an interaction callback."""
    for attachment in files:
        if len(attachment.data) > upload_limit:
            raise DiscordError(413, ENTITY_TOO_LARGE, "Request entity too large", bot_fault=True)
    errors = FormErrors()
    errors.max_length((*prefix, "content"), body.get("content"), MAX_CONTENT)
    embeds = body.get("embeds") or []
    errors.max_length((*prefix, "embeds"), embeds, MAX_EMBEDS)
    total = 0
    for index, embed in enumerate(embeds):
        total += _check_embed(errors, (*prefix, "embeds", index), embed)
    if total > MAX_EMBED_TOTAL:
        errors.add(
            (*prefix, "embeds"), "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}"
        )
    check_components(errors, (*prefix, "components"), body.get("components") or [])
    if kept_attachments + len(files) > MAX_ATTACHMENTS:
        errors.add((*prefix, "attachments"), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ATTACHMENTS} or fewer in length.")
    errors.raise_if_any()
    if creating and not (body.get("content") or embeds or files or body.get("components") or body.get("sticker_ids")):
        raise DiscordError(400, EMPTY_MESSAGE, "Cannot send an empty message", bot_fault=True)


def _check_embed(errors: FormErrors, path: tuple, embed: dict) -> int:
    """Checks one embed and returns its characters as Discord counts them towards the 6000 total."""
    counted = 0
    for key, limit in EMBED_TEXT_LIMITS.items():
        errors.max_length((*path, key), embed.get(key), limit)
        counted += len(embed.get(key) or "")
    fields = embed.get("fields") or []
    errors.max_length((*path, "fields"), fields, MAX_EMBED_FIELDS)
    for index, embed_field in enumerate(fields):
        errors.max_length((*path, "fields", index, "name"), embed_field.get("name"), MAX_FIELD_NAME)
        errors.max_length((*path, "fields", index, "value"), embed_field.get("value"), MAX_FIELD_VALUE)
        counted += len(embed_field.get("name") or "") + len(embed_field.get("value") or "")
    footer_text = (embed.get("footer") or {}).get("text")
    errors.max_length((*path, "footer", "text"), footer_text, MAX_FOOTER_TEXT)
    author_name = (embed.get("author") or {}).get("name")
    errors.max_length((*path, "author", "name"), author_name, MAX_AUTHOR_NAME)
    return counted + len(footer_text or "") + len(author_name or "")


def check_components(errors: FormErrors, path: tuple, rows: list[dict]) -> None:
    """Top-level components: action rows of buttons/inputs, or (in modals) Labels wrapping one input."""
    errors.max_length(path, rows, MAX_ACTION_ROWS)
    for row_index, row in enumerate(rows):
        row_path = (*path, row_index)
        if row.get("type") == LABEL:
            items = [((*row_path, "component"), row.get("component") or {})]
        else:
            errors.length_between((*row_path, "components"), row.get("components") or [], 1, MAX_ROW_ITEMS)
            items = [((*row_path, "components", i), item) for i, item in enumerate(row.get("components") or [])]
        for item_path, item in items:
            errors.max_length((*item_path, "custom_id"), item.get("custom_id"), MAX_CUSTOM_ID)
            if item.get("type") == BUTTON:
                errors.max_length((*item_path, "label"), item.get("label"), MAX_BUTTON_LABEL)
            elif item.get("type") == TEXT_INPUT:
                _check_text_input(errors, item_path, item)


def _check_text_input(errors: FormErrors, path: tuple, text_input: dict) -> None:
    errors.max_length((*path, "label"), text_input.get("label"), MAX_INPUT_LABEL)
    errors.max_length((*path, "value"), text_input.get("value"), MAX_INPUT_VALUE)
    errors.max_length((*path, "placeholder"), text_input.get("placeholder"), MAX_PLACEHOLDER)


def check_modal(data: dict) -> None:
    """A modal callback's `data`: title, custom_id, its rows of text inputs (or Label components)."""
    errors = FormErrors()
    errors.length_between(("data", "title"), data.get("title"), 1, MAX_MODAL_TITLE)
    errors.length_between(("data", "custom_id"), data.get("custom_id"), 1, MAX_CUSTOM_ID)
    rows = data.get("components") or []
    errors.length_between(("data", "components"), rows, 1, MAX_ACTION_ROWS)
    for index, row in enumerate(rows):
        if row.get("type") == LABEL:
            errors.length_between(("data", "components", index, "label"), row.get("label"), 1, MAX_INPUT_LABEL)
    check_components(errors, ("data", "components"), rows)
    errors.raise_if_any()


def check_autocomplete(data: dict) -> None:
    errors = FormErrors()
    choices = data.get("choices") or []
    errors.max_length(("data", "choices"), choices, MAX_CHOICES)
    for index, choice in enumerate(choices):
        _check_choice(errors, ("data", "choices", index), choice)
    errors.raise_if_any()


def check_thread_name(body: dict) -> None:
    errors = FormErrors()
    errors.length_between(("name",), body.get("name"), 1, MAX_THREAD_NAME)
    errors.raise_if_any()


def check_commands(commands: list[dict], *, single: bool = False) -> None:
    """Application commands as registered by PUT (a list) or POST (`single`: one command, no index in paths)."""
    errors = FormErrors()
    seen: set[tuple[str, int]] = set()
    for index, command in enumerate(commands):
        path: tuple = () if single else (index,)
        command_type = command.get("type", 1)
        name = command.get("name") or ""
        if command_type == 1:
            _check_name(errors, (*path, "name"), name)
            errors.length_between((*path, "description"), command.get("description"), 1, MAX_DESCRIPTION)
            _check_options(errors, (*path, "options"), command.get("options") or [])
        else:
            errors.length_between((*path, "name"), name, 1, MAX_COMMAND_NAME)
        if (name, command_type) in seen:
            message = f"Application command names must be unique: {name}"
            errors.add((*path, "name"), "APPLICATION_COMMANDS_DUPLICATE_NAME", message)
        seen.add((name, command_type))
    errors.raise_if_any()


def _check_name(errors: FormErrors, path: tuple, name: str) -> None:
    if not COMMAND_NAME.match(name) or name != name.lower():
        errors.add(path, "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}")


def _check_options(errors: FormErrors, path: tuple, options: list[dict]) -> None:
    errors.max_length(path, options, MAX_OPTIONS)
    optional_seen = False
    for index, option in enumerate(options):
        option_path = (*path, index)
        _check_name(errors, (*option_path, "name"), option.get("name") or "")
        errors.length_between((*option_path, "description"), option.get("description"), 1, MAX_DESCRIPTION)
        choices = option.get("choices") or []
        errors.max_length((*option_path, "choices"), choices, MAX_CHOICES)
        for choice_index, choice in enumerate(choices):
            _check_choice(errors, (*option_path, "choices", choice_index), choice)
        if option.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP):
            _check_options(errors, (*option_path, "options"), option.get("options") or [])
        elif option.get("required"):
            if optional_seen:
                errors.add(
                    (*option_path, "required"),
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True


def _check_choice(errors: FormErrors, path: tuple, choice: dict) -> None:
    errors.length_between((*path, "name"), choice.get("name"), 1, MAX_CHOICE_NAME)
    if isinstance(choice.get("value"), str):
        errors.max_length((*path, "value"), choice["value"], MAX_CHOICE_VALUE)
