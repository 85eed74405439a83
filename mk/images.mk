# Container images for the four services, from the one multi-stage Dockerfile.
#
#   make images                    # mp3mesh/{auth,gateway,converter,notifier}:dev
#   make images IMAGE_TAG=0.1.0 IMAGE_PREFIX=registry.example.com/mp3mesh
#
# With a working Docker engine (`docker info` succeeds) it uses `docker build`; that includes
# Minikube's engine after `eval $(minikube docker-env)`. Otherwise, if `minikube` is on PATH,
# it builds straight into the cluster with `minikube image build`. Otherwise it fails with
# one line saying why.

IMAGE_PREFIX ?= mp3mesh
IMAGE_TAG ?= dev
IMAGE_SERVICES := auth gateway converter notifier
DOCKER ?= docker
MINIKUBE ?= minikube
# The repository root (where the Dockerfile is), whatever directory make runs from.
IMAGES_CONTEXT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)

.PHONY: images
images:
	@if $(DOCKER) info >/dev/null 2>&1; then \
		for svc in $(IMAGE_SERVICES); do \
			echo "images: docker build --target $$svc -t $(IMAGE_PREFIX)/$$svc:$(IMAGE_TAG)"; \
			$(DOCKER) build --target "$$svc" -t "$(IMAGE_PREFIX)/$$svc:$(IMAGE_TAG)" "$(IMAGES_CONTEXT)" || exit 1; \
		done; \
	elif command -v $(MINIKUBE) >/dev/null 2>&1; then \
		for svc in $(IMAGE_SERVICES); do \
			echo "images: minikube image build --build-opt=target=$$svc -t $(IMAGE_PREFIX)/$$svc:$(IMAGE_TAG)"; \
			$(MINIKUBE) image build --build-opt="target=$$svc" -t "$(IMAGE_PREFIX)/$$svc:$(IMAGE_TAG)" "$(IMAGES_CONTEXT)" || exit 1; \
		done; \
	else \
		echo "images: cannot build: no Docker engine ('$(DOCKER) info' failed) and no '$(MINIKUBE)' on PATH; start Docker or install minikube" >&2; \
		exit 1; \
	fi
