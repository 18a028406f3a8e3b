# Optional shared state (var.shared_state) and the admin token's secret (var.admin_token_secret_arn): off by
# default; on, a Valkey in the private subnets that only the tasks reach, over TLS, named in every task's
# SIMULATOR_STATE_URL, and SIMULATOR_ADMIN_TOKEN injected from Secrets Manager.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  image_tag           = "abc1234"
  allowed_cidr_blocks = ["203.0.113.0/24"]
}

run "off_by_default" {
  command = apply

  assert {
    condition     = length(aws_elasticache_replication_group.shared_state) == 0 && length(aws_security_group.shared_state) == 0
    error_message = "Without shared_state there must be no ElastiCache."
  }
  assert {
    condition     = !contains([for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.name], "SIMULATOR_STATE_URL")
    error_message = "Without shared_state the tasks must get no SIMULATOR_STATE_URL."
  }
  assert {
    condition     = output.shared_state_url == null
    error_message = "shared_state_url must be null without shared_state."
  }
  assert {
    condition     = length(aws_iam_role_policy.read_admin_token) == 0
    error_message = "Without admin_token_secret_arn the execution role must read no admin token."
  }
}

run "a_valkey_only_the_tasks_reach_over_tls" {
  command = apply

  variables {
    shared_state = true
  }

  assert {
    condition = (
      aws_elasticache_replication_group.shared_state[0].engine == "valkey" &&
      aws_elasticache_replication_group.shared_state[0].transit_encryption_enabled &&
      aws_elasticache_replication_group.shared_state[0].at_rest_encryption_enabled
    )
    error_message = "The shared state must be Valkey, encrypted in transit and at rest."
  }
  assert {
    condition     = toset(aws_elasticache_subnet_group.shared_state[0].subnet_ids) == toset(aws_subnet.private[*].id)
    error_message = "The shared state must sit in the private subnets."
  }
  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.shared_state_from_tasks[0].referenced_security_group_id == aws_security_group.tasks.id &&
      aws_vpc_security_group_ingress_rule.shared_state_from_tasks[0].cidr_ipv4 == null &&
      aws_vpc_security_group_ingress_rule.shared_state_from_tasks[0].from_port == 6379
    )
    error_message = "Only the tasks' security group may reach the shared state, on 6379."
  }
  assert {
    condition = (
      [for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.value if e.name == "SIMULATOR_STATE_URL"] ==
      ["rediss://${aws_elasticache_replication_group.shared_state[0].primary_endpoint_address}:6379/0"]
    )
    error_message = "Every task must name the shared state in SIMULATOR_STATE_URL, with TLS (rediss://)."
  }
  assert {
    condition     = output.shared_state_url == "rediss://${aws_elasticache_replication_group.shared_state[0].primary_endpoint_address}:6379/0"
    error_message = "shared_state_url must be the tasks' SIMULATOR_STATE_URL."
  }
}

run "the_admin_token_comes_from_secrets_manager" {
  command = apply

  variables {
    admin_token_secret_arn = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:fake-api/admin-token-AbCdEf"
  }

  assert {
    condition = (
      [for s in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].secrets : s.valueFrom if s.name == "SIMULATOR_ADMIN_TOKEN"] ==
      ["arn:aws:secretsmanager:eu-west-2:123456789012:secret:fake-api/admin-token-AbCdEf"]
    )
    error_message = "SIMULATOR_ADMIN_TOKEN must be a secret reference (its ARN), never a value."
  }
  assert {
    condition     = jsondecode(aws_iam_role_policy.read_admin_token[0].policy).Statement[0].Resource == "arn:aws:secretsmanager:eu-west-2:123456789012:secret:fake-api/admin-token-AbCdEf"
    error_message = "The execution role must read exactly the admin token's secret."
  }
  assert {
    condition     = contains(keys(aws_vpc_endpoint.interface), "secretsmanager")
    error_message = "The private subnets need a Secrets Manager endpoint to fetch the token."
  }
}

run "the_admin_token_never_in_plain_environment" {
  command = plan

  variables {
    environment = { SIMULATOR_ADMIN_TOKEN = "a-token-in-plain-text" }
  }

  expect_failures = [var.environment]
}
