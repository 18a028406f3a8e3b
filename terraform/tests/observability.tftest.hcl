# What an operator looks at: the CloudWatch dashboard (the simulator's EMF metrics beside the ALB's) and
# the optional ALB access logs in S3. The dashboard body embeds ALB and alarm ARNs, known only after apply.
# Dashboard rows are read as [for x in flatten([... { r = row } ...]) : x.r]: wrapped, so flatten() keeps
# each metric row ([namespace, metric, dimension, value, ..., options] or [{ expression }]) whole.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  image_tag           = "abc1234"
  allowed_cidr_blocks = ["203.0.113.0/24"]
}

run "access_logs_off_by_default" {
  command = plan

  assert {
    condition = (
      length(aws_s3_bucket.alb_logs) == 0 && length(aws_s3_bucket_policy.alb_logs) == 0 &&
      length(aws_s3_bucket_lifecycle_configuration.alb_logs) == 0 && length(aws_s3_bucket_versioning.alb_logs) == 0 &&
      length(aws_s3_bucket_server_side_encryption_configuration.alb_logs) == 0 && length(aws_s3_bucket_public_access_block.alb_logs) == 0
    )
    error_message = "Without alb_access_logs there must be no log bucket."
  }
  assert {
    condition     = aws_lb.this.access_logs[0].enabled == false && output.alb_access_logs_bucket == null
    error_message = "Without alb_access_logs the ALB must not log (explicitly off, so turning it off stops logging)."
  }
}

run "access_log_retention_follows_variable" {
  command = plan

  variables {
    alb_access_logs                = true
    alb_access_logs_retention_days = 7
  }

  assert {
    condition     = one(aws_s3_bucket_lifecycle_configuration.alb_logs[0].rule).expiration[0].days == 7
    error_message = "Logs must expire after alb_access_logs_retention_days."
  }
}

run "dashboard" {
  command = apply

  assert {
    condition     = aws_cloudwatch_dashboard.this.dashboard_name == "fake-api" && output.dashboard_name == "fake-api"
    error_message = "The dashboard must be named after var.name."
  }
  assert {
    condition     = output.dashboard_url == "https://eu-west-2.console.aws.amazon.com/cloudwatch/home?region=eu-west-2#dashboards/dashboard/fake-api"
    error_message = "dashboard_url must open the dashboard in the console."
  }
  assert {
    # Every simulator series is a task total of Service = fake-api in the simulator's namespace.
    condition = (
      toset([for x in flatten([for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : [for r in w.properties.metrics : { r = r }] if w.type == "metric"]) : x.r[1] if try(x.r[0] == "api-simulator" && x.r[2] == "Service" && x.r[3] == "fake-api", false)]) ==
      toset(["Requests", "DeliveredP99", "OvershootP99", "InFlight"])
    )
    error_message = "The dashboard must show the simulator's Requests, DeliveredP99, OvershootP99 and InFlight."
  }
  assert {
    condition = alltrue([for metric in ["Requests", "DeliveredP99", "OvershootP99"] :
      contains([for x in flatten([for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : [for r in w.properties.metrics : { r = r }] if w.type == "metric"]) : x.r[0].expression if can(x.r[0].expression)], "SEARCH('{\"api-simulator\",Route,Service} Service=\"fake-api\" MetricName=\"${metric}\"', '${metric == "Requests" ? "Sum" : "Maximum"}', 60)")
    ])
    error_message = "Requests, delivered and overshoot p99 must also be shown per route (a SEARCH over the Route dimension)."
  }
  assert {
    condition = (
      toset([for x in flatten([for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : [for r in w.properties.metrics : { r = r }] if w.type == "metric"]) : x.r[1] if try(x.r[0] == "AWS/ApplicationELB", false)]) == toset(["RequestCount", "TargetResponseTime", "HealthyHostCount"]) &&
      alltrue([for x in flatten([for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : [for r in w.properties.metrics : { r = r }] if w.type == "metric"]) :
        x.r[3] == "app/fake-api-alb/50dc6c495c0c9188" && x.r[5] == "targetgroup/fake-api-tg/6d0ecf831eec9f09" if try(x.r[0] == "AWS/ApplicationELB", false)
      ])
    )
    error_message = "The ALB's RequestCount, TargetResponseTime and HealthyHostCount of this ALB's target group must be there for comparison."
  }
  assert {
    condition = contains(
      [for x in flatten([for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : [for r in w.properties.metrics : { r = r }] if w.type == "metric"]) : x.r[5] if try(x.r[0] == "AWS/ECS" && x.r[1] == "CPUUtilization" && x.r[6].stat == "SampleCount", false)],
      "fake-api-ecs-service"
    )
    error_message = "The running task count (CPUUtilization SampleCount of the service) must be there."
  }
  assert {
    condition     = toset(one([for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : w.properties.alarms if w.type == "alarm"])) == toset(local.scaling_alarm_arns) && length(local.scaling_alarm_arns) == 3
    error_message = "The dashboard must show the state of the three scaling alarms."
  }
}

