package server

import (
	"cmp"
	"container/heap"
	"hash/maphash"
	"slices"
	"sync"
	"time"
)

// Top tenants by requests are kept with the space-saving algorithm
// (Metwally, Agrawal, El Abbadi, 2005): a fixed number of counters; a
// tenant without one takes over the smallest counter and inherits its
// count. Every tenant whose true count exceeds total/capacity is
// guaranteed a counter, and a count is over-estimated by at most the
// inherited amount, which is kept as Error. Memory is fixed however many
// tenants there are, as a status page for a million-tenant server needs.
//
// The counters are split into shards by tenant hash, so concurrent
// requests for different tenants rarely share a lock, and each shard
// keeps two windows: the current one and the one before, so a reader
// always sees between one and two windows of history.
const (
	topShards   = 8
	topPerShard = 64
	topWindow   = time.Minute
)

// TenantCount is one tenant's count in a top-K list.
type TenantCount struct {
	Tenant string
	Count  uint64
	// Error bounds the over-estimate of Count (space-saving); zero for
	// exact counts.
	Error uint64
}

// TopTenants lists the busiest tenants.
type TopTenants struct {
	// ByRequests are the tenants with the most finished requests over
	// Window (between one and two minutes, see above).
	ByRequests []TenantCount
	Window     time.Duration
	// ByCGI are the tenants with the most requests inside the CGI runner
	// right now.
	ByCGI []TenantCount
}

// TopTenants returns up to k tenants by recent requests and by CGI
// requests in progress.
func (s *Server) TopTenants(k int) TopTenants {
	by, window := s.topTenants.top(k, time.Now())
	return TopTenants{ByRequests: by, Window: window, ByCGI: s.cgiTenants.top(k)}
}

type tenantTop struct {
	seed   maphash.Seed
	shards [topShards]topShard
}

type topShard struct {
	mu        sync.Mutex
	start     time.Time // of cur
	cur, prev spaceSaving
}

func newTenantTop() *tenantTop {
	return &tenantTop{seed: maphash.MakeSeed()}
}

// add counts one request for tenant at now.
func (t *tenantTop) add(tenant string, now time.Time) {
	sh := &t.shards[maphash.String(t.seed, tenant)%topShards]
	sh.mu.Lock()
	sh.rotateLocked(now)
	sh.cur.add(tenant)
	sh.mu.Unlock()
}

// rotateLocked starts a new window when the current one is over; after a
// silence of two windows or more both are emptied.
func (sh *topShard) rotateLocked(now time.Time) {
	switch age := now.Sub(sh.start); {
	case age < topWindow:
	case age < 2*topWindow:
		sh.prev, sh.cur = sh.cur, sh.prev
		sh.cur.reset()
		sh.start = sh.start.Add(topWindow)
	default:
		sh.prev.reset()
		sh.cur.reset()
		sh.start = now
	}
}

// top merges every shard's two windows and returns the k largest counts
// and the time they cover.
func (t *tenantTop) top(k int, now time.Time) ([]TenantCount, time.Duration) {
	var all []TenantCount
	var oldest time.Time
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.rotateLocked(now)
		from := sh.start
		if len(sh.prev.entries) > 0 {
			from = sh.start.Add(-topWindow)
		}
		if !sh.start.IsZero() && (oldest.IsZero() || from.Before(oldest)) {
			oldest = from
		}
		merged := make(map[string]TenantCount, len(sh.cur.entries)+len(sh.prev.entries))
		for _, w := range []*spaceSaving{&sh.prev, &sh.cur} {
			for _, e := range w.entries {
				m := merged[e.name]
				m.Tenant, m.Count, m.Error = e.name, m.Count+e.count, m.Error+e.err
				merged[e.name] = m
			}
		}
		sh.mu.Unlock()
		for _, m := range merged {
			all = append(all, m)
		}
	}
	var window time.Duration
	if !oldest.IsZero() {
		window = now.Sub(oldest)
	}
	return topK(all, k), window
}

// topK sorts by count, largest first (ties by name), and keeps k.
func topK(all []TenantCount, k int) []TenantCount {
	slices.SortFunc(all, func(a, b TenantCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Tenant, b.Tenant)
	})
	if len(all) > k {
		all = all[:k]
	}
	return all
}

// spaceSaving is one window's counters: a min-heap by count plus an index
// by name.
type spaceSaving struct {
	entries []ssEntry
	index   map[string]int
}

type ssEntry struct {
	name       string
	count, err uint64
}

func (s *spaceSaving) add(name string) {
	if s.index == nil {
		s.index = make(map[string]int, topPerShard)
	}
	if i, ok := s.index[name]; ok {
		s.entries[i].count++
		heap.Fix(s, i)
		return
	}
	if len(s.entries) < topPerShard {
		heap.Push(s, ssEntry{name: name, count: 1})
		return
	}
	// Take over the smallest counter (the heap's root).
	low := s.entries[0]
	delete(s.index, low.name)
	s.entries[0] = ssEntry{name: name, count: low.count + 1, err: low.count}
	s.index[name] = 0
	heap.Fix(s, 0)
}

func (s *spaceSaving) reset() {
	s.entries = s.entries[:0]
	clear(s.index)
}

// heap.Interface; Swap keeps the index in step.
func (s *spaceSaving) Len() int           { return len(s.entries) }
func (s *spaceSaving) Less(i, j int) bool { return s.entries[i].count < s.entries[j].count }
func (s *spaceSaving) Swap(i, j int) {
	s.entries[i], s.entries[j] = s.entries[j], s.entries[i]
	s.index[s.entries[i].name] = i
	s.index[s.entries[j].name] = j
}
func (s *spaceSaving) Push(x any) {
	e := x.(ssEntry)
	s.index[e.name] = len(s.entries)
	s.entries = append(s.entries, e)
}
func (s *spaceSaving) Pop() any {
	e := s.entries[len(s.entries)-1]
	s.entries = s.entries[:len(s.entries)-1]
	delete(s.index, e.name)
	return e
}
