package store_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// crashChildEnv makes the test binary act as a writer process that prints
// "ack N" after each committed transaction, until it is killed.
const crashChildEnv = "CLUSTO_CRASH_CHILD_DB"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		os.Exit(crashChild(path))
	}
	os.Exit(m.Run())
}

func crashChild(path string) int {
	ctx := context.Background()
	s, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	start, _ := strconv.Atoi(os.Getenv("CLUSTO_CRASH_START"))
	out := bufio.NewWriter(os.Stdout)
	for i := start; ; i++ {
		name := fmt.Sprintf("s%06d", i)
		// Three steps in one transaction: all or nothing must survive.
		err := s.Update(ctx, "crash", func(tx *store.Tx) error {
			if err := tx.Create(entity.NewEntity{Name: name, Driver: "server", Attrs: []entity.Attr{str("status", "new")}}); err != nil {
				return err
			}
			if _, err := tx.AddAttr(name, str("serial", "SN"+name)); err != nil {
				return err
			}
			_, err := tx.Insert("pool", name, entity.Placement{})
			return err
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(out, "ack %d\n", i)
		out.Flush()
	}
}

func TestCrashLosesNoAcknowledgedChange(t *testing.T) {
	t.Parallel() // its time is the children's; nothing in it is timed
	// With -short (make test runs it so under -race), 2 kills, sooner.
	rounds, killRange := 6, 200
	if testing.Short() {
		rounds, killRange = 2, 40
	}
	path := t.TempDir() + "/crash.db"
	s, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, func(tx *store.Tx) error { return tx.Create(entity.NewEntity{Name: "pool", Driver: "pool"}) })
	s.Close()

	next := 0
	acked := map[int]bool{}
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path, "CLUSTO_CRASH_START="+strconv.Itoa(next))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 20 + rand.IntN(killRange)
		sc := bufio.NewScanner(stdout)
		n := 0
		deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
		for sc.Scan() {
			i, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ack "))
			if err != nil {
				t.Fatalf("child said %q", sc.Text())
			}
			acked[i] = true
			next = i + 1
			if n++; n == killAfter {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		deadline.Stop()
		cmd.Wait()
		if n < killAfter {
			t.Fatalf("round %d: child stopped after %d acks before being killed: %s", round, n, stderr.String())
		}
		// A write may have committed without its ack being read: skip its number.
		next++

		s, err := store.Open(context.Background(), path, store.Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		var integrity string
		if err := s.Reader().QueryRowContext(context.Background(), "PRAGMA integrity_check").Scan(&integrity); err != nil {
			t.Fatalf("round %d: integrity_check: %v", round, err)
		}
		if integrity != "ok" {
			t.Fatalf("round %d: integrity_check = %s", round, integrity)
		}
		for i := range acked {
			e, err := s.Get(context.Background(), fmt.Sprintf("s%06d", i))
			if err != nil {
				t.Fatalf("round %d: acknowledged s%06d is missing: %v", round, i, err)
			}
			if len(e.Attrs) != 2 || len(e.Parents) != 1 {
				t.Fatalf("round %d: s%06d is half-written: %+v", round, i, e)
			}
		}
		// Nothing unacknowledged is half-present either.
		var halves int
		err = s.Reader().QueryRowContext(context.Background(), `SELECT count(*) FROM entities e WHERE e.until IS NULL AND e.driver = 'server' AND
			((SELECT count(*) FROM attrs a WHERE a.entity_id = e.id AND a.until IS NULL) != 2 OR
			 NOT EXISTS (SELECT 1 FROM connections c WHERE c.b = e.id AND c.until IS NULL))`).Scan(&halves)
		if err != nil {
			t.Fatalf("round %d: counting half-written servers: %v", round, err)
		}
		if halves != 0 {
			t.Fatalf("round %d: %d servers are half-written", round, halves)
		}
		s.Close()
	}
	t.Logf("%d acknowledged transactions survived %d kills", len(acked), rounds)
}
