variable "aws_region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-2"
}

variable "name" {
  description = "Prefix of every resource name; the default gives fake-api-ecs-cluster and fake-api-ecs-service."
  type        = string
  default     = "fake-api"

  validation {
    # The ALB and target group names (name + "-alb"/"-tg") are capped at 32 characters.
    condition     = can(regex("^[a-z][a-z0-9-]{0,27}$", var.name))
    error_message = "name must be lower-case letters, digits and dashes, 1-28 characters, starting with a letter."
  }
}

variable "availability_zones" {
  description = "Two or more AZs for the subnets; null means <region>a and <region>b."
  type        = list(string)
  default     = null

  validation {
    condition     = var.availability_zones == null || length(coalesce(var.availability_zones, [])) >= 2
    error_message = "An ALB needs subnets in at least two availability zones."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC; public and private /24s are carved from it."
  type        = string
  default     = "10.0.0.0/16"
}

variable "allowed_cidr_blocks" {
  description = "IPv4 CIDR blocks that may reach the internet-facing ALB (80, and 443 with a certificate): your load generators' source ranges, e.g. [\"203.0.113.0/24\"]. Required, no default. 0.0.0.0/0 is refused unless allow_any_source = true."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.allowed_cidr_blocks) > 0
    error_message = "allowed_cidr_blocks must list at least one CIDR block (your load generators' source ranges, e.g. [\"203.0.113.0/24\"])."
  }
  validation {
    # IPv4 only (the ingress rules set cidr_ipv4), and in canonical form (no host bits set): AWS would
    # otherwise store the network address and every plan would show a change.
    condition = alltrue([
      for cidr in var.allowed_cidr_blocks :
      can(regex("^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$", cidr)) && can(cidrhost(cidr, 0)) && try(cidrsubnet(cidr, 0, 0) == cidr, false)
    ])
    error_message = "Each of allowed_cidr_blocks must be an IPv4 CIDR block with no host bits set, e.g. \"203.0.113.0/24\" or \"198.51.100.7/32\" (not \"203.0.113.5/24\")."
  }
  validation {
    condition     = var.allow_any_source || !contains(var.allowed_cidr_blocks, "0.0.0.0/0")
    error_message = "allowed_cidr_blocks contains 0.0.0.0/0, which opens the ALB (the fake APIs and the /_simulator routes) to the whole internet. List your load generators' ranges instead, or set allow_any_source = true to mean it."
  }
}

variable "allow_any_source" {
  description = "Explicit opt-in to allowed_cidr_blocks = [\"0.0.0.0/0\"]: anyone on the internet may reach the ALB."
  type        = bool
  default     = false
  nullable    = false
}

variable "certificate_arn" {
  description = "ACM certificate ARN for an HTTPS listener (needs your own domain); empty = HTTP only."
  type        = string
  default     = ""
}

variable "image_tag" {
  description = "Tag of the image in the ECR repository to run (the deploy script passes the git SHA); empty = no image pushed yet, run no task."
  type        = string
  default     = ""
}

# Measured (bench/results/fargate.md, docs/performance.md "Sizing on Fargate"): at 0.25 vCPU a task answers
# about 6,000 canned requests/s but a 2 s delay at 1,000 connections overshoots by about 220 ms p99 (CPU
# quota throttling), too much for a load test's latency to be believed; at 1 vCPU about 36,000 requests/s,
# 37 ms, and 5,000 delayed requests in flight without an error.
variable "cpu" {
  description = "Fargate task CPU units (1024 = 1 vCPU). Each task runs one simulator worker per whole vCPU (SIMULATOR_WORKERS, unless environment sets it)."
  type        = number
  default     = 1024
}

variable "memory" {
  description = "Fargate task memory (MiB); 2048 is Fargate's smallest for 1 vCPU."
  type        = number
  default     = 2048
}

