// Package hist records latencies in a log-linear histogram that can be merged.
//
// The load generator runs many workers, and the orchestrator repeats runs;
// each keeps its own Histogram and the results are merged afterwards, so no
// lock is taken per sample and memory stays fixed however long a run lasts.
// Values are bucketed with 64 sub-buckets per power of two, which bounds the
// relative error of every reported quantile by 1/64 (about 1.6%), the way
// HdrHistogram does with two significant digits.
package hist

import (
	"encoding/json"
	"math"
	"math/bits"
	"time"
)

const (
	subBits    = 6
	subBuckets = 1 << subBits // linear sub-buckets per power of two
	// numBuckets covers every non-negative int64.
	numBuckets = (64 - subBits + 1) * subBuckets
)

// Histogram counts durations. The zero value is an empty histogram ready to
// use. It is not safe for concurrent use: give each goroutine its own and
// [Histogram.Merge] them.
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    float64 // nanoseconds, float to avoid overflow on long runs
	min    int64
	max    int64
}

// bucket returns the index of the bucket holding v (v ≥ 0).
func bucket(v int64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	return (shift+1)*subBuckets + int(v>>shift) - subBuckets
}

// bounds returns the smallest and largest value that fall into bucket i.
func bounds(i int) (lo, hi int64) {
	if i < subBuckets {
		return int64(i), int64(i)
	}
	shift := i/subBuckets - 1
	mant := int64(i%subBuckets + subBuckets)
	lo = mant << shift
	hi = lo + (int64(1) << shift) - 1
	return lo, hi
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.counts[bucket(v)]++
	h.n++
	h.sum += float64(v)
}

// Merge adds every sample of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
}

// Count reports the number of recorded samples.
func (h *Histogram) Count() uint64 { return h.n }

// Max reports the largest recorded sample exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min reports the smallest recorded sample exactly.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean reports the arithmetic mean of the samples.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the value at quantile q (0 ≤ q ≤ 1), using the
// nearest-rank definition: the smallest sample such that at least q·n samples
// are less than or equal to it. The result is the midpoint of that sample's
// bucket, clamped to the exact minimum and maximum, so it is within 1/64 of
// the true sample.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	switch {
	case q <= 0:
		return time.Duration(h.min)
	case q >= 1:
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			lo, hi := bounds(i)
			v := lo + (hi-lo)/2
			v = max(v, h.min)
			v = min(v, h.max)
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}

// wire is the JSON form: only the non-empty buckets, as index/count pairs,
// so a saved histogram can be merged again later.
type wire struct {
	N       uint64     `json:"n"`
	SumNS   float64    `json:"sum_ns"`
	MinNS   int64      `json:"min_ns"`
	MaxNS   int64      `json:"max_ns"`
	Buckets [][2]int64 `json:"buckets"`
}

// MarshalJSON encodes the sparse bucket counts.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	w := wire{N: h.n, SumNS: h.sum, MinNS: h.min, MaxNS: h.max, Buckets: [][2]int64{}}
	for i, c := range h.counts {
		if c != 0 {
			w.Buckets = append(w.Buckets, [2]int64{int64(i), int64(c)})
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes what MarshalJSON wrote; bucket indexes out of range
// are ignored.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*h = Histogram{n: w.N, sum: w.SumNS, min: w.MinNS, max: w.MaxNS}
	for _, p := range w.Buckets {
		if p[0] >= 0 && p[0] < numBuckets && p[1] > 0 {
			h.counts[p[0]] = uint64(p[1])
		}
	}
	return nil
}
