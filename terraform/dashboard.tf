# One CloudWatch dashboard: what the simulator says it delivered (its EMF metrics, per route and in total),
# what drives scaling, how many tasks ran, and the ALB's own view of the same traffic for comparison.
#
# Task count: the AWS/ECS service metric CPUUtilization with the SampleCount statistic (one sample per
# running task per minute; free, unlike Container Insights' RunningTaskCount), beside the target group's
# HealthyHostCount (tasks the ALB sends traffic to).

locals {
  # The routes are the simulator's to know, not Terraform's: SEARCH finds every Route series, and the
  # widgets label each by its Route (a dynamic label, ${PROP('Dim.Route')}).
  route_search = {
    for metric, stat in { Requests = "Sum", DeliveredP99 = "Maximum", OvershootP99 = "Maximum" } :
    metric => "SEARCH('{\"${local.metrics_namespace}\",Route,Service} Service=\"${local.metrics_service}\" MetricName=\"${metric}\"', '${stat}', 60)"
  }
  # The task totals: [namespace, metric, "Service", service], to which a widget adds its statistic.
  simulator_metric = {
    for metric in ["Requests", "DeliveredP99", "OvershootP99", "InFlight"] :
    metric => [local.metrics_namespace, metric, "Service", local.metrics_service]
  }
  alb_dimensions = [
    "LoadBalancer", aws_lb.this.arn_suffix, "TargetGroup", aws_lb_target_group.this.arn_suffix,
  ]
  ecs_dimensions = ["ClusterName", aws_ecs_cluster.this.name, "ServiceName", aws_ecs_service.this.name]

  scaling_alarm_arns = concat(
    aws_cloudwatch_metric_alarm.overshoot_high[*].arn,
    aws_cloudwatch_metric_alarm.in_flight_high[*].arn,
    aws_cloudwatch_metric_alarm.quiet[*].arn,
  )

  # A metric widget at (x, y), 12 columns by 6 rows.
  graph = {
    type = "metric", width = 12, height = 6
    properties = {
      view  = "timeSeries", region = var.aws_region, period = 60, stacked = false
      yAxis = { left = { min = 0 } }
    }
  }

  dashboard_widgets = concat(
    [
      {
        type = "text", x = 0, y = 0, width = 24, height = 3
        properties = {
          markdown = join("\n\n", [
            "## ${var.name}",
            "The simulator's own metrics (namespace `${local.metrics_namespace}`, dimension `Service = ${local.metrics_service}`, one record per task and per route a minute) beside the ALB's. *Overshoot* is delivered latency minus the delay a request was configured to have: what load adds.",
            local.emf_scaling
            ? "Scaling: **+1 task** when the worst task's overshoot p99 > ${var.overshoot_scale_out_ms} ms or in-flight per task > ${var.in_flight_scale_out_per_task} in 2 of 3 minutes; **-1 task** when both stay below ${var.overshoot_scale_in_ms} ms and ${var.in_flight_scale_in_per_task} for 5 minutes; CPU target tracking at ${var.cpu_target_percent} %. Tasks: ${local.min_capacity}-${local.max_capacity}."
            : "Scaling: CPU target tracking at ${var.cpu_target_percent} % only (SIMULATOR_CLOUDWATCH is not emf: no simulator metrics). Tasks: ${local.min_capacity}-${local.max_capacity}.",
          ])
        }
      },
      merge(local.graph, {
        x = 0, y = 3
        properties = merge(local.graph.properties, {
          title = "Requests per minute, by route and total (simulator)"
          metrics = [
            [{ expression = local.route_search.Requests, id = "by_route", label = "$${PROP('Dim.Route')}" }],
            concat(local.simulator_metric.Requests, [{ stat = "Sum", label = "total" }]),
          ]
        })
      }),
      merge(local.graph, {
        x = 12, y = 3
        properties = merge(local.graph.properties, {
          title = "Requests per minute: ALB RequestCount vs simulator (the ALB does not count its health checks)"
          metrics = [
            concat(["AWS/ApplicationELB", "RequestCount"], local.alb_dimensions, [{ stat = "Sum", label = "ALB RequestCount" }]),
            concat(local.simulator_metric.Requests, [{ stat = "Sum", label = "simulator Requests" }]),
          ]
        })
      }),
      merge(local.graph, {
        x = 0, y = 9
        properties = merge(local.graph.properties, {
          title = "Delivered p99 (ms), worst task, by route and total"
          metrics = [
            [{ expression = local.route_search.DeliveredP99, id = "by_route", label = "$${PROP('Dim.Route')}" }],
            concat(local.simulator_metric.DeliveredP99, [{ stat = "Maximum", label = "total" }]),
          ]
        })
      }),
      merge(local.graph, {
        x = 12, y = 9
        properties = merge(local.graph.properties, {
          title = "Latency (ms): ALB TargetResponseTime vs simulator DeliveredP99"
          metrics = [
            [{ expression = "alb_p99 * 1000", id = "alb_p99_ms", label = "ALB TargetResponseTime p99" }],
            [{ expression = "alb_average * 1000", id = "alb_average_ms", label = "ALB TargetResponseTime average" }],
            concat(["AWS/ApplicationELB", "TargetResponseTime"], local.alb_dimensions, [{ stat = "p99", id = "alb_p99", visible = false }]),
            concat(["AWS/ApplicationELB", "TargetResponseTime"], local.alb_dimensions, [{ stat = "Average", id = "alb_average", visible = false }]),
            concat(local.simulator_metric.DeliveredP99, [{ stat = "Maximum", label = "simulator DeliveredP99 (worst task)" }]),
          ]
        })
      }),
      merge(local.graph, {
        x = 0, y = 15
        properties = merge(local.graph.properties, {
          title = "Overshoot p99 (ms), worst task, by route and total"
          metrics = [
            [{ expression = local.route_search.OvershootP99, id = "by_route", label = "$${PROP('Dim.Route')}" }],
            concat(local.simulator_metric.OvershootP99, [{ stat = "Maximum", label = "total (scaling signal)" }]),
          ]
          annotations = {
            horizontal = [
              { label = "scale out above", value = var.overshoot_scale_out_ms, color = "#d62728" },
              { label = "scale in below", value = var.overshoot_scale_in_ms, color = "#2ca02c" },
            ]
          }
        })
      }),
      merge(local.graph, {
        x = 12, y = 15
        properties = merge(local.graph.properties, {
          title = "Requests in flight per task"
          metrics = [
            concat(local.simulator_metric.InFlight, [{ stat = "Average", label = "average task (scaling signal)" }]),
            concat(local.simulator_metric.InFlight, [{ stat = "Maximum", label = "busiest task" }]),
          ]
          annotations = {
            horizontal = [
              { label = "scale out above", value = var.in_flight_scale_out_per_task, color = "#d62728" },
              { label = "scale in below", value = var.in_flight_scale_in_per_task, color = "#2ca02c" },
            ]
          }
        })
      }),
      merge(local.graph, {
        x = 0, y = 21
        properties = merge(local.graph.properties, {
          title = "Running tasks"
          metrics = [
            concat(["AWS/ECS", "CPUUtilization"], local.ecs_dimensions, [{ stat = "SampleCount", label = "running tasks (ECS CPUUtilization sample count)" }]),
            concat(["AWS/ApplicationELB", "HealthyHostCount"], local.alb_dimensions, [{ stat = "Maximum", label = "healthy targets (ALB)" }]),
          ]
        })
      }),
      merge(local.graph, {
        x = 12, y = 21
        properties = merge(local.graph.properties, {
          title = "CPU utilisation (%)"
          metrics = [
            concat(["AWS/ECS", "CPUUtilization"], local.ecs_dimensions, [{ stat = "Average", label = "service average (scaling signal)" }]),
            concat(["AWS/ECS", "CPUUtilization"], local.ecs_dimensions, [{ stat = "Maximum", label = "maximum" }]),
          ]
          annotations = { horizontal = [{ label = "target", value = var.cpu_target_percent }] }
        })
      }),
    ],
    length(local.scaling_alarm_arns) == 0 ? [] : [
      {
        type       = "alarm", x = 0, y = 27, width = 24, height = 2
        properties = { title = "Scaling alarms", alarms = local.scaling_alarm_arns }
      },
    ],
  )
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
