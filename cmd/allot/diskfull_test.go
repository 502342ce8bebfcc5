package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDiskFull runs allot on a tiny filesystem until its disk is full: no
// write may be acknowledged that was not stored, callers get 503, and when
// space returns allot serves writes again without a restart. It needs to
// mount a tmpfs (root on Linux); elsewhere it skips.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			t.Fatalf("mounting a tmpfs as root: %v %s", err, out)
		}
		t.Skipf("cannot mount a size-limited tmpfs here (%v: %s); the disk-full test needs root on Linux", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	p := start(t, dir, "ALLOT_ADMIN_TOKEN="+adminToken)
	p.req(t, "POST", "/api/v1/tenants", adminToken, `{"id":"acme"}`)
	p.req(t, "PUT", "/api/v1/tenants/acme/quotas/compute.instances", adminToken, `{"hard":1000000}`)

	var acked []string
	statuses := map[int]int{}
	big := strings.Repeat("x", 100) // long ids fill the disk sooner
	for i := 0; statuses[503] < 20 && i < 200000; i++ {
		id := fmt.Sprintf("%s-%d", big, i)
		code, body := p.req(t, "PUT", "/api/v1/tenants/acme/consumers/"+id, adminToken, `{"kind":"compute.instance","state":"stopped","attributes":{"memory_mb":16}}`)
		statuses[code]++
		switch code {
		case 201:
			acked = append(acked, id)
		case 503:
		default:
			t.Fatalf("with the disk filling up: %d %s", code, body)
		}
	}
	if statuses[503] == 0 {
		t.Fatalf("the disk never filled: %v", statuses)
	}
	// Space returns; allot must serve writes again, and nothing acknowledged
	// may be missing.
	if out, err := exec.Command("mount", "-o", "remount,size=64m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	code, body := p.req(t, "PUT", "/api/v1/tenants/acme/consumers/after", adminToken, `{"kind":"compute.instance","state":"stopped","attributes":{"memory_mb":16}}`)
	if code != 201 {
		t.Fatalf("after space returned: %d %s", code, body)
	}
	for _, id := range acked {
		if code, _ := p.req(t, "GET", "/api/v1/tenants/acme/consumers/"+id, adminToken, ""); code != 200 {
			t.Fatalf("acknowledged consumer %s… missing after the disk filled: %d", id[:10], code)
		}
	}
	s := readState(t, p, []string{"acme"}, true)
	if got := s.usage["acme"]["compute.instances"]; got != int64(len(acked)+1) {
		t.Fatalf("usage %d, but %d consumers were acknowledged", got, len(acked)+1)
	}
	t.Logf("disk full after %d claims: %v; every acknowledged claim kept, writes served again once space returned", len(acked), statuses)
}
