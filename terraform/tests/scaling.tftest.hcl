# 1..3 tasks, step scaling on the simulator's own EMF metrics (OvershootP99 and InFlight, dimension
# Service), and CPU target tracking. Thresholds and capacities are known at plan time; which policy an
# alarm calls (policy ARNs) and the task definition's environment only after apply (mocked). The apply
# runs come after the plan runs: their state (desired_count is ignore_changes) would leak into a plan.

mock_provider "aws" {
  source = "./tests/mocks"
}

# Distinct policy ARNs, so an assertion can tell which policy an alarm calls.
override_resource {
  target = aws_appautoscaling_policy.scale_out
  values = { arn = "arn:aws:autoscaling:eu-west-2:123456789012:scalingPolicy:00000000-0000-0000-0000-00000000000a:resource/ecs/service/fake-api-ecs-cluster/fake-api-ecs-service:policyName/fake-api-simulator-scale-out" }
}

override_resource {
  target = aws_appautoscaling_policy.scale_in
  values = { arn = "arn:aws:autoscaling:eu-west-2:123456789012:scalingPolicy:00000000-0000-0000-0000-00000000000b:resource/ecs/service/fake-api-ecs-cluster/fake-api-ecs-service:policyName/fake-api-simulator-scale-in" }
}

variables {
  image_tag           = "abc1234"
  allowed_cidr_blocks = ["203.0.113.0/24"]
}

run "defaults_scale_one_to_three" {
  command = plan

  assert {
    condition     = aws_appautoscaling_target.ecs.min_capacity == 1 && aws_appautoscaling_target.ecs.max_capacity == 3 && aws_ecs_service.this.desired_count == 1
    error_message = "Autoscaling must span 1 to 3 tasks by default."
  }
  assert {
    condition = (
      aws_appautoscaling_policy.scale_out[0].policy_type == "StepScaling" &&
      aws_appautoscaling_policy.scale_out[0].step_scaling_policy_configuration[0].cooldown == 60 &&
      one(aws_appautoscaling_policy.scale_out[0].step_scaling_policy_configuration[0].step_adjustment).scaling_adjustment == 1 &&
      aws_appautoscaling_policy.scale_in[0].policy_type == "StepScaling" &&
      aws_appautoscaling_policy.scale_in[0].step_scaling_policy_configuration[0].cooldown == 300 &&
      one(aws_appautoscaling_policy.scale_in[0].step_scaling_policy_configuration[0].step_adjustment).scaling_adjustment == -1
    )
    error_message = "Step scaling: +1 with a 60 s cooldown, -1 with a 300 s cooldown."
  }
  assert {
    condition = (
      aws_appautoscaling_policy.cpu.policy_type == "TargetTrackingScaling" &&
      aws_appautoscaling_policy.cpu.target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].predefined_metric_type == "ECSServiceAverageCPUUtilization" &&
      aws_appautoscaling_policy.cpu.target_tracking_scaling_policy_configuration[0].target_value == 60 &&
      aws_appautoscaling_policy.cpu.target_tracking_scaling_policy_configuration[0].scale_out_cooldown == 60 &&
      aws_appautoscaling_policy.cpu.target_tracking_scaling_policy_configuration[0].scale_in_cooldown == 300
    )
    error_message = "CPU target tracking at 60 % expected, with the same cooldowns."
  }
}

run "scale_out_alarms_watch_the_simulator" {
  command = plan

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.overshoot_high[0].namespace == "api-simulator" &&
      aws_cloudwatch_metric_alarm.overshoot_high[0].metric_name == "OvershootP99" &&
      aws_cloudwatch_metric_alarm.overshoot_high[0].dimensions == tomap({ Service = "fake-api" }) &&
      aws_cloudwatch_metric_alarm.overshoot_high[0].statistic == "Maximum" &&
      aws_cloudwatch_metric_alarm.overshoot_high[0].threshold == 100
    )
    error_message = "The overshoot alarm must watch the worst task's (Maximum) OvershootP99 of Service=fake-api in api-simulator, above 100 ms."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.in_flight_high[0].namespace == "api-simulator" &&
      aws_cloudwatch_metric_alarm.in_flight_high[0].metric_name == "InFlight" &&
      aws_cloudwatch_metric_alarm.in_flight_high[0].dimensions == tomap({ Service = "fake-api" }) &&
      aws_cloudwatch_metric_alarm.in_flight_high[0].statistic == "Average" &&
      aws_cloudwatch_metric_alarm.in_flight_high[0].threshold == 2000
    )
    error_message = "The in-flight alarm must watch the per-task average (Average over the tasks' records) of InFlight, above 2000."
  }
  assert {
    condition = alltrue([for a in [aws_cloudwatch_metric_alarm.overshoot_high[0], aws_cloudwatch_metric_alarm.in_flight_high[0]] :
      a.period == 60 && a.evaluation_periods == 3 && a.datapoints_to_alarm == 2 &&
      a.comparison_operator == "GreaterThanThreshold" && a.treat_missing_data == "notBreaching"
    ])
    error_message = "Scale out needs 2 of 3 one-minute periods above the threshold; no data is never a reason to scale out."
  }
}