variable "environment" {
  description = "The simulator's environment variables, e.g. { ELID_DELAY_SECONDS = \"2\", APIM_DELAY_SECONDS = \"10\", SIMULATOR_PLUGINS = \"eligibility,apim_oauth,health\" }."
  type        = map(string)
  default     = {}

  validation {
    # Everything here lands in plain text in the task definition.
    condition     = !strcontains(lookup(var.environment, "LOGIN_PRIVATE_KEY", ""), "PRIVATE KEY")
    error_message = "Do not put the NHS login signing key in environment (it would be plain text in the task definition): store it in Secrets Manager and set login_private_key_secret_arn."
  }
  validation {
    condition     = !contains(keys(var.environment), "SIMULATOR_ADMIN_TOKEN")
    error_message = "Do not put SIMULATOR_ADMIN_TOKEN in environment (it would be plain text in the task definition): store it in Secrets Manager and set admin_token_secret_arn."
  }
  validation {
    condition     = var.login_private_key_secret_arn == null || !contains(keys(var.environment), "LOGIN_PRIVATE_KEY")
    error_message = "LOGIN_PRIVATE_KEY comes from login_private_key_secret_arn; remove it from environment."
  }
  validation {
    # The scaling alarms evaluate 1-minute periods: metric records further apart leave minutes empty.
    condition     = !can(tonumber(var.environment["SIMULATOR_CLOUDWATCH_SECONDS"])) || try(tonumber(var.environment["SIMULATOR_CLOUDWATCH_SECONDS"]) <= 60, true)
    error_message = "SIMULATOR_CLOUDWATCH_SECONDS above 60 leaves the scaling alarms' 1-minute periods without data: keep it at 60 (the default) or below."
  }
}

variable "login_private_key_secret_arn" {
  description = "Full ARN of a Secrets Manager secret holding the NHS login fake's RSA signing key (PEM), passed to every task as LOGIN_PRIVATE_KEY so all tasks sign with one key; null = the public key bundled in the image."
  type        = string
  default     = null

  validation {
    # The full ARN, with the 6-character suffix Secrets Manager appends to the name: the execution role is
    # granted exactly this ARN, and IAM does not match a partial ARN. No ":json-key:stage:version" tail.
    condition     = var.login_private_key_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$", var.login_private_key_secret_arn))
    error_message = "login_private_key_secret_arn must be the full ARN of a Secrets Manager secret (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX, as create-secret prints it)."
  }
  validation {
    # Tasks reach Secrets Manager only through this VPC's endpoint, which serves var.aws_region alone.
    condition     = var.login_private_key_secret_arn == null || try(split(":", var.login_private_key_secret_arn)[3] == var.aws_region, false)
    error_message = "The login key secret must be in aws_region: the tasks have no route to another region's Secrets Manager."
  }
}

variable "min_capacity" {
  description = "Fewest running tasks."
  type        = number
  default     = 1

  validation {
    condition     = var.min_capacity >= 1
    error_message = "min_capacity must be at least 1 (the ALB needs a target)."
  }
}

variable "max_capacity" {
  description = "Most running tasks."
  type        = number
  default     = 3

  validation {
    condition     = var.max_capacity >= var.min_capacity
    error_message = "max_capacity must not be below min_capacity."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the simulator's own metrics (SIMULATOR_CLOUDWATCH_NAMESPACE), read by the scaling alarms and the dashboard."
  type        = string
  default     = "api-simulator"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-][A-Za-z0-9 ._/#:-]{0,254}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1-255 characters of letters, digits, spaces and . - _ / # :, and must not start with \"AWS/\" (reserved for AWS services)."
  }
}

variable "overshoot_scale_out_ms" {
  description = "Add a task when the worst task's p99 overshoot (delivered latency minus the configured delay) exceeds this many milliseconds in 2 of 3 minutes."
  type        = number
  default     = 100

  validation {
    condition     = var.overshoot_scale_out_ms > 0
    error_message = "overshoot_scale_out_ms must be above 0."
  }
}

variable "overshoot_scale_in_ms" {
  description = "Remove a task when the worst task's p99 overshoot stays below this (and in-flight below in_flight_scale_in_per_task) for 5 minutes."
  type        = number
  default     = 20

  validation {
    condition     = var.overshoot_scale_in_ms >= 0 && var.overshoot_scale_in_ms < var.overshoot_scale_out_ms
    error_message = "overshoot_scale_in_ms must be >= 0 and below overshoot_scale_out_ms, or the alarms fight."
  }
}

