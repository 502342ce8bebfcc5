package main_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSlowLorisIsHeldOff opens many connections that send their headers a
// byte at a time, and checks that allot closes each one at its header
// timeout while answering a normal client promptly all along.
func TestSlowLorisIsHeldOff(t *testing.T) {
	p := start(t, t.TempDir(), "ALLOT_ADMIN_TOKEN="+adminToken, "ALLOT_READ_HEADER_TIMEOUT=1s")
	addr := strings.TrimPrefix(p.url, "http://")
	const n = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	closed := 0
	begin := time.Now()
	for range n {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			fmt.Fprint(c, "GET /api/v1/tenants HTTP/1.1\r\nHost: allot\r\n")
			for range 100 { // 10 s of trickling, far past the timeout
				if _, err := c.Write([]byte("X")); err != nil {
					break
				}
				c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				if _, err := bufio.NewReader(c).ReadByte(); err != nil && !isTimeout(err) {
					break // the server closed it (or answered 408 and closed)
				}
			}
			mu.Lock()
			closed++
			mu.Unlock()
		})
	}
	// A well-behaved client is served meanwhile.
	time.Sleep(300 * time.Millisecond)
	for range 5 {
		t0 := time.Now()
		code, _ := p.req(t, "GET", "/api/v1/tenants", adminToken, "")
		if code != 200 || time.Since(t0) > 2*time.Second {
			t.Fatalf("a normal request during the attack: %d after %s", code, time.Since(t0))
		}
	}
	wg.Wait()
	took := time.Since(begin)
	if closed != n || took > 8*time.Second {
		t.Fatalf("%d of %d slow connections closed after %s", closed, n, took)
	}
	t.Logf("%d slow-loris connections held off, all closed within %s", closed, took.Round(100*time.Millisecond))

	// Oversized headers are refused outright.
	req, _ := http.NewRequest("GET", p.url+"/api/v1/tenants", nil)
	req.Header.Set("X-Padding", strings.Repeat("x", 128<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("128 KiB of headers: %d, want 431", resp.StatusCode)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
