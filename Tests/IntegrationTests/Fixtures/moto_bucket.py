#!/usr/bin/env python3
"""Sets up and inspects a moto_server bucket for the integration tests, with boto3 (the AWS SDK,
installed with moto[server]), so the bucket a gateway writes is read back by a client other
than the gateway's own.

  moto_bucket.py setup ENDPOINT BUCKET [--iam]
      --iam: the server checks signatures (INITIAL_NO_AUTH_ACTION_COUNT=3); the three free
      requests create an IAM user with s3:* and its access key. Creates BUCKET with the key.
      Prints {"access_key_id": ..., "secret_access_key": ...}.
  moto_bucket.py list ENDPOINT BUCKET KEY SECRET
      Prints {"<key>": <size>, ...} for every object in the bucket (paged by boto3).
"""
import json
import sys

import boto3
from botocore.config import Config

REGION = "us-east-1"


def client(service, endpoint, key, secret):
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key, aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def setup(endpoint, bucket, iam):
    key, secret = "test", "test"
    if iam:
        users = client("iam", endpoint, key, secret)
        users.create_user(UserName="mirrorgate")
        users.put_user_policy(
            UserName="mirrorgate", PolicyName="s3",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        created = users.create_access_key(UserName="mirrorgate")["AccessKey"]
        key, secret = created["AccessKeyId"], created["SecretAccessKey"]
    client("s3", endpoint, key, secret).create_bucket(Bucket=bucket)
    print(json.dumps({"access_key_id": key, "secret_access_key": secret}))


def list_objects(endpoint, bucket, key, secret):
    objects = {}
    # No Prefix: moto, checking signatures, refuses a correctly signed query with %2F in it.
    for page in client("s3", endpoint, key, secret).get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            objects[item["Key"]] = item["Size"]
    print(json.dumps(objects))


def main(argv):
    if len(argv) >= 3 and argv[0] == "setup":
        setup(argv[1], argv[2], "--iam" in argv[3:])
    elif len(argv) == 5 and argv[0] == "list":
        list_objects(*argv[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
