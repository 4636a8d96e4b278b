package server

// fastOpenModes are the settings of the openat2 fast path tests run with.
var fastOpenModes = []bool{true, false}

// setFastOpen turns the fast path on or off and returns the function that
// restores the previous setting. Tests that use it must not run in
// parallel.
func setFastOpen(on bool) func() {
	prev := openat2Works.Load()
	openat2Works.Store(on)
	return func() { openat2Works.Store(prev) }
}
