//go:build !linux

package ingest

import "net"

// RawReadListener returns ln: raw reads exist on Linux only
// (rawread_linux.go says why they matter).
func RawReadListener(ln net.Listener) net.Listener { return ln }
