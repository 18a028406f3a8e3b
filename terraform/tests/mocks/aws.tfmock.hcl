# Well-formed values for what `terraform test` would otherwise fill with random strings that the
# provider's own validation rejects (ARNs) or that make assertions unreadable (URLs).

mock_resource "aws_lb" {
  defaults = {
    arn        = "arn:aws:elasticloadbalancing:eu-west-2:123456789012:loadbalancer/app/fake-api-alb/50dc6c495c0c9188"
    arn_suffix = "app/fake-api-alb/50dc6c495c0c9188"
    dns_name   = "fake-api-alb-123456789.eu-west-2.elb.amazonaws.com"
  }
}

mock_resource "aws_lb_target_group" {
  defaults = {
    arn        = "arn:aws:elasticloadbalancing:eu-west-2:123456789012:targetgroup/fake-api-tg/6d0ecf831eec9f09"
    arn_suffix = "targetgroup/fake-api-tg/6d0ecf831eec9f09"
  }
}

mock_resource "aws_iam_role" {
  defaults = {
    arn = "arn:aws:iam::123456789012:role/fake-api-mock"
  }
}

mock_resource "aws_appautoscaling_policy" {
  defaults = {
    arn = "arn:aws:autoscaling:eu-west-2:123456789012:scalingPolicy:0a1b2c3d-0000-0000-0000-000000000000:resource/ecs/service/fake-api-ecs-cluster/fake-api-ecs-service:policyName/mock"
  }
}

mock_resource "aws_ecr_repository" {
  defaults = {
    arn            = "arn:aws:ecr:eu-west-2:123456789012:repository/fake-api"
    repository_url = "123456789012.dkr.ecr.eu-west-2.amazonaws.com/fake-api"
  }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = {
    arn = "arn:aws:logs:eu-west-2:123456789012:log-group:/ecs/fake-api"
  }
}

mock_resource "aws_ecs_task_definition" {
  defaults = {
    arn = "arn:aws:ecs:eu-west-2:123456789012:task-definition/fake-api:1"
  }
}

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
  }
}

mock_resource "aws_s3_bucket" {
  defaults = {
    arn = "arn:aws:s3:::fake-api-alb-logs-123456789012"
  }
}
