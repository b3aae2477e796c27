"""The options that choose where the local twin keeps sessions, shared by `up` and `serve api`."""

from __future__ import annotations

from typing import Annotated

import typer

DynamoDBEndpoint = Annotated[
    str | None,
    typer.Option(
        help="Keep sessions in DynamoDB on this machine (DynamoDB Local, dynalite), e.g. "
        "http://127.0.0.1:8000, instead of SQLite; the table is created if missing."
    ),
]
Table = Annotated[str, typer.Option(help="The DynamoDB table (with --dynamodb-endpoint).")]
