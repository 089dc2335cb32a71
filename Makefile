.PHONY: up down test faults check bench

## Start the whole stack on local services (installs what is missing) and print the URLs and an admin token.
up:
	@scripts/stack.sh up

## Stop everything `make up` started; data stays in .stack/.
down:
	@scripts/stack.sh down

## Run every test against throwaway PostgreSQL, Redis and Kafka (tansu) instances.
test:
	@scripts/test.sh

## The fault suite alone: the pipeline under load while its broker, database, consumers, workers and Redis fail.
faults:
	@scripts/test.sh faults

## Formatting, lints and the workspace-hack check, as CI runs them.
check:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo hakari verify

## The benchmarks on release builds (docs/performance.md): intake and the whole pipeline, the consumer draining a backlog, analytics at 1 and 10 million receipts.
bench:
	@scripts/bench.sh
