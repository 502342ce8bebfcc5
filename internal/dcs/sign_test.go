package dcs

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const (
	testAK = "AKTESTEXAMPLE0000001"
	testSK = "SKtestexample0000000000000000000000000001"
)

var testDate = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// The expected values below were computed by an independent implementation
// (a short Python script following the SDK's algorithm with urllib.parse and
// hmac), not by this package.
var vectors = []struct {
	name           string
	method, target string
	host           string
	headers        map[string]string
	body           string
	signed         []string
	scope          *CredentialScope
	canonical      string
	stringToSign   string
	signature      string
}{
	{
		name: "GET without query, signed as the Go SDK signs", method: "GET",
		target: "/v2/0123456789abcdef0123456789abcdef/quota", host: "127.0.0.1:8080",
		headers: map[string]string{"User-Agent": "huaweicloud-usdk-go/3.0", "X-Project-Id": "0123456789abcdef0123456789abcdef",
			"X-Sdk-Date": "20261122T120000Z", "Content-Type": "application/json"},
		signed:       []string{"user-agent", "x-project-id", "x-sdk-date"},
		canonical:    "GET\n/v2/0123456789abcdef0123456789abcdef/quota/\n\nuser-agent:huaweicloud-usdk-go/3.0\nx-project-id:0123456789abcdef0123456789abcdef\nx-sdk-date:20261122T120000Z\n\nuser-agent;x-project-id;x-sdk-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		stringToSign: "SDK-HMAC-SHA256\n20261122T120000Z\nf50cc343b4d5677e0786faf3d9dc69191d98a6c58a979d2b72d919b703ccd025",
		signature:    "c1d1d9d80eec00d6aa005c3668d436646391db73a426dfc5da0ef5117eb71976",
	},
	{
		name: "GET with spaces, slashes, plus signs, stars and non-ASCII in the query", method: "GET",
		target: "/v2/p/instances?name=a%20b&path=%2Fx%2Fy&lit=1+2&plus=1%2B2&star=*&uni=%C3%BC&name=a&empty=", host: "dcs.example.com",
		headers:      map[string]string{"X-Sdk-Date": "20261122T120000Z"},
		signed:       []string{"host", "x-sdk-date"},
		canonical:    "GET\n/v2/p/instances/\nempty=&lit=1%2B2&name=a&name=a%20b&path=%2Fx%2Fy&plus=1%2B2&star=%2A&uni=%C3%BC\nhost:dcs.example.com\nx-sdk-date:20261122T120000Z\n\nhost;x-sdk-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		stringToSign: "SDK-HMAC-SHA256\n20261122T120000Z\ne3a919ffac6b2beac59bc987327fc35768e23d3a09a1d512d9d97ae8be952eba",
		signature:    "2b2b0bc071b5a8535ad6f040a5c0a2463a84809329a21f8204df4f704d22ce11",
	},
	{
		name: "POST with a body", method: "POST", target: "/v2/p/instances", host: "dcs.example.com",
		headers:      map[string]string{"X-Sdk-Date": "20261122T120000Z", "Content-Type": "application/json"},
		body:         `{"name":"cache-1","capacity":2}`,
		signed:       []string{"host", "x-sdk-date"},
		canonical:    "POST\n/v2/p/instances/\n\nhost:dcs.example.com\nx-sdk-date:20261122T120000Z\n\nhost;x-sdk-date\n9a75b718254cbd12f1a2c75c774d3111c3dca6be7d18176647785b8d8717fcaf",
		stringToSign: "SDK-HMAC-SHA256\n20261122T120000Z\n16be3a27e7c8deb1106e288fc61426c867c86c9e6320cb9f19d8e9c800b5d0a4",
		signature:    "fee0be8b1d50e0134c67bf7e950b97534eab71f28f05cb9f0a2980e32bacce01",
	},
	{
		name: "X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD", method: "PUT", target: "/v2/p/objects/a%20b", host: "dcs.example.com",
		headers:      map[string]string{"X-Sdk-Date": "20261122T120000Z", "X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD"},
		body:         "anything at all",
		signed:       []string{"host", "x-sdk-content-sha256", "x-sdk-date"},
		canonical:    "PUT\n/v2/p/objects/a%20b/\n\nhost:dcs.example.com\nx-sdk-content-sha256:UNSIGNED-PAYLOAD\nx-sdk-date:20261122T120000Z\n\nhost;x-sdk-content-sha256;x-sdk-date\nUNSIGNED-PAYLOAD",
		stringToSign: "SDK-HMAC-SHA256\n20261122T120000Z\nbd43bd9d7b373dc185ad0185ee684f7d0989c951d16377a14ab2048a5f36d4cb",
		signature:    "3b4d5a247d690fca74fa2d40beb56f89b3b817cd7505b9b0598c2683d7c15dce",
	},
	{
		name: "the OTC variant with a credential scope", method: "GET",
		target: "/v2/0123456789abcdef0123456789abcdef/quota", host: "dcs.eu-de.otc.t-systems.com",
		headers:      map[string]string{"X-Sdk-Date": "20261122T120000Z"},
		signed:       []string{"host", "x-sdk-date"},
		scope:        &CredentialScope{Date: "20261122", Region: "eu-de", Service: "dcs"},
		canonical:    "GET\n/v2/0123456789abcdef0123456789abcdef/quota/\n\nhost:dcs.eu-de.otc.t-systems.com\nx-sdk-date:20261122T120000Z\n\nhost;x-sdk-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		stringToSign: "SDK-HMAC-SHA256\n20261122T120000Z\n20261122/eu-de/dcs/sdk_request\n55db3baf3a9f0b16e93a1d113a2efec79b57be20b9368a1c135a4b142a8a9b26",
		signature:    "3b53e1246589ab0f9055c5bd9129a6be8ceb56ff77c40149ea2d29598a703892",
	},
}

