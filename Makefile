# The two commands of the README: `make demo` and `make test`. Both install what is missing first.
SWIFT ?= swift

.PHONY: setup build test test-cluster demo demo-cluster bench fixtures fuzz clean

setup:
	@scripts/setup

build: setup
	$(SWIFT) build

# Builds the vigil binary with the tests: the end-to-end tests run it.
test: setup
	@SWIFT=$(SWIFT) scripts/test

# The replicated coordinator across hosts: three coordinators, a relay node and a viewer in
# network namespaces (root only; says so and does nothing without CAP_NET_ADMIN). CI runs it.
test-cluster: build
	@scripts/test-cluster

demo: build
	@scripts/demo

# Three coordinators, a relay node and a viewer, each on a host made of a network namespace
# (as root): the leader cut off, then killed, while the video plays on.
demo-cluster: build
	@scripts/demo-cluster

# Every benchmark, each figure beside its target and its peer (nginx-rtmp, shapely), in one run.
bench: setup
	@SWIFT=$(SWIFT) scripts/bench

# Regenerates the committed camera registries from fixtures/sources (deterministic).
fixtures: build
	$(SWIFT) run vigil fixtures generate

# The fuzz run: 100,000 random and mutated bus messages, 20,000 on the media endpoint and 20,000 bad HTTP requests at a fresh server (a few minutes).
fuzz: build
	@scripts/fuzz 100000

clean:
	rm -rf .build vigil-data vigil-data-marseille
