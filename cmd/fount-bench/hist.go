package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// hist is a latency histogram cheap enough to record every request of
// thousands of viewers into one shared instance: log-spaced buckets
// (eight per power of two of microseconds, under 12.5 % relative error)
// with atomic counters, no stored samples. The maximum is exact.
type hist struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // microseconds
	max    atomic.Uint64 // microseconds
}

const (
	histSub     = 8 // buckets per doubling; a power of two
	histSubBits = 3
	// Values below histSub µs get one bucket each; above, 40 doublings
	// reach past 12 days.
	histBuckets = histSub + 40*histSub
)

// bucketOf maps microseconds to a bucket: exact below histSub, then the
// top histSubBits bits after the leading one choose the sub-bucket.
func bucketOf(us uint64) int {
	if us < histSub {
		return int(us)
	}
	exp := bits.Len64(us) - 1 // >= histSubBits
	sub := int(us>>(exp-histSubBits)) & (histSub - 1)
	i := (exp-histSubBits+1)*histSub + sub
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// bucketUpper is the largest value a bucket holds.
func bucketUpper(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	exp := i/histSub + histSubBits - 1
	sub := uint64(i % histSub)
	lo := (histSub + sub) << (exp - histSubBits)
	return lo + (1 << (exp - histSubBits)) - 1
}

func (h *hist) record(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	h.counts[bucketOf(us)].Add(1)
	h.n.Add(1)
	h.sum.Add(us)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// quantile returns the upper bound of the bucket holding quantile q
// (0..1), capped at the exact maximum.
func (h *hist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n-1)) + 1
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(bucketUpper(i), h.max.Load())) * time.Microsecond
		}
	}
	return h.maxDur()
}

func (h *hist) maxDur() time.Duration { return time.Duration(h.max.Load()) * time.Microsecond }

func (h *hist) mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load()/n) * time.Microsecond
}

// summary is a histogram as it goes into the JSON report, in milliseconds.
type summary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func (h *hist) summary() summary {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return summary{Count: h.n.Load(), Mean: ms(h.mean()), P50: ms(h.quantile(0.5)), P99: ms(h.quantile(0.99)), Max: ms(h.maxDur())}
}
