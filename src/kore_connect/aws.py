"""Low-level AWS clients, created the way `boto3.client` creates them, minus boto3's own import.

`boto3.client(...)` builds a botocore client from a botocore session; importing `boto3` itself also
imports s3transfer, 15-20 ms of every cold start for an S3 feature we never use. So the Lambda
functions create the very same client from a botocore session shared by the container. Region,
credentials and `AWS_ENDPOINT_URL_<SERVICE>` are resolved by botocore exactly as boto3 does.
"""

from __future__ import annotations

import functools
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import NoRegionError

from kore_connect.errors import ConfigError


@functools.cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


def client(service: str, *, config: Config | None = None, endpoint_url: str | None = None) -> Any:
    """A low-level client for `service`. Raises ConfigError when no region is configured."""
    try:
        return _session().create_client(service, config=config, endpoint_url=endpoint_url)
    except NoRegionError as exc:
        raise ConfigError(
            "no AWS region is configured: set AWS_DEFAULT_REGION (Lambda sets it for you)"
        ) from exc
