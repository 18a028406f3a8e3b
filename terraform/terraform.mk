# Terraform and deploy targets; included from the top-level Makefile.

.PHONY: deploy deploy-dry-run terraform-tools test-terraform

deploy: ## Build, push and roll out the image to AWS (needs `terraform apply` first; AWS_PROFILE/AWS_REGION)
	scripts/deploy.sh

deploy-dry-run: ## Print every step `make deploy` would run
	scripts/deploy.sh --dry-run

terraform-tools: ## Create .venv-tools with checkov and moto (kept out of .venv: conflicting pins)
	scripts/terraform-tools.sh

test-terraform: terraform-tools ## fmt, validate, terraform test, checkov, moto apply+destroy, deploy dry run
	.venv/bin/pytest -m terraform tests/terraform