# What the in-flight thresholds protect is latency, then memory: a delayed request costs little CPU but holds
# about 14 KiB and a connection until its delay ends, and its answer is due at the same moment as every other
# that arrived with it. Measured on a 1 vCPU task (bench/results/fargate.md): p99 overshoot about 110 ms with
# 2,000 delayed requests in flight, 360 ms with 5,000 (no errors either way). 2000 scales out where the
# overshoot alarm would, before it; 800 to scale in stays under 2000 even when 2 tasks become 1.
variable "in_flight_scale_out_per_task" {
  description = "Add a task when the average task has more requests in flight (delayed ones included) than this in 2 of 3 minutes. Each holds about 14 KiB until answered: raise it with memory."
  type        = number
  default     = 2000

  validation {
    condition     = var.in_flight_scale_out_per_task > 0
    error_message = "in_flight_scale_out_per_task must be above 0."
  }
}

variable "in_flight_scale_in_per_task" {
  description = "Remove a task when the average task has fewer requests in flight than this (and overshoot below overshoot_scale_in_ms) for 5 minutes."
  type        = number
  default     = 800

  validation {
    condition     = var.in_flight_scale_in_per_task >= 0 && var.in_flight_scale_in_per_task < var.in_flight_scale_out_per_task
    error_message = "in_flight_scale_in_per_task must be >= 0 and below in_flight_scale_out_per_task, or the alarms fight."
  }
}

variable "cpu_target_percent" {
  description = "Average CPU utilisation that target tracking keeps the service at."
  type        = number
  default     = 60
}

variable "stop_timeout" {
  description = "Seconds between SIGTERM and SIGKILL; the simulator drains in-flight requests for 5 s less."
  type        = number
  default     = 30

  validation {
    condition     = var.stop_timeout >= 10 && var.stop_timeout <= 120
    error_message = "Fargate allows stop_timeout up to 120 s; below 10 s leaves no time to drain."
  }
}

variable "deregistration_delay" {
  description = "Seconds the ALB keeps a stopping task registered so in-flight (delayed) requests finish."
  type        = number
  default     = 30
}

variable "health_check_grace_period" {
  description = "Seconds ECS ignores ALB health checks after a task starts."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of the container logs."
  type        = number
  default     = 30
}

variable "alb_access_logs" {
  description = "Write the ALB's access logs (one line per request) to an S3 bucket created for them."
  type        = bool
  default     = false
}

variable "alb_access_logs_retention_days" {
  description = "Days after which ALB access logs are deleted from their bucket."
  type        = number
  default     = 30

  validation {
    condition     = var.alb_access_logs_retention_days >= 1 && floor(var.alb_access_logs_retention_days) == var.alb_access_logs_retention_days
    error_message = "alb_access_logs_retention_days must be a whole number of days, at least 1."
  }
}

variable "alb_deletion_protection" {
  description = "Protect the ALB from deletion (then `terraform destroy` needs it turned off first)."
  type        = bool
  default     = false
}

variable "container_insights" {
  description = "Enable ECS Container Insights (extra CloudWatch metrics, billed)."
  type        = bool
  default     = false
}

variable "ecr_force_delete" {
  description = "Let `terraform destroy` delete the ECR repository with its images (they are rebuilt from git)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "admin_token_secret_arn" {
  description = "ARN of a Secrets Manager secret holding SIMULATOR_ADMIN_TOKEN (16 to 512 characters), which enables the control API's writes (docs/control.md); null leaves them off. ECS injects it into every task: the task definition holds only the ARN."
  type        = string
  default     = null

  validation {
    condition     = var.admin_token_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:", var.admin_token_secret_arn))
    error_message = "admin_token_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "shared_state" {
  description = "Create an ElastiCache for Valkey in the private subnets and pass it to every task as SIMULATOR_STATE_URL: control changes reach every task, and apim_oauth's jtis and quotas are counted once for the service."
  type        = bool
  default     = false
}

variable "shared_state_node_type" {
  description = "Node type of the shared state's single Valkey node."
  type        = string
  default     = "cache.t4g.micro"
}
