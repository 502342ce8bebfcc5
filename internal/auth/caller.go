package auth

import (
	"context"
	"sync"

	"github.com/allot-dev/allot/internal/quota"
)

// Caller carries who a request was authenticated as out of the handler
// that authenticated it, to a wrapper around it (the access log), which
// only sees the request after the handler is done. It holds the actor's
// name, role and tenant, never the credential.
type Caller struct {
	mu    sync.Mutex
	actor quota.Actor
	known bool
}

type callerKey struct{}

// WithCaller returns ctx with an empty Caller that authentications under
// ctx fill in.
func WithCaller(ctx context.Context) (context.Context, *Caller) {
	c := &Caller{}
	return context.WithValue(ctx, callerKey{}, c), c
}

// Actor is who the request was authenticated as; false if it was not.
func (c *Caller) Actor() (quota.Actor, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.actor, c.known
}

// NoteCaller records actor as the caller of ctx's request, if something
// asked with WithCaller; Authenticate does it for tokens, a dialect that
// authenticates another way calls it itself.
func NoteCaller(ctx context.Context, actor quota.Actor) {
	if c, ok := ctx.Value(callerKey{}).(*Caller); ok {
		c.mu.Lock()
		c.actor, c.known = actor, true
		c.mu.Unlock()
	}
}
