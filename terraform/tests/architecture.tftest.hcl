# The seed's architecture, asserted against a mocked AWS provider (no credentials, no network):
# ALB in public subnets, tasks in private subnets without public IPs behind the four VPC endpoints,
# /health checks, the names the seed's commands use, and least-privilege IAM.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  image_tag = "abc1234"
  # Two documentation ranges (RFC 5737): one ingress rule per block and port.
  allowed_cidr_blocks = ["198.51.100.0/24", "203.0.113.7/32"]
}

run "network_layout" {
  command = apply

  assert {
    condition     = length(aws_subnet.public) == 2 && length(aws_subnet.private) == 2
    error_message = "Expected two public and two private subnets."
  }
  assert {
    condition     = aws_subnet.public[*].availability_zone == ["eu-west-2a", "eu-west-2b"] && aws_subnet.private[*].availability_zone == ["eu-west-2a", "eu-west-2b"]
    error_message = "Subnets must sit in eu-west-2a and eu-west-2b."
  }
  assert {
    condition     = alltrue([for s in concat(aws_subnet.public, aws_subnet.private) : !s.map_public_ip_on_launch])
    error_message = "No subnet may hand out public IPs automatically."
  }
  assert {
    condition     = !aws_lb.this.internal && toset(aws_lb.this.subnets) == toset(aws_subnet.public[*].id)
    error_message = "The ALB must be internet-facing in the public subnets."
  }
  assert {
    condition     = aws_route.public_internet.route_table_id == aws_route_table.public.id && toset(aws_route_table_association.private[*].route_table_id) == toset([aws_route_table.private.id])
    error_message = "Only the public route table may route to the internet gateway."
  }
  assert {
    condition     = aws_vpc_endpoint.s3.vpc_endpoint_type == "Gateway" && aws_vpc_endpoint.s3.service_name == "com.amazonaws.eu-west-2.s3" && toset(aws_vpc_endpoint.s3.route_table_ids) == toset([aws_route_table.private.id])
    error_message = "The S3 gateway endpoint must serve the private route table."
  }
  assert {
    condition     = toset([for e in aws_vpc_endpoint.interface : e.service_name]) == toset(["com.amazonaws.eu-west-2.ecr.api", "com.amazonaws.eu-west-2.ecr.dkr", "com.amazonaws.eu-west-2.logs"])
    error_message = "Expected exactly the ECR api, ECR dkr and CloudWatch Logs interface endpoints."
  }
  assert {
    condition = alltrue([for e in aws_vpc_endpoint.interface :
      e.vpc_endpoint_type == "Interface" && e.private_dns_enabled && toset(e.subnet_ids) == toset(aws_subnet.private[*].id)
    ])
    error_message = "Interface endpoints must be in the private subnets with private DNS."
  }
  assert {
    condition     = aws_vpc.this.enable_dns_support && aws_vpc.this.enable_dns_hostnames
    error_message = "Endpoint private DNS needs DNS support and hostnames on the VPC."
  }
}

run "security_groups" {
  command = apply

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.tasks_from_alb.referenced_security_group_id == aws_security_group.alb.id &&
      aws_vpc_security_group_ingress_rule.tasks_from_alb.from_port == 9123 &&
      aws_vpc_security_group_ingress_rule.tasks_from_alb.to_port == 9123 &&
      aws_vpc_security_group_ingress_rule.tasks_from_alb.cidr_ipv4 == null
    )
    error_message = "Tasks must be reachable only from the ALB's security group on 9123."
  }
  assert {
    condition     = keys(aws_vpc_security_group_ingress_rule.alb_http) == ["198.51.100.0/24", "203.0.113.7/32"] && length(aws_vpc_security_group_ingress_rule.alb_https) == 0
    error_message = "Without a certificate the ALB opens port 80 only, to exactly allowed_cidr_blocks."
  }
  assert {
    condition = alltrue([for cidr, rule in aws_vpc_security_group_ingress_rule.alb_http :
      rule.cidr_ipv4 == cidr && rule.security_group_id == aws_security_group.alb.id && rule.from_port == 80 && rule.to_port == 80
    ])
    error_message = "Each allowed CIDR block gets its own port-80 rule on the ALB's security group."
  }
  assert {
    condition     = aws_vpc_security_group_egress_rule.tasks_to_s3.prefix_list_id == aws_vpc_endpoint.s3.prefix_list_id
    error_message = "Tasks reach S3 through the gateway endpoint's prefix list."
  }
}

