package webhook

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// Policy says which targets webhooks may be delivered to. By default only
// public addresses: a subscription must not turn allot into a way to reach
// its own API, its database, the cloud's metadata service or anything else
// on the networks allot sits in. The operator's allow-list opens chosen
// networks, addresses (optionally one port) or host names. A nil *Policy is
// the default.
type Policy struct {
	nets  []netip.Prefix   // any port
	addrs []netip.AddrPort // one address and port
	hosts []hostPort       // a name as written in the URL
}

type hostPort struct {
	host string // lower case, no trailing dot
	port string // empty: any port
}

// ParsePolicy reads an allow-list: comma-separated CIDRs (10.1.0.0/16),
// addresses (127.0.0.1, ::1), address:port ([::1]:8443, 127.0.0.1:9000),
// or host names with an optional port (hooks.internal, hooks.internal:8443).
// An empty list allows public addresses only.
func ParsePolicy(allow string) (*Policy, error) {
	p := &Policy{}
	for entry := range strings.SplitSeq(allow, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if err := p.add(entry); err != nil {
			return nil, fmt.Errorf("%q: %w", entry, err)
		}
	}
	return p, nil
}

func (p *Policy) add(entry string) error {
	if strings.Contains(entry, "/") {
		pfx, err := netip.ParsePrefix(entry)
		if err != nil {
			return fmt.Errorf("not a CIDR: %w", err)
		}
		if pfx.Addr().Is4In6() {
			pfx = netip.PrefixFrom(pfx.Addr().Unmap(), max(pfx.Bits()-96, 0))
		}
		p.nets = append(p.nets, pfx.Masked())
		return nil
	}
	if ip, err := netip.ParseAddr(strings.Trim(entry, "[]")); err == nil {
		ip = ip.WithZone("").Unmap()
		p.nets = append(p.nets, netip.PrefixFrom(ip, ip.BitLen()))
		return nil
	}
	host, port := entry, ""
	if h, pt, err := net.SplitHostPort(entry); err == nil {
		n, err := strconv.Atoi(pt)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not from 1 to 65535", pt)
		}
		host, port = h, strconv.Itoa(n)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if port == "" {
			return fmt.Errorf("not an address, CIDR or host name")
		}
		n, _ := strconv.Atoi(port)
		p.addrs = append(p.addrs, netip.AddrPortFrom(ip.WithZone("").Unmap(), uint16(n)))
		return nil
	}
	host = normalName(host)
	if !validName(host) {
		return fmt.Errorf("not an address, CIDR or host name")
	}
	p.hosts = append(p.hosts, hostPort{host, port})
	return nil
}

// RefusedError says why a webhook target is refused.
type RefusedError struct {
	Target string // the host or address, as it was checked
	Reason string // what it is: "a loopback address"
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("webhook target %s is %s; only public addresses are allowed unless the operator allows it with --webhook-allow", e.Target, e.Reason)
}

// CheckURL refuses, at subscription time, a URL whose host is a refused
// address or an obviously local name. Other names are checked when they
// are dialled, against the addresses they resolve to then.
func (p *Policy) CheckURL(u *url.URL) error {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		n, _ := strconv.Atoi(port)
		return p.checkAddr(ip, uint16(n))
	}
	name := normalName(host)
	if name == "" {
		return &RefusedError{Target: u.Host, Reason: "an empty host, which means this machine"}
	}
	if p.allowsName(name, port) {
		return nil
	}
	if reason := localName(name); reason != "" {
		return &RefusedError{Target: host, Reason: reason}
	}
	return nil
}

// DialContext wraps a dialer so that every address it connects to is
// checked, after name resolution and just before connecting: a name that
// resolves (or is rebound) to a refused address is refused too. Names on
// the allow-list are dialled unchecked.
func (p *Policy) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	checked := *d
	checked.Control = func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("webhook target %s: %w", address, err)
		}
		return p.checkAddr(ap.Addr(), ap.Port())
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil {
			if _, err := netip.ParseAddr(host); err != nil && p.allowsName(normalName(host), port) {
				return d.DialContext(ctx, network, addr)
			}
		}
		return checked.DialContext(ctx, network, addr)
	}
}

