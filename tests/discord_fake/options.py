"""What a Discord client lets a user type into a slash command: it never sends an option that breaks the
registered definition, so the fake's `send_command` refuses such values with ValueError instead."""

from __future__ import annotations

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, NUMBER = 3, 4, 5, 10
MAX_SAFE_INTEGER = 2**53
MAX_STRING_LENGTH = 6000


def option_definition(definitions: list[dict], name: str, command: str) -> dict:
    for definition in definitions:
        if definition["name"] == name:
            return definition
    raise ValueError(f"{command} has no option {name!r}; it has {[d['name'] for d in definitions]}")


def walk_subcommands(command: dict, subcommand: list[str]) -> tuple[list[dict], list[dict], list[dict]]:
    """The data `options` list to send, the list inside it that takes the leaf's options, and the leaf's
    option definitions."""
    definitions = command.get("options", [])
    data_options: list[dict] = []
    leaf_options = data_options
    for part in subcommand:
        definition = option_definition(definitions, part, f"/{command['name']}")
        group = {"name": part, "type": definition["type"], "options": []}
        leaf_options.append(group)
        leaf_options = group["options"]
        definitions = definition.get("options", [])
    if any(d["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for d in definitions):
        raise ValueError(f"/{command['name']} {' '.join(subcommand)} needs a subcommand")
    return data_options, leaf_options, definitions


def check_option_value(definition: dict, value: object, command: str) -> None:
    """Type, choices, min/max value and length, as the client enforces them before sending."""
    name, option_type = f"{command} {definition['name']}", definition["type"]
    if option_type == STRING:
        if not isinstance(value, str):
            raise ValueError(f"{name} takes a string, not {value!r}")
        low, high = definition.get("min_length", 0), definition.get("max_length", MAX_STRING_LENGTH)
        if not low <= len(value) <= high:
            raise ValueError(f"{name} takes {low}..{high} characters, not {len(value)}")
    elif option_type in (INTEGER, NUMBER):
        numeric = (int,) if option_type == INTEGER else (int, float)
        if isinstance(value, bool) or not isinstance(value, numeric):
            raise ValueError(f"{name} takes {'an integer' if option_type == INTEGER else 'a number'}, not {value!r}")
        low = definition.get("min_value", -MAX_SAFE_INTEGER)
        high = definition.get("max_value", MAX_SAFE_INTEGER)
        if not low <= value <= high:
            raise ValueError(f"{name} takes {low}..{high}, not {value}")
    elif option_type == BOOLEAN and not isinstance(value, bool):
        raise ValueError(f"{name} takes true or false, not {value!r}")
    choices = definition.get("choices")
    if choices and value not in [choice["value"] for choice in choices]:
        raise ValueError(f"{name} takes one of {[choice['value'] for choice in choices]}, not {value!r}")
