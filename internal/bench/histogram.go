package bench

import (
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: 2^subBits buckets per power of
// two, so a recorded latency is off by under 1/64 (1.6%).
const subBits = 6

// Histogram counts latencies in log-spaced buckets, in the manner of HDR
// histograms: memory is fixed (about 30 KB) however many values it holds.
// It is not safe for concurrent use; give each worker its own and Merge.
type Histogram struct {
	counts [(64 - subBits) << subBits]uint64
	n      uint64
	max    time.Duration
}

// bucket maps a value in nanoseconds to its bucket. Values below 2^(subBits+1)
// have a bucket each; above, a bucket spans 1/2^subBits of its power of two.
func bucket(v uint64) int {
	if v < 2<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [2^subBits, 2^(subBits+1))
	return shift<<subBits + int(v>>shift)
}

// upper is the largest value that falls in bucket i.
func upper(i int) uint64 {
	if i < 2<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	mantissa := uint64(i&(1<<subBits-1) | 1<<subBits)
	return (mantissa+1)<<shift - 1
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucket(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

// Merge adds every value of o.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest value recorded, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the value below which a fraction q of the values lie,
// rounded up to its bucket's bound and never above Max; 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if c > 0 && seen >= rank {
			return min(time.Duration(upper(i)), h.max)
		}
	}
	return h.max
}