run "service_and_health_checks" {
  command = apply

  assert {
    condition     = aws_ecs_cluster.this.name == "fake-api-ecs-cluster" && aws_ecs_service.this.name == "fake-api-ecs-service"
    error_message = "The seed's `aws ecs update-service --cluster fake-api-ecs-cluster --service fake-api-ecs-service` must work."
  }
  assert {
    condition     = aws_ecs_service.this.network_configuration[0].assign_public_ip == false && toset(aws_ecs_service.this.network_configuration[0].subnets) == toset(aws_subnet.private[*].id)
    error_message = "Tasks must run in the private subnets without public IPs."
  }
  assert {
    condition     = aws_ecs_service.this.launch_type == "FARGATE" && aws_ecs_service.this.deployment_circuit_breaker[0].enable && aws_ecs_service.this.deployment_circuit_breaker[0].rollback
    error_message = "Fargate service with a rolling-back deployment circuit breaker expected."
  }
  assert {
    condition     = aws_ecs_service.this.health_check_grace_period_seconds == 30 && aws_lb_target_group.this.deregistration_delay == "30"
    error_message = "Grace period and deregistration delay must follow their variables."
  }
  assert {
    condition = (
      aws_lb_target_group.this.health_check[0].path == "/health" && aws_lb_target_group.this.health_check[0].matcher == "200" &&
      aws_lb_target_group.this.target_type == "ip" && aws_lb_target_group.this.port == 9123
    )
    error_message = "The target group must check GET /health on port 9123 of IP targets."
  }
  assert {
    condition     = one(aws_ecs_service.this.load_balancer).target_group_arn == aws_lb_target_group.this.arn && one(aws_ecs_service.this.load_balancer).container_port == 9123
    error_message = "The service must register port 9123 into the target group."
  }
  assert {
    condition     = aws_lb_listener.http.default_action[0].type == "forward" && length(aws_lb_listener.https) == 0
    error_message = "Without a certificate port 80 forwards to the tasks and there is no HTTPS listener."
  }
}

run "task_definition" {
  command = apply

  variables {
    environment = { ELID_DELAY_SECONDS = "2", SIMULATOR_PLUGINS = "eligibility,apim_oauth,health" }
  }

  assert {
    condition     = aws_ecs_task_definition.this.cpu == "1024" && aws_ecs_task_definition.this.memory == "2048" && aws_ecs_task_definition.this.network_mode == "awsvpc"
    error_message = "1024 CPU / 2048 MiB awsvpc task expected by default."
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].image == "123456789012.dkr.ecr.eu-west-2.amazonaws.com/fake-api:abc1234"
    error_message = "The container must run the ECR image with var.image_tag."
  }
  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].readonlyRootFilesystem == true &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].stopTimeout == 30 &&
      strcontains(join(" ", jsondecode(aws_ecs_task_definition.this.container_definitions)[0].healthCheck.command), "/health")
    )
    error_message = "Read-only root filesystem, 30 s stop timeout and a /health container check expected."
  }
  assert {
    condition = (
      { for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.name => e.value } ==
      {
        ELID_DELAY_SECONDS   = "2", SIMULATOR_PLUGINS = "eligibility,apim_oauth,health", SIMULATOR_LOG_FORMAT = "json", SIMULATOR_GRACEFUL_TIMEOUT = "25",
        LOGIN_ROOT_URL       = "http://fake-api-alb-123456789.eu-west-2.elb.amazonaws.com"
        SIMULATOR_CLOUDWATCH = "emf", SIMULATOR_CLOUDWATCH_NAMESPACE = "api-simulator", SIMULATOR_SERVICE_NAME = "fake-api"
        SIMULATOR_WORKERS    = "1"
      }
    )
    error_message = "The container environment must be var.environment plus JSON logs, a graceful timeout inside stop_timeout, the NHS login issuer on the ALB's URL, EMF metrics for the service and one worker per vCPU."
  }
}

run "one_worker_per_whole_vcpu" {
  command = apply

  variables {
    cpu         = 4096
    memory      = 8192
    environment = { ELID_DELAY_SECONDS = "2" }
  }

  assert {
    condition     = { for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.name => e.value }["SIMULATOR_WORKERS"] == "4"
    error_message = "A 4 vCPU task runs 4 workers."
  }
}

run "environment_sets_the_workers_over_the_cpu" {
  command = apply

  variables {
    cpu         = 256
    memory      = 512
    environment = { SIMULATOR_WORKERS = "2" }
  }

  assert {
    condition     = { for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.name => e.value }["SIMULATOR_WORKERS"] == "2"
    error_message = "SIMULATOR_WORKERS in var.environment wins over the one derived from cpu."
  }
}

