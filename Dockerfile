# Build: docker build -t dask-operator .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd cmd
COPY pkg pkg
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/dask-operator ./cmd/dask-operator

# A static binary on distroless: no shell, no package manager, non-root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dask-operator /dask-operator
USER 65532:65532
ENTRYPOINT ["/dask-operator"]
