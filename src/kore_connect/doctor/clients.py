"""The real clients the doctor uses, from a boto3 session (profile and region resolved as the AWS CLI does).

boto3 itself is fine here: the doctor runs on an operator's machine, not in Lambda, where
`kore_connect.aws` avoids boto3's import cost.
"""

from __future__ import annotations

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import NoRegionError, ProfileNotFound

from kore_connect.doctor.api import HTTP_TIMEOUT_SECONDS
from kore_connect.doctor.checks import DoctorClients, DoctorError

# An operator waits for the answer: two retries, and no single attempt waits more than 10 s.
AWS_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 3})
# Amazon Connect's API allows a few requests a second: back off and try longer when it throttles.
CONNECT_CONFIG = AWS_CONFIG.merge(Config(retries={"mode": "adaptive", "total_max_attempts": 8}))
USER_AGENT = "kore-connect-doctor"


def build_clients(*, profile: str | None, region: str | None) -> DoctorClients:
    """Clients for `profile` (None: the default chain) in `region` (None: the profile's region, or
    AWS_DEFAULT_REGION).

    Raises DoctorError when the profile does not exist or no region is configured.
    """
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        clients = DoctorClients(
            cloudformation=session.client("cloudformation", config=AWS_CONFIG),
            dynamodb=session.client("dynamodb", config=AWS_CONFIG),
            secretsmanager=session.client("secretsmanager", config=AWS_CONFIG),
            lambda_=session.client("lambda", config=AWS_CONFIG),
            connect=session.client("connect", config=CONNECT_CONFIG),
            voice=session.client("chime-sdk-voice", config=AWS_CONFIG),
            http=httpx.Client(
                timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False, headers={"User-Agent": USER_AGENT}
            ),
        )
    except ProfileNotFound as exc:
        raise DoctorError(
            f"no AWS profile {exc.kwargs.get('profile', profile)!r} in ~/.aws/config or ~/.aws/credentials: "
            "check --profile (or AWS_PROFILE); `aws configure list-profiles` lists them"
        ) from exc
    except NoRegionError as exc:
        raise DoctorError(
            "no AWS region: pass --region, set AWS_DEFAULT_REGION, "
            "or give the profile a region (`aws configure`)"
        ) from exc
    return clients
