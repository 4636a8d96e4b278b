//go:build !linux

package server

// fastOpenModes: there is no fast path here.
var fastOpenModes = []bool{false}

func setFastOpen(bool) func() { return func() {} }
