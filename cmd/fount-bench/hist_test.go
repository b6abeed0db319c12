package main

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<22; us = us*9/8 + 1 {
		i := bucketOf(us)
		if i < prev {
			t.Fatalf("bucketOf(%d) = %d, below bucketOf of a smaller value (%d)", us, i, prev)
		}
		prev = i
		if up := bucketUpper(i); up < us {
			t.Fatalf("bucketOf(%d) = %d, whose upper bound is %d", us, i, up)
		} else if us >= histSub && float64(up-us) > 0.125*float64(us) {
			t.Fatalf("bucket of %d reaches %d: more than 12.5 %% off", us, up)
		}
	}
	for i := range histBuckets - 1 {
		if bucketOf(bucketUpper(i)) != i || bucketOf(bucketUpper(i)+1) != i+1 {
			t.Fatalf("bucket %d: upper %d is not its last value", i, bucketUpper(i))
		}
	}
	if bucketOf(1<<62) != histBuckets-1 {
		t.Error("huge values do not land in the last bucket")
	}
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	if h.quantile(0.5) != 0 || h.summary().Count != 0 {
		t.Error("empty histogram is not zero")
	}
	r := rand.New(rand.NewPCG(1, 2))
	var samples []time.Duration
	for range 100000 {
		// Log-normal-ish: most around 1 ms, a tail to seconds.
		d := time.Duration(float64(time.Millisecond) * r.ExpFloat64() * r.ExpFloat64() * 3)
		samples = append(samples, d)
		h.record(d)
	}
	h.record(-time.Second) // clock steps: counted as 0
	samples = append(samples, 0)
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := samples[int(q*float64(len(samples)-1))]
		got := h.quantile(q)
		if got < want-time.Microsecond || float64(got) > float64(want)*1.13+float64(time.Microsecond) {
			t.Errorf("p%g = %s, exact %s", q*100, got, want)
		}
	}
	if h.maxDur() != samples[len(samples)-1].Truncate(time.Microsecond) {
		t.Errorf("max %s, want %s", h.maxDur(), samples[len(samples)-1])
	}
	if h.quantile(1) != h.maxDur() {
		t.Errorf("p100 %s != max %s", h.quantile(1), h.maxDur())
	}
	var m hist
	m.merge(&h)
	m.merge(&h)
	if m.n.Load() != 2*h.n.Load() || m.quantile(0.5) != h.quantile(0.5) {
		t.Error("merging a histogram twice changed its median")
	}
}

func TestHistNoAlloc(t *testing.T) {
	var h hist
	if a := testing.AllocsPerRun(1000, func() { h.record(1234 * time.Microsecond) }); a != 0 {
		t.Errorf("record allocates %.1f times", a)
	}
}