run "least_privilege_iam" {
  command = apply

  assert {
    condition     = aws_iam_role.execution.name != aws_iam_role.task.name && aws_ecs_task_definition.this.execution_role_arn == aws_iam_role.execution.arn
    error_message = "Execution and task roles must be separate."
  }
  assert {
    condition     = aws_iam_role_policy.execution.role == aws_iam_role.execution.id
    error_message = "The only inline policy belongs to the execution role; the task role has none."
  }
  assert {
    condition = alltrue([for s in jsondecode(aws_iam_role_policy.execution.policy).Statement :
      s.Resource != "*" || s.Action == "ecr:GetAuthorizationToken"
    ])
    error_message = "Only ecr:GetAuthorizationToken (which cannot be scoped) may use Resource \"*\"."
  }
}

run "outputs" {
  command = apply

  assert {
    condition     = output.application_url == "http://fake-api-alb-123456789.eu-west-2.elb.amazonaws.com"
    error_message = "application_url must be the ALB's URL."
  }
  assert {
    condition     = output.ecr_repository_url == "123456789012.dkr.ecr.eu-west-2.amazonaws.com/fake-api"
    error_message = "ecr_repository_url must be the repository URL."
  }
  assert {
    condition     = output.ecs_cluster_name == "fake-api-ecs-cluster" && output.ecs_service_name == "fake-api-ecs-service"
    error_message = "Cluster and service names must be output."
  }
}

run "https_with_certificate" {
  command = apply

  variables {
    certificate_arn = "arn:aws:acm:eu-west-2:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  }

  assert {
    condition     = length(aws_lb_listener.https) == 1 && aws_lb_listener.https[0].port == 443 && aws_lb_listener.https[0].ssl_policy == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    error_message = "A certificate must add an HTTPS listener with a TLS 1.2+ policy."
  }
  assert {
    condition     = aws_lb_listener.http.default_action[0].type == "redirect" && aws_lb_listener.http.default_action[0].redirect[0].protocol == "HTTPS"
    error_message = "With a certificate port 80 must redirect to HTTPS."
  }
  assert {
    condition     = keys(aws_vpc_security_group_ingress_rule.alb_https) == ["198.51.100.0/24", "203.0.113.7/32"] && alltrue([for r in aws_vpc_security_group_ingress_rule.alb_https : r.from_port == 443 && r.to_port == 443]) && output.application_url == "https://fake-api-alb-123456789.eu-west-2.elb.amazonaws.com"
    error_message = "With a certificate the ALB opens 443 to allowed_cidr_blocks and application_url uses https."
  }
}

# allowed_cidr_blocks is required (no default) and validated; 0.0.0.0/0 needs allow_any_source.

run "any_source_is_refused_without_opt_in" {
  command = plan

  variables {
    allowed_cidr_blocks = ["203.0.113.0/24", "0.0.0.0/0"]
  }

  expect_failures = [var.allowed_cidr_blocks]
}

run "any_source_with_explicit_opt_in" {
  command = plan

  variables {
    allowed_cidr_blocks = ["0.0.0.0/0"]
    allow_any_source    = true
  }

  assert {
    condition     = keys(aws_vpc_security_group_ingress_rule.alb_http) == ["0.0.0.0/0"]
    error_message = "allow_any_source = true must let 0.0.0.0/0 through."
  }
}

run "opt_in_alone_opens_nothing_more" {
  command = plan

  variables {
    allow_any_source = true
  }

  assert {
    condition     = keys(aws_vpc_security_group_ingress_rule.alb_http) == ["198.51.100.0/24", "203.0.113.7/32"]
    error_message = "allow_any_source only permits 0.0.0.0/0; the rules still follow allowed_cidr_blocks."
  }
}

run "empty_cidr_list_is_refused" {
  command = plan

  variables {
    allowed_cidr_blocks = []
  }

  expect_failures = [var.allowed_cidr_blocks]
}

run "malformed_cidr_is_refused" {
  command = plan

  variables {
    allowed_cidr_blocks = ["203.0.113.0/24", "203.0.113.0"]
  }

  expect_failures = [var.allowed_cidr_blocks]
}

run "cidr_with_host_bits_is_refused" {
  command = plan

  variables {
    allowed_cidr_blocks = ["203.0.113.5/24"]
  }

  expect_failures = [var.allowed_cidr_blocks]
}

run "ipv6_cidr_is_refused" {
  command = plan

  variables {
    allowed_cidr_blocks = ["2001:db8::/32"]
  }

  expect_failures = [var.allowed_cidr_blocks]
}

run "out_of_range_cidr_is_refused" {
  command = plan

  variables {
    allowed_cidr_blocks = ["300.0.113.0/24"]
  }

  expect_failures = [var.allowed_cidr_blocks]
}
