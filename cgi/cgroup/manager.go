package cgroup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults for the zero fields of [Options].
const (
	DefaultWeight      = 100
	DefaultIdleTimeout = time.Minute
	MaxWeight          = 10000
	// CPUPeriod is the period over which Options.CPUMax is enforced.
	// Shorter than the kernel's default 100 ms, so that a capped tenant is
	// throttled in short slices rather than holding every core for tens of
	// milliseconds at a time.
	CPUPeriod = 20 * time.Millisecond
)

// ErrUnavailable is wrapped by [New] when the machine offers no cgroup
// hierarchy this package can use (no cgroup2 with the cpu controller and
// no cgroup v1 cpu hierarchy), or one that this process cannot write.
var ErrUnavailable = errors.New("cgroups unavailable")

// errClosed is returned by Enter after Close.
var errClosed = errors.New("cgroup: manager closed")

// Options configure a [Manager]. The zero value is usable.
type Options struct {
	// Weight is every tenant's CPU weight, 1..MaxWeight (cgroup v2
	// cpu.weight; v1 cpu.shares = Weight*1024/100). Tenants that all have
	// the same weight share contended CPU equally, however many processes
	// each runs. If zero, DefaultWeight.
	Weight int
	// CPUMax caps the CPU time of all of a tenant's processes together, in
	// CPUs per [CPUPeriod] (v2 cpu.max; v1 cpu.cfs_quota_us and
	// cpu.cfs_period_us), even when the CPU is otherwise idle. The weight
	// alone shares CPU only while tenants contend for it, and a tenant
	// with many runnable processes still holds every core whenever another
	// tenant's script wakes up; the cap leaves the rest of the machine
	// free. Zero sets no cap.
	CPUMax float64
	// Processes is pids.max of each tenant's cgroup: tasks (threads count)
	// that the tenant's scripts may have at once, all of them together,
	// whatever their uid. Zero sets no limit. Ignored without a pids
	// controller.
	Processes int64
	// MemoryMax caps the memory (anonymous, page cache and kernel memory
	// charged to the cgroup) of all of a tenant's processes together, in
	// bytes: v2 memory.max, v1 memory.limit_in_bytes. RLIMIT_AS bounds
	// one process, so a tenant's processes together could take the
	// machine's memory and wake the global OOM killer, which may pick
	// anyone; with the cap, the kernel reclaims and, failing that,
	// OOM-kills within the tenant's cgroup. Zero sets no cap. Needs the
	// memory controller (v1: the memory hierarchy).
	MemoryMax int64
	// DemoteAbove is the CPU use, in CPUs averaged over [DemoteWindow],
	// above which a tenant is demoted to idle priority for DemoteFor (see
	// demote.go): its processes then run only on CPU no other tenant
	// wants. Zero never demotes. Needs the cpu controller (and on v1 the
	// cpuacct hierarchy, for the tenant's CPU time).
	DemoteAbove float64
	// DemoteFor is how long a first demotion lasts; a tenant demoted again
	// before its cgroup is forgotten stays demoted twice as long each
	// time, up to 8 times DemoteFor. If zero, DefaultDemoteFor.
	DemoteFor time.Duration
	// IdleTimeout is how long a tenant's cgroup is kept after its last
	// script ended before it is removed. If zero, DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Logger receives the kills of escaped processes and failures to
	// remove cgroups. If nil, slog.Default().
	Logger *slog.Logger
}

