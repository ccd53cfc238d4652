# MirrorGate — the two commands a newcomer needs:
#   make run    start the gateway with ./gateway.yaml
#   make test   install what the tests need (apt) and run the whole suite

SWIFT ?= swift
APT_PACKAGES := docker-registry skopeo apache2-utils containerd docker.io podman libsqlite3-dev bubblewrap systemd python3-venv chromium openssl curl nginx-light wrk python3-matplotlib postgresql-15

.PHONY: run test deps build release check clean

run:
	$(SWIFT) run -c release mirrorgate serve --config gateway.yaml

deps:
	@scripts/install-test-deps $(APT_PACKAGES)
	@scripts/install-deploy-tools
	@scripts/install-moto

build:
	$(SWIFT) build --build-tests

release:
	$(SWIFT) build -c release --product mirrorgate

check:
	$(SWIFT) run mirrorgate check --config gateway.yaml

# Most integration tests start real servers and clients; on 2 cores, more than a handful at once
# push real upstreams past the tests' short timeouts. Swift Testing's width caps that.
TEST_PARALLELISM ?= 6

test: deps
	$(SWIFT) build --build-tests
	SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=$(TEST_PARALLELISM) $(SWIFT) test --skip-build

clean:
	rm -rf .build
