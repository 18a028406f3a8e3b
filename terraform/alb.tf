locals {
  https = var.certificate_arn != ""

  # The public base URL of the simulator: the application_url output and the NHS login fake's
  # LOGIN_ROOT_URL (its OIDC issuer and discovery URLs) both come from here, so they cannot drift.
  application_url = "${local.https ? "https" : "http"}://${aws_lb.this.dns_name}"
}

resource "aws_lb" "this" {
  #checkov:skip=CKV_AWS_91:Access logs are var.alb_access_logs (alb_logs.tf), off by default: the container logs and the dashboard cover a load-test fake; checkov reads the default.
  #checkov:skip=CKV_AWS_150:Deletion protection is var.alb_deletion_protection; off by default so a test fake tears down in one command.
  #checkov:skip=CKV2_AWS_28:No WAF: the fake serves canned test data only; restrict var.allowed_cidr_blocks instead.
  name                       = "${var.name}-alb"
  internal                   = false
  load_balancer_type         = "application"
  subnets                    = aws_subnet.public[*].id
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.alb_deletion_protection

  # Switched off by enabled = false rather than by removing the block: the provider then tells the ALB to
  # stop logging (it sends the bucket only when enabled).
  access_logs {
    enabled = var.alb_access_logs
    bucket  = var.alb_access_logs ? aws_s3_bucket.alb_logs[0].bucket : ""
    prefix  = var.alb_access_logs ? local.alb_logs_prefix : ""
  }

  # Enabling logs makes the ALB write a test object at once, which needs the bucket policy in place.
  depends_on = [aws_s3_bucket_policy.alb_logs]
}

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:TLS ends at the ALB; the hop to the tasks stays inside the VPC, reachable only from the ALB's security group.
  name        = "${var.name}-tg"
  port        = local.container_port
  protocol    = "HTTP"
  target_type = "ip" # awsvpc tasks register by IP
  vpc_id      = aws_vpc.this.id
  # Long enough for a request delayed by the configured latency to finish before the task is stopped.
  deregistration_delay = var.deregistration_delay

  health_check {
    path                = "/health"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:Port 80 serves HTTP when no certificate is given (ACM cannot certify *.elb.amazonaws.com); with var.certificate_arn it only redirects to 443.
  #checkov:skip=CKV_AWS_103:TLS policy is set on the HTTPS listener, which exists when var.certificate_arn is given.
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = local.https ? "redirect" : "forward"
    target_group_arn = local.https ? null : aws_lb_target_group.this.arn

    dynamic "redirect" {
      for_each = local.https ? [1] : []
      content {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }
}

resource "aws_lb_listener" "https" {
  count             = local.https ? 1 : 0
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06" # TLS 1.2 and 1.3 only
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }
}
