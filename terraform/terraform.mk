# Terraform and deploy targets; included from the top-level Makefile.

.PHONY: deploy deploy-dry-run smoke-check terraform-tools test-terraform

deploy: ## Plan (asks), build, check here, push and roll out to AWS (needs `terraform apply` first; CI: DEPLOY_ARGS=--yes)
	scripts/deploy.sh $(DEPLOY_ARGS)

deploy-dry-run: ## Print every command `make deploy` would run, with the real names from the Terraform state
	scripts/deploy.sh --dry-run

smoke-check: ## Smoke-check the deployed service (application_url) against its deployed settings
	scripts/deploy.sh --smoke-check

terraform-tools: ## Create .venv-tools with checkov and moto (kept out of .venv: conflicting pins)
	scripts/terraform-tools.sh

test-terraform: terraform-tools ## fmt, validate, terraform test, checkov, moto apply+destroy, the deploy script
	.venv/bin/pytest -m terraform tests/terraform
