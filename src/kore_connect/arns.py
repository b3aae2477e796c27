"""The AWS ARNs kore-connect takes from users, checked before anything is written or called.

Each kind has its own pattern so that a queue ARN pasted where the connector belongs is caught
with a message that says which ARN was expected and what one looks like.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kore_connect.errors import KoreConnectError

_PARTITION = r"aws(?:-cn|-us-gov)?"
_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d"
_ACCOUNT = r"\d{12}"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class BadArn(KoreConnectError):
    """A value that is not the ARN of the expected kind; the message shows the expected shape."""


@dataclass(frozen=True, slots=True)
class ArnKind:
    description: str
    example: str
    pattern: re.Pattern[str]

    def check(self, value: str) -> str:
        """Return `value` when it is an ARN of this kind; raise BadArn naming the expected shape otherwise."""
        if not self.pattern.fullmatch(value):
            raise BadArn(f"{value!r} is not {self.description} (expected e.g. {self.example})")
        return value


VOICE_CONNECTOR = ArnKind(
    "an external voice transfer connector ARN",
    "arn:aws:chime:us-east-1:123456789012:vc/abcdefghijklmnopqrstuv",
    re.compile(rf"arn:{_PARTITION}:chime:{_REGION}:{_ACCOUNT}:vc/[a-z0-9]{{1,64}}"),
)
LAMBDA_FUNCTION = ArnKind(
    "a Lambda function ARN",
    "arn:aws:lambda:us-east-1:123456789012:function:koreRetrieveSessionMetadata",
    re.compile(
        rf"arn:{_PARTITION}:lambda:{_REGION}:{_ACCOUNT}:function:[A-Za-z0-9_-]{{1,140}}(?::[A-Za-z0-9$_-]+)?"
    ),
)
CONNECT_QUEUE = ArnKind(
    "an Amazon Connect queue ARN",
    "arn:aws:connect:us-east-1:123456789012:instance/<instance id>/queue/<queue id>",
    re.compile(rf"arn:{_PARTITION}:connect:{_REGION}:{_ACCOUNT}:instance/{_UUID}/queue/{_UUID}"),
)
CONNECT_INSTANCE = ArnKind(
    "an Amazon Connect instance ARN",
    "arn:aws:connect:us-east-1:123456789012:instance/<instance id>",
    re.compile(rf"arn:{_PARTITION}:connect:{_REGION}:{_ACCOUNT}:instance/{_UUID}"),
)


# Where a Connect instance can use an external voice transfer connector: the Regions with both
# Amazon Connect (Administrator Guide, "Availability of Amazon Connect features by Region") and
# Chime SDK Voice Connectors, which the connector is (the ListAvailableVoiceConnectorRegions API's
# valid values). af-south-1 and us-gov-west-1 have Connect and no Voice Connector; eu-west-1 has
# Voice Connectors and no Connect.
EXTERNAL_VOICE_TRANSFER_REGIONS = (
    "us-east-1",
    "us-west-2",
    "ca-central-1",
    "eu-central-1",
    "eu-west-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
)


@dataclass(frozen=True, slots=True)
class Place:
    """Where an ARN's resource lives: its Region and its account."""

    region: str
    account: str

    @classmethod
    def of(cls, arn: str) -> Place:
        """The Region and account of an ARN its kind has checked (`arn:partition:service:region:account:`)."""
        parts = arn.split(":")
        return cls(parts[3], parts[4])

    def __str__(self) -> str:
        return f"{self.region}, account {self.account}"
