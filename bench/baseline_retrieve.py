"""The baseline: a retrieve handler written the way the reference does it (boto3 resource API, prints).

Kept only to measure against, in the same run; it has the reference's defects (it cannot return
numbers, it prints the event). Never deployed.
"""

import json
import os

import boto3

dynamodb = boto3.resource("dynamodb")
table = dynamodb.Table(os.environ.get("TABLE_NAME", "koreCcSessions"))


def lambda_handler(event, context):
    print(event)
    contact_id = event["Details"]["Parameters"]["contactId"]
    response = table.get_item(Key={"contactId": contact_id})
    if "Item" in response:
        return {"statusCode": 200, "body": json.dumps(response["Item"]["metadata"])}
    return {"statusCode": 404, "body": json.dumps("Data not found")}
