// Command spawnfloor measures what busy CPUs alone do to the latency of
// starting a short process, with no server involved: it runs
// `/bin/sh -c 'printf x'` (fork, exec, exit, reap: the skeleton of a CGI
// request) n times while nothing else runs, then while CPU spinners at
// SCHED_IDLE run (the least intrusive CPU use: the kernel runs them only
// when nothing else wants a CPU and preempts them at every wake-up), then
// while spinners at the normal policy run, and prints p50, p99, p99.9 and
// the maximum of each. docs/RELIABILITY.md (CGI-10) uses it to tell what
// the machine costs a CGI request from what another tenant costs it.
//
//	go run ./test/bench/spawnfloor [-n 1500] [-spinners N (default: one per CPU)] [-repeat 2]
//
// The spinners are this program's children and are killed by PID when
// each phase ends; it needs chrt (util-linux) for the SCHED_IDLE phase.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"time"
)

func main() {
	n := flag.Int("n", 1500, "process starts per phase")
	spinners := flag.Int("spinners", runtime.NumCPU(), "CPU spinners in the spinner phases")
	repeat := flag.Int("repeat", 2, "rounds of the three phases")
	flag.Parse()
	if *n < 100 || *spinners < 1 || *repeat < 1 {
		log.Fatal("spawnfloor: -n must be at least 100, -spinners and -repeat at least 1")
	}
	for round := 1; round <= *repeat; round++ {
		for _, phase := range []struct {
			name string
			argv []string // the spinner command, nil for none
		}{
			{"nothing else", nil},
			{fmt.Sprintf("%d SCHED_IDLE spinners", *spinners), []string{"chrt", "--idle", "0", "sh", "-c", "while :; do :; done"}},
			{fmt.Sprintf("%d normal spinners", *spinners), []string{"sh", "-c", "while :; do :; done"}},
		} {
			stop := spin(phase.argv, *spinners)
			d := starts(*n)
			stop()
			fmt.Printf("round %d, %-22s p50 %-9v p99 %-9v p99.9 %-9v max %v\n", round, phase.name+":",
				pct(d, 50), pct(d, 99), pct(d, 99.9), d[len(d)-1].Round(time.Microsecond))
		}
	}
}

// spin starts k copies of argv (none when argv is nil) and returns the
// function that kills and reaps them.
func spin(argv []string, k int) func() {
	var cmds []*exec.Cmd
	for range k {
		if argv == nil {
			break
		}
		c := exec.Command(argv[0], argv[1:]...)
		if err := c.Start(); err != nil {
			log.Fatalf("spawnfloor: %v: %v", argv, err)
		}
		cmds = append(cmds, c)
	}
	time.Sleep(300 * time.Millisecond) // let them take the CPUs
	return func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}
}

// starts times n runs of a shell that prints one byte, sorted.
func starts(n int) []time.Duration {
	d := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := exec.Command("/bin/sh", "-c", "printf x").Output(); err != nil {
			fmt.Fprintln(os.Stderr, "spawnfloor:", err)
			os.Exit(1)
		}
		d = append(d, time.Since(t0))
	}
	slices.Sort(d)
	return d
}

func pct(d []time.Duration, p float64) time.Duration {
	return d[min(len(d)-1, int(float64(len(d))*p/100))].Round(time.Microsecond)
}
