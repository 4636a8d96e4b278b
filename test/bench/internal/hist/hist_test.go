package hist

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactQuantile is the nearest-rank quantile of sorted samples.
func exactQuantile(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = max(rank, 1)
	return sorted[rank-1]
}

func TestBucketBoundsRoundTrip(t *testing.T) {
	vals := []int64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 1 << 20, 123456789, math.MaxInt64}
	for _, v := range vals {
		i := bucket(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucket(%d) = %d out of range", v, i)
		}
		lo, hi := bounds(i)
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d with bounds [%d,%d]", v, i, lo, hi)
		}
		if i > 0 {
			_, prevHi := bounds(i - 1)
			if prevHi+1 != lo {
				t.Errorf("bucket %d starts at %d, previous ends at %d", i, lo, prevHi)
			}
		}
	}
}

func TestQuantilesMatchSortedSamples(t *testing.T) {
	dists := map[string]func(r *rand.Rand) int64{
		"uniform_us":   func(r *rand.Rand) int64 { return r.Int64N(1_000_000) },
		"lognormal":    func(r *rand.Rand) int64 { return int64(math.Exp(r.NormFloat64()*1.5 + 13)) },
		"small_ints":   func(r *rand.Rand) int64 { return r.Int64N(50) },
		"bimodal_ms":   func(r *rand.Rand) int64 { return int64(r.IntN(2)*50_000_000 + r.IntN(1_000_000)) },
		"single_value": func(*rand.Rand) int64 { return 4242 },
	}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var h Histogram
			samples := make([]int64, 20001)
			for i := range samples {
				samples[i] = gen(r)
				h.Record(time.Duration(samples[i]))
			}
			slices.Sort(samples)
			for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
				want := exactQuantile(samples, q)
				got := int64(h.Quantile(q))
				if diff := math.Abs(float64(got - want)); diff > float64(want)/64+1 {
					t.Errorf("q%.3f = %d, exact %d (error %.0f beyond 1/64)", q, got, want, diff)
				}
			}
			if h.Max() != time.Duration(samples[len(samples)-1]) || h.Min() != time.Duration(samples[0]) {
				t.Errorf("min/max = %v/%v, want %d/%d", h.Min(), h.Max(), samples[0], samples[len(samples)-1])
			}
			if h.Count() != uint64(len(samples)) {
				t.Errorf("count %d, want %d", h.Count(), len(samples))
			}
		})
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var all, a, b Histogram
	for i := range 10000 {
		v := time.Duration(r.Int64N(10_000_000))
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{})
	if m != all {
		t.Fatalf("merged histogram differs from the one recorded together")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	var h Histogram
	for _, v := range []time.Duration{time.Microsecond, 3 * time.Millisecond, 3 * time.Millisecond, time.Second} {
		h.Record(v)
	}
	b, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	var back Histogram
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != h {
		t.Fatalf("round trip changed the histogram: %s", b)
	}
}

func TestEmpty(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Fatal("empty histogram reports non-zero values")
	}
	h.Record(-5)
	if h.Quantile(0.5) != 0 {
		t.Fatalf("negative sample not clamped to zero: %v", h.Quantile(0.5))
	}
}
