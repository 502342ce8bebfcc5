package webhook_test

import (
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/allot-dev/allot/internal/webhook"
)

func TestParsePolicy(t *testing.T) {
	for _, tc := range []struct {
		name, allow string
		bad         bool
	}{
		{"empty", "", false},
		{"blanks and empty entries", " , ,", false},
		{"cidrs", "10.0.0.0/8, fd00::/8", false},
		{"addresses", "127.0.0.1,::1,[::1]", false},
		{"address and port", "127.0.0.1:9000,[::1]:8443", false},
		{"host names", "hooks.internal, localhost:8080, Hooks.Example.COM.", false},
		{"bad prefix length", "10.0.0.0/33", true},
		{"bad cidr", "10.0.0/8x", true},
		{"port out of range", "hooks.internal:99999", true},
		{"port zero", "127.0.0.1:0", true},
		{"space in a name", "hooks internal", true},
		{"url instead of host", "http://hooks.internal", true},
		{"empty label", "hooks..internal", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := webhook.ParsePolicy(tc.allow)
			if (err != nil) != tc.bad {
				t.Fatalf("ParsePolicy(%q): %v, want error %v", tc.allow, err, tc.bad)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		name, allow, url string
		reason           string // empty: allowed
	}{
		{"public name", "", "https://hooks.example.com/allot", ""},
		{"public v4", "", "http://93.184.216.34/x", ""},
		{"public v6", "", "http://[2606:4700::6810:84e5]/x", ""},
		{"unknown single label name is left to the dialer", "", "http://hooks/x", ""},
		{"loopback v4", "", "http://127.0.0.1:8080/x", "loopback"},
		{"loopback v4 elsewhere in 127/8", "", "http://127.3.2.1/x", "loopback"},
		{"loopback v6", "", "http://[::1]:8080/x", "loopback"},
		{"ipv4-mapped loopback", "", "http://[::ffff:127.0.0.1]/x", "loopback"},
		{"ipv4-mapped private", "", "http://[::ffff:10.1.2.3]/x", "private"},
		{"nat64 of metadata", "", "http://[64:ff9b::a9fe:a9fe]/x", "metadata"},
		{"rfc1918 10/8", "", "http://10.0.0.1/x", "private"},
		{"rfc1918 172.16/12", "", "http://172.31.255.1/x", "private"},
		{"rfc1918 192.168/16", "", "http://192.168.1.1/x", "private"},
		{"unique local", "", "http://[fd12::1]/x", "unique local"},
		{"metadata", "", "http://169.254.169.254/latest/meta-data", "metadata"},
		{"link-local v4", "", "http://169.254.1.1/x", "link-local"},
		{"link-local v6 with zone", "", "http://[fe80::1%25eth0]/x", "link-local"},
		{"unspecified v4", "", "http://0.0.0.0:5432/x", "unspecified"},
		{"this network", "", "http://0.1.2.3/x", "unspecified"},
		{"unspecified v6", "", "http://[::]/x", "unspecified"},
		{"multicast", "", "http://224.0.0.1/x", "multicast"},
		{"multicast v6", "", "http://[ff02::1]/x", "multicast"},
		{"broadcast", "", "http://255.255.255.255/x", "broadcast"},
		{"reserved", "", "http://240.0.0.1/x", "reserved"},
		{"cgnat", "", "http://100.64.0.1/x", "CGNAT"},
		{"localhost", "", "http://localhost:8080/x", "loopback name"},
		{"localhost upper case with dot", "", "http://LocalHost./x", "loopback name"},
		{"sub.localhost", "", "http://api.localhost/x", "loopback name"},
		{"mdns", "", "http://printer.local/x", "multicast DNS"},
		{"internal", "", "http://metadata.google.internal/x", "private-use"},
		{"shorthand ipv4", "", "http://127.1/x", "numeric"},
		{"decimal ipv4", "", "http://2130706433/x", "numeric"},
		{"hex ipv4", "", "http://0x7f.0x0.0x0.0x1/x", "numeric"},
		{"empty host", "", "http://:8080/x", "empty host"},

		{"allowed address", "127.0.0.1", "http://127.0.0.1:8080/x", ""},
		{"allowed address, mapped form", "127.0.0.1", "http://[::ffff:127.0.0.1]:8080/x", ""},
		{"allowed address, other loopback", "127.0.0.1", "http://127.0.0.2/x", "loopback"},
		{"allowed cidr", "10.0.0.0/8", "http://10.9.8.7/x", ""},
		{"allowed cidr, other private", "10.0.0.0/8", "http://192.168.0.1/x", "private"},
		{"allowed address and port", "127.0.0.1:9000", "http://127.0.0.1:9000/x", ""},
		{"allowed address, other port", "127.0.0.1:9000", "http://127.0.0.1:5432/x", "loopback"},
		{"allowed address, default port", "127.0.0.1:80", "http://127.0.0.1/x", ""},
		{"allowed name", "hooks.internal", "https://Hooks.Internal/x", ""},
		{"allowed name and port", "hooks.internal:8443", "https://hooks.internal:8443/x", ""},
		{"allowed name, other port", "hooks.internal:8443", "https://hooks.internal/x", "private-use"},
		{"allowed localhost", "localhost", "http://localhost:8080/x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := webhook.ParsePolicy(tc.allow)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			err = p.CheckURL(u)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("%s refused: %v", tc.url, err)
				}
				return
			}
			var refused *webhook.RefusedError
			if !errors.As(err, &refused) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("%s: %v, want a refusal naming %q", tc.url, err, tc.reason)
			}
		})
	}
	// The default policy is the nil one too.
	var none *webhook.Policy
	if err := none.CheckURL(&url.URL{Scheme: "http", Host: "127.0.0.1"}); err == nil {
		t.Fatal("the nil policy allows loopback")
	}
}

// The dialer checks the address it is about to connect to, whatever name
// led to it: names that resolve (or are rebound) to refused addresses
// are refused as well.
func TestDialChecksResolvedAddresses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, tc := range []struct {
		name, allow, addr string
		refused           bool
	}{
		{"loopback address", "", "127.0.0.1:" + port, true},
		{"name resolving to loopback", "", "localhost:" + port, true},
		{"allowed address", "127.0.0.1", "127.0.0.1:" + port, false},
		{"name resolving to an allowed address", "127.0.0.0/8", "localhost:" + port, false},
		{"allowed name", "localhost:" + port, "localhost:" + port, false},
		{"allowed name, other port", "localhost:1", "localhost:" + port, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := webhook.ParsePolicy(tc.allow)
			if err != nil {
				t.Fatal(err)
			}
			c, err := p.DialContext(&net.Dialer{})(t.Context(), "tcp4", tc.addr)
			if c != nil {
				c.Close()
			}
			var refused *webhook.RefusedError
			if got := errors.As(err, &refused); got != tc.refused {
				t.Fatalf("dialling %s: %v, want refused %v", tc.addr, err, tc.refused)
			}
		})
	}
}