// Manager places each tenant's scripts in a cgroup of the tenant's own,
// created on the tenant's first script and removed when it has been idle
// for IdleTimeout, and kills whatever is left in a tenant's cgroup once
// none of the tenant's scripts is running. It is safe for concurrent use.
type Manager struct {
	opts   Options
	layout Layout
	// parents are the directories holding the tenant cgroups, one per
	// hierarchy used: [unified] for V2; [cpu, pids?, freezer?] for V1.
	parents []string
	// homes are the server's own cgroups, parallel to parents (V1 only):
	// where a spawning thread returns once it has created a run's first
	// process in a tenant's cgroup (see Slot.Spawn).
	homes []string
	// joins are the indices in parents of the hierarchies a spawning
	// thread joins (V1): all but memory (see Slot.MemoryDir);
	// homeTasks are the "tasks" files of their homes, open until Close.
	joins     []int
	homeTasks []int
	pids      int  // index in parents of the pids hierarchy, or -1
	freezer   int  // index in parents of the freezer hierarchy, or -1
	acct      int  // V1: index in parents of the cpuacct hierarchy, or -1
	memory    int  // index in parents of the memory hierarchy (0 on V2), or -1
	cpu       bool // the cpu controller is on for the tenant cgroups
	// cpuIdle: the kernel has cpu.idle (Linux 5.15), which demotion sets;
	// without it, demotion lowers the weight to the minimum.
	cpuIdle bool

	mu      sync.Mutex
	tenants map[string]*tenant // guarded by mu; tenants whose cgroup may exist
	closed  bool               // guarded by mu

	sweeps   sync.WaitGroup // Add guarded by mu (only while !closed)
	stop     chan struct{}  // closed by Close: ends the reaper
	reaped   chan struct{}  // closed when the reaper has returned
	escapees atomic.Uint64

	watched    chan struct{} // closed when the CPU watcher has returned
	demotions  atomic.Uint64 // tenants demoted since New
	demotedNow atomic.Int64  // tenants demoted now
}

// tenant is the state of one tenant's cgroup.
//
// The guard against a sweep killing a new script: running and busy are
// only read and changed under Manager.mu. Enter waits while busy is set,
// then counts the run (running++) in the same critical section in which it
// saw busy unset; Leave starts a sweep (sets busy) only in the critical
// section in which running drops to zero, and so does the reaper before it
// removes the cgroup. So a sweep or removal runs only while no run of the
// tenant is counted, and no run is counted (and so no launcher is started
// for the tenant) until the sweep or removal is over: everything a sweep
// finds in the cgroup belongs to runs that have ended and been reaped.
type tenant struct {
	dirs []string // the tenant's cgroup in each hierarchy, as parents
	// fd is the tenant's v2 cgroup directory, open while ready (V2 only,
	// else -1): the handle clone3 places a run's first process with.
	fd int

	running  int           // guarded by Manager.mu
	lost     bool          // guarded by Manager.mu; see Manager.Lost
	busy     chan struct{} // guarded by Manager.mu; non-nil during a sweep or removal, closed at its end
	lastUsed time.Time     // guarded by Manager.mu

	setupMu sync.Mutex  // serializes the creation of the directories
	ready   atomic.Bool // the directories exist with their limits set

	// CPU watch state (demote.go), guarded by setupMu.
	cpuUsed      time.Duration // the cgroup's CPU time at cpuAt
	cpuAt        time.Time     // zero: not sampled since created
	demotedUntil time.Time
	strikes      uint // demotions since the tenant became known
	demoted      atomic.Bool

	// oomKills is the cgroup's OOM-kill count last reported (OOMKilled).
	oomKills atomic.Uint64
}

// New finds the server's cgroups, creates the directory that will hold the
// tenants' cgroups, and starts the goroutine that removes idle ones (ended
// by [Manager.Close]). It returns an error wrapping [ErrUnavailable] when
// cgroups cannot be used here.
//
// The parent directory is "massvhost.PID.N" inside the server's own cgroup,
// one per Manager, so that two servers (or the old and new configuration
// during a reload) never sweep each other's scripts. Empty directories of
// that form left by servers that no longer run are removed.
//
// On cgroup v2 the kernel allows controllers to be enabled for a cgroup's
// children only while the cgroup itself has no processes (the "no internal
// processes" rule; the root cgroup is exempt). When the server's own cgroup
// is not the root (say systemd's massvhost.service, with Delegate=yes), New
// therefore follows the delegation pattern documented in the kernel's
// cgroup-v2.rst and systemd's "Control Group APIs and Delegation": it moves
// the server process into a leaf "server" beside the parents, then enables
// cpu and pids (and memory, when offered) in the delegated cgroup's
// cgroup.subtree_control. If other processes share the server's cgroup,
// that fails and so does New.
func New(opts Options) (*Manager, error) {
	layout, err := detect()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return NewWithLayout(opts, layout)
}

