// Package interop holds tests that talk to a real allot server with the
// official clients of the API dialects allot speaks. It is a module of its
// own so that the main module does not depend on those large SDKs.
package interop
