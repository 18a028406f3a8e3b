# 1..3 tasks, step scaling on TargetResponseTime alarms whose thresholds move with the configured
# delays, and CPU target tracking. Every value here is known at plan time.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  image_tag = "abc1234"
}

run "defaults_scale_one_to_three" {
  command = plan

  assert {
    condition     = aws_appautoscaling_target.ecs.min_capacity == 1 && aws_appautoscaling_target.ecs.max_capacity == 3 && aws_ecs_service.this.desired_count == 1
    error_message = "Autoscaling must span 1 to 3 tasks by default."
  }
  assert {
    condition = alltrue([for a in [aws_cloudwatch_metric_alarm.latency_high, aws_cloudwatch_metric_alarm.latency_low] :
      a.namespace == "AWS/ApplicationELB" && a.metric_name == "TargetResponseTime" && a.statistic == "Average"
    ])
    error_message = "Both alarms must watch the ALB's TargetResponseTime."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.latency_high.threshold == 1 && aws_cloudwatch_metric_alarm.latency_low.threshold == 0.25
    error_message = "With no delays the thresholds are the margins: 1 s and 0.25 s."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.latency_high.comparison_operator == "GreaterThanThreshold" &&
      aws_cloudwatch_metric_alarm.latency_high.treat_missing_data == "notBreaching" &&
      aws_cloudwatch_metric_alarm.latency_low.comparison_operator == "LessThanThreshold" &&
      aws_cloudwatch_metric_alarm.latency_low.treat_missing_data == "breaching"
    )
    error_message = "High latency scales out; low latency or no traffic at all scales in."
  }
  assert {
    condition = (
      aws_appautoscaling_policy.latency_up.step_scaling_policy_configuration[0].cooldown == 60 &&
      one(aws_appautoscaling_policy.latency_up.step_scaling_policy_configuration[0].step_adjustment).scaling_adjustment == 1 &&
      aws_appautoscaling_policy.latency_down.step_scaling_policy_configuration[0].cooldown == 300 &&
      one(aws_appautoscaling_policy.latency_down.step_scaling_policy_configuration[0].step_adjustment).scaling_adjustment == -1
    )
    error_message = "Step scaling: +1 with a 60 s cooldown, -1 with a 300 s cooldown."
  }
  assert {
    condition = (
      aws_appautoscaling_policy.cpu.policy_type == "TargetTrackingScaling" &&
      aws_appautoscaling_policy.cpu.target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].predefined_metric_type == "ECSServiceAverageCPUUtilization" &&
      aws_appautoscaling_policy.cpu.target_tracking_scaling_policy_configuration[0].target_value == 60
    )
    error_message = "CPU target tracking at 60 % expected."
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

run "thresholds_follow_delay_seconds" {
  command = plan

  variables {
    environment = { ELID_DELAY_SECONDS = "2", APIM_DELAY_SECONDS = "10" }
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.latency_high.threshold == 11 && aws_cloudwatch_metric_alarm.latency_low.threshold == 10.25
    error_message = "Thresholds must be the slowest configured delay (10 s) plus the margins."
  }
  assert {
    condition     = output.latency_alarm_thresholds == { scale_out_above = 11, scale_in_below = 10.25 }
    error_message = "The thresholds must be visible as an output."
  }
}

run "empty_delay_means_zero" {
  command = plan

  variables {
    environment = { ELID_DELAY_SECONDS = "", APIM_DELAY_SECONDS = "0.5" }
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.latency_high.threshold == 1.5
    error_message = "An empty delay means 0, as in the simulator."
  }
}

run "thresholds_follow_policy_json" {
  command = plan

  variables {
    environment = {
      ELID_DELAY         = "{\"policy\":\"lognormal\",\"median\":0.2,\"p99\":1.5}"
      ELID_DELAY_SECONDS = "9" # the JSON policy wins, as in the simulator
      APIM_DELAY         = "{\"policy\":\"uniform\",\"min\":0.1,\"max\":0.5}"
    }
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.latency_high.threshold == 2.5 && aws_cloudwatch_metric_alarm.latency_low.threshold == 1.75
    error_message = "A log-normal policy counts with its p99 (1.5 s), a uniform one with its max."
  }
}

run "thresholds_follow_fixed_and_percentiles" {
  command = plan

  variables {
    environment = {
      ELID_DELAY = "{\"policy\":\"percentiles\",\"p50\":0.1,\"p99\":1.2,\"max\":3}"
      APIM_DELAY = "{\"policy\":\"fixed\",\"seconds\":2}"
    }
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.latency_high.threshold == 3 && aws_cloudwatch_metric_alarm.latency_low.threshold == 2.25
    error_message = "fixed counts with its seconds (2 s, above the percentiles' p99 of 1.2 s)."
  }
}

run "explicit_expected_delay_wins" {
  command = plan

  variables {
    environment            = { APIM_DELAY_SECONDS = "10" }
    expected_delay_seconds = 4
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.latency_high.threshold == 5 && aws_cloudwatch_metric_alarm.latency_low.threshold == 4.25
    error_message = "expected_delay_seconds must override the derived delay."
  }
}

run "unknown_policy_needs_expected_delay" {
  command = plan

  variables {
    environment = { ELID_DELAY = "{\"policy\":\"myplugin.bursty\",\"every\":10}" }
  }

  expect_failures = [aws_cloudwatch_metric_alarm.latency_high]
}

run "unknown_policy_with_expected_delay" {
  command = plan

  variables {
    environment            = { ELID_DELAY = "{\"policy\":\"myplugin.bursty\",\"every\":10}" }
    expected_delay_seconds = 0.3
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.latency_high.threshold == 1.3
    error_message = "expected_delay_seconds makes any policy usable."
  }
}

run "margins_must_not_cross" {
  command = plan

  variables {
    latency_scale_out_margin_seconds = 1
    latency_scale_in_margin_seconds  = 2
  }

  expect_failures = [var.latency_scale_in_margin_seconds]
}
