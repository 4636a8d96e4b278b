package admin

import (
	"sync"
	"time"

	"massvhost/server"
)

// sampleEvery and sampleKeep define the sampler's ring: a minute of
// one-second samples, enough for "per second over the last 10 s".
const (
	sampleEvery = time.Second
	sampleKeep  = 61
	rateWindow  = 10 * time.Second
)

// sample is a few monotonic totals at one instant.
type sample struct {
	at         time.Time
	requests   uint64
	hellos     uint64
	handshakes uint64
	failures   map[string]uint64
}

// sampler records a sample every second so the status page can show
// current rates. It keeps a fixed number of samples.
type sampler struct {
	a   *Admin
	now func() time.Time

	mu   sync.Mutex
	ring []sample // oldest first, at most sampleKeep

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newSampler(a *Admin, now func() time.Time) *sampler {
	s := &sampler{a: a, now: now, stop: make(chan struct{}), done: make(chan struct{})}
	s.record()
	go s.run()
	return s
}

func (s *sampler) run() {
	defer close(s.done)
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.record()
		case <-s.stop:
			return
		}
	}
}

func (s *sampler) close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

func (s *sampler) take() sample {
	st := s.a.opts.Server.Stats()
	return sampleOf(s.now(), st)
}

func sampleOf(at time.Time, st server.Stats) sample {
	smp := sample{at: at, hellos: st.TLSHellos, handshakes: st.TLSHandshakes, failures: st.TLSFailures}
	for _, r := range st.Requests {
		smp.requests += r.Count
	}
	return smp
}

func (s *sampler) record() {
	smp := s.take()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ring) == sampleKeep {
		copy(s.ring, s.ring[1:])
		s.ring = s.ring[:sampleKeep-1]
	}
	s.ring = append(s.ring, smp)
}

// base returns the recorded sample closest to (and not after) cur.at -
// rateWindow, or the oldest one, for computing rates against cur.
func (s *sampler) base(cur sample) (sample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ring) == 0 {
		return sample{}, false
	}
	from := cur.at.Add(-rateWindow)
	b := s.ring[0]
	for _, smp := range s.ring {
		if smp.at.After(from) {
			break
		}
		b = smp
	}
	return b, cur.at.Sub(b.at) > 0
}

// rate is (cur-old)/seconds between them; 0 when the interval is empty.
func rate(cur, old uint64, d time.Duration) float64 {
	if d <= 0 || cur < old {
		return 0
	}
	return float64(cur-old) / d.Seconds()
}
