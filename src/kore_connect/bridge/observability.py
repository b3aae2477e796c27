"""The functions' structured logger and metrics (Powertools), in one place.

Logs are JSON lines carrying the Lambda request ID and a correlation ID (the API request ID or
the Connect contact ID). They name contacts, sizes and outcomes, never tokens or metadata values.
Metrics go out as CloudWatch Embedded Metric Format in the namespace `KoreConnect`
(`POWERTOOLS_METRICS_NAMESPACE` overrides it).
"""

from __future__ import annotations

import enum
import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "kore-connect"
NAMESPACE = "KoreConnect"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE))


class Metric(enum.Enum):
    STORED = "Stored"
    REJECTED = "Rejected"  # a request we refused as invalid
    RETRIEVED = "Retrieved"
    NOT_FOUND = "NotFound"
    TOO_LARGE = "TooLarge"  # stored metadata that cannot fit in Connect's 32 KB response
    ALLOWED = "Allowed"
    DENIED = "Denied"
    FAILED = "Failed"  # storage or secret failures


def count(metric: Metric) -> None:
    metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=1)