// NewWithLayout is [New] on the hierarchies of layout rather than the
// detected ones. A V2 layout whose hierarchy does not offer the cpu
// controller gets tenant cgroups without weights or caps, but with their
// process limits (when pids is offered), placement at spawn and sweeps:
// tests use it, with [UnifiedLayout], to exercise the v2 interface on a
// machine whose cpu controller is bound to cgroup v1.
func NewWithLayout(opts Options, layout Layout) (*Manager, error) {
	switch {
	case opts.Weight == 0:
		opts.Weight = DefaultWeight
	case opts.Weight < 1 || opts.Weight > MaxWeight:
		return nil, fmt.Errorf("cgroup: weight %d out of range 1..%d", opts.Weight, MaxWeight)
	case opts.CPUMax < 0:
		return nil, fmt.Errorf("cgroup: CPU cap %v is negative", opts.CPUMax)
	}
	if opts.Processes < 0 {
		return nil, fmt.Errorf("cgroup: negative process limit %d", opts.Processes)
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.DemoteAbove < 0 {
		return nil, fmt.Errorf("cgroup: demotion threshold %v is negative", opts.DemoteAbove)
	}
	if opts.DemoteFor <= 0 {
		opts.DemoteFor = DefaultDemoteFor
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MemoryMax < 0 {
		return nil, fmt.Errorf("cgroup: negative memory limit %d", opts.MemoryMax)
	}
	m := &Manager{opts: opts, layout: layout, pids: -1, freezer: -1, acct: -1, memory: -1, tenants: make(map[string]*tenant)}
	name := "massvhost." + strconv.Itoa(os.Getpid()) + "." + strconv.FormatInt(time.Now().UnixNano(), 36)
	var err error
	if layout.Version == V2 {
		err = m.setupV2(name)
	} else {
		err = m.setupV1(name)
	}
	if err != nil {
		m.removeParents()
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if _, err := os.Stat(filepath.Join(m.parents[0], "cpu.idle")); err == nil {
		m.cpuIdle = true
	}
	if m.opts.MemoryMax > 0 && m.memory < 0 {
		m.opts.Logger.Warn("cgroup: tenants' memory is not capped: no memory controller for the tenant cgroups", "tenant_memory_max", m.opts.MemoryMax)
	}
	if why := m.cannotDemote(); m.opts.DemoteAbove > 0 && why != "" {
		m.opts.Logger.Warn("cgroup: CPU hogs are not demoted: "+why, "tenant_cpu_demote", m.opts.DemoteAbove)
		m.opts.DemoteAbove = 0
	}
	if layout.Version == V1 {
		var homes []string
		for i := range m.parents {
			if i != m.memory {
				m.joins = append(m.joins, i)
				homes = append(homes, m.homes[i])
			}
		}
		if m.homeTasks, err = openTasks(homes); err != nil {
			m.removeParents()
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	m.stop, m.reaped, m.watched = make(chan struct{}), make(chan struct{}), make(chan struct{})
	go m.reap()
	go m.watchCPU()
	return m, nil
}

// detect reads this process's cgroup membership and decides between v2
// (the unified hierarchy offers the cpu controller to the server's cgroup)
// and v1 (a cpu hierarchy is mounted).
func detect() (Layout, error) {
	l, err := locateSelf()
	if err != nil {
		return l, err
	}
	if l.Unified != "" {
		ctl, _ := os.ReadFile(filepath.Join(l.Unified, "cgroup.controllers"))
		if hasWord(string(ctl), "cpu") {
			l.Version = V2
			return l, nil
		}
	}
	if l.CPU == "" {
		return l, errors.New("the cgroup2 hierarchy does not offer the cpu controller and no cgroup v1 cpu hierarchy is mounted")
	}
	l.Version = V1
	return l, nil
}

// UnifiedLayout returns a V2 layout on this process's cgroup in the
// cgroup2 hierarchy, whatever controllers that offers (see
// [NewWithLayout]).
func UnifiedLayout() (Layout, error) {
	l, _ := locateSelf()
	if l.Unified == "" {
		return Layout{}, errors.New("cgroup: no cgroup2 hierarchy holds this process")
	}
	return Layout{Version: V2, Unified: l.Unified}, nil
}

// locateSelf is locate on this process's mountinfo and cgroup files.
func locateSelf() (Layout, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Layout{}, err
	}
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return Layout{}, err
	}
	return locate(mi, cg)
}

func hasWord(s, w string) bool {
	for f := range strings.FieldsSeq(s) {
		if f == w {
			return true
		}
	}
	return false
}

// serverLeaf is the v2 cgroup the server moves itself into (see New).
const serverLeaf = "server"

func (m *Manager) setupV2(name string) error {
	own := m.layout.Unified
	root := own
	if filepath.Base(own) == serverLeaf {
		// Moved there by an earlier Manager of this process (a reload).
		if ctl, _ := os.ReadFile(filepath.Join(filepath.Dir(own), "cgroup.subtree_control")); hasWord(string(ctl), "cpu") {
			root = filepath.Dir(own)
		}
	}
	offered, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return err
	}
	var want []string
	for _, c := range []string{"cpu", "pids", "memory"} {
		if hasWord(string(offered), c) {
			want = append(want, "+"+c)
		}
	}
	enable := strings.Join(want, " ")
	m.cpu = hasWord(string(offered), "cpu")
	if enable != "" && !isMountRoot(root) && root == own {
		leaf := filepath.Join(root, serverLeaf)
		if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := writeFile(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(os.Getpid())); err != nil {
			return fmt.Errorf("move the server into %s: %w", leaf, err)
		}
	}
	if enable == "" {
		// Nothing to enable (NewWithLayout on a hierarchy without
		// controllers): tenant cgroups are plain leaves.
	} else if err := writeFile(filepath.Join(root, "cgroup.subtree_control"), enable); err != nil {
		return fmt.Errorf("enable %q in %s (other processes in the server's cgroup?): %w", enable, root, err)
	}
	m.removeStale(root)
	parent := filepath.Join(root, name)
	if err := os.Mkdir(parent, 0o755); err != nil {
		return err
	}
	m.parents = []string{parent}
	if enable == "" {
		return nil
	}
	if err := writeFile(filepath.Join(parent, "cgroup.subtree_control"), enable); err != nil {
		return fmt.Errorf("enable %q in %s: %w", enable, parent, err)
	}
	if strings.Contains(enable, "pids") {
		m.pids = 0
	}
	if strings.Contains(enable, "memory") {
		m.memory = 0
	}
	return nil
}

// isMountRoot reports whether dir is the root of its cgroup2 mount.
func isMountRoot(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return false
	}
	// Only the root cgroup lacks cgroup.type and cgroup.freeze.
	_, err = os.Stat(filepath.Join(dir, "cgroup.type"))
	return errors.Is(err, fs.ErrNotExist)
}

func (m *Manager) setupV1(name string) error {
	m.cpu = true
	// cpuacct is read only to demote CPU hogs; a hierarchy of its own
	// otherwise costs every spawn two more cgroup writes (Slot.Spawn).
	acct := ""
	if m.opts.DemoteAbove > 0 {
		acct = m.layout.CPUAcct
	} else if m.layout.CPUAcct != "" && m.layout.CPUAcct != m.layout.CPU {
		m.removeStale(m.layout.CPUAcct) // left by a server that demoted
	}
	// The memory hierarchy only for a cap: each costs a spawn a join.
	mem := ""
	if m.opts.MemoryMax > 0 {
		mem = m.layout.Memory
	} else if m.layout.Memory != "" && m.layout.Memory != m.layout.CPU {
		m.removeStale(m.layout.Memory) // left by a server that capped memory
	}
	for _, h := range []struct {
		dir string
		idx *int
	}{{m.layout.CPU, nil}, {m.layout.Pids, &m.pids}, {m.layout.Freezer, &m.freezer}, {acct, &m.acct}, {mem, &m.memory}} {
		if h.dir == "" {
			continue
		}
		if h.dir == m.layout.CPU && h.idx != nil {
			*h.idx = 0 // mounted with cpu (cpu,cpuacct): same directories
			continue
		}
		m.removeStale(h.dir)
		parent := filepath.Join(h.dir, name)
		if err := os.Mkdir(parent, 0o755); err != nil {
			if h.idx == nil {
				return err // cpu is required
			}
			m.opts.Logger.Warn("cgroup: hierarchy not used", "dir", h.dir, "err", err)
			continue
		}
		if h.idx != nil {
			*h.idx = len(m.parents)
		}
		m.parents = append(m.parents, parent)
		m.homes = append(m.homes, h.dir)
	}
	return nil
}

// removeStale removes the empty parent directories that servers no longer
// running left in dir (killed with SIGKILL, say). Populated ones are left
// alone: rmdir fails on them.
func (m *Manager) removeStale(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		f := strings.Split(e.Name(), ".")
		if !e.IsDir() || len(f) != 3 || f[0] != "massvhost" {
			continue
		}
		pid, err := strconv.Atoi(f[1])
		if err != nil || pid == os.Getpid() || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		stale := filepath.Join(dir, e.Name())
		subs, _ := os.ReadDir(stale)
		for _, s := range subs {
			if s.IsDir() {
				unix.Rmdir(filepath.Join(stale, s.Name()))
			}
		}
		unix.Rmdir(stale)
	}
}

