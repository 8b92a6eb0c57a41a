"""Who a message notifies: the mentions in its content filtered by the request's `allowed_mentions`.

Discord's rules, as far as the fake models them:
- no `allowed_mentions` at all: every user, role and @everyone/@here mentioned in the content is pinged, and a
  reply pings the author of the message it replies to;
- `parse` lists the kinds ("users", "roles", "everyone") pinged wherever they appear in the content;
  `users` / `roles` list the ids that may be pinged (still only if the content mentions them); naming a kind in
  `parse` and listing its ids too is a 400; `replied_user` (default false) pings the replied-to author.
Approximation: the fake ignores role mentionability and the Mention Everyone permission, so it reports every
ping the request *allowed*; and it ignores who can see the channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .limits import FormErrors

USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")
EVERYONE_MENTION = re.compile(r"@(everyone|here)")


@dataclass
class Pings:
    users: list[int] = field(default_factory=list)
    roles: list[int] = field(default_factory=list)
    everyone: bool = False


def resolve_pings(content: str, allowed: dict | None, replied_user_id: int | None) -> Pings:
    """The pings of a new message with this content; `replied_user_id` is the author it replies to, if any."""
    users = _unique_ids(USER_MENTION, content)
    roles = _unique_ids(ROLE_MENTION, content)
    everyone = bool(EVERYONE_MENTION.search(content))
    if allowed is None:
        if replied_user_id is not None and replied_user_id not in users:
            users.append(replied_user_id)
        return Pings(users, roles, everyone)

    _check(allowed)
    parse = set(allowed.get("parse") or [])
    if "users" not in parse:
        listed_users = {int(user_id) for user_id in allowed.get("users") or []}
        users = [user_id for user_id in users if user_id in listed_users]
    if "roles" not in parse:
        listed_roles = {int(role_id) for role_id in allowed.get("roles") or []}
        roles = [role_id for role_id in roles if role_id in listed_roles]
    if allowed.get("replied_user") and replied_user_id is not None and replied_user_id not in users:
        users.append(replied_user_id)
    return Pings(users, roles, everyone and "everyone" in parse)


def _check(allowed: dict) -> None:
    errors = FormErrors()
    parse = allowed.get("parse") or []
    for kind in ("users", "roles"):
        if kind in parse and allowed.get(kind):
            errors.add(
                ("allowed_mentions",),
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
            )
        errors.max_length(("allowed_mentions", kind), allowed.get(kind), 100)
    errors.raise_if_any()


def _unique_ids(pattern: re.Pattern[str], content: str) -> list[int]:
    return list(dict.fromkeys(int(match) for match in pattern.findall(content)))