run "scale_in_alarm_needs_both_signals_low" {
  command = plan

  assert {
    condition = (
      [for q in aws_cloudwatch_metric_alarm.quiet[0].metric_query : q.expression if q.return_data == true] ==
      ["IF(overshoot < 20 AND in_flight < 800, 1, 0)"]
    )
    error_message = "The scale-in alarm must be 1 only when overshoot < 20 ms AND in-flight per task < 800."
  }
  assert {
    condition = (
      [for q in aws_cloudwatch_metric_alarm.quiet[0].metric_query : q.expression if q.id == "overshoot"] == ["FILL(overshoot_p99, 0)"]
    )
    error_message = "A minute without answers (no OvershootP99) must count as no overshoot."
  }
  assert {
    condition = (
      { for q in aws_cloudwatch_metric_alarm.quiet[0].metric_query : q.id => [
        one(q.metric).namespace, one(q.metric).metric_name, one(q.metric).dimensions, one(q.metric).stat, one(q.metric).period,
      ] if length(q.metric) > 0 } ==
      {
        overshoot_p99 = ["api-simulator", "OvershootP99", tomap({ Service = "fake-api" }), "Maximum", 60]
        in_flight     = ["api-simulator", "InFlight", tomap({ Service = "fake-api" }), "Average", 60]
      }
    )
    error_message = "The scale-in alarm must read the same series as the scale-out alarms."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.quiet[0].comparison_operator == "GreaterThanOrEqualToThreshold" &&
      aws_cloudwatch_metric_alarm.quiet[0].threshold == 1 &&
      aws_cloudwatch_metric_alarm.quiet[0].evaluation_periods == 5 && aws_cloudwatch_metric_alarm.quiet[0].datapoints_to_alarm == 5 &&
      aws_cloudwatch_metric_alarm.quiet[0].treat_missing_data == "breaching"
    )
    error_message = "Scale in after 5 quiet minutes; no EMF data at all (no task, no traffic) allows it."
  }
}

# The only alarms in the configuration are the three above: none reads the ALB, so the configured delays
# (which TargetResponseTime contains) cannot pin the service at max_capacity.
run "no_alb_latency_alarm_scales" {
  command = plan

  variables {
    environment = { ELID_DELAY_SECONDS = "2", APIM_DELAY_SECONDS = "10" }
  }

  assert {
    condition = alltrue(concat(
      [for a in concat(aws_cloudwatch_metric_alarm.overshoot_high, aws_cloudwatch_metric_alarm.in_flight_high) :
      a.namespace == "api-simulator" && contains(["OvershootP99", "InFlight"], a.metric_name)],
      [for q in aws_cloudwatch_metric_alarm.quiet[0].metric_query : one(q.metric).namespace == "api-simulator" if length(q.metric) > 0],
    ))
    error_message = "Every scaling alarm must read the simulator's namespace, none AWS/ApplicationELB."
  }
  assert {
    condition = toset(concat(
      [for a in concat(aws_cloudwatch_metric_alarm.overshoot_high, aws_cloudwatch_metric_alarm.in_flight_high) : a.metric_name],
      [for q in aws_cloudwatch_metric_alarm.quiet[0].metric_query : one(q.metric).metric_name if length(q.metric) > 0],
    )) == toset(["OvershootP99", "InFlight"])
    error_message = "The scaling alarms must read OvershootP99 and InFlight only: no TargetResponseTime."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.overshoot_high[0].threshold == 100 && aws_cloudwatch_metric_alarm.in_flight_high[0].threshold == 2000
    error_message = "Configured delays must not move the thresholds: overshoot already excludes them."
  }
}