// String describes the cgroups in use, for the start-up log.
func (m *Manager) String() string {
	return fmt.Sprintf("cgroup v%d, tenants under %s", m.layout.Version, strings.Join(m.parents, ", "))
}

// Version is the cgroup interface in use.
func (m *Manager) Version() Version { return m.layout.Version }

// dirName is the name of a tenant's cgroup: "t-" and the tenant name when
// that is a plain name (the prefix keeps it apart from the interface files
// such as cpu.weight), else "h-" and a hash of it.
func dirName(tenant string) string {
	ok := tenant != "" && len(tenant) <= 200 && tenant[0] != '.'
	for i := 0; ok && i < len(tenant); i++ {
		c := tenant[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
	}
	if ok {
		return "t-" + tenant
	}
	sum := sha256.Sum256([]byte(tenant))
	return "h-" + hex.EncodeToString(sum[:16])
}

// Slot is how one run's processes enter the tenant's cgroup.
type Slot struct {
	// FD, when not -1, is an open directory of the tenant's cgroup2
	// cgroup: the run's first process is created in it by clone3 with
	// CLONE_INTO_CGROUP (syscall.SysProcAttr.UseCgroupFD and CgroupFD),
	// so it never runs outside the cgroup and nothing migrates (on v2 the
	// clone measured a lower CGI p99 than the launcher moving itself:
	// docs/RELIABILITY.md, CGI-10). FD stays open until the paired Leave
	// and must not be closed by the caller.
	FD int
	// Dirs are the tenant's cgroup directories, one per hierarchy. When FD
	// is -1 (cgroup v1, which has no CLONE_INTO_CGROUP), [Slot.Spawn]
	// creates the run's first process from a thread that has joined them.
	// Shared and read-only.
	Dirs []string
	m    *Manager // for the server's own cgroups (V1: Manager.homeTasks), options
	t    *tenant
}

// MemoryDir is the tenant's cgroup v1 memory directory, which the run's
// first process must join itself (the launcher's -memcg), or "" when there
// is none (no memory cap, or cgroup v2, where the clone places it). A
// server thread does not join it for the fork as it joins the others: a
// v1 memory cgroup's OOM killer considers every task in it, and would
// weigh the server's whole address space for that thread.
func (s Slot) MemoryDir() string {
	if s.m == nil || s.m.layout.Version != V1 || s.m.memory < 0 {
		return ""
	}
	return s.Dirs[s.m.memory]
}

// Enter counts one run of tenant's scripts and returns where the run's
// processes go. The first run of a tenant creates its cgroup. Enter waits
// while a sweep or removal of the tenant's cgroup is in progress (bounded,
// see [Manager.Leave]), or until ctx is done. Every successful Enter is
// paired with one Leave once the run's processes have been killed and
// reaped.
func (m *Manager) Enter(ctx context.Context, tenantName string) (Slot, error) {
	var t *tenant
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return Slot{}, errClosed
		}
		t = m.tenants[tenantName]
		if t == nil {
			t = &tenant{dirs: make([]string, len(m.parents)), fd: -1}
			name := dirName(tenantName)
			for i, p := range m.parents {
				t.dirs[i] = filepath.Join(p, name)
			}
			m.tenants[tenantName] = t
		}
		busy := t.busy
		if busy == nil {
			t.running++
			m.mu.Unlock()
			break
		}
		m.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return Slot{}, ctx.Err()
		}
	}
	if t.ready.Load() {
		return t.slot(m), nil
	}
	t.setupMu.Lock()
	defer t.setupMu.Unlock()
	if !t.ready.Load() {
		if err := m.create(t); err != nil {
			m.Leave(tenantName)
			return Slot{}, err
		}
		t.ready.Store(true)
	}
	return t.slot(m), nil
}

