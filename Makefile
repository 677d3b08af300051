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

# make test: vet, then every test twice, in two runs side by side (the
# race run's output is printed after the full run's; make fails if
# either fails):
#
# 1. Under the race detector, with -short: the heavy tests (concurrency
#    stress, load, long random sequences) do fewer iterations and assert
#    the same things. The race detector made modernc's SQLite 15-20 times
#    slower; RACE_GCFLAGS builds two parts of it as without -race, which
#    took the race run of ./server with -short from 66 to 18 CPU seconds:
#    - SQLite itself, transpiled C (modernc.org/sqlite/lib), is not
#      instrumented: the detector still watches every Go package that
#      calls it (database/sql, the driver modernc.org/sqlite, this
#      project), where two goroutines sharing a connection would show;
#    - checkptr, which -race turns on, is off for modernc.org/... (the
#      C's pointer arithmetic), on for everything else.
#    cmd/clustod's tests of the built binary skip themselves with -short.
# 2. Without -race and without -short: every test in full, the heavy
#    ones at their full size and cmd/clustod's binary tests included.
#
# Side by side, the two keep both cores busy (one after the other, the
# long packages of each left a core idle: 2 min 44 s against 1 min 16 s
# from a clean clone). The packages with the longest runs come first, so
# that they start first (go test runs GOMAXPROCS packages at a time).
RACE_GCFLAGS := -gcflags=modernc.org/...=-d=checkptr=0 -gcflags=modernc.org/sqlite/lib=-race=false
SLOW_FIRST   := ./cmd/clustod ./server ./entity ./query

test:
	$(GO) vet ./...
	@race_log=$$(mktemp); \
	$(GO) test -race $(RACE_GCFLAGS) -short -count=1 -timeout 10m $(SLOW_FIRST) ./... >$$race_log 2>&1 & race=$$!; \
	$(GO) test -count=1 -timeout 10m $(SLOW_FIRST) ./...; full_rc=$$?; \
	wait $$race; race_rc=$$?; \
	echo "--- the race run (-race -short):"; cat $$race_log; rm -f $$race_log; \
	echo "full run: exit $$full_rc; race run: exit $$race_rc"; \
	test $$full_rc -eq 0 && test $$race_rc -eq 0

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
