"""Names shared by the SAM template (`template.yaml`), `kore-connect doctor` and the docs.

The template is the source of truth; a test checks these names against it so the two cannot drift.
"""

from __future__ import annotations

# Logical IDs of the three functions, as in the reference setup.
STORE_FUNCTION = "KoreStoreSessionMetadata"
AUTHORIZER_FUNCTION = "AuthenticateBeforeStoringInDynamoDB"
RETRIEVE_FUNCTION = "KoreRetrieveSessionMetadata"
AUTHORIZER_NAME = "koreClientAuth"
TOKEN_HEADER = "authorizationToken"  # noqa: S105 (a header name)
RESOURCE_PATH = "/kore-metadata"

# The template parameter naming the reference setup's table while switching from it (docs/migration.md).
PARAMETER_REFERENCE_TABLE = "ReferenceTableName"

# Stack outputs.
OUTPUT_METADATA_URL = (
    "MetadataEndpointUrl"  # https://<api>.execute-api.<region>.amazonaws.com/<stage>/kore-metadata
)
OUTPUT_RETRIEVE_FUNCTION_ARN = "RetrieveFunctionArn"
OUTPUT_TOKEN_SECRET_ARN = "TokenSecretArn"  # noqa: S105 (an output name)
OUTPUT_TABLE_NAME = "SessionsTableName"
OUTPUT_CONNECT_INSTANCE_ARN = "ConnectInstanceArn"  # present only when the stack was given an instance

REQUIRED_OUTPUTS = (
    OUTPUT_METADATA_URL,
    OUTPUT_RETRIEVE_FUNCTION_ARN,
    OUTPUT_TOKEN_SECRET_ARN,
    OUTPUT_TABLE_NAME,
)
