# The NHS login fake behind the ALB: its issuer (LOGIN_ROOT_URL) is the ALB's public URL unless
# var.environment says otherwise, and with login_private_key_secret_arn every task gets the same signing
# key from Secrets Manager (secret reference in the task definition, read permission on that secret only,
# a Secrets Manager endpoint for the private subnets); without it none of that exists.
#
# Runs that read the container definition or the IAM policy apply against the mocked provider: both embed
# values (ECR repository URL, ALB DNS name, log group ARN) that are known only after apply.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  image_tag           = "abc1234"
  allowed_cidr_blocks = ["203.0.113.0/24"]
}

run "login_root_url_defaults_to_the_alb_url" {
  command = apply

  assert {
    condition = (
      [for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.value if e.name == "LOGIN_ROOT_URL"] ==
      ["http://fake-api-alb-123456789.eu-west-2.elb.amazonaws.com"]
    )
    error_message = "LOGIN_ROOT_URL must default to the ALB's public URL."
  }
  assert {
    condition     = [for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.value if e.name == "LOGIN_ROOT_URL"] == [output.application_url]
    error_message = "LOGIN_ROOT_URL and application_url must be the same URL."
  }
}

run "login_root_url_is_https_with_a_certificate" {
  command = apply

  variables {
    certificate_arn = "arn:aws:acm:eu-west-2:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  }

  assert {
    condition = (
      [for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.value if e.name == "LOGIN_ROOT_URL"] ==
      ["https://fake-api-alb-123456789.eu-west-2.elb.amazonaws.com"] &&
      output.application_url == "https://fake-api-alb-123456789.eu-west-2.elb.amazonaws.com"
    )
    error_message = "With a certificate LOGIN_ROOT_URL and application_url must both use https."
  }
}

run "login_root_url_from_environment_wins" {
  command = apply

  variables {
    environment = { LOGIN_ROOT_URL = "https://login.fake-api.example.test" }
  }

  assert {
    condition = (
      [for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.value if e.name == "LOGIN_ROOT_URL"] ==
      ["https://login.fake-api.example.test"]
    )
    error_message = "LOGIN_ROOT_URL from var.environment must replace the default (and appear once)."
  }
  assert {
    condition     = output.application_url == "http://fake-api-alb-123456789.eu-west-2.elb.amazonaws.com"
    error_message = "Overriding LOGIN_ROOT_URL must not change application_url."
  }
}

run "no_login_key_secret_by_default" {
  command = apply

  assert {
    # null is what ECS and the provider make of an absent list: no secrets are registered.
    condition     = lookup(jsondecode(aws_ecs_task_definition.this.container_definitions)[0], "secrets", null) == null
    error_message = "Without login_private_key_secret_arn the container must have no secrets."
  }
  assert {
    condition     = !contains([for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.name], "LOGIN_PRIVATE_KEY")
    error_message = "LOGIN_PRIVATE_KEY must not be set: the tasks use the key bundled in the image."
  }
  assert {
    condition = alltrue([for s in jsondecode(aws_iam_role_policy.execution.policy).Statement :
      alltrue([for a in flatten([s.Action]) : !startswith(a, "secretsmanager:")])
    ]) && length(aws_iam_role_policy.read_login_key) == 0
    error_message = "Without a secret the execution role must not read Secrets Manager."
  }
  assert {
    condition     = keys(aws_vpc_endpoint.interface) == ["ecr.api", "ecr.dkr", "logs"]
    error_message = "Without a secret there must be no Secrets Manager endpoint."
  }
}

run "login_key_from_secrets_manager" {
  command = apply

  variables {
    login_private_key_secret_arn = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:fake-api/nhs-login-key-AbC123"
  }

  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].secrets ==
      [{ name = "LOGIN_PRIVATE_KEY", valueFrom = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:fake-api/nhs-login-key-AbC123" }]
    )
    error_message = "The container must get LOGIN_PRIVATE_KEY from the secret, by ARN."
  }
  assert {
    condition     = !contains([for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.name], "LOGIN_PRIVATE_KEY")
    error_message = "LOGIN_PRIVATE_KEY must come from secrets only, never from environment."
  }
  assert {
    condition = (
      jsondecode(aws_iam_role_policy.read_login_key[0].policy).Statement ==
      [{ Sid = "ReadLoginSigningKey", Effect = "Allow", Action = "secretsmanager:GetSecretValue", Resource = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:fake-api/nhs-login-key-AbC123" }]
    )
    error_message = "The execution role must get secretsmanager:GetSecretValue on exactly that secret, and nothing else."
  }
  assert {
    condition = alltrue([for s in jsondecode(aws_iam_role_policy.execution.policy).Statement :
      alltrue([for a in flatten([s.Action]) : !startswith(a, "secretsmanager:")])
    ])
    error_message = "Secrets Manager access must be in its own policy only."
  }
  assert {
    condition     = aws_iam_role_policy.read_login_key[0].role == aws_iam_role.execution.id && aws_ecs_task_definition.this.execution_role_arn == aws_iam_role.execution.arn
    error_message = "The read permission belongs to the execution role (ECS fetches the secret), not the task role."
  }
  assert {
    condition     = keys(aws_vpc_endpoint.interface) == ["ecr.api", "ecr.dkr", "logs", "secretsmanager"]
    error_message = "A secret must add the Secrets Manager interface endpoint to the other three."
  }
  assert {
    condition = (
      aws_vpc_endpoint.interface["secretsmanager"].service_name == "com.amazonaws.eu-west-2.secretsmanager" &&
      aws_vpc_endpoint.interface["secretsmanager"].vpc_endpoint_type == "Interface" &&
      aws_vpc_endpoint.interface["secretsmanager"].private_dns_enabled &&
      toset(aws_vpc_endpoint.interface["secretsmanager"].subnet_ids) == toset(aws_subnet.private[*].id) &&
      aws_vpc_endpoint.interface["secretsmanager"].security_group_ids == toset([aws_security_group.endpoints.id])
    )
    error_message = "The Secrets Manager endpoint must sit in the private subnets with private DNS and the endpoints security group."
  }
}

# A key file path (e.g. baked into a derived image) is still allowed in environment without a secret.
run "key_file_path_in_environment_is_allowed" {
  command = plan

  variables {
    environment = { LOGIN_PRIVATE_KEY = "/opt/keys/nhs-login.pem" }
  }

  assert {
    condition     = keys(aws_vpc_endpoint.interface) == ["ecr.api", "ecr.dkr", "logs"]
    error_message = "A key file path needs no Secrets Manager endpoint."
  }
}

run "pem_in_environment_is_rejected" {
  command = plan

  variables {
    environment = { LOGIN_PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n" }
  }

  expect_failures = [var.environment]
}

run "environment_key_conflicts_with_secret" {
  command = plan

  variables {
    login_private_key_secret_arn = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:fake-api/nhs-login-key-AbC123"
    environment                  = { LOGIN_PRIVATE_KEY = "/opt/keys/nhs-login.pem" }
  }

  expect_failures = [var.environment]
}

run "secret_arn_must_be_secrets_manager" {
  command = plan

  variables {
    login_private_key_secret_arn = "arn:aws:ssm:eu-west-2:123456789012:parameter/fake-api/nhs-login-key"
  }

  expect_failures = [var.login_private_key_secret_arn]
}

run "secret_arn_must_be_complete" {
  command = plan

  variables {
    # A partial ARN (no -XXXXXX suffix) would not match the IAM grant.
    login_private_key_secret_arn = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:fake-api/nhs-login-key"
  }

  expect_failures = [var.login_private_key_secret_arn]
}

run "secret_arn_without_json_key_tail" {
  command = plan

  variables {
    login_private_key_secret_arn = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:fake-api/nhs-login-key-AbC123:pem::"
  }

  expect_failures = [var.login_private_key_secret_arn]
}

run "secret_must_be_in_the_deployment_region" {
  command = plan

  variables {
    login_private_key_secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:fake-api/nhs-login-key-AbC123"
  }

  expect_failures = [var.login_private_key_secret_arn]
}
