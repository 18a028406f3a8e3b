locals {
  container_name = "simulator"
  container_port = 9123 # the simulator's fixed listening port

  # No image yet (first apply, before the first deploy): run no task instead of failing to pull.
  has_image = var.image_tag != ""

  # Defaults first so var.environment can override them. The graceful timeout follows stop_timeout so
  # draining always ends before Fargate's SIGKILL. LOGIN_ROOT_URL is the NHS login fake's issuer: clients
  # reach it through the ALB, so its discovery document must name the ALB's URL, not localhost.
  # SIMULATOR_CLOUDWATCH=emf makes every task print its per-minute metrics (EMF) into its log stream,
  # which CloudWatch Logs turns into the metrics that scaling (autoscaling.tf) and the dashboard read.
  container_environment = merge(
    {
      SIMULATOR_LOG_FORMAT           = "json"
      SIMULATOR_GRACEFUL_TIMEOUT     = tostring(var.stop_timeout - 5)
      LOGIN_ROOT_URL                 = local.application_url
      SIMULATOR_CLOUDWATCH           = "emf"
      SIMULATOR_CLOUDWATCH_NAMESPACE = var.metrics_namespace
      SIMULATOR_SERVICE_NAME         = var.name
      # One worker per whole vCPU: at 1 vCPU one worker answered 36,000 canned requests/s against two's
      # 29,000; at 2 vCPUs two halved the delay overshoot (bench/results/fargate.md).
      SIMULATOR_WORKERS = tostring(max(1, floor(var.cpu / 1024)))
    },
    # The shared state (shared_state.tf), when there is one.
    var.shared_state ? { SIMULATOR_STATE_URL = local.shared_state_url } : {},
    var.environment,
  )

  # The NHS login signing key, injected by ECS from Secrets Manager at task start: the task definition
  # holds only the secret's ARN. Every task reads the same secret, so every task signs with the same key.
  # SIMULATOR_ADMIN_TOKEN (control writes) comes the same way, from admin_token_secret_arn.
  container_secrets = merge(
    var.login_private_key_secret_arn == null ? {} : { LOGIN_PRIVATE_KEY = var.login_private_key_secret_arn },
    var.admin_token_secret_arn == null ? {} : { SIMULATOR_ADMIN_TOKEN = var.admin_token_secret_arn },
  )
}

data "aws_caller_identity" "current" {}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:Logs of a fake API hold canned test data only; the default CloudWatch encryption suffices.
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days; a year of load-test logs would cost without use.
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_ecs_cluster" "this" {
  #checkov:skip=CKV_AWS_65:Container Insights is var.container_insights, off by default: billed metrics a test fake seldom needs.
  name = "${var.name}-ecs-cluster"

  setting {
    name  = "containerInsights"
    value = var.container_insights ? "enabled" : "disabled"
  }
}

# IAM: ECS itself uses the execution role to pull the image and write logs; the simulator's own code
# gets the task role, which has no permissions because it calls no AWS API.

locals {
  ecs_tasks_assume_role = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
      Action    = "sts:AssumeRole"
      # Confused-deputy guard: only ECS acting for this account may assume the role.
      Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id } }
    }]
  })
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-task-execution"
  assume_role_policy = local.ecs_tasks_assume_role
}

resource "aws_iam_role_policy" "execution" {
  name = "pull-image-and-write-logs"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "EcrLogin"
        Effect   = "Allow"
        Action   = "ecr:GetAuthorizationToken" # account-wide by design: it cannot be scoped to a repository
        Resource = "*"
      },
      {
        Sid      = "PullImage"
        Effect   = "Allow"
        Action   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
        Resource = aws_ecr_repository.this.arn
      },
      {
        Sid      = "WriteLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "${aws_cloudwatch_log_group.this.arn}:*"
      },
    ]
  })
}

# The execution role reads exactly the NHS login key's secret, and only when one is set. A policy of its
# own (not a statement concat()ed into the one above) so that checkov can still evaluate both. A secret
# encrypted with a customer-managed KMS key would also need kms:Decrypt on that key; the default
# aws/secretsmanager key needs nothing more.
resource "aws_iam_role_policy" "read_login_key" {
  count = var.login_private_key_secret_arn == null ? 0 : 1
  name  = "read-nhs-login-signing-key"
  role  = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "ReadLoginSigningKey"
      Effect   = "Allow"
      Action   = "secretsmanager:GetSecretValue"
      Resource = var.login_private_key_secret_arn
    }]
  })
}

# Likewise for the admin token's secret (SIMULATOR_ADMIN_TOKEN), when one is set.
resource "aws_iam_role_policy" "read_admin_token" {
  count = var.admin_token_secret_arn == null ? 0 : 1
  name  = "read-simulator-admin-token"
  role  = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "ReadAdminToken"
      Effect   = "Allow"
      Action   = "secretsmanager:GetSecretValue"
      Resource = var.admin_token_secret_arn
    }]
  })
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = local.ecs_tasks_assume_role
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64" # the deploy script builds --platform linux/amd64
  }

  container_definitions = jsonencode([{
    name                   = local.container_name
    image                  = "${aws_ecr_repository.this.repository_url}:${local.has_image ? var.image_tag : "none"}"
    essential              = true
    readonlyRootFilesystem = true
    stopTimeout            = var.stop_timeout
    portMappings           = [{ containerPort = local.container_port, protocol = "tcp" }]
    # Sorted by name so the rendered JSON, and thus the plan, is stable.
    environment = [for k in sort(keys(local.container_environment)) : { name = k, value = local.container_environment[k] }]
    healthCheck = {
      # The image has Python but no curl; /health is never delayed, so a short timeout is safe.
      command     = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${local.container_port}/health', timeout=3)"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 10
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = var.aws_region
        awslogs-stream-prefix = "ecs"
      }
    }
    # Sorted by name like environment; valueFrom is the secret's ARN, never its value. null (no secrets)
    # is what the provider and ECS make of an absent list: nothing is registered, no diff follows.
    # (Written inline, not merge()d in, so checkov can still evaluate the container definition.)
    secrets = length(local.container_secrets) == 0 ? null : [
      for k in sort(keys(local.container_secrets)) : { name = k, valueFrom = local.container_secrets[k] }
    ]
  }])
}

resource "aws_ecs_service" "this" {
  name             = "${var.name}-ecs-service"
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.this.arn
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  # Initial count only: Application Auto Scaling owns it afterwards (see ignore_changes).
  desired_count                      = local.min_capacity
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = var.health_check_grace_period
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  lifecycle {
    ignore_changes = [desired_count]
  }

  # The target group must belong to a load balancer before a service can register into it; the
  # endpoints must exist before the first task pulls its image.
  depends_on = [
    aws_lb_listener.http, aws_vpc_endpoint.interface, aws_vpc_endpoint.s3, aws_iam_role_policy.execution,
    aws_iam_role_policy.read_login_key,
  ]
}