func vectorRequest(t *testing.T, i int) *http.Request {
	v := vectors[i]
	r := httptest.NewRequest(v.method, v.target, strings.NewReader(v.body))
	r.Host = v.host
	for k, val := range v.headers {
		r.Header.Set(k, val)
	}
	return r
}

func authHeader(i int) string {
	v := vectors[i]
	cred := "Access=" + testAK
	if v.scope != nil {
		cred = "Credential=" + testAK + "/" + v.scope.String()
	}
	return "SDK-HMAC-SHA256 " + cred + ", SignedHeaders=" + strings.Join(v.signed, ";") + ", Signature=" + v.signature
}

func testVerifier(now time.Time) *Verifier {
	return &Verifier{Now: func() time.Time { return now }, Secret: func(_ context.Context, ak string) (string, error) {
		if ak != testAK {
			return "", ErrUnknownKey
		}
		return testSK, nil
	}}
}

func TestVectors(t *testing.T) {
	for i, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			r := vectorRequest(t, i)
			cr := CanonicalRequest(r, v.signed, payloadHash(r, []byte(v.body)))
			if cr != v.canonical {
				t.Fatalf("canonical request:\n%q\nwant\n%q", cr, v.canonical)
			}
			sts := StringToSign(cr, "20261122T120000Z", v.scope)
			if sts != v.stringToSign {
				t.Fatalf("string to sign:\n%q\nwant\n%q", sts, v.stringToSign)
			}
			if sig := Signature(testSK, sts, v.scope); sig != v.signature {
				t.Fatalf("signature %s, want %s", sig, v.signature)
			}
			r.Header.Set("Authorization", authHeader(i))
			if ak, err := testVerifier(testDate).Verify(context.Background(), r, []byte(v.body)); err != nil || ak != testAK {
				t.Fatalf("Verify = %q, %v", ak, err)
			}
		})
	}
}

func TestSignThenVerify(t *testing.T) {
	for _, scope := range []*CredentialScope{nil, {Date: "20261122", Region: "eu-de", Service: "dcs"}} {
		r := httptest.NewRequest("GET", "/v2/abc/quota?x=1", nil)
		r.Header.Set("X-Project-Id", "abc")
		Sign(r, nil, testAK, testSK, testDate, scope)
		if _, err := testVerifier(testDate).Verify(context.Background(), r, nil); err != nil {
			t.Fatalf("scope %v: %v (%s)", scope, err, r.Header.Get("Authorization"))
		}
	}
}

func TestClockSkew(t *testing.T) {
	for _, tc := range []struct {
		offset time.Duration
		ok     bool
	}{{14 * time.Minute, true}, {-14 * time.Minute, true}, {16 * time.Minute, false}, {-16 * time.Minute, false}} {
		r := vectorRequest(t, 0)
		r.Header.Set("Authorization", authHeader(0))
		_, err := testVerifier(testDate.Add(tc.offset)).Verify(context.Background(), r, nil)
		if (err == nil) != tc.ok || (!tc.ok && !errors.Is(err, ErrExpired)) {
			t.Errorf("skew %v: err = %v, want ok=%v", tc.offset, err, tc.ok)
		}
	}
}

