# syntax=docker/dockerfile:1
# The paysaga image: the server (`paysaga api|worker|migrate|nhsim`) and the operators' CLI
# (`payctl`): the same binaries from the same packages as `make build` (deploy/compose_test.go
# checks it).

FROM golang:1.26-alpine AS build
WORKDIR /src
# Modules first, so that a code change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Pure Go (the SQLite driver included): a static binary runs on the small image below.
ENV CGO_ENABLED=0
RUN go build -trimpath -o /out/paysaga ./cmd/paysaga
RUN go build -trimpath -o /out/payctl ./cmd/payctl

FROM alpine:3.22
# ca-certificates for the bank's HTTPS; wget (busybox) serves the health checks.
RUN apk add --no-cache ca-certificates && adduser -D -H -u 10001 paysaga
COPY --from=build /out/paysaga /out/payctl /usr/local/bin/
USER paysaga
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/paysaga"]
CMD ["api"]
