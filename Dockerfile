# Multi-stage build of the controller and speaker. The build stage runs exactly what
# `make build` runs, so an image build and a local build produce the same static binaries.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# VERSION, when given (--build-arg VERSION=v0.1.0), replaces `git describe` in the binaries.
ARG VERSION
RUN make build ${VERSION:+VERSION="$VERSION"}

# Minimal, non-root runtime image: static binaries only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/controller /controller
COPY --from=build /src/bin/speaker /speaker
USER 65532:65532
ENTRYPOINT ["/controller"]
