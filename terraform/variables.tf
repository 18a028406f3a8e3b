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
  description = "Who may reach the ALB; narrow it to your load generators' addresses when you can."
  type        = list(string)
  default     = ["0.0.0.0/0"]
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

variable "cpu" {
  description = "Fargate task CPU units."
  type        = number
  default     = 256
}

variable "memory" {
  description = "Fargate task memory (MiB)."
  type        = number
  default     = 512
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
    condition     = var.login_private_key_secret_arn == null || !contains(keys(var.environment), "LOGIN_PRIVATE_KEY")
    error_message = "LOGIN_PRIVATE_KEY comes from login_private_key_secret_arn; remove it from environment."
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

variable "expected_delay_seconds" {
  description = "Response time the configured delays explain, the base of the latency alarms; null = derived from environment."
  type        = number
  default     = null
}

variable "latency_scale_out_margin_seconds" {
  description = "Scale out when average response time exceeds the expected delay by more than this."
  type        = number
  default     = 1
}

variable "latency_scale_in_margin_seconds" {
  description = "Scale in when average response time stays below the expected delay plus this (or no traffic flows)."
  type        = number
  default     = 0.25

  validation {
    condition     = var.latency_scale_in_margin_seconds >= 0 && var.latency_scale_in_margin_seconds < var.latency_scale_out_margin_seconds
    error_message = "latency_scale_in_margin_seconds must be >= 0 and below latency_scale_out_margin_seconds, or the alarms fight."
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
