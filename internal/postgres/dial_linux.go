package postgres

import (
	"syscall"
	"time"
)

// tcpUserTimeout is TCP_USER_TIMEOUT from linux/tcp.h, the same on every
// architecture; the syscall package defines it only on some.
const tcpUserTimeout = 0x12

// userTimeoutControl sets TCP_USER_TIMEOUT on each socket, so that data
// the server never acknowledges (a silent partition while allot waits for
// a reply) fails the connection instead of being retransmitted for about
// fifteen minutes.
func userTimeoutControl(d time.Duration) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		if network != "tcp" && network != "tcp4" && network != "tcp6" {
			return nil
		}
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, int(d.Milliseconds()))
		})
		if err != nil {
			return err
		}
		return serr
	}
}
