output "application_url" {
  description = "Base URL of the simulator behind the ALB."
  value       = local.application_url
}

output "ecr_repository_url" {
  description = "Where the deploy script pushes images."
  value       = aws_ecr_repository.this.repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster name (for aws ecs update-service --cluster)."
  value       = aws_ecs_cluster.this.name
}

output "ecs_service_name" {
  description = "ECS service name (for aws ecs update-service --service)."
  value       = aws_ecs_service.this.name
}

output "log_group_name" {
  description = "CloudWatch log group of the containers (aws logs tail <name> --follow)."
  value       = aws_cloudwatch_log_group.this.name
}

output "scaling_signals" {
  description = "What scales the service: the simulator's own metrics (namespace, Service dimension) with their thresholds, and CPU target tracking. scale_out/scale_in are null when SIMULATOR_CLOUDWATCH is not emf."
  value = {
    namespace  = local.metrics_namespace
    dimensions = { Service = local.metrics_service }
    scale_out = local.emf_scaling ? {
      when                     = "either, in 2 of 3 minutes"
      overshoot_p99_ms_above   = var.overshoot_scale_out_ms
      in_flight_per_task_above = var.in_flight_scale_out_per_task
    } : null
    scale_in = local.emf_scaling ? {
      when                     = "both, for 5 minutes (or no metrics at all)"
      overshoot_p99_ms_below   = var.overshoot_scale_in_ms
      in_flight_per_task_below = var.in_flight_scale_in_per_task
    } : null
    cpu_target_percent = var.cpu_target_percent
  }
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the simulator's metrics, scaling and the ALB."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "dashboard_url" {
  description = "The dashboard in the CloudWatch console."
  value       = "https://${var.aws_region}.console.aws.amazon.com/cloudwatch/home?region=${var.aws_region}#dashboards/dashboard/${aws_cloudwatch_dashboard.this.dashboard_name}"
}

output "alb_access_logs_bucket" {
  description = "S3 bucket of the ALB access logs (under alb/AWSLogs/); null when alb_access_logs is false."
  value       = var.alb_access_logs ? aws_s3_bucket.alb_logs[0].bucket : null
}

output "shared_state_url" {
  description = "SIMULATOR_STATE_URL of every task (the shared Valkey), or null without var.shared_state."
  value       = local.shared_state_url
}

output "container_environment" {
  description = "The simulator's environment in the task definition: var.environment over Terraform's defaults (secrets are passed by reference and not listed). The deploy script's smoke checks follow it (SIMULATOR_PLUGINS, APIM_VALIDATION, LOGIN_ROOT_URL)."
  value       = local.container_environment
}

output "task_definition_arn" {
  description = "The task definition revision Terraform registered last; the service runs it after a successful deploy."
  value       = aws_ecs_task_definition.this.arn
}

output "image" {
  description = "The image that revision runs, <ecr_repository_url>:<image_tag> (tag none before the first deploy)."
  value       = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].image
}
