# One command per job. `make test` is exactly what CI runs (.ci/run).
CARGO ?= cargo

.PHONY: all build test lint fmt bench bench-lab demo lab-clean clean

all: build

build:
	$(CARGO) build --workspace --release --bins

## test: formatting, lints, then every unit, property, differential and end-to-end test.
test: lint
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## bench: criterion benchmarks (key extraction, classifier, pipeline). Figures: bench/README.md.
bench:
	$(CARGO) bench -p bench --benches

## bench-lab: end-to-end veth lab (root, 2 cores, quiet machine; minutes). Peers: Linux bridge,
## bare AF_XDP forwarder, OVS userspace datapath on AF_XDP, vswitchd. See bench/LAB.md.
## Options through LAB_ARGS, e.g. `make bench-lab LAB_ARGS=--quick`.
bench-lab: build
	./bench/lab/get-ovs.sh
	./bench/lab/run.sh $(LAB_ARGS)

## demo: start vswitchd on a private socket, load seed 000's flows, show them and trace packets.
demo: build
	./scripts/demo.sh

clean:
	$(CARGO) clean
