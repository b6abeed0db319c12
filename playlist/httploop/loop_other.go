//go:build !linux

package httploop

import (
	"errors"
	"net"
)

// Event loops need epoll: elsewhere net/http serves every connection.
const loopsSupported = false

type loop struct{ done chan struct{} }

func newLoop(*Server) (*loop, error) { return nil, errors.New("event loops need Linux") }
func (l *loop) run()                 {}
func (l *loop) add(int)              {}
func (l *loop) wakeup()              {}

func detach(*net.TCPConn) (int, error) { return -1, errors.New("event loops need Linux") }
