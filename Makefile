# Everything a fresh machine with only Go installed needs: dependencies come
# through go.mod.
GO       ?= go
BIN      := bin
DB       ?= ./clusto.db
LISTEN   ?= 127.0.0.1:8642
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build run test bench bench-http fmt vet clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/ ./cmd/...

run: build
	$(BIN)/clustod serve --db $(DB) --listen $(LISTEN) --seed examples/demo.yaml

# vet, then every test with the race detector.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1x -timeout 30m ./...

# The side-by-side HTTP harness (cmd/benchhttp): the real clustod on
# loopback over a generated 100k-entity inventory, each figure with its
# baseline. The inventory is generated once into $(BENCH_WORK).
BENCH_WORK ?= $(or $(TMPDIR),/tmp)/clusto-bench-http
bench-http: build
	$(GO) run ./cmd/benchhttp --bin $(BIN) --work $(BENCH_WORK)

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf $(BIN)
