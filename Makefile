# One command per job. `make test` is exactly what CI runs (.ci/run).
CARGO ?= cargo

.PHONY: all build test lint fmt bench bench-lab bench-lab-nat demo demo-s1 lab-clean clean

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

## bench-lab-nat: the same lab with conntrack + SNAT (root; ~3 minutes): vswitchd
## ct(commit,nat), a Linux router namespace with nftables SNAT, the bare AF_XDP forwarder;
## new connections/s and 10 000 existing connections. Installs nftables + conntrack if missing.
## See bench/LAB.md ("NAT scenario"). `make bench-lab-nat LAB_ARGS=--quick` for a smoke test.
bench-lab-nat: build
	./bench/lab/get-nat-tools.sh
	./bench/lab/run.sh --scenario nat $(LAB_ARGS)

## demo (root): three namespaces switched by vswitchd (ping, 10 MB TCP, show/dump-flows/
## dump-ports/fdb-show), then seed 000's flows loaded and traced. Cleans up on exit.
demo: build
	./scripts/demo.sh

## demo-s1 (root): the S1 lab (floating IP on two paths, seeds 000/001). Part 1: plain Linux
## reproduces the outage (the network node resets the client's ssh), node by node, then the
## symmetric control works; part 2: the same lab through two vswitchd instances works (switch
## recipe, then seed 000's own ODL flows on the compute node). Cleans up on exit.
demo-s1:
	./scripts/demo-s1.sh

## lab-clean: remove namespaces, links, daemons and temp dirs that crashed lab runs left behind
## (our own naming schemes only; see the script's header). Run it when no lab test is running.
lab-clean:
	./scripts/lab-clean.sh

clean:
	$(CARGO) clean