// slot is where a run of t goes; t is ready.
func (t *tenant) slot(m *Manager) Slot {
	return Slot{FD: t.fd, Dirs: t.dirs, m: m, t: t}
}

// create makes t's directories and sets their weight and process limit.
func (m *Manager) create(t *tenant) error {
	for _, d := range t.dirs {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cgroup: %w", err)
		}
	}
	var err error
	switch {
	case m.layout.Version == V2 && !m.cpu:
	case m.layout.Version == V2:
		err = writeFile(filepath.Join(t.dirs[0], "cpu.weight"), strconv.Itoa(m.opts.Weight))
		if err == nil && m.opts.CPUMax > 0 {
			err = writeFile(filepath.Join(t.dirs[0], "cpu.max"), fmt.Sprintf("%d %d", m.quotaUS(), CPUPeriod.Microseconds()))
		}
	default:
		err = writeFile(filepath.Join(t.dirs[0], "cpu.shares"), strconv.Itoa(m.shares()))
		if err == nil && m.opts.CPUMax > 0 {
			err = writeFile(filepath.Join(t.dirs[0], "cpu.cfs_period_us"), strconv.FormatInt(CPUPeriod.Microseconds(), 10))
			if err == nil {
				err = writeFile(filepath.Join(t.dirs[0], "cpu.cfs_quota_us"), strconv.FormatInt(m.quotaUS(), 10))
			}
		}
	}
	if err == nil && m.memory >= 0 && m.opts.MemoryMax > 0 {
		file := "memory.max"
		if m.layout.Version == V1 {
			file = "memory.limit_in_bytes"
		}
		err = writeFile(filepath.Join(t.dirs[m.memory], file), strconv.FormatInt(m.opts.MemoryMax, 10))
	}
	if err == nil && m.pids >= 0 && m.opts.Processes > 0 {
		err = writeFile(filepath.Join(t.dirs[m.pids], "pids.max"), strconv.FormatInt(m.opts.Processes, 10))
	}
	if err == nil && m.layout.Version == V2 && t.fd < 0 {
		t.fd, err = unix.Open(t.dirs[0], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.fd = -1
		}
	}
	// A new cgroup starts at the normal priority; strikes are kept.
	t.cpuAt = time.Time{}
	t.oomKills.Store(0)
	if t.demoted.Swap(false) {
		m.demotedNow.Add(-1)
	}
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	return nil
}

