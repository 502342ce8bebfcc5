package ui

import "testing"

func TestLocalPath(t *testing.T) {
	for next, want := range map[string]string{"/ui/requests": "/ui/requests", "/ui/tenants/a?range=7d": "/ui/tenants/a?range=7d",
		"//evil.example/ui/": "/x", "https://evil.example/ui/": "/x", "/api/v1/tokens": "/x", "/ui//evil": "/x", "": "/x", "/ui/\\evil": "/x"} {
		if got := localPath(next, "/x"); got != want {
			t.Errorf("localPath(%q) = %q, want %q", next, got, want)
		}
	}
}
