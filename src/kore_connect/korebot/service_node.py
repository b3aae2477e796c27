"""The Agent Transfer dialog's Service node: the request that sends the bot's metadata to the store.

Kore's Service node is an HTTP request whose URL, headers and body are templates: before sending,
Kore replaces each `{{...}}` placeholder with a value from the dialog's context, as plain text.
Ours is `POST <MetadataEndpointUrl>?contactId={{...ContactId}}` with the token in the
`authorizationToken` header (the API's TOKEN authorizer reads it) and a JSON body holding
`x_metadata` and `kore-instanceSessionId` (REFERENCE.md, section 1).

The token is a secret and never part of the node: the header's value is a placeholder for a
secured bot environment variable, which the team sets to the stack's token.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kore_connect.errors import KoreConnectError
from kore_connect.stack import OUTPUT_METADATA_URL, RESOURCE_PATH, TOKEN_HEADER

# Set by the Agent Transfer Script node (snippets/agent_transfer_script.js).
CONTACT_ID_PLACEHOLDER = "{{context.session.BotUserSession.ContactId}}"
# As in Kore's guide "Amazon Connect Integration with Kore using Amazon External Voice Connector
# (Voice Automation)": the Agent AI widget finds the bot's history by this ID.
INSTANCE_SESSION_ID_PLACEHOLDER = (
    "{{context.session.BotUserSession.lastMessage.messagePayload.instanceSessionId}}"
)
DEFAULT_TOKEN_VARIABLE = "koreApiToken"  # noqa: S105 (the name of a variable, not a token)
METHOD = "POST"
CONTENT_TYPE = "application/json"
EXAMPLE_API_URL = f"https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/prod{RESOURCE_PATH}"

# A starting point that teams edit. Kore substitutes placeholders as raw text, so each one sits
# inside a JSON string and stands for a value that holds no quote or backslash: the body stays
# valid JSON once rendered.
BODY_TEMPLATE = json.dumps(
    {
        "x_metadata": f"Hello from Kore for contact {CONTACT_ID_PLACEHOLDER}",
        "kore-instanceSessionId": INSTANCE_SESSION_ID_PLACEHOLDER,
    },
    indent=2,
)

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_SHORTEST_TOKEN = 16  # bridge.tokens.MIN_TOKEN_LENGTH, not imported: the CLI needs none of the bridge
_VARIABLE_NAME = re.compile(rf"[A-Za-z][A-Za-z0-9_]{{0,{_SHORTEST_TOKEN - 2}}}")
_WHAT_TO_PASS = f"pass the stack output {OUTPUT_METADATA_URL}, e.g. {EXAMPLE_API_URL}"


class KoreConfigError(KoreConnectError):
    """An input to the Kore configuration is invalid. The message says what is wrong and what to pass."""


def token_placeholder(variable: str) -> str:
    """The Kore placeholder for the bot environment variable `variable`: `{{env.<variable>}}`."""
    return f"{{{{env.{validate_token_variable(variable)}}}}}"


@dataclass(frozen=True)
class ServiceNode:
    """What to enter in the Service node's request definition; `url` and `body` are Kore templates."""

    url: str
    method: str
    headers: tuple[tuple[str, str], ...]
    body: str

    @classmethod
    def for_endpoint(cls, api_url: str, token_variable: str = DEFAULT_TOKEN_VARIABLE) -> ServiceNode:
        """The node for the metadata endpoint `api_url`, the token read from `{{env.<token_variable>}}`.

        Raises KoreConfigError when the URL or the variable name is not acceptable.
        """
        endpoint = validate_api_url(api_url)
        return cls(
            url=f"{endpoint}?contactId={CONTACT_ID_PLACEHOLDER}",
            method=METHOD,
            headers=((TOKEN_HEADER, token_placeholder(token_variable)), ("Content-Type", CONTENT_TYPE)),
            body=BODY_TEMPLATE,
        )

    def placeholders(self) -> tuple[str, ...]:
        """The context paths of every placeholder in the URL, headers and body, each once, in order."""
        texts = [self.url, *(value for _, value in self.headers), self.body]
        found = (match.group(1) for text in texts for match in _PLACEHOLDER.finditer(text))
        return tuple(dict.fromkeys(found))

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "headers": dict(self.headers), "body": self.body}


def validate_api_url(api_url: str) -> str:
    """`api_url` as the endpoint the Service node may call, or KoreConfigError saying why not.

    Accepted: https (http only for a loopback host, where the local twin listens), a host, a path
    ending in `/kore-metadata`, no query string (the node adds `?contactId=`), no fragment and no
    credentials. One trailing slash is dropped.
    """
    url = api_url.strip()
    if not url:
        raise KoreConfigError(f"the API URL is empty: {_WHAT_TO_PASS}")
    if any(character.isspace() or not character.isprintable() for character in url):
        raise KoreConfigError(f"the API URL must not contain spaces or control characters: {_WHAT_TO_PASS}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port out of range or not a number)
    except ValueError as exc:
        raise KoreConfigError(f"the API URL {url!r} is not a valid URL ({exc}): {_WHAT_TO_PASS}") from None
    if parts.username is not None or parts.password is not None:
        # Not echoed: what precedes the @ may be a secret.
        raise KoreConfigError(
            "the API URL must not hold credentials (user:password@); the token goes in the "
            f"{TOKEN_HEADER} header: {_WHAT_TO_PASS}"
        )
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise KoreConfigError(f"the API URL {url!r} must start with https://: {_WHAT_TO_PASS}")
    if not parts.hostname:
        raise KoreConfigError(f"the API URL {url!r} has no host: {_WHAT_TO_PASS}")
    if scheme == "http" and not _is_loopback(parts.hostname):
        raise KoreConfigError(
            f"the API URL {url!r} must use https (http is accepted only for localhost, 127.0.0.1 or [::1], "
            f"where the local twin listens): {_WHAT_TO_PASS}"
        )
    if parts.query:
        raise KoreConfigError(
            f"the API URL {url!r} must not have a query string: the Service node adds ?contactId=...; "
            f"{_WHAT_TO_PASS}"
        )
    if parts.fragment:
        raise KoreConfigError(f"the API URL {url!r} must not have a fragment (#...): {_WHAT_TO_PASS}")
    path = parts.path[:-1] if parts.path.endswith("/") else parts.path
    if not path.endswith(RESOURCE_PATH):
        raise KoreConfigError(f"the API URL {url!r} must end with {RESOURCE_PATH}: {_WHAT_TO_PASS}")
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def validate_token_variable(name: str) -> str:
    """`name` if Kore accepts it as an environment variable name, else KoreConfigError.

    A user may pass the token itself by mistake, and a generated token (letters and digits) is a
    valid identifier. So names are shorter than the shortest token the authorizer accepts (16
    characters): a token can never pass for a name and be printed. No refused name is echoed.
    """
    if not _VARIABLE_NAME.fullmatch(name):
        raise KoreConfigError(
            "the token variable name is not valid: use 1 to 15 letters, digits and underscores, starting "
            "with a letter (shorter than any token, so a token is never printed), "
            f"e.g. {DEFAULT_TOKEN_VARIABLE}"
        )
    return name


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