// Leave ends one run counted by Enter. When it was the tenant's last
// running script, anything still in the tenant's cgroup escaped its request
// (a daemon, a process that called setsid). Leave reads the cgroup's
// process list once (no lock held) and, when it is not empty, starts a
// sweep that kills them, in a goroutine and bounded by killBound. The
// tenant's next Enter waits for both.
func (m *Manager) Leave(tenantName string) {
	m.mu.Lock()
	t := m.tenants[tenantName]
	if t == nil || t.running == 0 {
		m.mu.Unlock()
		return
	}
	t.running--
	t.lastUsed = time.Now()
	if t.running > 0 || m.closed || !t.ready.Load() {
		m.mu.Unlock()
		return
	}
	busy := make(chan struct{})
	t.busy = busy
	lost := t.lost
	t.lost = false
	m.sweeps.Add(1)
	m.mu.Unlock()
	done := func() {
		m.mu.Lock()
		t.busy = nil
		m.mu.Unlock()
		close(busy)
		m.sweeps.Done()
	}
	if lost {
		// No run is counted and the next Enter waits: the handle can go,
		// and the next Enter makes the directories and the handle again.
		t.setupMu.Lock()
		t.ready.Store(false)
		t.setupMu.Unlock()
		t.closeHandles()
		m.opts.Logger.Warn("cgroup: a tenant's cgroup was gone; it is made again", "tenant", tenantName, "dir", t.dirs[0])
	}
	if pids, err := readPids(filepath.Join(t.dirs[0], "cgroup.procs")); err == nil && len(pids) == 0 {
		done() // the common case: nothing escaped
		return
	}
	go func() {
		defer done()
		if n, err := m.kill(t); n > 0 || err != nil {
			m.escapees.Add(uint64(n))
			m.opts.Logger.Warn("cgroup: killed processes that outlived their requests", "tenant", tenantName, "count", n, "err", err)
		}
	}()
}

// Lost reports that a run of tenant (counted by Enter, not yet ended)
// could not be placed in the slot Enter returned because the cgroup no
// longer exists: removed by hand, or by a tool that cleans up cgroups. When
// the tenant's last run ends, its cgroup is forgotten, and the next Enter
// creates it again rather than failing every run until the server
// restarts.
func (m *Manager) Lost(tenantName string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	if t := m.tenants[tenantName]; t != nil && t.running > 0 {
		t.lost = true
	}
	m.mu.Unlock()
}