run "access_logs_enabled" {
  command = apply

  variables {
    alb_access_logs = true
  }

  assert {
    condition     = aws_s3_bucket.alb_logs[0].bucket == "fake-api-alb-logs-123456789012" && output.alb_access_logs_bucket == "fake-api-alb-logs-123456789012"
    error_message = "The log bucket is named after var.name and the account."
  }
  assert {
    condition = (
      aws_lb.this.access_logs[0].enabled && aws_lb.this.access_logs[0].bucket == aws_s3_bucket.alb_logs[0].bucket &&
      aws_lb.this.access_logs[0].prefix == "alb"
    )
    error_message = "The ALB must log into the bucket under alb/."
  }
  assert {
    condition = (
      one(one(aws_s3_bucket_server_side_encryption_configuration.alb_logs[0].rule).apply_server_side_encryption_by_default).sse_algorithm == "AES256" &&
      aws_s3_bucket_versioning.alb_logs[0].versioning_configuration[0].status == "Enabled"
    )
    error_message = "SSE-S3 (the only encryption ALB log delivery supports) and versioning expected."
  }
  assert {
    condition = (
      aws_s3_bucket_public_access_block.alb_logs[0].block_public_acls && aws_s3_bucket_public_access_block.alb_logs[0].block_public_policy &&
      aws_s3_bucket_public_access_block.alb_logs[0].ignore_public_acls && aws_s3_bucket_public_access_block.alb_logs[0].restrict_public_buckets &&
      one(aws_s3_bucket_ownership_controls.alb_logs[0].rule).object_ownership == "BucketOwnerEnforced"
    )
    error_message = "The log bucket must block all public access and disable ACLs."
  }
  assert {
    condition = (
      one(aws_s3_bucket_lifecycle_configuration.alb_logs[0].rule).status == "Enabled" &&
      one(aws_s3_bucket_lifecycle_configuration.alb_logs[0].rule).expiration[0].days == 30 &&
      one(aws_s3_bucket_lifecycle_configuration.alb_logs[0].rule).noncurrent_version_expiration[0].noncurrent_days == 1
    )
    error_message = "Logs must expire after 30 days by default, old versions a day later."
  }
  assert {
    # eu-west-2 predates August 2022: ELB delivers from its regional account there.
    condition = (
      [for s in jsondecode(aws_s3_bucket_policy.alb_logs[0].policy).Statement : s if s.Effect == "Allow"] ==
      [{
        Sid      = "ElbLogDelivery", Effect = "Allow", Principal = { AWS = "652711504416" }, Action = "s3:PutObject",
        Resource = "arn:aws:s3:::fake-api-alb-logs-123456789012/alb/AWSLogs/123456789012/*"
      }]
    )
    error_message = "Only eu-west-2's ELB account may write, and only below this account's log prefix."
  }
  assert {
    condition = (
      [for s in jsondecode(aws_s3_bucket_policy.alb_logs[0].policy).Statement : s.Condition if s.Effect == "Deny"] ==
      [{ Bool = { "aws:SecureTransport" = "false" } }]
    )
    error_message = "The bucket must refuse requests without TLS."
  }
}

# Regions opened since August 2022 have no ELB account: the log delivery service principal writes there.
run "access_logs_in_a_newer_region" {
  command = apply

  variables {
    aws_region      = "eu-central-2"
    alb_access_logs = true
  }

  assert {
    condition = (
      [for s in jsondecode(aws_s3_bucket_policy.alb_logs[0].policy).Statement : s.Principal if s.Effect == "Allow"] ==
      [{ Service = "logdelivery.elasticloadbalancing.amazonaws.com" }]
    )
    error_message = "Outside the older regions the bucket policy must name logdelivery.elasticloadbalancing.amazonaws.com."
  }
}

run "retention_must_be_whole_days" {
  command = plan

  variables {
    alb_access_logs_retention_days = 0.5
  }

  expect_failures = [var.alb_access_logs_retention_days]
}
