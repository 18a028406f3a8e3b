# Optional shared state (var.shared_state): an ElastiCache for Valkey that every task names in
# SIMULATOR_STATE_URL, so that a control change (delay, faults, capacity, a scenario's phases) reaches every
# task, and apim_oauth's used jtis and quotas are counted once for the whole service. In the private
# subnets, reachable only from the tasks' security group, TLS in transit (rediss://), encrypted at rest.

resource "aws_elasticache_subnet_group" "shared_state" {
  count       = var.shared_state ? 1 : 0
  name        = "${var.name}-shared-state"
  description = "Private subnets of ${var.name}'s shared state"
  subnet_ids  = aws_subnet.private[*].id
}

resource "aws_security_group" "shared_state" {
  count       = var.shared_state ? 1 : 0
  name        = "${var.name}-shared-state"
  description = "Shared state (Valkey) of ${var.name}, reachable only from its tasks"
  vpc_id      = aws_vpc.this.id
}

resource "aws_vpc_security_group_ingress_rule" "shared_state_from_tasks" {
  count                        = var.shared_state ? 1 : 0
  security_group_id            = aws_security_group.shared_state[0].id
  description                  = "Valkey from the simulator tasks only"
  referenced_security_group_id = aws_security_group.tasks.id
  ip_protocol                  = "tcp"
  from_port                    = local.shared_state_port
  to_port                      = local.shared_state_port
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_shared_state" {
  count                        = var.shared_state ? 1 : 0
  security_group_id            = aws_security_group.tasks.id
  description                  = "The shared state (Valkey)"
  referenced_security_group_id = aws_security_group.shared_state[0].id
  ip_protocol                  = "tcp"
  from_port                    = local.shared_state_port
  to_port                      = local.shared_state_port
}

resource "aws_elasticache_replication_group" "shared_state" {
  #checkov:skip=CKV_AWS_31:No AUTH token: only the tasks' security group reaches it, over TLS; it holds test configuration and jtis, no data.
  #checkov:skip=CKV_AWS_191:The AWS-managed key encrypts it at rest; a customer-managed key would cost without protecting anything more here.
  #checkov:skip=CKV2_AWS_50:One node: a load-test fake's shared state may be lost with the node (the tasks fall back to their own state).
  count                      = var.shared_state ? 1 : 0
  replication_group_id       = "${var.name}-shared-state"
  description                = "Shared state of ${var.name}: control changes, jtis, quotas"
  engine                     = "valkey"
  engine_version             = "8.0"
  node_type                  = var.shared_state_node_type
  num_cache_clusters         = 1
  port                       = local.shared_state_port
  subnet_group_name          = aws_elasticache_subnet_group.shared_state[0].name
  security_group_ids         = [aws_security_group.shared_state[0].id]
  transit_encryption_enabled = true
  at_rest_encryption_enabled = true
  automatic_failover_enabled = false
  apply_immediately          = true
}

locals {
  shared_state_port = 6379
  # rediss://: TLS, as transit encryption requires.
  shared_state_url = var.shared_state ? "rediss://${aws_elasticache_replication_group.shared_state[0].primary_endpoint_address}:${local.shared_state_port}/0" : null
}