// Escapees returns how many processes sweeps have killed since New.
// A nil Manager has killed none.
func (m *Manager) Escapees() uint64 {
	if m == nil {
		return 0
	}
	return m.escapees.Load()
}

// reap removes tenant cgroups idle for IdleTimeout, every IdleTimeout/2,
// and forgets them, so that memory and cgroups grow with the tenants
// active recently, not with all the tenants ever served.
func (m *Manager) reap() {
	defer close(m.reaped)
	tick := time.NewTicker(m.opts.IdleTimeout / 2)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
			m.removeIdle(time.Now().Add(-m.opts.IdleTimeout))
		}
	}
}

// removeIdle removes the cgroups of tenants with no script running since
// before cutoff.
func (m *Manager) removeIdle(cutoff time.Time) {
	type job struct {
		name string
		t    *tenant
		busy chan struct{}
	}
	var jobs []job
	m.mu.Lock()
	for name, t := range m.tenants {
		if t.running == 0 && t.busy == nil && t.lastUsed.Before(cutoff) {
			t.busy = make(chan struct{})
			jobs = append(jobs, job{name, t, t.busy})
		}
	}
	m.mu.Unlock()
	for _, j := range jobs {
		gone := m.removeTenant(j.t)
		m.mu.Lock()
		if gone {
			delete(m.tenants, j.name)
		}
		j.t.busy = nil
		m.mu.Unlock()
		close(j.busy)
	}
}

// removeTenant removes t's directories and reports whether all are gone.
// A populated cgroup cannot be removed (EBUSY): it is kept, and created
// again (EEXIST) by the next Enter. The caller holds t's busy state.
func (m *Manager) removeTenant(t *tenant) bool {
	t.setupMu.Lock()
	t.ready.Store(false)
	if t.demoted.Swap(false) {
		m.demotedNow.Add(-1)
	}
	t.setupMu.Unlock()
	t.closeHandles()
	gone := true
	for _, d := range t.dirs {
		if err := unix.Rmdir(d); err != nil && err != unix.ENOENT {
			gone = false
			if err != unix.EBUSY {
				m.opts.Logger.Warn("cgroup: remove", "dir", d, "err", err)
			}
		}
	}
	return gone
}

// Close stops removing idle cgroups, waits for running sweeps, kills what
// is left in every tenant cgroup, and removes them and their parents. The
// caller must have ended every run first (Leave). Close is idempotent, and
// does nothing on a nil Manager.
func (m *Manager) Close() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	close(m.stop)
	<-m.reaped
	<-m.watched
	m.sweeps.Wait()
	m.mu.Lock()
	tenants := m.tenants
	m.tenants = nil
	m.mu.Unlock()
	for _, t := range tenants {
		if t.ready.Load() {
			m.kill(t)
		}
		m.removeTenant(t)
	}
	m.removeParents()
	closeAll(m.homeTasks)
	return nil
}

// closeHandles closes t's open cgroup handles; the next create opens them
// again.
func (t *tenant) closeHandles() {
	if t.fd >= 0 {
		unix.Close(t.fd)
		t.fd = -1
	}
}

// openTasks opens the "tasks" file of each v1 cgroup directory for
// writing.
func openTasks(dirs []string) ([]int, error) {
	fds := make([]int, 0, len(dirs))
	for _, d := range dirs {
		fd, err := unix.Open(filepath.Join(d, "tasks"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll(fds)
			return nil, err
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func (m *Manager) removeParents() {
	for _, p := range m.parents {
		if err := unix.Rmdir(p); err != nil && err != unix.ENOENT {
			m.opts.Logger.Warn("cgroup: remove", "dir", p, "err", err)
		}
	}
}

// writeFile writes s to an existing cgroup interface file in one write,
// as the kernel expects.
func writeFile(name, s string) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// shares is the v1 cpu.shares of Options.Weight.
func (m *Manager) shares() int { return max(2, m.opts.Weight*1024/100) }

// quotaUS is the CPU time per CPUPeriod that Options.CPUMax allows, in
// microseconds, at least the kernel's minimum of 1 ms.
func (m *Manager) quotaUS() int64 {
	return max(1000, int64(m.opts.CPUMax*float64(CPUPeriod.Microseconds())))
}