// TestReplayWithChangesIsRefused replays a valid signed request with one
// part changed at a time.
func TestReplayWithChangesIsRefused(t *testing.T) {
	changes := map[string]func(r *http.Request) []byte{
		"path": func(r *http.Request) []byte { r.URL.Path = "/v2/p/instancez"; return nil },
		"query": func(r *http.Request) []byte {
			r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "star=*", "star=**", 1)
			return nil
		},
		"signed header": func(r *http.Request) []byte { r.Host = "evil.example.com"; return nil },
		"method":        func(r *http.Request) []byte { r.Method = "DELETE"; return nil },
	}
	for name, change := range changes {
		r := vectorRequest(t, 1)
		r.Header.Set("Authorization", authHeader(1))
		change(r)
		if _, err := testVerifier(testDate).Verify(context.Background(), r, nil); !errors.Is(err, ErrBadSignature) {
			t.Errorf("changed %s: err = %v, want a bad signature", name, err)
		}
	}
	r := vectorRequest(t, 2)
	r.Header.Set("Authorization", authHeader(2))
	if _, err := testVerifier(testDate).Verify(context.Background(), r, []byte(`{"name":"cache-1","capacity":200}`)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("changed body: err = %v", err)
	}
	// A header that is not signed may change.
	r = vectorRequest(t, 1)
	r.Header.Set("Authorization", authHeader(1))
	r.Header.Set("Accept", "text/plain")
	if _, err := testVerifier(testDate).Verify(context.Background(), r, nil); err != nil {
		t.Errorf("unsigned header changed: %v", err)
	}
}

func TestVerifyRefusals(t *testing.T) {
	r := vectorRequest(t, 1)
	r.Header.Set("Authorization", strings.Replace(authHeader(1), testAK, "AKUNKNOWN", 1))
	if _, err := testVerifier(testDate).Verify(context.Background(), r, nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key: %v", err)
	}
	r = vectorRequest(t, 1)
	r.Header.Set("Authorization", strings.Replace(authHeader(1), "host;x-sdk-date", "host", 1))
	if _, err := testVerifier(testDate).Verify(context.Background(), r, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("x-sdk-date not signed: %v", err)
	}
	r = vectorRequest(t, 4)
	r.Header.Set("Authorization", strings.Replace(authHeader(4), "20261122/eu-de", "20261121/eu-de", 1))
	if _, err := testVerifier(testDate).Verify(context.Background(), r, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("scope of another day: %v", err)
	}
	r = vectorRequest(t, 1)
	if _, err := testVerifier(testDate).Verify(context.Background(), r, nil); !errors.Is(err, ErrNoSignature) {
		t.Errorf("no Authorization: %v", err)
	}
}

func TestParseAuthorization(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	good := []string{
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host;x-sdk-date, Signature=" + sig,
		"SDK-HMAC-SHA256 Access=AK1,SignedHeaders=x-sdk-date,Signature=" + sig,
		"SDK-HMAC-SHA256 Credential=AK1/20261122/eu-de/dcs/sdk_request, SignedHeaders=host;x-sdk-date, Signature=" + sig,
	}
	for _, h := range good {
		if _, err := ParseAuthorization(h); err != nil {
			t.Errorf("%q: %v", h, err)
		}
	}
	bad := []string{
		"", "Bearer x", "SDK-HMAC-SHA256", "SDK-HMAC-SHA256 ",
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host", // no signature
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host, Signature=xyz",
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=Host, Signature=" + sig,
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host;;x, Signature=" + sig,
		// a name signed twice would repeat its values in the canonical request
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=x-big;x-sdk-date;x-big, Signature=" + sig,
		"SDK-HMAC-SHA256 Access=AK1, Access=AK2, SignedHeaders=host, Signature=" + sig,
		"SDK-HMAC-SHA256 Access=AK1, Credential=AK1/20261122/r/s/sdk_request, SignedHeaders=host, Signature=" + sig,
		"SDK-HMAC-SHA256 Credential=AK1/2026112/r/s/sdk_request, SignedHeaders=host, Signature=" + sig,
		"SDK-HMAC-SHA256 Credential=AK1/20261122/r/s/other, SignedHeaders=host, Signature=" + sig,
		"SDK-HMAC-SHA256 Access=, SignedHeaders=host, Signature=" + sig,
		"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host, Signature=" + sig + ", Extra=1",
		"SDK-HMAC-SHA256 Access=" + strings.Repeat("A", 200) + ", SignedHeaders=host, Signature=" + sig,
	}
	for _, h := range bad {
		if _, err := ParseAuthorization(h); err == nil {
			t.Errorf("%q accepted", h)
		}
	}
}
