package dcs

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AK/SK request signing as Huawei Cloud's SDKs do it (core/auth/signer in
// huaweicloud-sdk-go-v3), and the Open Telekom Cloud variant whose
// Authorization carries a credential scope and whose key is derived from it.

const (
	algorithm  = "SDK-HMAC-SHA256"
	dateFormat = "20060102T150405Z"
	scopeTail  = "sdk_request"
	// Headers the signature covers or that carry its inputs.
	headerDate        = "X-Sdk-Date"
	headerContentHash = "X-Sdk-Content-Sha256"
)

// Errors of verification; a caller maps them to its answers.
var (
	ErrNoSignature  = errors.New("no SDK-HMAC-SHA256 signature")
	ErrMalformed    = errors.New("malformed signature")
	ErrExpired      = errors.New("request time outside the allowed skew")
	ErrBadSignature = errors.New("signature does not match")
	ErrUnknownKey   = errors.New("unknown or revoked access key")
)

// Authorization is a parsed Authorization header.
type Authorization struct {
	Access        string
	SignedHeaders []string
	Signature     string
	Scope         *CredentialScope // the OTC form only
}

// CredentialScope is the OTC form's Credential=AK/date/region/service/sdk_request.
type CredentialScope struct{ Date, Region, Service string }

func (s *CredentialScope) String() string {
	return s.Date + "/" + s.Region + "/" + s.Service + "/" + scopeTail
}

// ParseAuthorization parses `SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b,
// Signature=hex` or the OTC form with `Credential=AK/date/region/service/sdk_request`.
func ParseAuthorization(header string) (Authorization, error) {
	var a Authorization
	if len(header) > 4096 {
		return a, fmt.Errorf("%w: header too long", ErrMalformed)
	}
	rest, ok := strings.CutPrefix(header, algorithm+" ")
	if !ok {
		return a, ErrNoSignature
	}
	seen := map[string]bool{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" || seen[k] {
			return a, fmt.Errorf("%w: %q", ErrMalformed, truncate(part, 40))
		}
		seen[k] = true
		switch k {
		case "Access":
			a.Access = v
		case "Credential":
			parts := strings.Split(v, "/")
			if len(parts) != 5 || parts[4] != scopeTail || !isDate(parts[1]) || parts[2] == "" || parts[3] == "" {
				return a, fmt.Errorf("%w: credential scope", ErrMalformed)
			}
			a.Access, a.Scope = parts[0], &CredentialScope{Date: parts[1], Region: parts[2], Service: parts[3]}
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(v, ";")
			// A name signed twice would put its values in the canonical
			// request twice: a thousand repeats of one large header would
			// cost a thousand times its size. The SDKs never repeat one.
			names := map[string]bool{}
			for _, h := range a.SignedHeaders {
				if h == "" || h != strings.ToLower(h) || strings.ContainsFunc(h, func(r rune) bool {
					return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
				}) {
					return a, fmt.Errorf("%w: signed header %q", ErrMalformed, truncate(h, 40))
				}
				if names[h] {
					return a, fmt.Errorf("%w: signed header %q twice", ErrMalformed, truncate(h, 40))
				}
				names[h] = true
			}
		case "Signature":
			if b, err := hex.DecodeString(v); err != nil || len(b) != sha256.Size {
				return a, fmt.Errorf("%w: signature is not 64 hex digits", ErrMalformed)
			}
			a.Signature = strings.ToLower(v)
		default:
			return a, fmt.Errorf("%w: unknown field %q", ErrMalformed, truncate(k, 40))
		}
	}
	if seen["Access"] == seen["Credential"] || !seen["SignedHeaders"] || !seen["Signature"] {
		return a, fmt.Errorf("%w: want Access or Credential, SignedHeaders and Signature", ErrMalformed)
	}
	if a.Access == "" || len(a.Access) > 128 {
		return a, fmt.Errorf("%w: access key", ErrMalformed)
	}
	return a, nil
}

