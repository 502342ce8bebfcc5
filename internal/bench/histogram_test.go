package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	for i := 1; i < len(Histogram{}.counts); i++ {
		if lo := upper(i-1) + 1; bucket(lo) != i || bucket(upper(i)) != i {
			t.Fatalf("bucket %d: [%d, %d] maps to %d..%d", i, lo, upper(i), bucket(lo), bucket(upper(i)))
		}
	}
	if got := bucket(1<<63 - 1); got != len(Histogram{}.counts)-1 {
		t.Fatalf("the largest duration falls in bucket %d, want the last", got)
	}
}

func TestQuantilesWithinPrecision(t *testing.T) {
	var h Histogram
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]time.Duration, 100_000)
	for i := range vals {
		vals[i] = time.Duration(rng.ExpFloat64() * float64(time.Millisecond))
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if got < want || float64(got-want) > float64(want)/50 {
			t.Errorf("p%g = %v, exact %v", q*100, got, want)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Quantile(1) != h.Max() || h.Count() != uint64(len(vals)) {
		t.Errorf("max %v, p100 %v, count %d; want %v, %v, %d", h.Max(), h.Quantile(1), h.Count(), vals[len(vals)-1], vals[len(vals)-1], len(vals))
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 {
		t.Errorf("an empty histogram's median is %v", empty.Quantile(0.5))
	}
}

func TestMerge(t *testing.T) {
	var a, b Histogram
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	b.Record(5 * time.Millisecond)
	a.Merge(&b)
	if a.Count() != 3 || a.Max() != 5*time.Millisecond {
		t.Fatalf("merged: count %d, max %v", a.Count(), a.Max())
	}
	if p50 := a.Quantile(0.5); p50 < 3*time.Millisecond || p50 > 3*time.Millisecond*65/64 {
		t.Fatalf("merged median %v, want about 3ms", p50)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	for i := range b.N {
		h.Record(time.Duration(i) * time.Microsecond)
	}
}
