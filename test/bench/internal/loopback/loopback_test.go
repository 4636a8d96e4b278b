package loopback

import "testing"

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		addr string
		ok   bool
	}{
		{"ipv4 loopback", "127.0.0.1:8443", true},
		{"other 127 address", "127.3.4.5:1", true},
		{"ipv6 loopback", "[::1]:443", true},
		{"localhost", "localhost:443", true},
		{"private range", "10.0.0.1:443", false},
		{"public", "192.0.2.7:443", false},
		{"unspecified", "0.0.0.0:443", false},
		{"name", "example.com:443", false},
		{"no port", "127.0.0.1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Check(tc.addr); (err == nil) != tc.ok {
				t.Errorf("Check(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
			}
		})
	}
}
