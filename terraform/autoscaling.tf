# Step scaling on the simulator's own CloudWatch metrics, plus CPU target tracking.
#
# The simulator delays responses on purpose, so the ALB's TargetResponseTime measures the configured
# delays, not load: with a 10 s token delay a task would only be added once the average passed 10 s plus a
# margin. Each task therefore publishes what it *adds* to the delays it was asked for (ecs.tf sets
# SIMULATOR_CLOUDWATCH=emf): once a minute, Embedded Metric Format records in its log stream, which
# CloudWatch Logs turns into metrics in local.metrics_namespace, dimension Service (the task's totals)
# and Service + Route. The alarms read the [Service] series with 1-minute periods:
#   - OvershootP99, Maximum: the worst task's p99 of delivered latency minus the configured delay (ms).
#     It grows when a task queues (CPU, event loop, garbage collection), whatever the delays are.
#   - InFlight, Average: requests being answered per task, delayed ones included. A delayed request costs
#     little CPU but holds memory (about 14 KiB each, measured) and a connection until it is answered, so
#     many long delays can fill a task's memory while its CPU and overshoot still look fine.
# Either one above its scale-out threshold in 2 of 3 minutes adds a task (60 s cooldown); both below their
# scale-in thresholds for 5 minutes removes one (300 s cooldown). A task prints no OvershootP99 in a
# minute without answers, and nothing at all is printed while no task runs: no data never adds a task,
# and lets one go.
#
# Setting SIMULATOR_CLOUDWATCH to anything but "emf" in var.environment removes these alarms (there would
# be no signal), leaving CPU target tracking alone.

locals {
  min_capacity = local.has_image ? var.min_capacity : 0
  max_capacity = local.has_image ? var.max_capacity : 0

  # The alarms (and the dashboard) watch what the tasks are told to publish, overrides in
  # var.environment included.
  emf_scaling       = local.container_environment["SIMULATOR_CLOUDWATCH"] == "emf"
  metrics_namespace = local.container_environment["SIMULATOR_CLOUDWATCH_NAMESPACE"]
  metrics_service   = local.container_environment["SIMULATOR_SERVICE_NAME"]
}

resource "aws_appautoscaling_target" "ecs" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = local.min_capacity
  max_capacity       = local.max_capacity
}

resource "aws_appautoscaling_policy" "scale_out" {
  count              = local.emf_scaling ? 1 : 0
  name               = "${var.name}-simulator-scale-out"
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

resource "aws_appautoscaling_policy" "scale_in" {
  count              = local.emf_scaling ? 1 : 0
  name               = "${var.name}-simulator-scale-in"
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

# Two alarms on one policy: either adds a task.
resource "aws_cloudwatch_metric_alarm" "overshoot_high" {
  count               = local.emf_scaling ? 1 : 0
  alarm_name          = "${var.name}-overshoot-high"
  alarm_description   = "The worst task answers more than ${var.overshoot_scale_out_ms} ms (p99) later than its configured delays: add a task."
  namespace           = local.metrics_namespace
  metric_name         = "OvershootP99"
  dimensions          = { Service = local.metrics_service }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.overshoot_scale_out_ms
  treat_missing_data  = "notBreaching" # no answers, no overshoot: never a reason to scale out
  alarm_actions       = [aws_appautoscaling_policy.scale_out[0].arn]
}

resource "aws_cloudwatch_metric_alarm" "in_flight_high" {
  count               = local.emf_scaling ? 1 : 0
  alarm_name          = "${var.name}-in-flight-high"
  alarm_description   = "More than ${var.in_flight_scale_out_per_task} requests in flight per task (each holds memory until its delay ends): add a task."
  namespace           = local.metrics_namespace
  metric_name         = "InFlight"
  dimensions          = { Service = local.metrics_service }
  statistic           = "Average" # one record per task per minute: the average is per task
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.in_flight_scale_out_per_task
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.scale_out[0].arn]
}

# Scale in needs both signals low at once, which two alarms cannot express (composite alarms cannot call
# Application Auto Scaling): one metric-math alarm, 1 in a minute when both are under their thresholds.
resource "aws_cloudwatch_metric_alarm" "quiet" {
  count               = local.emf_scaling ? 1 : 0
  alarm_name          = "${var.name}-simulator-quiet"
  alarm_description   = "Overshoot p99 under ${var.overshoot_scale_in_ms} ms and under ${var.in_flight_scale_in_per_task} requests in flight per task for 5 minutes, or no metrics at all (no task, no traffic): remove a task."
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  # No EMF data means no task publishing, hence no traffic to serve: scaling in is allowed.
  treat_missing_data = "breaching"
  alarm_actions      = [aws_appautoscaling_policy.scale_in[0].arn]

  metric_query {
    id          = "quiet"
    label       = "1 = overshoot and in-flight both under the scale-in thresholds"
    expression  = "IF(overshoot < ${var.overshoot_scale_in_ms} AND in_flight < ${var.in_flight_scale_in_per_task}, 1, 0)"
    return_data = true
  }

  metric_query {
    id         = "overshoot"
    label      = "OvershootP99, a minute without answers counted as 0"
    expression = "FILL(overshoot_p99, 0)"
  }

  metric_query {
    id = "overshoot_p99"
    metric {
      namespace   = local.metrics_namespace
      metric_name = "OvershootP99"
      dimensions  = { Service = local.metrics_service }
      stat        = "Maximum"
      period      = 60
    }
  }

  metric_query {
    id = "in_flight"
    metric {
      namespace   = local.metrics_namespace
      metric_name = "InFlight"
      dimensions  = { Service = local.metrics_service }
      stat        = "Average"
      period      = 60
    }
  }
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