// checkAddr refuses a non-public address unless the allow-list opens it.
func (p *Policy) checkAddr(ip netip.Addr, port uint16) error {
	target := netip.AddrPortFrom(ip, port).String()
	if port == 0 {
		target = ip.String()
	}
	ip = ip.WithZone("").Unmap()
	if p != nil {
		for _, n := range p.nets {
			if n.Contains(ip) {
				return nil
			}
		}
		for _, a := range p.addrs {
			if a.Addr() == ip && a.Port() == port {
				return nil
			}
		}
	}
	if reason := addrReason(ip); reason != "" {
		return &RefusedError{Target: target, Reason: reason}
	}
	return nil
}

func (p *Policy) allowsName(name, port string) bool {
	if p == nil {
		return false
	}
	for _, h := range p.hosts {
		if h.host == name && (h.port == "" || h.port == port) {
			return true
		}
	}
	return false
}

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	sharedCGNAT = netip.MustParsePrefix("100.64.0.0/10")
	reserved4   = netip.MustParsePrefix("240.0.0.0/4")
	siteLocal6  = netip.MustParsePrefix("fec0::/10")
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
	metadata    = netip.MustParseAddr("169.254.169.254")
	broadcast   = netip.MustParseAddr("255.255.255.255")
)

// addrReason says what kind of non-public address ip is, or "" for a
// public one. ip is unmapped and has no zone.
func addrReason(ip netip.Addr) string {
	if nat64.Contains(ip) {
		// The well-known NAT64 prefix reaches the IPv4 address in its last
		// 32 bits.
		b := ip.As16()
		if r := addrReason(netip.AddrFrom4([4]byte(b[12:]))); r != "" {
			return r + " (through NAT64)"
		}
		return ""
	}
	switch {
	case ip.IsUnspecified() || thisNetwork.Contains(ip):
		return "an unspecified address"
	case ip.IsLoopback():
		return "a loopback address"
	case ip == metadata:
		return "the link-local cloud metadata address"
	case ip.IsLinkLocalUnicast():
		return "a link-local address"
	case ip == broadcast:
		return "the broadcast address"
	case ip.IsMulticast():
		return "a multicast address"
	case ip.IsPrivate() && ip.Is4():
		return "a private address (RFC 1918)"
	case ip.IsPrivate():
		return "a unique local address (fc00::/7)"
	case sharedCGNAT.Contains(ip):
		return "a shared address (CGNAT, 100.64.0.0/10)"
	case reserved4.Contains(ip):
		return "a reserved address (240.0.0.0/4)"
	case siteLocal6.Contains(ip):
		return "a site-local address (fec0::/10)"
	}
	return ""
}

// localName says why name is obviously not a public host, or "".
func localName(name string) string {
	last := name[strings.LastIndexByte(name, '.')+1:]
	switch {
	case name == "localhost" || strings.HasSuffix(name, ".localhost") ||
		name == "localhost.localdomain" || name == "ip6-localhost" || name == "ip6-loopback":
		return "a loopback name"
	case strings.HasSuffix(name, ".local"):
		return "a multicast DNS name (.local)"
	case strings.HasSuffix(name, ".internal") || strings.HasSuffix(name, ".home.arpa") || strings.HasSuffix(name, ".localdomain"):
		return "a private-use name"
	case last != "" && (strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x")):
		// No top-level domain is numeric; resolvers read such names as
		// IPv4 addresses in shorthand (127.1, 2130706433, 0x7f.1).
		return "a numeric name that is not a plain IP address"
	}
	return ""
}

func normalName(host string) string {
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

func validName(host string) bool {
	if host == "" || len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return false
		}
	}
	return true
}
