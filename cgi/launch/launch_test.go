package launch

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The test binary doubles as a launcher, as the massvhost binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == Command {
		os.Exit(Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func TestArgsRoundTrip(t *testing.T) {
	spec := &Spec{UID: 20001, GID: 20002, Dev: 7, Ino: 99, Name: "x.cgi", Limits: []Limit{
		{Resource: unix.RLIMIT_NPROC, Value: 64}, {Resource: unix.RLIMIT_CPU, Value: 30},
		{Resource: unix.RLIMIT_AS, Value: 1 << 30}, {Resource: unix.RLIMIT_NOFILE, Value: 256},
		{Resource: unix.RLIMIT_FSIZE, Value: 0},
	}}
	args := spec.Args()
	want := "-uid=20001 -gid=20002 -nproc=64 -cpu=30 -as=1073741824 -nofile=256 -fsize=0 -file=7:99 -- x.cgi"
	if got := strings.Join(args, " "); got != want {
		t.Fatalf("Args() = %q, want %q", got, want)
	}
	back, err := Parse(args)
	if err != nil {
		t.Fatal(err)
	}
	if back.UID != spec.UID || back.GID != spec.GID || back.Dev != 7 || back.Ino != 99 || back.Name != "x.cgi" ||
		len(back.Limits) != len(spec.Limits) {
		t.Fatalf("round trip: %+v", back)
	}
	for i, l := range back.Limits {
		if l != spec.Limits[i] {
			t.Errorf("limit %d: %+v, want %+v", i, l, spec.Limits[i])
		}
	}
	nnp := &Spec{UID: 20001, GID: 20002, Dev: 1, Ino: 2, Name: "x.cgi", NoNewPrivs: true, KeepBoundingSet: true,
		MemoryCgroup: "/sys/fs/cgroup/memory/m/t-a.test"}
	wantNNP := "-uid=20001 -gid=20002 -memcg=/sys/fs/cgroup/memory/m/t-a.test -no-new-privs=1 -keep-bset=1 -file=1:2 -- x.cgi"
	if got := strings.Join(nnp.Args(), " "); got != wantNNP {
		t.Fatalf("Args() = %q, want %q", got, wantNNP)
	}
	if back, err := Parse(nnp.Args()); err != nil || !back.NoNewPrivs || !back.KeepBoundingSet || back.MemoryCgroup != nnp.MemoryCgroup {
		t.Fatalf("with no_new_privs: %+v, %v", back, err)
	}
	noID := &Spec{UID: -1, GID: -1, Dev: 1, Ino: 2, Name: "--"}
	if back, err := Parse(noID.Args()); err != nil || back.UID != -1 || back.Name != "--" {
		t.Fatalf("without identity: %+v, %v", back, err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"--", "x"},
		{"-file=1:2"},
		{"-file=1:2", "--"},
		{"-file=1:2", "--", "a", "b"},
		{"-file=1:2", "--", "../x"},
		{"-file=1:2", "--", "a/b"},
		{"-file=1:2", "--", "."},
		{"-file=1:2", "--", ""},
		{"-file=1:2", "-file=1:2", "--", "x"},
		{"-file=1", "--", "x"},
		{"-uid=5", "-file=1:2", "--", "x"},
		{"-uid=0", "-gid=0", "-file=1:2", "--", "x"},
		{"-uid=-1", "-gid=5", "-file=1:2", "--", "x"},
		{"-uid=4294967296", "-gid=5", "-file=1:2", "--", "x"},
		{"-nproc=x", "-file=1:2", "--", "x"},
		{"-bogus=1", "-file=1:2", "--", "x"},
		{"-cgroup=/a", "-file=1:2", "--", "x"}, // no longer a flag: the server places the launcher
		{"-keep-bset=0", "-file=1:2", "--", "x"},
		{"-memcg=", "-file=1:2", "--", "x"},
		{"-memcg=relative/dir", "-file=1:2", "--", "x"},
		{"-memcg=/", "-file=1:2", "--", "x"},
		{"-memcg=/a/../b", "-file=1:2", "--", "x"},
		{"-memcg=/a\x00b", "-file=1:2", "--", "x"},
		{"-memcg=/a", "-memcg=/b", "-file=1:2", "--", "x"},
		{"file=1:2", "--", "x"},
		{"-file", "--", "x"},
		{"-no-new-privs=0", "-file=1:2", "--", "x"},
		{"-no-new-privs", "-file=1:2", "--", "x"},
	} {
		if _, err := Parse(args); err == nil {
			t.Errorf("Parse(%q) accepted", args)
		}
	}
}

// The launcher run by hand: bad arguments, or root without an identity,
// fail with a status record and exit 127, running nothing.
func TestMainRefusesMisuse(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cases := [][]string{
		{"-file=1:2"},
		{"-bogus", "--", "x"},
	}
	if os.Geteuid() == 0 {
		cases = append(cases, []string{"-file=1:2", "--", "true"}) // root, no -uid
	}
	for _, args := range cases {
		rd, wr, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(self, append([]string{Command}, args...)...)
		cmd.ExtraFiles = []*os.File{wr}
		out, _ := cmd.CombinedOutput()
		wr.Close()
		f, err := ReadStatus(rd)
		rd.Close()
		if cmd.ProcessState.ExitCode() != 127 || err != nil || f == nil || f.Stage != StageArgs {
			t.Errorf("%q: exit %d, status %v %v, output %q", args, cmd.ProcessState.ExitCode(), f, err, out)
		}
		if !strings.Contains(string(out), "massvhost cgi-launch: arguments") {
			t.Errorf("%q: stderr %q lacks the reason", args, out)
		}
	}
}

// A memory cgroup that cannot be joined fails the launch at StageCgroup,
// before anything else, with the errno the server maps to "cgroup lost".
func TestMainCgroupJoinFails(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	cmd := exec.Command(self, Command, "-uid=20001", "-gid=20001", "-memcg="+t.TempDir()+"/missing", "-file=1:2", "--", "true")
	cmd.ExtraFiles = []*os.File{wr}
	cmd.Run()
	wr.Close()
	f, err := ReadStatus(rd)
	if err != nil || f == nil || f.Stage != StageCgroup || f.Errno != unix.ENOENT {
		t.Errorf("status %v, %v; want a cgroup-stage ENOENT", f, err)
	}
}

func TestReadStatus(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Failure
		bad  bool
	}{
		{"exec succeeded", "", nil, false},
		{"failure", "L\x06\x0d\x00\x00\x00", &Failure{Stage: StageExec, Errno: unix.EACCES}, false},
		{"short", "L\x06", nil, true},
		{"garbage", "xxxxxx", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ReadStatus(strings.NewReader(tc.in))
			if (err != nil) != tc.bad {
				t.Fatalf("err %v", err)
			}
			if (f == nil) != (tc.want == nil) || f != nil && *f != *tc.want {
				t.Fatalf("got %v, want %v", f, tc.want)
			}
		})
	}
	if s := (&Failure{Stage: StageScript, Errno: unix.ESTALE}).Error(); !strings.Contains(s, "script check") {
		t.Errorf("Error() = %q", s)
	}
}

// The launcher's cost is its binary's start-up, so this package (and the
// small launcher binary built from it) must stay free of heavy imports:
// only the standard library's basics and golang.org/x/sys/unix.
func TestImportsStayLight(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	for _, pkg := range []string{".", "./early", "massvhost/cmd/massvhost-cgi-launch"} {
		out, err := exec.Command(goCmd, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if !strings.HasPrefix(dep, "massvhost/cgi/launch") && dep != "massvhost/cmd/massvhost-cgi-launch" && dep != "golang.org/x/sys/unix" {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
		std, err := exec.Command(goCmd, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		deps := strings.Fields(string(std))
		for _, heavy := range []string{"net", "net/http", "crypto/tls", "os/user", "log/slog", "encoding/json", "regexp", "text/template"} {
			if slices.Contains(deps, heavy) {
				t.Errorf("%s depends on %s", pkg, heavy)
			}
		}
	}
}
