# MirrorGate — the two commands a newcomer needs:
#   make run    start the gateway with ./gateway.yaml
#   make test   install what the tests need (apt) and run the whole suite

SWIFT ?= swift
APT_PACKAGES := docker-registry skopeo apache2-utils containerd libsqlite3-dev bubblewrap systemd python3-venv chromium openssl curl nginx-light wrk python3-matplotlib

.PHONY: run test deps build release check clean

run:
	$(SWIFT) run -c release mirrorgate serve --config gateway.yaml

deps:
	@scripts/install-test-deps $(APT_PACKAGES)
	@scripts/install-deploy-tools

build:
	$(SWIFT) build --build-tests

release:
	$(SWIFT) build -c release --product mirrorgate

check:
	$(SWIFT) run mirrorgate check --config gateway.yaml

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

clean:
	rm -rf .build
