package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLocate(t *testing.T) {
	tests := []struct {
		name              string
		mountinfo, cgroup string // files in testdata
		want              Layout
		wantErr           error
	}{
		{
			name:      "v1 with combined cpu,cpuacct",
			mountinfo: "v1.mountinfo", cgroup: "v1.cgroup",
			want: Layout{
				CPU:     "/sys/fs/cgroup/cpu,cpuacct/system.slice/massvhost.service",
				CPUAcct: "/sys/fs/cgroup/cpu,cpuacct/system.slice/massvhost.service",
				Memory:  "/sys/fs/cgroup/memory/system.slice/massvhost.service",
				Pids:    "/sys/fs/cgroup/pids/system.slice/massvhost.service",
				Freezer: "/sys/fs/cgroup/freezer",
			},
		},
		{
			name:      "v2 unified",
			mountinfo: "v2.mountinfo", cgroup: "v2.cgroup",
			want: Layout{Unified: "/sys/fs/cgroup/system.slice/massvhost.service"},
		},
		{
			name:      "hybrid: v1 controllers and an empty cgroup2",
			mountinfo: "hybrid.mountinfo", cgroup: "hybrid.cgroup",
			want: Layout{Unified: "/sys/fs/cgroup/unified", CPU: "/sys/fs/cgroup/cpu", CPUAcct: "/sys/fs/cgroup/cpuacct", Pids: "/sys/fs/cgroup/pids", Freezer: "/sys/fs/cgroup/freezer"},
		},
		{
			name:      "container sees its subtree as the mount root",
			mountinfo: "container.mountinfo", cgroup: "container.cgroup",
			want: Layout{Unified: "/sys/fs/cgroup/app"},
		},
		{
			name:      "own cgroup outside the mounted subtree",
			mountinfo: "container.mountinfo", cgroup: "outside.cgroup",
			wantErr: errNoCgroups,
		},
		{
			name:      "escaped mount point",
			mountinfo: "escaped.mountinfo", cgroup: "v2.cgroup",
			want: Layout{Unified: "/sys/fs/cgroup/my cgroups/system.slice/massvhost.service"},
		},
		{
			name:      "no cgroup mounts",
			mountinfo: "none.mountinfo", cgroup: "hybrid.cgroup",
			wantErr: errNoCgroups,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mi := readTestdata(t, tc.mountinfo)
			cg := readTestdata(t, tc.cgroup)
			got, err := locate(mi, cg)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Errorf("locate = %+v\nwant      %+v", got, tc.want)
			}
		})
	}
}

func TestLocateRejectsMalformed(t *testing.T) {
	for _, tc := range []struct{ name, mountinfo, cgroup string }{
		{"short mountinfo line", "1 2 - cgroup2 cgroup2 rw\n", "0::/\n"},
		{"cgroup line without path", "", "0::\n"},
		{"cgroup line with relative path", "", "1:cpu:x\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := locate([]byte(tc.mountinfo), []byte(tc.cgroup)); err == nil || errors.Is(err, errNoCgroups) {
				t.Errorf("locate accepted it: %v", err)
			}
		})
	}
}

func TestDirName(t *testing.T) {
	for _, tc := range []struct{ tenant, want string }{
		{"a.test", "t-a.test"},
		{"tenant_42", "t-tenant_42"},
		{"cgroup.procs", "t-cgroup.procs"},
		{"..", "h-"},
		{"a/b", "h-"},
		{"", "h-"},
		{"a\nb", "h-"},
	} {
		got := dirName(tc.tenant)
		if tc.want == "h-" {
			if len(got) != 2+32 || got[:2] != "h-" {
				t.Errorf("dirName(%q) = %q, want a hash name", tc.tenant, got)
			}
		} else if got != tc.want {
			t.Errorf("dirName(%q) = %q, want %q", tc.tenant, got, tc.want)
		}
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
