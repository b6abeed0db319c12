//go:build linux

package httploop

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loops' system calls never block (their descriptors are
// non-blocking), so they are made raw: without entersyscall, which wakes
// sysmon when it sleeps and lets it hand the P to another thread if the call
// runs past 20 µs (a large sendfile does). perf counted those wake-ups and
// thread switches at about a sixth of the loops' CPU.

func rawErr(r uintptr, e syscall.Errno) (int, error) {
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func rawRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return rawErr(r, e)
}

// rawSend writes p with send(2) flags (MSG_MORE).
func rawSend(fd int, p []byte, flags int) (int, error) {
	r, _, e := syscall.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), uintptr(flags), 0, 0)
	return rawErr(r, e)
}

// rawWritev writes a then b in one call; both are non-empty.
func rawWritev(fd int, a, b []byte) (int, error) {
	var iov [2]unix.Iovec
	iov[0].Base, iov[1].Base = &a[0], &b[0]
	iov[0].SetLen(len(a))
	iov[1].SetLen(len(b))
	r, _, e := syscall.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), 2)
	return rawErr(r, e)
}

func rawSendfile(out, in int, off *int64, n int) (int, error) {
	r, _, e := syscall.RawSyscall6(unix.SYS_SENDFILE, uintptr(out), uintptr(in), uintptr(unsafe.Pointer(off)), uintptr(n), 0, 0)
	return rawErr(r, e)
}

// rawEpollPoll returns the ready events without waiting.
func rawEpollPoll(ep int, events []unix.EpollEvent) (int, error) {
	r, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	return rawErr(r, e)
}
