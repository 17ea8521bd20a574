"""Create the table and bucket exactly as template.yaml defines them, against any endpoint
(moto in tests and local mode), so local and deployed storage cannot drift apart."""

from typing import Any

from botocore.exceptions import ClientError

from infra.cfn_template import resources_of_type

TABLE_RESOURCE = "VoiceTable"
BUCKET_RESOURCE = "AudioBucket"


def table_definition() -> dict[str, Any]:
    props = resources_of_type("AWS::DynamoDB::Table")[TABLE_RESOURCE]["Properties"]
    definition: dict[str, Any] = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if "GlobalSecondaryIndexes" in props:
        definition["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return definition


def ttl_attribute() -> str | None:
    props = resources_of_type("AWS::DynamoDB::Table")[TABLE_RESOURCE]["Properties"]
    spec = props.get("TimeToLiveSpecification") or {}
    return spec.get("AttributeName") if spec.get("Enabled") else None


def bucket_lifecycle_rules() -> list[dict[str, Any]]:
    props = resources_of_type("AWS::S3::Bucket")[BUCKET_RESOURCE]["Properties"]
    return list((props.get("LifecycleConfiguration") or {}).get("Rules", []))


def provision(dynamodb: Any, s3: Any, table_name: str, bucket_name: str, region: str = "us-east-1") -> None:
    """Idempotent: existing resources are left as they are."""
    try:
        dynamodb.create_table(TableName=table_name, **table_definition())
        dynamodb.get_waiter("table_exists").wait(TableName=table_name)
        ttl = ttl_attribute()
        if ttl:
            dynamodb.update_time_to_live(
                TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
            )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceInUseException":
            raise
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket_name)
        else:
            s3.create_bucket(Bucket=bucket_name, CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
