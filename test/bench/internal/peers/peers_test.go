package peers

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"massvhost/test/bench/internal/tenants"
)

func testData(t *testing.T) Data {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	o := tenants.Options{Dir: dir, N: 5, Key: tenants.KeyECDSA, SharedKeys: 2, Owner: -1, Group: -1}
	if _, err := tenants.Generate(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	hosts, err := tenants.ReadHosts(tenants.HostsFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	return Data{Sites: tenants.SitesDir(dir), Certs: tenants.CertsDir(dir), Hosts: hosts}
}

func testEnv(t *testing.T, name string) Env {
	work := filepath.Join(t.TempDir(), name)
	// The parent of Work is the test's private temp dir; servers dropping
	// privileges must be able to traverse it.
	os.Chmod(filepath.Dir(work), 0o755)
	return Env{Work: work, Addr: "127.0.0.1:18443", Data: testData(t), CPUs: "0"}
}

func needBinary(t *testing.T, bin string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		t.Skipf("%s not installed (test/bench/run installs it): %v", bin, err)
	}
}

// runCheck runs the server's own configuration test, so a config the
// server would refuse fails here rather than in a benchmark run.
func runCheck(t *testing.T, s Spec) {
	t.Helper()
	out, err := exec.Command(s.Check[0], s.Check[1:]...).CombinedOutput()
	if err != nil {
		conf, _ := os.ReadFile(s.Config)
		t.Fatalf("%v: %v\n%s\nconfig:\n%s", s.Check, err, out, conf)
	}
}

func TestNginxConfigsParse(t *testing.T) {
	needBinary(t, NginxBin)
	for _, preload := range []bool{true, false} {
		e := testEnv(t, "nginx")
		s, err := Nginx(e, preload)
		if err != nil {
			t.Fatal(err)
		}
		runCheck(t, s)
		conf, _ := os.ReadFile(s.Config)
		blocks := strings.Count(string(conf), "server {")
		if want := map[bool]int{true: len(e.Data.Hosts), false: 1}[preload]; blocks != want {
			t.Errorf("preload=%v: %d server blocks, want %d", preload, blocks, want)
		}
		if s.Argv[0] != "taskset" {
			t.Errorf("argv %v not pinned", s.Argv)
		}
	}
}

func TestApacheConfigsParse(t *testing.T) {
	needBinary(t, ApacheBin)
	for _, event := range []bool{true, false} {
		e := testEnv(t, "apache")
		s, err := Apache(e, event)
		if err != nil {
			t.Fatal(err)
		}
		runCheck(t, s)
		conf, _ := os.ReadFile(s.Config)
		if n := strings.Count(string(conf), "<VirtualHost "); n != len(e.Data.Hosts) {
			t.Errorf("%d virtual hosts, want %d", n, len(e.Data.Hosts))
		}
	}
}

func TestMassvhostConfig(t *testing.T) {
	tests := []struct {
		name string
		o    MassvhostOptions
		want []string
	}{
		{MassvhostLazy, MassvhostOptions{Bin: "massvhost"}, []string{"store: files", "preload: false", "cache_size: 10000"}},
		{MassvhostLazyCold, MassvhostOptions{Bin: "massvhost", CacheSize: 1}, []string{"cache_size: 1\n"}},
		{MassvhostPreload, MassvhostOptions{Bin: "massvhost", Preload: true}, []string{"preload: true"}},
		{MassvhostLazyRedis, MassvhostOptions{Bin: "massvhost", Redis: "127.0.0.1:6379", RedisPrefix: "ssl:"}, []string{"store: redis", `addrs: ["127.0.0.1:6379"]`, `key_prefix: "ssl:"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Massvhost(testEnv(t, "mv"), tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != tc.name {
				t.Errorf("name %q, want %q", s.Name, tc.name)
			}
			conf, _ := os.ReadFile(s.Config)
			for _, w := range tc.want {
				if !strings.Contains(string(conf), w) {
					t.Errorf("config lacks %q:\n%s", w, conf)
				}
			}
			if len(s.Env) != 1 || s.Env[0] != "GOMAXPROCS=1" {
				t.Errorf("env %v", s.Env)
			}
		})
	}
}
