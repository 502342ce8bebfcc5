// Package auth issues and checks allot's API tokens.
//
// A token is base64("<name>:<secret>") with exactly one colon, the shape
// kraftkit decodes. allot stores only SHA-256 of the whole token (the secret
// has 256 bits of entropy, so a slow hash would add nothing) and finds the
// row by the name, then compares hashes in constant time.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/allot-dev/allot/internal/quota"
)

// bootstrapName is where a token that is not in allot's own format (an
// operator's ALLOT_ADMIN_TOKEN of their choosing) is filed.
const bootstrapName = "admin"

// New returns a fresh token for name and the hash to store.
func New(name string) (token string, hash []byte, err error) {
	if strings.Contains(name, ":") {
		return "", nil, errors.New("auth: a token name has no colon")
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", nil, fmt.Errorf("auth: %w", err)
	}
	token = base64.StdEncoding.EncodeToString([]byte(name + ":" + base64.RawURLEncoding.EncodeToString(secret)))
	return token, Hash(token), nil
}

// Hash is what allot stores of a token.
func Hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// NameOf returns the name a token is filed under.
func NameOf(token string) string {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(token)
		if err != nil {
			continue
		}
		name, secret, ok := strings.Cut(string(b), ":")
		if ok && name != "" && secret != "" && !strings.Contains(secret, ":") && quota.ValidID(name) {
			return name
		}
	}
	return bootstrapName
}

// TokenReader is the part of the store authentication needs.
type TokenReader interface {
	Token(ctx context.Context, name string) (*quota.Token, error)
}

// Authenticate returns who holds token. Unknown, revoked and malformed
// tokens are all CodeUnauthorized with the same message, so an attacker
// learns nothing from the difference.
func Authenticate(ctx context.Context, store TokenReader, token string) (quota.Actor, error) {
	denied := quota.Errorf(quota.CodeUnauthorized, "the token is not valid")
	if token == "" || len(token) > 1024 {
		return quota.Actor{}, denied
	}
	t, err := store.Token(ctx, NameOf(token))
	if quota.ErrorCode(err) == quota.CodeNotFound {
		subtle.ConstantTimeCompare(Hash(token), make([]byte, sha256.Size)) // same work as a miss-by-hash
		return quota.Actor{}, denied
	}
	if err != nil {
		return quota.Actor{}, err
	}
	// An access key (t.Sealed) has no hash, so it never matches here: AK/SK
	// pairs sign requests, they are not bearer tokens.
	if subtle.ConstantTimeCompare(Hash(token), t.Hash) != 1 || t.RevokedAt != nil {
		return quota.Actor{}, denied
	}
	actor := quota.Actor{Name: t.Name, Role: t.Role, Tenant: t.Tenant}
	NoteCaller(ctx, actor)
	return actor, nil
}

// Bootstrap makes sure an admin can get in. With envToken (ALLOT_ADMIN_TOKEN)
// set, that token is made a valid admin token. Otherwise, if no admin token
// exists yet, one is created and returned so the caller can print it once;
// the returned string is empty when nothing was created.
func Bootstrap(ctx context.Context, engine *quota.Engine, store quota.Store, envToken string) (string, error) {
	actor := quota.Actor{Name: "allot", Role: quota.RoleSystem}
	if envToken != "" {
		name := NameOf(envToken)
		if t, err := store.Token(ctx, name); err == nil && t.Role == quota.RoleAdmin && t.RevokedAt == nil &&
			subtle.ConstantTimeCompare(t.Hash, Hash(envToken)) == 1 {
			return "", nil // already in place; no event on every start
		}
		_, err := engine.Do(ctx, quota.Change{Actor: actor, Reason: "ALLOT_ADMIN_TOKEN", Ops: []quota.Op{&quota.PutToken{
			Replace: true, Token: &quota.Token{Name: name, Role: quota.RoleAdmin, Hash: Hash(envToken)},
		}}})
		return "", err
	}
	tokens, err := store.Tokens(ctx)
	if err != nil {
		return "", err
	}
	names := map[string]bool{}
	for _, t := range tokens {
		if t.Role == quota.RoleAdmin && t.RevokedAt == nil {
			return "", nil
		}
		names[t.Name] = true
	}
	name := bootstrapName
	for i := 2; names[name]; i++ {
		name = fmt.Sprintf("%s-%d", bootstrapName, i)
	}
	token, hash, err := New(name)
	if err != nil {
		return "", err
	}
	_, err = engine.Do(ctx, quota.Change{Actor: actor, Reason: "first start", Ops: []quota.Op{&quota.PutToken{
		Token: &quota.Token{Name: name, Role: quota.RoleAdmin, Hash: hash},
	}}})
	if err != nil {
		return "", err
	}
	return token, nil
}