func isDate(s string) bool {
	_, err := time.Parse("20060102", s)
	return err == nil && len(s) == 8
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// escape percent-encodes every byte but A-Z a-z 0-9 - _ . ~, as the SDKs do.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// canonicalURI escapes each path segment as sent (decoding only the
// request's own escapes) and always ends in a slash.
func canonicalURI(u *url.URL) string {
	segs := strings.Split(u.EscapedPath(), "/")
	for i, s := range segs {
		if dec, err := url.PathUnescape(s); err == nil {
			s = dec
		}
		segs[i] = escape(s)
	}
	p := strings.Join(segs, "/")
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// canonicalQuery sorts parameters by name, then value. `+` stays a plus: the
// SDKs encode a space as %20.
func canonicalQuery(raw string) string {
	params := map[string][]string{}
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if dk, err := url.PathUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.PathUnescape(v); err == nil {
			v = dv
		}
		params[k] = append(params[k], v)
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		vs := params[k]
		slices.Sort(vs)
		for _, v := range vs {
			out = append(out, escape(k)+"="+escape(v))
		}
	}
	return strings.Join(out, "&")
}

// CanonicalRequest is what the signature covers.
func CanonicalRequest(r *http.Request, signedHeaders []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	b.WriteString(canonicalURI(r.URL) + "\n")
	b.WriteString(canonicalQuery(r.URL.RawQuery) + "\n")
	for _, h := range signedHeaders {
		values := r.Header.Values(h)
		if h == "host" {
			values = []string{r.Host}
		}
		values = slices.Clone(values)
		slices.Sort(values)
		for _, v := range values {
			b.WriteString(h + ":" + strings.TrimSpace(v) + "\n")
		}
	}
	b.WriteString("\n" + strings.Join(signedHeaders, ";") + "\n")
	b.WriteString(payloadHash)
	return b.String()
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// StringToSign is what is signed: the algorithm, the request's X-Sdk-Date,
// the scope (OTC form only) and the hash of the canonical request.
func StringToSign(canonicalRequest, sdkDate string, scope *CredentialScope) string {
	if scope != nil {
		return algorithm + "\n" + sdkDate + "\n" + scope.String() + "\n" + sha256Hex([]byte(canonicalRequest))
	}
	return algorithm + "\n" + sdkDate + "\n" + sha256Hex([]byte(canonicalRequest))
}

// signingKey is the secret key itself, or for the OTC form a key derived
// along the scope the way AWS Signature V4 derives one ("SDK" in place of
// "AWS4"): HMAC(HMAC(HMAC(HMAC("SDK"+SK, date), region), service), "sdk_request").
func signingKey(secret string, scope *CredentialScope) []byte {
	if scope == nil {
		return []byte(secret)
	}
	k := hmacSHA256([]byte("SDK"+secret), scope.Date)
	k = hmacSHA256(k, scope.Region)
	k = hmacSHA256(k, scope.Service)
	return hmacSHA256(k, scopeTail)
}

// Signature is the hex HMAC-SHA256 of stringToSign.
func Signature(secret, stringToSign string, scope *CredentialScope) string {
	return hex.EncodeToString(hmacSHA256(signingKey(secret, scope), stringToSign))
}

// payloadHash is the X-Sdk-Content-Sha256 header if sent (UNSIGNED-PAYLOAD
// among others), else the hash of the body.
func payloadHash(r *http.Request, body []byte) string {
	if v := r.Header.Get(headerContentHash); v != "" {
		return v
	}
	return sha256Hex(body)
}

// Sign signs r the way the official SDK does: it sets X-Sdk-Date and signs
// every header present (lower-cased, sorted) but Content-Type, plus host.
func Sign(r *http.Request, body []byte, ak, sk string, now time.Time, scope *CredentialScope) {
	date := now.UTC().Format(dateFormat)
	r.Header.Set(headerDate, date)
	signed := []string{"host"}
	for k := range r.Header {
		if lk := strings.ToLower(k); lk != "content-type" && lk != "authorization" && !strings.Contains(k, "_") {
			signed = append(signed, lk)
		}
	}
	slices.Sort(signed)
	sig := Signature(sk, StringToSign(CanonicalRequest(r, signed, payloadHash(r, body)), date, scope), scope)
	cred := "Access=" + ak
	if scope != nil {
		cred = "Credential=" + ak + "/" + scope.String()
	}
	r.Header.Set("Authorization", fmt.Sprintf("%s %s, SignedHeaders=%s, Signature=%s", algorithm, cred, strings.Join(signed, ";"), sig))
}

// Verifier checks signed requests.
type Verifier struct {
	// Secret returns the secret key of an access key, or an error wrapping
	// ErrUnknownKey.
	Secret  func(ctx context.Context, accessKey string) (string, error)
	Now     func() time.Time
	MaxSkew time.Duration // default 15 minutes
}

// Verify checks r's signature and returns its access key. The access key is
// returned with the error too, once the header parsed, so callers can count
// failures per key.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, body []byte) (string, error) {
	a, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return "", err
	}
	if !slices.Contains(a.SignedHeaders, "x-sdk-date") {
		return a.Access, fmt.Errorf("%w: x-sdk-date must be signed", ErrMalformed)
	}
	date := r.Header.Get(headerDate)
	t, err := time.Parse(dateFormat, date)
	if err != nil {
		return a.Access, fmt.Errorf("%w: X-Sdk-Date %q", ErrMalformed, truncate(date, 30))
	}
	skew := v.MaxSkew
	if skew == 0 {
		skew = 15 * time.Minute
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if d := now().Sub(t); d > skew || d < -skew {
		return a.Access, fmt.Errorf("%w: X-Sdk-Date is %s off", ErrExpired, d.Round(time.Second))
	}
	if a.Scope != nil && a.Scope.Date != date[:8] {
		return a.Access, fmt.Errorf("%w: the credential's date is not the request's", ErrMalformed)
	}
	secret, err := v.Secret(ctx, a.Access)
	if err != nil {
		return a.Access, err
	}
	want := Signature(secret, StringToSign(CanonicalRequest(r, a.SignedHeaders, payloadHash(r, body)), date, a.Scope), a.Scope)
	if !hmac.Equal([]byte(want), []byte(a.Signature)) {
		return a.Access, ErrBadSignature
	}
	return a.Access, nil
}
