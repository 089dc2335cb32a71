.PHONY: up down test check bench

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

## Analytics at 1,000,000 receipts (needs `make up` for its PostgreSQL); prints medians and the ratio.
bench:
	cargo bench -p consumer --bench analytics
