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

output "latency_alarm_thresholds" {
  description = "Average TargetResponseTime (seconds) above which a task is added and below which one is removed."
  value       = { scale_out_above = local.latency_high_threshold, scale_in_below = local.latency_low_threshold }
}
