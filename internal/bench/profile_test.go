package bench

import (
	"context"
	"io"
	"os"
	"testing"
	"time"
)

// TestProfile runs one embedded workload for 8 seconds so that go test can
// profile the server and the load together:
//
//	ALLOT_PROFILE_WORKLOAD=claim go test -run Profile -v -cpuprofile cpu.prof ./internal/bench/
//	go tool pprof -top -cum cpu.prof
func TestProfile(t *testing.T) {
	workload := os.Getenv("ALLOT_PROFILE_WORKLOAD")
	if workload == "" {
		t.Skip("set ALLOT_PROFILE_WORKLOAD to a workload to profile it")
	}
	s, err := Run(context.Background(), Config{Embedded: true, Workload: workload, Tenants: 100, Concurrency: 64,
		BatchSize: 1000, Duration: 8 * time.Second, Warmup: time.Second, Processes: 1}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%.0f ops/s, p99 %.1f ms, overshoot %d", s.OpsPerSec, s.P99ms, s.Overshoot)
}
