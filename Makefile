.PHONY: up down test check fmt

## Start the whole stack on local services (installs what is missing) and print the URLs and an admin token.
up:
	@scripts/stack.sh up

## Stop everything `make up` started; data stays in .stack/.
down:
	@scripts/stack.sh down

## Run every test against throwaway PostgreSQL, Redis and Kafka (tansu) instances.
test:
	@scripts/test.sh

## Formatting and lints, as CI runs them.
check:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
