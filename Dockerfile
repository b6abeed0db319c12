# syntax=docker/dockerfile:1
# Build: docker build -t fount .
# Run:   docker run --rm -p 1935:1935 -p 8080:8080 fount
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/fount ./cmd/fount

# Static binary on a distroless base: no shell, runs as the nonroot user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fount /usr/local/bin/fount
USER nonroot:nonroot
EXPOSE 1935 8080 8189/udp 8189
ENTRYPOINT ["/usr/local/bin/fount"]
CMD ["serve"]
