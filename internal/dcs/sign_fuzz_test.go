package dcs

import (
	"strings"
	"testing"
)

func FuzzParseAuthorization(f *testing.F) {
	sig := strings.Repeat("0f", 32)
	for _, s := range []string{
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host;x-sdk-date, Signature=" + sig,
		"SDK-HMAC-SHA256 Credential=AK1/20261122/eu-de/dcs/sdk_request, SignedHeaders=host, Signature=" + sig,
		"SDK-HMAC-SHA256 Access=,,,=",
		"SDK-HMAC-SHA256 Credential=////",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		a, err := ParseAuthorization(header)
		if err != nil {
			return
		}
		// What parses is complete and well-formed.
		if a.Access == "" || len(a.SignedHeaders) == 0 || len(a.Signature) != 64 {
			t.Fatalf("%q parsed into %+v", header, a)
		}
		seen := map[string]bool{}
		for _, h := range a.SignedHeaders {
			if h == "" || h != strings.ToLower(h) || seen[h] {
				t.Fatalf("%q: bad or repeated signed header %q", header, h)
			}
			seen[h] = true
		}
	})
}
