// Package results is the JSON schema the orchestrator writes and the report
// generator reads. Every measured point keeps its raw repeats next to the
// median, so a report can be regenerated, and re-judged, from the file.
package results

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"massvhost/test/bench/internal/loadgen"
)

// Schema is the version of this format.
const Schema = 1

// File is one orchestrator run.
type File struct {
	Schema   int       `json:"schema"`
	Command  string    `json:"command"` // exact command line that produced it
	Mode     string    `json:"mode"`    // quick | full
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  Machine   `json:"machine"`
	Pinning  Pinning   `json:"pinning"`
	Notes    []string  `json:"notes"` // caveats, in order of appearance
	Skips    []Skip    `json:"skips"`
	Data     []DataSet `json:"data_sets"`

	Startup  []StartupPoint `json:"startup"`  // T2 and the lazy-vs-preload start-up/RSS table
	CGI      []CGIPoint     `json:"cgi"`      // T3
	ForkBase []ForkPoint    `json:"forkbase"` // T3 baseline: fork+exec from a process of a given RSS
	TLS      []TLSPoint     `json:"tls"`      // T4 and static
	Ceiling  *Ceiling       `json:"ceiling,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	NProc    int               `json:"nproc"`
	CPUModel string            `json:"cpu_model"`
	MemTotal string            `json:"mem_total"`
	Kernel   string            `json:"kernel"`
	OS       string            `json:"os"`
	LoadAvg  string            `json:"loadavg_at_start"`
	Versions map[string]string `json:"versions"` // go, nginx, apache2, redis, massvhost, openssl
	Commit   string            `json:"commit"`
}

// Pinning records how CPUs were split between servers and the client.
type Pinning struct {
	ServerCPUs string            `json:"server_cpus"`
	ClientCPUs string            `json:"client_cpus"`
	Peers      map[string]string `json:"peers"` // peer → how its workers were made comparable
}

// Skip is a point not measured, and why.
type Skip struct {
	Table   string `json:"table"`
	Peer    string `json:"peer"`
	Tenants int    `json:"tenants,omitempty"`
	Reason  string `json:"reason"`
}

// DataSet is one generated tenant set.
type DataSet struct {
	Key        string  `json:"key"`
	N          int     `json:"n"`
	SharedKeys int     `json:"shared_keys"`
	GenS       float64 `json:"gen_s"` // 0 when reused
	Dir        string  `json:"dir"`
}

// Proc is one process of a server's tree.
type Proc struct {
	PID    int    `json:"pid"`
	Name   string `json:"name"`
	RSSKB  int64  `json:"rss_kb"`
	PSSKB  int64  `json:"pss_kb"`
	UserMS int64  `json:"user_ms"`
	SysMS  int64  `json:"sys_ms"`
}

// Tree is a snapshot of a server's process tree.
type Tree struct {
	Procs    []Proc `json:"procs"`
	RSSKB    int64  `json:"rss_kb"`     // sum over processes (double-counts shared pages)
	PSSKB    int64  `json:"pss_kb"`     // sum over processes (shared pages split)
	MaxRSSKB int64  `json:"max_rss_kb"` // the largest single process
	UserMS   int64  `json:"user_ms"`    // CPU of the tree, including reaped children
	SysMS    int64  `json:"sys_ms"`
}

// StartupRun is one start of a server.
type StartupRun struct {
	StartupMS float64 `json:"startup_ms"` // exec → first HTTPS 200
	AtReady   Tree    `json:"at_ready"`
	HotHosts  int     `json:"hot_hosts"` // distinct hosts served before AfterHot
	AfterHot  *Tree   `json:"after_hot,omitempty"`
	HotErrors uint64  `json:"hot_errors"`
}

// StartupPoint is T2 for one peer and tenant count.
type StartupPoint struct {
	Peer    string       `json:"peer"`
	Key     string       `json:"key"`
	Tenants int          `json:"tenants"`
	Runs    []StartupRun `json:"runs"`
	// Medians over Runs.
	StartupMS float64 `json:"startup_ms"`
	UserMS    float64 `json:"user_ms"`
	SysMS     float64 `json:"sys_ms"`
	RSSKB     float64 `json:"rss_kb"`
	PSSKB     float64 `json:"pss_kb"`
	MaxRSSKB  float64 `json:"max_rss_kb"`
	Procs     int     `json:"procs"`
	HotRSSKB  float64 `json:"hot_rss_kb"`
	HotPSSKB  float64 `json:"hot_pss_kb"`
	HotHosts  int     `json:"hot_hosts"`
}

// CGIPoint is T3 for one peer, tenant count and concurrency.
type CGIPoint struct {
	Peer        string            `json:"peer"`
	Tenants     int               `json:"tenants"`
	Concurrency int               `json:"concurrency"`
	Server      Tree              `json:"server"` // before the load
	Runs        []*loadgen.Result `json:"runs"`
	P50MS       float64           `json:"p50_ms"`
	P99MS       float64           `json:"p99_ms"`
	RPS         float64           `json:"rps"`
	Errors      uint64            `json:"errors"`
	// ServerCPU is the server tree's CPU time during the runs divided by
	// their wall time (1.0 = one core busy), median over the runs.
	ServerCPU float64 `json:"server_cpu"`
}

// ForkPoint is the classic fork+exec+wait of /bin/true from a process that
// has touched RSSMB megabytes.
type ForkPoint struct {
	RSSMB     int     `json:"rss_mb"`
	Label     string  `json:"label"` // why this size (a peer's RSS, or a paper point)
	N         int     `json:"n"`
	P50MS     float64 `json:"p50_ms"`
	P99MS     float64 `json:"p99_ms"`
	MeanMS    float64 `json:"mean_ms"`
	ForkP50MS float64 `json:"fork_p50_ms"` // fork() alone, returning in the parent
}

// TLSPoint is T4 (or static) for one peer, key type, host count and mode.
type TLSPoint struct {
	Table   string            `json:"table"` // "T4" or "static"
	Peer    string            `json:"peer"`
	Key     string            `json:"key"`
	Tenants int               `json:"tenants"` // configured
	Hosts   int               `json:"hosts"`   // rotated over
	Mode    string            `json:"mode"`
	Proto   string            `json:"proto"`
	Path    string            `json:"path"`
	Runs    []*loadgen.Result `json:"runs"`
	HPS     float64           `json:"hps"`
	RPS     float64           `json:"rps"`
	P50MS   float64           `json:"p50_ms"`
	P99MS   float64           `json:"p99_ms"`
	Errors  uint64            `json:"errors"`
	Server  *Tree             `json:"server,omitempty"` // after the runs
	// ServerCPU is as in CGIPoint. Well below 1.0 with the server pinned to
	// one core, the load generator, not the server, set the pace.
	ServerCPU float64 `json:"server_cpu"`
}

// Ceiling is the CPU cost of one server handshake's public-key operations,
// measured in-process with Go's crypto on one pinned CPU.
type Ceiling struct {
	RSA2048SignUS   float64 `json:"rsa2048_sign_us"`
	ECDSAP256SignUS float64 `json:"ecdsa_p256_sign_us"`
	X25519US        float64 `json:"x25519_us"` // key generation + shared secret
	// Handshakes per second per core if only these operations cost.
	RSAHPS   float64 `json:"rsa_hps"`
	ECDSAHPS float64 `json:"ecdsa_hps"`
}

// Median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// MedianOf applies f to each element and returns the median.
func MedianOf[T any](xs []T, f func(T) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	return Median(v)
}

// Read loads a results file.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("results: %s: %w", path, err)
	}
	if f.Schema != Schema {
		return nil, fmt.Errorf("results: %s: schema %d, want %d", path, f.Schema, Schema)
	}
	return &f, nil
}

// Write saves f as indented JSON, atomically.
func Write(path string, f *File) error {
	b, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