run "thresholds_follow_variables" {
  command = plan

  variables {
    overshoot_scale_out_ms       = 250
    overshoot_scale_in_ms        = 40
    in_flight_scale_out_per_task = 8000
    in_flight_scale_in_per_task  = 1500
    cpu_target_percent           = 70
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.overshoot_high[0].threshold == 250 && aws_cloudwatch_metric_alarm.in_flight_high[0].threshold == 8000
    error_message = "Scale-out thresholds must follow their variables."
  }
  assert {
    condition     = [for q in aws_cloudwatch_metric_alarm.quiet[0].metric_query : q.expression if q.return_data == true] == ["IF(overshoot < 40 AND in_flight < 1500, 1, 0)"]
    error_message = "Scale-in thresholds must follow their variables."
  }
  assert {
    condition = output.scaling_signals == {
      namespace          = "api-simulator"
      dimensions         = { Service = "fake-api" }
      scale_out          = { when = "either, in 2 of 3 minutes", overshoot_p99_ms_above = 250, in_flight_per_task_above = 8000 }
      scale_in           = { when = "both, for 5 minutes (or no metrics at all)", overshoot_p99_ms_below = 40, in_flight_per_task_below = 1500 }
      cpu_target_percent = 70
    }
    error_message = "scaling_signals must show the metrics and thresholds in use."
  }
}

run "capacity_follows_variables" {
  command = plan

  variables {
    min_capacity = 2
    max_capacity = 5
  }

  assert {
    condition     = aws_appautoscaling_target.ecs.min_capacity == 2 && aws_appautoscaling_target.ecs.max_capacity == 5
    error_message = "min_capacity/max_capacity must flow to the scalable target."
  }
}

run "no_image_runs_no_task" {
  command = plan

  variables {
    image_tag = ""
  }

  assert {
    condition     = aws_ecs_service.this.desired_count == 0 && aws_appautoscaling_target.ecs.max_capacity == 0
    error_message = "Before the first deploy (no image tag) the service must not try to run tasks."
  }
}

run "alarms_call_the_step_policies" {
  command = apply

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.overshoot_high[0].alarm_actions == toset([aws_appautoscaling_policy.scale_out[0].arn]) &&
      aws_cloudwatch_metric_alarm.in_flight_high[0].alarm_actions == toset([aws_appautoscaling_policy.scale_out[0].arn]) &&
      aws_cloudwatch_metric_alarm.quiet[0].alarm_actions == toset([aws_appautoscaling_policy.scale_in[0].arn]) &&
      aws_appautoscaling_policy.scale_out[0].arn != aws_appautoscaling_policy.scale_in[0].arn
    )
    error_message = "Either high alarm must call the scale-out policy; the quiet alarm the scale-in policy."
  }
  assert {
    condition = alltrue([for p in [aws_appautoscaling_policy.scale_out[0], aws_appautoscaling_policy.scale_in[0], aws_appautoscaling_policy.cpu] :
      p.resource_id == "service/fake-api-ecs-cluster/fake-api-ecs-service" && p.scalable_dimension == "ecs:service:DesiredCount"
    ])
    error_message = "Every policy must scale the service's desired count."
  }
}

# The tasks publish EMF by default, under var.metrics_namespace and Service = var.name.
run "emf_environment_defaults" {
  command = apply

  variables {
    name              = "load-test"
    metrics_namespace = "team-a/simulator"
  }

  assert {
    condition = (
      { for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.name => e.value
      if startswith(e.name, "SIMULATOR_CLOUDWATCH") || e.name == "SIMULATOR_SERVICE_NAME" } ==
      { SIMULATOR_CLOUDWATCH = "emf", SIMULATOR_CLOUDWATCH_NAMESPACE = "team-a/simulator", SIMULATOR_SERVICE_NAME = "load-test" }
    )
    error_message = "Tasks must publish EMF metrics in metrics_namespace with Service = name."
  }
  assert {
    condition = alltrue([for a in [aws_cloudwatch_metric_alarm.overshoot_high[0], aws_cloudwatch_metric_alarm.in_flight_high[0]] :
      a.namespace == "team-a/simulator" && a.dimensions == tomap({ Service = "load-test" })
    ])
    error_message = "The alarms must read what the tasks publish."
  }
}

