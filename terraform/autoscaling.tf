# Step scaling on the ALB's TargetResponseTime, as the original fake did, plus CPU target tracking.
#
# The simulator delays responses on purpose, so raw latency is not a load signal: a fake configured with
# APIM_DELAY_SECONDS=10 would look overloaded forever and sit at max_capacity. Both alarm thresholds
# therefore start from the response time the configured delays explain (expected_delay) and only the
# excess over it counts: above expected_delay + scale-out margin the service is queueing -> +1 task;
# below expected_delay + scale-in margin (or no traffic at all) it has room -> -1 task.

locals {
  min_capacity = local.has_image ? var.min_capacity : 0
  max_capacity = local.has_image ? var.max_capacity : 0

  # Per delayed API, the slowest response its configuration means on an unloaded server. A JSON policy in
  # <API>_DELAY takes precedence over <API>_DELAY_SECONDS, as in the simulator. For random policies the
  # p99 (or the cap) is used rather than the mean, erring towards "slow because configured".
  delay_policy = {
    for api in ["ELID", "APIM"] : api => jsondecode(
      trimspace(lookup(var.environment, "${api}_DELAY", "")) != "" ? var.environment["${api}_DELAY"] : "null"
    )
  }
  delay_ceiling = {
    for api, p in local.delay_policy : api => (
      p == null ? tonumber(coalesce(trimspace(lookup(var.environment, "${api}_DELAY_SECONDS", "")), "0")) :
      lookup(p, "policy", "") == "fixed" ? lookup(p, "seconds", null) :
      lookup(p, "policy", "") == "uniform" ? lookup(p, "max", null) :
      lookup(p, "policy", "") == "lognormal" ? lookup(p, "p99", null) :
      lookup(p, "policy", "") == "percentiles" ? lookup(p, "p99", lookup(p, "max", null)) :
      null # a plugin's own policy: Terraform cannot know its shape
    )
  }
  undetermined_delays = [for api, seconds in local.delay_ceiling : "${api}_DELAY" if seconds == null]

  expected_delay = (
    var.expected_delay_seconds != null ? var.expected_delay_seconds :
    length(local.undetermined_delays) > 0 ? null :
    max(0, values(local.delay_ceiling)...)
  )
  latency_high_threshold = local.expected_delay == null ? null : local.expected_delay + var.latency_scale_out_margin_seconds
  latency_low_threshold  = local.expected_delay == null ? null : local.expected_delay + var.latency_scale_in_margin_seconds

  alb_dimensions = {
    LoadBalancer = aws_lb.this.arn_suffix
    TargetGroup  = aws_lb_target_group.this.arn_suffix
  }
}

resource "aws_appautoscaling_target" "ecs" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = local.min_capacity
  max_capacity       = local.max_capacity
}

resource "aws_appautoscaling_policy" "latency_up" {
  name               = "${var.name}-latency-scale-out"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.ecs.service_namespace
  resource_id        = aws_appautoscaling_target.ecs.resource_id
  scalable_dimension = aws_appautoscaling_target.ecs.scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = 60
    metric_aggregation_type = "Average"

    step_adjustment {
      metric_interval_lower_bound = 0
      scaling_adjustment          = 1
    }
  }
}

resource "aws_appautoscaling_policy" "latency_down" {
  name               = "${var.name}-latency-scale-in"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.ecs.service_namespace
  resource_id        = aws_appautoscaling_target.ecs.resource_id
  scalable_dimension = aws_appautoscaling_target.ecs.scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = 300
    metric_aggregation_type = "Average"

    step_adjustment {
      metric_interval_upper_bound = 0
      scaling_adjustment          = -1
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "latency_high" {
  alarm_name          = "${var.name}-latency-high"
  alarm_description   = "Responses slower than the configured delays explain (${coalesce(local.expected_delay, 0)} s + ${var.latency_scale_out_margin_seconds} s): add a task."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = local.alb_dimensions
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.latency_high_threshold
  treat_missing_data  = "notBreaching" # no traffic is never a reason to scale out
  alarm_actions       = [aws_appautoscaling_policy.latency_up.arn]

  lifecycle {
    precondition {
      condition     = local.expected_delay != null
      error_message = "Cannot derive the latency alarm thresholds from ${join(", ", local.undetermined_delays)}: set expected_delay_seconds to the response time those delays produce."
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "latency_low" {
  alarm_name          = "${var.name}-latency-low"
  alarm_description   = "Responses within the configured delays (${coalesce(local.expected_delay, 0)} s + ${var.latency_scale_in_margin_seconds} s), or no traffic: remove a task."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = local.alb_dimensions
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "LessThanThreshold"
  threshold           = local.latency_low_threshold
  # The ALB publishes no TargetResponseTime without requests; an idle service must still scale in.
  treat_missing_data = "breaching"
  alarm_actions      = [aws_appautoscaling_policy.latency_down.arn]
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-cpu-target"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.ecs.service_namespace
  resource_id        = aws_appautoscaling_target.ecs.resource_id
  scalable_dimension = aws_appautoscaling_target.ecs.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
