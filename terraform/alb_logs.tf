# Optional ALB access logs (var.alb_access_logs): one line per request, every 5 minutes, in a bucket of
# their own that expires them after var.alb_access_logs_retention_days. Useful to see what the clients
# sent and what the ALB measured, beside what the simulator says it delivered.

locals {
  alb_logs_prefix = "alb"

  # Who writes the logs depends on the region. In the regions that existed before August 2022, ELB
  # delivers them from a regional AWS account, which the bucket policy must name (these are the IDs AWS
  # documents, and the provider's aws_elb_service_account holds; eu-west-2 is 652711504416). Regions opened
  # since accept only the log delivery service principal. A plain map rather than the data source:
  # aws_elb_service_account fails outright in a region it does not list.
  elb_log_delivery_accounts = {
    af-south-1     = "098369216593"
    ap-east-1      = "754344448648"
    ap-northeast-1 = "582318560864"
    ap-northeast-2 = "600734575887"
    ap-northeast-3 = "383597477331"
    ap-south-1     = "718504428378"
    ap-southeast-1 = "114774131450"
    ap-southeast-2 = "783225319266"
    ap-southeast-3 = "589379963580"
    ca-central-1   = "985666609251"
    cn-north-1     = "638102146993"
    cn-northwest-1 = "037604701340"
    eu-central-1   = "054676820928"
    eu-north-1     = "897822967062"
    eu-south-1     = "635631232127"
    eu-west-1      = "156460612806"
    eu-west-2      = "652711504416"
    eu-west-3      = "009996457667"
    me-south-1     = "076674570225"
    sa-east-1      = "507241528517"
    us-east-1      = "127311923021"
    us-east-2      = "033677994240"
    us-gov-east-1  = "190560391635"
    us-gov-west-1  = "048591011584"
    us-west-1      = "027434742980"
    us-west-2      = "797873946194"
  }
  # A bare account ID is a valid principal in every partition (IAM reads it as that account's root).
  elb_log_writer = (
    contains(keys(local.elb_log_delivery_accounts), var.aws_region)
    ? { AWS = local.elb_log_delivery_accounts[var.aws_region] }
    : { Service = "logdelivery.elasticloadbalancing.amazonaws.com" }
  )
}

resource "aws_s3_bucket" "alb_logs" {
  #checkov:skip=CKV_AWS_18:This bucket holds access logs itself; logging its own reads to another bucket would add a bucket per bucket.
  #checkov:skip=CKV_AWS_144:Cross-region replication of short-lived load-test logs has nothing to protect.
  #checkov:skip=CKV_AWS_145:ALB log delivery supports SSE-S3 only, not KMS (AWS: "the only server-side encryption option that's supported").
  #checkov:skip=CKV2_AWS_62:No consumer reacts to new log files; nothing to notify.
  count  = var.alb_access_logs ? 1 : 0
  bucket = "${var.name}-alb-logs-${data.aws_caller_identity.current.account_id}" # bucket names are global
  # Like the log group and the ECR images, `terraform destroy` removes the logs: download them first.
  force_destroy = true
}

resource "aws_s3_bucket_ownership_controls" "alb_logs" {
  count  = var.alb_access_logs ? 1 : 0
  bucket = aws_s3_bucket.alb_logs[0].id

  rule {
    object_ownership = "BucketOwnerEnforced" # no ACLs: the bucket policy alone decides
  }
}

resource "aws_s3_bucket_public_access_block" "alb_logs" {
  count                   = var.alb_access_logs ? 1 : 0
  bucket                  = aws_s3_bucket.alb_logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "alb_logs" {
  count  = var.alb_access_logs ? 1 : 0
  bucket = aws_s3_bucket.alb_logs[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "alb_logs" {
  count  = var.alb_access_logs ? 1 : 0
  bucket = aws_s3_bucket.alb_logs[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256" # SSE-S3, the only encryption ALB log delivery supports
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "alb_logs" {
  count  = var.alb_access_logs ? 1 : 0
  bucket = aws_s3_bucket.alb_logs[0].id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}

    expiration {
      days = var.alb_access_logs_retention_days
    }
    # In a versioned bucket expiry only hides a log behind a delete marker; this frees the storage.
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  # The rule applies to the versions that versioning creates.
  depends_on = [aws_s3_bucket_versioning.alb_logs]
}

resource "aws_s3_bucket_policy" "alb_logs" {
  count  = var.alb_access_logs ? 1 : 0
  bucket = aws_s3_bucket.alb_logs[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "ElbLogDelivery"
        Effect    = "Allow"
        Principal = local.elb_log_writer
        Action    = "s3:PutObject"
        # Only under this account's own path: ELB writes another account's ALB logs below that account's
        # ID, so nobody else's load balancer can use the bucket.
        Resource = "${aws_s3_bucket.alb_logs[0].arn}/${local.alb_logs_prefix}/AWSLogs/${data.aws_caller_identity.current.account_id}/*"
      },
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.alb_logs[0].arn, "${aws_s3_bucket.alb_logs[0].arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })

  # S3 can refuse two configuration changes to one bucket at once (OperationAborted): one after the other.
  depends_on = [aws_s3_bucket_public_access_block.alb_logs]
}