# var.environment wins over the defaults, and the alarms follow it.
run "emf_environment_override" {
  command = apply

  variables {
    environment = { SIMULATOR_SERVICE_NAME = "shared-sim", SIMULATOR_CLOUDWATCH_NAMESPACE = "perf" }
  }

  assert {
    condition = (
      [for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.value if e.name == "SIMULATOR_SERVICE_NAME"] == ["shared-sim"] &&
      [for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.value if e.name == "SIMULATOR_CLOUDWATCH_NAMESPACE"] == ["perf"]
    )
    error_message = "SIMULATOR_SERVICE_NAME and SIMULATOR_CLOUDWATCH_NAMESPACE from var.environment must replace the defaults (once each)."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.overshoot_high[0].namespace == "perf" && aws_cloudwatch_metric_alarm.overshoot_high[0].dimensions == tomap({ Service = "shared-sim" }) &&
      alltrue([for q in aws_cloudwatch_metric_alarm.quiet[0].metric_query : one(q.metric).namespace == "perf" && one(q.metric).dimensions == tomap({ Service = "shared-sim" }) if length(q.metric) > 0])
    )
    error_message = "The alarms must follow the overridden namespace and service name."
  }
}

# Without EMF there is no simulator signal: no step scaling, CPU target tracking alone.
run "emf_switched_off" {
  command = plan

  variables {
    environment = { SIMULATOR_CLOUDWATCH = "off" }
  }

  assert {
    condition = (
      length(aws_cloudwatch_metric_alarm.overshoot_high) == 0 && length(aws_cloudwatch_metric_alarm.in_flight_high) == 0 &&
      length(aws_cloudwatch_metric_alarm.quiet) == 0 && length(aws_appautoscaling_policy.scale_out) == 0 &&
      length(aws_appautoscaling_policy.scale_in) == 0
    )
    error_message = "Without EMF metrics there must be no step-scaling alarms or policies (the scale-in alarm would fire forever)."
  }
  assert {
    condition     = aws_appautoscaling_policy.cpu.policy_type == "TargetTrackingScaling" && output.scaling_signals.scale_out == null && output.scaling_signals.scale_in == null
    error_message = "CPU target tracking must remain, and scaling_signals must say that nothing else scales."
  }
}

run "overshoot_thresholds_must_not_cross" {
  command = plan

  variables {
    overshoot_scale_out_ms = 50
    overshoot_scale_in_ms  = 50
  }

  expect_failures = [var.overshoot_scale_in_ms]
}

run "in_flight_thresholds_must_not_cross" {
  command = plan

  variables {
    in_flight_scale_out_per_task = 1000
    in_flight_scale_in_per_task  = 3000
  }

  expect_failures = [var.in_flight_scale_in_per_task]
}

run "scale_out_thresholds_must_be_positive" {
  command = plan

  variables {
    overshoot_scale_out_ms       = 0
    in_flight_scale_out_per_task = 0
  }

  expect_failures = [var.overshoot_scale_out_ms, var.in_flight_scale_out_per_task]
}

run "scale_in_thresholds_must_not_be_negative" {
  command = plan

  variables {
    overshoot_scale_in_ms       = -1
    in_flight_scale_in_per_task = -1
  }

  expect_failures = [var.overshoot_scale_in_ms, var.in_flight_scale_in_per_task]
}

run "emf_records_at_least_once_a_minute" {
  command = plan

  variables {
    environment = { SIMULATOR_CLOUDWATCH_SECONDS = "300" }
  }

  expect_failures = [var.environment]
}

run "emf_records_more_often_are_fine" {
  command = plan

  variables {
    environment = { SIMULATOR_CLOUDWATCH_SECONDS = "15" }
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.in_flight_high[0].period == 60
    error_message = "Records every 15 s still fill every 1-minute period."
  }
}

run "aws_namespaces_are_reserved" {
  command = plan

  variables {
    metrics_namespace = "AWS/ECS"
  }

  expect_failures = [var.metrics_namespace]
}

run "empty_namespace_is_rejected" {
  command = plan

  variables {
    metrics_namespace = ""
  }

  expect_failures = [var.metrics_namespace]
}
