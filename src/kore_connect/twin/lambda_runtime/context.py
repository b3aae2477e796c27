"""The context object the Lambda runtime hands a handler, for running handlers in-process."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from kore_connect.aws_events import LOCAL_ACCOUNT, LOCAL_REGION


@dataclass
class LocalLambdaContext:
    """Carries what Powertools and our handlers read from a real `LambdaContext`."""

    function_name: str
    memory_limit_in_mb: int = 128
    timeout_seconds: float = 3.0
    region: str = LOCAL_REGION
    account_id: str = LOCAL_ACCOUNT
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/[{self.function_version}]{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))
