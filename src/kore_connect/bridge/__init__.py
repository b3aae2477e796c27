"""The three Lambda functions of the metadata bridge and what they share.

- `authorizer`: AuthenticateBeforeStoringInDynamoDB, the API's TOKEN authorizer.
- `store`: koreStoreSessionMetadata, behind `POST /kore-metadata?contactId=...`.
- `retrieve`: koreRetrieveSessionMetadata, invoked from the Amazon Connect flow.
"""
